/*
 * test_logline.c: mplogline (one oslo.log line; the chunked line splitter)
 */
#include <stdlib.h>
#include <string.h>

#include "mptest.h"
#include "mplogline.h"

#define CTX "[None req-5b6c791d-5709-4f36-8fbe-c3e02869e35d 9f3b7a0c2e4d4c6f8a1b3d5e7f9a0b1c " \
    "8d1f5e6b9a0c4b2e8f3a7c6d5e4b3a21 - - default default]"
#define INST "[instance: 178b0921-8f85-4257-88b6-2e743b5a975c]"
#define SUFFIX " _live_migration_monitor /usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:10472"

static mpLogLineKind
parseStr(const char *s, mpLogLine *out)
{
    return mpLogLineParse(s, strlen(s), out);
}

static void
assertSlice(mpSlice s, const char *want)
{
    ck_assert_uint_eq(s.len, strlen(want));
    if (s.len)
        ck_assert_int_eq(memcmp(s.p, want, s.len), 0);
}

START_TEST(test_context_debug_line)
{
    mpLogLine l;
    const char *s = "2026-11-22 11:01:40.692 13586 DEBUG nova.virt.libvirt.driver " CTX " " INST
        " Starting monitoring of live migration _live_migration "
        "/usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:10580";

    ck_assert_int_eq(parseStr(s, &l), MP_LOG_LINE_CONTEXT);
    ck_assert_int_eq(l.level, MP_LOG_LEVEL_DEBUG);
    assertSlice(l.timestamp, "2026-11-22 11:01:40.692");
    ck_assert_int_eq(l.time.year, 2026);
    ck_assert_int_eq(l.time.month, 11);
    ck_assert_int_eq(l.time.day, 22);
    ck_assert_int_eq(l.time.ms, 692);
    assertSlice(l.pid, "13586");
    assertSlice(l.logger, "nova.virt.libvirt.driver");
    ck_assert_ptr_null(l.globalRequestId.p);
    assertSlice(l.requestId, "req-5b6c791d-5709-4f36-8fbe-c3e02869e35d");
    assertSlice(l.userIdentity, "9f3b7a0c2e4d4c6f8a1b3d5e7f9a0b1c "
                "8d1f5e6b9a0c4b2e8f3a7c6d5e4b3a21 - - default default");
    assertSlice(l.instance, "178b0921-8f85-4257-88b6-2e743b5a975c");
    assertSlice(l.message, "Starting monitoring of live migration");
    assertSlice(l.debugFunc, "_live_migration");
    assertSlice(l.debugPath, "/usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py");
    ck_assert_int_eq(l.debugLineno, 10580);
    ck_assert_int_eq(l.event, MP_LOG_EVENT_START_MONITORING);
    /* local ms since the epoch of the wall clock */
    ck_assert_int_eq(l.time.localMs, 1795345300692LL);
}
END_TEST

START_TEST(test_global_request_id)
{
    mpLogLine l;
    const char *s = "2026-11-22 11:01:40.692 13586 INFO nova.compute.manager "
        "[req-aaaa req-bbbb u p - - - -] " INST " Post operation of migration started";

    ck_assert_int_eq(parseStr(s, &l), MP_LOG_LINE_CONTEXT);
    assertSlice(l.globalRequestId, "req-aaaa");
    assertSlice(l.requestId, "req-bbbb");
    ck_assert_int_eq(l.event, MP_LOG_EVENT_POST_OPERATION_STARTED);
    ck_assert_ptr_null(l.debugFunc.p);
}
END_TEST

START_TEST(test_no_context_line)
{
    mpLogLine l;
    const char *s = "2026-11-22 11:01:40.695 13586 INFO nova.compute.manager [-] " INST
        " VM Postcopy started (Lifecycle Event)\r";

    ck_assert_int_eq(parseStr(s, &l), MP_LOG_LINE_NO_CONTEXT);
    assertSlice(l.context, "-");
    ck_assert_uint_eq(l.requestId.len, 0);
    assertSlice(l.message, "VM Postcopy started (Lifecycle Event)");
    ck_assert_int_eq(l.event, MP_LOG_EVENT_POSTCOPY_LIFECYCLE);

    s = "2026-11-22 11:01:40.695 13586 DEBUG oslo_service.periodic_task [-] Running periodic "
        "task ComputeManager._poll run_periodic_tasks /usr/lib/python3/x.py:210";
    ck_assert_int_eq(parseStr(s, &l), MP_LOG_LINE_NO_CONTEXT);
    ck_assert_uint_eq(l.instance.len, 0);
    assertSlice(l.message, "Running periodic task ComputeManager._poll");
    ck_assert_int_eq(l.event, MP_LOG_EVENT_NONE);
}
END_TEST

START_TEST(test_progress_lines)
{
    mpLogLine l;
    const char *info = "2026-11-22 11:01:40.693 13586 INFO nova.virt.libvirt.driver " CTX " " INST
        " Migration running for 30 secs, memory 12% remaining (bytes processed=7951990784, "
        "remaining=515764224, total=4297072640); disk 100% remaining (bytes processed=0, "
        "remaining=0, total=0).";
    const char *debug = "2026-11-22 11:01:40.693 13586 DEBUG nova.virt.libvirt.driver " CTX " "
        INST " Migration running for 5 secs, memory 71% remaining (bytes processed=1253376000, "
        "remaining=3041013760, total=4297072640); disk 100% remaining (bytes processed=0, "
        "remaining=0, total=0)." SUFFIX;

    ck_assert_int_eq(parseStr(info, &l), MP_LOG_LINE_CONTEXT);
    ck_assert_int_eq(l.event, MP_LOG_EVENT_PROGRESS);
    ck_assert_int_eq(l.progress.secs, 30);
    ck_assert_int_eq(l.progress.memoryRemainingPct, 12);
    ck_assert_int_eq(l.progress.processedBytes, 7951990784LL);
    ck_assert_int_eq(l.progress.remainingBytes, 515764224LL);
    ck_assert_int_eq(l.progress.totalBytes, 4297072640LL);

    ck_assert_int_eq(parseStr(debug, &l), MP_LOG_LINE_CONTEXT);
    ck_assert_int_eq(l.event, MP_LOG_EVENT_PROGRESS);
    ck_assert_int_eq(l.progress.secs, 5);
    ck_assert_int_eq(l.progress.remainingBytes, 3041013760LL);
    ck_assert_int_eq(l.debugLineno, 10472);
}
END_TEST

START_TEST(test_progress_overflow_and_garbage)
{
    mpLogLine l;
    const char *pre = "2026-11-22 11:01:40.693 13586 INFO nova.virt.libvirt.driver " CTX " " INST " ";
    const char *bad[] = {
        "Migration running for 99999999999999999999 secs, memory 1% remaining (bytes "
        "processed=1, remaining=1, total=1)",
        "Migration running for 1 secs, memory 1% remaining (bytes processed="
        "9223372036854775808, remaining=1, total=1)",
        "Migration running for 1 secs, memory 1% remaining (bytes processed=1, remaining=1, "
        "total=18446744073709551617)",
        "Migration running for secs, memory 1% remaining",
        "Migration running for 1 secs, memory",
        "Migration running for -",
    };
    char buf[512];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), "%s%s", pre, bad[i]);
        ck_assert_int_eq(parseStr(buf, &l), MP_LOG_LINE_CONTEXT);
        ck_assert_int_eq(l.event, MP_LOG_EVENT_NONE);
        ck_assert_int_eq(l.progress.totalBytes, 0);
    }
    snprintf(buf, sizeof(buf), "%s%s", pre, "Migration running for 1 secs, memory 1% remaining "
             "(bytes processed=9223372036854775807, remaining=-5, total=0)");
    parseStr(buf, &l);
    ck_assert_int_eq(l.event, MP_LOG_EVENT_PROGRESS);
    ck_assert_int_eq(l.progress.processedBytes, INT64_MAX);
    ck_assert_int_eq(l.progress.remainingBytes, -5);
}
END_TEST

START_TEST(test_messages)
{
    static const struct {
        const char *msg;
        mpLogEvent ev;
        const char *host;
        int64_t number;
    } cases[] = {
        { "Switching to post-copy migration mode", MP_LOG_EVENT_SWITCH_POSTCOPY, NULL, 0 },
        { "Live migration not completed after 1600 sec", MP_LOG_EVENT_COMPLETION_TIMEOUT, NULL, 1600 },
        { "Live migration not completed after 1600 secs", MP_LOG_EVENT_NONE, NULL, 0 },
        { "Migration operation has completed", MP_LOG_EVENT_OP_COMPLETED, NULL, 0 },
        { "Migration operation has aborted", MP_LOG_EVENT_OP_ABORTED, NULL, 0 },
        { "Migration operation was cancelled", MP_LOG_EVENT_OP_CANCELLED, NULL, 0 },
        { "Migration operation has completed.", MP_LOG_EVENT_NONE, NULL, 0 },
        { "_post_live_migration() is started..", MP_LOG_EVENT_POST_LIVE_MIGRATION, NULL, 0 },
        { "Migrating instance to cmp-b07 finished successfully.", MP_LOG_EVENT_MIGRATE_FINISHED,
          "cmp-b07", 0 },
        { "Migrating instance to  finished successfully.", MP_LOG_EVENT_NONE, NULL, 0 },
        { "Migrating instance to finished successfully.", MP_LOG_EVENT_NONE, NULL, 0 },
        { "Live Migration failure: operation failed", MP_LOG_EVENT_LIVE_MIGRATION_FAILURE, NULL, 0 },
        { "Increasing downtime to 50 ms after 0 sec elapsed time",
          MP_LOG_EVENT_INCREASING_DOWNTIME, NULL, 0 },
        { "Instance destroyed successfully.", MP_LOG_EVENT_INSTANCE_DESTROYED, NULL, 0 },
        { "During the sync_power process the instance has moved from host cmp-a01 to host "
          "cmp-b07", MP_LOG_EVENT_SYNC_POWER_MOVED, "cmp-b07", 0 },
        { "Migration not running yet", MP_LOG_EVENT_MONITOR, NULL, 0 },
        { "live_migration data is LibvirtLiveMigrateData(x)", MP_LOG_EVENT_LIVE_MIGRATION_DATA,
          NULL, 0 },
        { "pre_live_migration data is LibvirtLiveMigrateData(x)",
          MP_LOG_EVENT_PRE_LIVE_MIGRATION_DATA, NULL, 0 },
        { "pre_live_migration result data is X", MP_LOG_EVENT_NONE, NULL, 0 },
        { "Auditing locally available compute resources for cmp-b07 (node: x)",
          MP_LOG_EVENT_AUDIT_RESOURCES, "cmp-b07", 0 },
        { "Live migration succeeded", MP_LOG_EVENT_NONE, NULL, 0 },
        { "", MP_LOG_EVENT_NONE, NULL, 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[512];
        mpLogLine l;

        snprintf(buf, sizeof(buf), "2026-11-22 11:01:40.693 1 INFO nova.compute.manager " CTX
                 " " INST " %s", cases[i].msg);
        ck_assert_int_eq(parseStr(buf, &l), MP_LOG_LINE_CONTEXT);
        ck_assert_msg(l.event == cases[i].ev, "case %zu '%s': event %d", i, cases[i].msg,
                      l.event);
        if (cases[i].host)
            assertSlice(l.host, cases[i].host);
        ck_assert_int_eq(l.number, cases[i].number);
    }
}
END_TEST

START_TEST(test_continuation_lines)
{
    mpLogLine l;

    ck_assert_int_eq(parseStr("2026-11-21 08:12:27.193 3187 ERROR nova.compute.manager "
                              "Traceback (most recent call last):", &l),
                     MP_LOG_LINE_CONTINUATION);
    ck_assert_int_eq(l.level, MP_LOG_LEVEL_ERROR);
    assertSlice(l.message, "Traceback (most recent call last):");
    ck_assert_int_eq(l.event, MP_LOG_EVENT_NONE);

    ck_assert_int_eq(parseStr("2026-11-21 08:12:27.193 3187 ERROR nova.compute.manager ", &l),
                     MP_LOG_LINE_CONTINUATION);
    ck_assert_uint_eq(l.message.len, 0);
    ck_assert_int_eq(parseStr("2026-11-21 08:12:27.193 3187 ERROR nova.compute.manager", &l),
                     MP_LOG_LINE_CONTINUATION);
    assertSlice(l.logger, "nova.compute.manager");

    ck_assert_int_eq(parseStr("2026-11-21 08:12:27.193 3187 ERROR nova.compute.manager " INST
                              "   File \"x.py\", line 1", &l), MP_LOG_LINE_CONTINUATION);
    assertSlice(l.instance, "178b0921-8f85-4257-88b6-2e743b5a975c");
    assertSlice(l.message, "  File \"x.py\", line 1");

    /* an unterminated bracket is text, not a context */
    ck_assert_int_eq(parseStr("2026-11-21 08:12:27.193 3187 ERROR nova.compute.manager "
                              "[Errno 2 no such file", &l), MP_LOG_LINE_CONTINUATION);
}
END_TEST

START_TEST(test_bad_prefixes)
{
    static const char *const bad[] = {
        "",
        "x",
        "2026-13-01 00:00:00.000 1 INFO a [-] month 13",
        "2026-02-30 00:00:00.000 1 INFO a [-] Feb 30",
        "2025-02-29 00:00:00.000 1 INFO a [-] not a leap year",
        "2026-00-10 00:00:00.000 1 INFO a [-] month 0",
        "2026-01-00 00:00:00.000 1 INFO a [-] day 0",
        "2026-01-01 24:00:00.000 1 INFO a [-] hour 24",
        "2026-01-01 00:60:00.000 1 INFO a [-] minute 60",
        "2026-01-01 00:00:60.000 1 INFO a [-] second 60",
        "2026-01-01 00:00:00,000 1 INFO a [-] comma",
        "2026-01-01 00:00:00.000",
        "2026-01-01 00:00:00.000 ",
        "2026-01-01 00:00:00.000 x INFO a [-] pid",
        "2026-01-01 00:00:00.000 12345678901 INFO a [-] pid too long",
        "2026-01-01 00:00:00.000 1 NOTICE a [-] level",
        "2026-01-01 00:00:00.000 1 INFO",
        "2026-01-01 00:00:00.000 1 INFO ",
        "2026-01-01 00:00:00.000 1  INFO a",
        "\xff\xfe\x00\x01garbage",
        "  continuation of a multi-line message",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mpLogLine l;

        ck_assert_msg(mpLogLineParse(bad[i], strlen(bad[i]), &l) == MP_LOG_LINE_UNKNOWN,
                      "case %zu accepted", i);
    }
    {
        mpLogLine l;

        ck_assert_int_eq(parseStr("2024-02-29 23:59:59.999 1 INFO a [-] leap day", &l),
                         MP_LOG_LINE_NO_CONTEXT);
        ck_assert_int_eq(parseStr("2026-01-01 00:00:00.000 1 INFO a [-]", &l),
                         MP_LOG_LINE_CONTINUATION);   /* "[-]" without a following space */
    }
}
END_TEST

START_TEST(test_truncations_and_nul)
{
    const char *s = "2026-11-22 11:01:40.693 13586 DEBUG nova.virt.libvirt.driver " CTX " " INST
        " Migration running for 5 secs, memory 71% remaining (bytes processed=1253376000, "
        "remaining=3041013760, total=4297072640); disk 100% remaining (bytes processed=0, "
        "remaining=0, total=0)." SUFFIX;
    size_t n = strlen(s);
    size_t i;

    /* every truncation, each in an exactly-sized heap copy so ASan sees an overread */
    for (i = 0; i <= n; i++) {
        char *copy = malloc(i ? i : 1);
        mpLogLine l;

        memcpy(copy, s, i);
        mpLogLineParse(copy, i, &l);
        if (i < 24)
            ck_assert_int_eq(l.kind, MP_LOG_LINE_UNKNOWN);
        free(copy);
    }
    /* NUL bytes are data, not terminators */
    {
        char buf[256];
        mpLogLine l;
        const char *line = "2026-11-22 11:01:40.693 1 INFO nova.compute.manager [-] " INST
            " Instance destroyed successfully.";
        size_t len = strlen(line);

        memcpy(buf, line, len);
        ck_assert_int_eq(mpLogLineParse(buf, len, &l), MP_LOG_LINE_NO_CONTEXT);
        ck_assert_int_eq(l.event, MP_LOG_EVENT_INSTANCE_DESTROYED);
        buf[len - 3] = '\0';
        mpLogLineParse(buf, len, &l);
        ck_assert_int_eq(l.event, MP_LOG_EVENT_NONE);
        ck_assert_uint_eq(l.message.len, strlen("Instance destroyed successfully."));
        buf[5] = '\0';
        ck_assert_int_eq(mpLogLineParse(buf, len, &l), MP_LOG_LINE_UNKNOWN);
    }
    /* random bytes */
    {
        unsigned seed = 12345;
        char buf[300];
        int round;

        for (round = 0; round < 20000; round++) {
            mpLogLine l;
            size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf));
            size_t k;

            memcpy(buf, s, sizeof(buf) < n ? sizeof(buf) : n);
            for (k = 0; k < 4; k++)
                buf[rand_r(&seed) % (int)sizeof(buf)] = (char)rand_r(&seed);
            mpLogLineParse(buf, len, &l);
        }
    }
}
END_TEST

START_TEST(test_megabyte_line)
{
    size_t n = 1 << 20;
    char *big = malloc(n);
    const char *pre = "2026-11-22 11:01:40.693 1 DEBUG nova.compute.manager [-] ";
    mpLogLine l;

    memset(big, 'A', n);
    memcpy(big, pre, strlen(pre));
    ck_assert_int_eq(mpLogLineParse(big, n, &l), MP_LOG_LINE_NO_CONTEXT);
    ck_assert_uint_eq(l.message.len, n - strlen(pre));
    memset(big, ' ', n);
    ck_assert_int_eq(mpLogLineParse(big, n, &l), MP_LOG_LINE_UNKNOWN);
    free(big);
}
END_TEST

START_TEST(test_days_from_civil)
{
    ck_assert_int_eq(mpDaysFromCivil(1970, 1, 1), 0);
    ck_assert_int_eq(mpDaysFromCivil(2000, 3, 1), 11017);
    ck_assert_int_eq(mpDaysFromCivil(1969, 12, 31), -1);
    ck_assert_int_eq(mpDaysFromCivil(2026, 11, 21), 20778);
    ck_assert_str_eq(mpLogLevelName(MP_LOG_LEVEL_WARNING), "WARNING");
    ck_assert_str_eq(mpLogLevelName(MP_LOG_LEVEL_LAST), "");
}
END_TEST

/* ---- splitter ---- */

typedef struct {
    char lines[16][64];
    size_t n;
    size_t tooLong;
} collected;

static void
collect(const char *line, size_t len, bool tooLong, void *opaque)
{
    collected *c = opaque;

    if (tooLong) {
        ck_assert_ptr_null(line);
        c->tooLong++;
        snprintf(c->lines[c->n++ % 16], 64, "<long>");
        return;
    }
    ck_assert_uint_lt(len, 64);
    memcpy(c->lines[c->n % 16], line, len);
    c->lines[c->n++ % 16][len] = '\0';
}

START_TEST(test_splitter_chunks)
{
    const char *text = "one\ntwo\n\nthree is longer\nfour";
    size_t n = strlen(text);
    size_t chunk;

    for (chunk = 1; chunk <= n; chunk++) {
        collected c;
        mpLineSplitter *sp = mpLineSplitterNew(64, collect, &c);
        size_t off;

        memset(&c, 0, sizeof(c));
        for (off = 0; off < n; off += chunk)
            mpLineSplitterFeed(sp, text + off, off + chunk > n ? n - off : chunk);
        ck_assert_uint_eq(c.n, 4);
        mpLineSplitterFinish(sp);
        ck_assert_uint_eq(c.n, 5);
        ck_assert_str_eq(c.lines[0], "one");
        ck_assert_str_eq(c.lines[1], "two");
        ck_assert_str_eq(c.lines[2], "");
        ck_assert_str_eq(c.lines[3], "three is longer");
        ck_assert_str_eq(c.lines[4], "four");
        mpLineSplitterFinish(sp);
        ck_assert_uint_eq(c.n, 5);
        mpLineSplitterFree(sp);
    }
    mpLineSplitterFree(NULL);
}
END_TEST

START_TEST(test_splitter_long_lines)
{
    size_t chunks[] = { 1, 3, 7, 100, 4096 };
    size_t k;
    /* limit 8: "12345678" fits, "123456789" does not */
    const char *text = "12345678\n123456789\nok\n0123456789abcdef0123\nend";
    size_t n = strlen(text);

    for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        collected c;
        mpLineSplitter *sp = mpLineSplitterNew(8, collect, &c);
        size_t off;

        memset(&c, 0, sizeof(c));
        for (off = 0; off < n; off += chunks[k])
            mpLineSplitterFeed(sp, text + off, off + chunks[k] > n ? n - off : chunks[k]);
        mpLineSplitterFinish(sp);
        ck_assert_uint_eq(c.n, 5);
        ck_assert_uint_eq(c.tooLong, 2);
        ck_assert_str_eq(c.lines[0], "12345678");
        ck_assert_str_eq(c.lines[1], "<long>");
        ck_assert_str_eq(c.lines[2], "ok");
        ck_assert_str_eq(c.lines[3], "<long>");
        ck_assert_str_eq(c.lines[4], "end");
        mpLineSplitterFree(sp);
    }
}
END_TEST

static Suite *
loglineSuite(void)
{
    Suite *s = suite_create("logline");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_context_debug_line);
    tcase_add_test(tc, test_global_request_id);
    tcase_add_test(tc, test_no_context_line);
    tcase_add_test(tc, test_progress_lines);
    tcase_add_test(tc, test_progress_overflow_and_garbage);
    tcase_add_test(tc, test_messages);
    tcase_add_test(tc, test_continuation_lines);
    tcase_add_test(tc, test_bad_prefixes);
    tcase_add_test(tc, test_truncations_and_nul);
    tcase_add_test(tc, test_megabyte_line);
    tcase_add_test(tc, test_days_from_civil);
    tcase_add_test(tc, test_splitter_chunks);
    tcase_add_test(tc, test_splitter_long_lines);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(loglineSuite)
