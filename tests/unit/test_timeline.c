/*
 * test_timeline.c: mptimeline on the three fixture hosts (records and counters equal the
 * truth files), rotated files, chunked feeding, streaming events, INFO-only logs, hostile input
 */
#include <stdlib.h>
#include <string.h>

#include "mptest.h"
#include "mptimeline.h"

static const char *const COUNTER_KEYS[] = {
    "total_lines", "line_counts_by_level", "lines_without_log_prefix",
    "traceback_continuation_lines", "first_line_at", "last_line_at",
};

static char *
readFixture(const char *host, const char *name, size_t *len)
{
    char rel[256];

    snprintf(rel, sizeof(rel), "fixtures/nova-compute/%s/%s", host, name);
    return mpTestReadFile(mpTestDataPath(rel), len);
}

static json_t *
loadTruth(const char *host)
{
    char rel[256];
    json_error_t err;
    json_t *t;

    snprintf(rel, sizeof(rel), "fixtures/nova-compute/%s/nova-compute.log.truth.json", host);
    t = json_load_file(mpTestDataPath(rel), 0, &err);
    ck_assert_msg(t != NULL, "truth %s: %s", host, err.text);
    return t;
}

/* Feeds buf in chunks of chunk bytes as one file. */
static void
feedFile(mpTimeline *tl, const char *buf, size_t len, size_t chunk)
{
    size_t off;

    for (off = 0; off < len; off += chunk)
        mpTimelineFeedBytes(tl, buf + off, off + chunk > len ? len - off : chunk);
    mpTimelineEndOfFile(tl);
}

static mpTimeline *
scanFixture(const char *host, size_t chunk)
{
    size_t len;
    char *buf = readFixture(host, "nova-compute.log", &len);
    mpTimeline *tl = mpTimelineNew(mpTimeUTCToEpochMs, NULL);

    feedFile(tl, buf, len, chunk);
    free(buf);
    return tl;
}

static void
assertJSONEqual(json_t *want, json_t *got, const char *what)
{
    if (!json_equal(want, got)) {
        char *a = json_dumps(want, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *b = json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY);

        ck_abort_msg("%s differs:\nwant %s\ngot  %s", what, a, b);
        free(a);
        free(b);
    }
}

/* Compares the truth's counters and live_migrations with the timeline's JSON. */
static void
assertMatchesTruth(mpTimeline *tl, json_t *truth, const char *host)
{
    json_t *got = mpTimelineToJSON(tl);
    json_t *want = json_object_get(truth, "live_migrations");
    json_t *have = json_object_get(got, "live_migrations");
    size_t i;
    char what[128];

    for (i = 0; i < sizeof(COUNTER_KEYS) / sizeof(COUNTER_KEYS[0]); i++) {
        snprintf(what, sizeof(what), "%s %s", host, COUNTER_KEYS[i]);
        assertJSONEqual(json_object_get(truth, COUNTER_KEYS[i]),
                        json_object_get(got, COUNTER_KEYS[i]), what);
    }
    ck_assert_uint_eq(json_array_size(have), json_array_size(want));
    for (i = 0; i < json_array_size(want); i++) {
        snprintf(what, sizeof(what), "%s live_migrations[%zu]", host, i);
        assertJSONEqual(json_array_get(want, i), json_array_get(have, i), what);
    }
    ck_assert_int_eq(json_integer_value(json_object_get(got, "unknown_lines")), 0);
    json_decref(got);
}

START_TEST(test_fixture_sources)
{
    const char *hosts[] = { "cmp-a01", "cmp-a03" };
    size_t i;

    for (i = 0; i < 2; i++) {
        json_t *truth = loadTruth(hosts[i]);
        mpTimeline *tl = scanFixture(hosts[i], 1 << 20);

        assertMatchesTruth(tl, truth, hosts[i]);
        mpTimelineFree(tl);
        json_decref(truth);
    }
}
END_TEST

/* A destination log alone can not tell an operator's abort from a failure (both are a
 * rollback with the same lines): that one field differs until correlated with the source. */
START_TEST(test_fixture_destination)
{
    json_t *truth = loadTruth("cmp-b07");
    mpTimeline *tl = scanFixture("cmp-b07", 1 << 20);
    mpTimeline *src = scanFixture("cmp-a01", 1 << 20);
    json_t *got = mpTimelineToJSON(tl);
    json_t *rec = json_array_get(json_object_get(got, "live_migrations"), 4);

    ck_assert_str_eq(json_string_value(json_object_get(rec, "instance_uuid")),
                     "000e05d0-1798-4d06-8397-a31dea9e7ab5");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "outcome")), "failed");
    json_decref(got);

    mpTimelineCorrelate(tl, src);
    assertMatchesTruth(tl, truth, "cmp-b07+a01");
    mpTimelineFree(src);
    mpTimelineFree(tl);
    json_decref(truth);
}
END_TEST

START_TEST(test_chunk_sizes)
{
    size_t chunks[] = { 1, 7, 333, 4093, 65536 };
    json_t *truth = loadTruth("cmp-a01");
    size_t i;
    /* chunk 1 over 4 MB is slow under ASan: use a part of the file for tiny chunks */
    for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        mpTimeline *tl;

        if (chunks[i] < 300) {
            size_t len;
            char *buf = readFixture("cmp-a01", "nova-compute.log", &len);
            mpTimeline *whole = mpTimelineNew(NULL, NULL);
            json_t *a, *b;

            len = len > 300000 ? 300000 : len;
            tl = mpTimelineNew(NULL, NULL);
            feedFile(tl, buf, len, chunks[i]);
            feedFile(whole, buf, len, len);
            a = mpTimelineToJSON(whole);
            b = mpTimelineToJSON(tl);
            assertJSONEqual(a, b, "small chunks");
            json_decref(a);
            json_decref(b);
            mpTimelineFree(whole);
            free(buf);
        } else {
            tl = scanFixture("cmp-a01", chunks[i]);
            assertMatchesTruth(tl, truth, "cmp-a01 chunked");
        }
        mpTimelineFree(tl);
    }
    json_decref(truth);
}
END_TEST

/* nova-compute.log.1 then nova-compute.log: cut in the middle of migrations. */
START_TEST(test_rotated_files)
{
    const char *hosts[] = { "cmp-a01", "cmp-b07", "cmp-a03" };
    double cuts[] = { 0.15, 0.5, 0.8 };
    size_t h, k;

    for (h = 0; h < 3; h++) {
        size_t len;
        char *buf = readFixture(hosts[h], "nova-compute.log", &len);
        json_t *truth = loadTruth(hosts[h]);

        for (k = 0; k < 3; k++) {
            mpTimeline *tl = mpTimelineNew(NULL, NULL);
            size_t cut = (size_t)((double)len * cuts[k]);
            char *first, *second;

            while (cut < len && buf[cut - 1] != '\n')
                cut++;
            first = malloc(cut);
            second = malloc(len - cut);
            memcpy(first, buf, cut);
            memcpy(second, buf + cut, len - cut);
            feedFile(tl, first, cut, 1 << 16);
            feedFile(tl, second, len - cut, 1 << 16);
            if (h == 1) {
                mpTimeline *src = scanFixture("cmp-a01", 1 << 20);

                mpTimelineCorrelate(tl, src);
                mpTimelineFree(src);
            }
            assertMatchesTruth(tl, truth, hosts[h]);
            free(first);
            free(second);
            mpTimelineFree(tl);
        }
        json_decref(truth);
        free(buf);
    }
}
END_TEST

/* Only the rotated file's second half: migrations that began before it are incomplete. */
START_TEST(test_file_starts_mid_migration)
{
    size_t len;
    char *buf = readFixture("cmp-a01", "nova-compute.log", &len);
    const char *p = strstr(buf, "06:25:00");   /* inside the first migration (06:23-06:27) */
    mpTimeline *tl = mpTimelineNew(NULL, NULL);
    json_t *got, *rec;

    ck_assert_ptr_nonnull(p);
    p = strchr(p, '\n') + 1;
    feedFile(tl, p, len - (size_t)(p - buf), 1 << 20);
    got = mpTimelineToJSON(tl);
    rec = json_array_get(json_object_get(got, "live_migrations"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(got, "live_migrations")), 6);
    ck_assert_str_eq(json_string_value(json_object_get(rec, "instance_uuid")),
                     "f38b2ffc-80a4-4f5a-91c9-bc701e7ea419");
    ck_assert(json_is_null(json_object_get(rec, "started_at")));
    ck_assert(json_is_null(json_object_get(rec, "duration_ms")));
    ck_assert(json_is_false(json_object_get(rec, "complete_in_file")));
    ck_assert_str_eq(json_string_value(json_object_get(rec, "outcome")), "completed");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "dest_host")), "cmp-b07");
    json_decref(got);
    mpTimelineFree(tl);
    free(buf);
}
END_TEST

/* A log cut before the end: the last migration is in progress. */
START_TEST(test_file_ends_mid_migration)
{
    size_t len;
    char *buf = readFixture("cmp-a01", "nova-compute.log", &len);
    const char *p = strstr(buf, "2026-11-21 09:05:00");
    mpTimeline *tl = mpTimelineNew(NULL, NULL);
    json_t *got, *rec;

    ck_assert_ptr_nonnull(p);
    feedFile(tl, buf, (size_t)(p - buf), 1 << 20);
    got = mpTimelineToJSON(tl);
    rec = json_array_get(json_object_get(got, "live_migrations"), 5);
    ck_assert(json_is_null(json_object_get(rec, "outcome")));
    ck_assert(json_is_null(json_object_get(rec, "completed_at")));
    ck_assert_str_eq(json_string_value(json_object_get(rec, "state_at_end_of_file")),
                     "in_progress");
    ck_assert(json_is_false(json_object_get(rec, "complete_in_file")));
    ck_assert(json_is_object(json_object_get(rec, "started_at")));
    json_decref(got);
    mpTimelineFree(tl);
    free(buf);
}
END_TEST

typedef struct {
    int types[4096];
    const mpMigrationRecord *recs[4096];
    size_t n;
    int64_t lastEpoch;
    bool ordered;
} eventLog;

static void
onEvent(const mpTimelineEvent *ev, void *opaque)
{
    eventLog *log = opaque;

    ck_assert_ptr_nonnull(ev->record);
    ck_assert_ptr_nonnull(ev->line);
    if (ev->epochMs < log->lastEpoch)
        log->ordered = false;
    log->lastEpoch = ev->epochMs;
    if (log->n < 4096) {
        log->types[log->n] = ev->type;
        log->recs[log->n] = ev->record;
    }
    log->n++;
}

START_TEST(test_streaming_events)
{
    size_t len;
    char *buf = readFixture("cmp-a01", "nova-compute.log", &len);
    mpTimeline *tl = mpTimelineNew(NULL, NULL);
    eventLog *log = calloc(1, sizeof(*log));
    json_t *truth = loadTruth("cmp-a01");
    json_t *migs = json_object_get(truth, "live_migrations");
    size_t m, i;

    log->ordered = true;
    log->lastEpoch = INT64_MIN;
    mpTimelineSetEventCallback(tl, onEvent, log);
    feedFile(tl, buf, len, 1 << 16);
    ck_assert(log->ordered);
    ck_assert_uint_lt(log->n, 4096);
    ck_assert_uint_eq(mpTimelineRecordCount(tl), json_array_size(migs));
    for (m = 0; m < json_array_size(migs); m++) {
        json_t *rec = json_array_get(migs, m);
        const mpMigrationRecord *r = mpTimelineRecord(tl, m);
        int64_t progress = 0;
        int state = 0;      /* 0 before start, 1 started, 2 post-copy, 3 finished */
        int postcopy = 0;

        ck_assert_str_eq(r->instanceUuid,
                         json_string_value(json_object_get(rec, "instance_uuid")));
        for (i = 0; i < log->n; i++) {
            if (log->recs[i] != r)
                continue;
            switch (log->types[i]) {
            case MP_TIMELINE_EVENT_STARTED:
                ck_assert_int_eq(state, 0);
                state = 1;
                break;
            case MP_TIMELINE_EVENT_PROGRESS:
                ck_assert_int_ge(state, 1);
                ck_assert_int_le(state, 2);
                progress++;
                break;
            case MP_TIMELINE_EVENT_POSTCOPY:
                ck_assert_int_eq(state, 1);
                state = 2;
                postcopy++;
                break;
            case MP_TIMELINE_EVENT_FINISHED:
                ck_assert_int_ge(state, 1);
                state = 3;
                break;
            }
        }
        ck_assert_int_eq(state, 3);
        ck_assert_int_eq(progress, json_integer_value(json_object_get(
            json_object_get(rec, "progress_lines"), "total")));
        ck_assert_int_eq(postcopy, json_is_null(json_object_get(rec, "switched_to_postcopy_at"))
                         ? 0 : 1);
    }
    /* six STARTED and six FINISHED in all, the FINISHED in the truth's order */
    {
        size_t started = 0, finished = 0;

        for (i = 0; i < log->n; i++) {
            if (log->types[i] == MP_TIMELINE_EVENT_STARTED)
                started++;
            if (log->types[i] == MP_TIMELINE_EVENT_FINISHED) {
                json_t *rec = json_array_get(migs, finished);

                ck_assert_str_eq(log->recs[i]->instanceUuid,
                                 json_string_value(json_object_get(rec, "instance_uuid")));
                ck_assert_int_eq(mpTimelineRecord(tl, finished)->outcome,
                                 strcmp(json_string_value(json_object_get(rec, "outcome")),
                                        "completed") == 0 ? MP_MIGRATION_OUTCOME_COMPLETED :
                                 strcmp(json_string_value(json_object_get(rec, "outcome")),
                                        "failed") == 0 ? MP_MIGRATION_OUTCOME_FAILED :
                                 MP_MIGRATION_OUTCOME_CANCELLED);
                finished++;
            }
        }
        ck_assert_uint_eq(started, 6);
        ck_assert_uint_eq(finished, 6);
    }
    json_decref(truth);
    free(log);
    mpTimelineFree(tl);
    free(buf);
}
END_TEST

/* debug = False: only INFO and above. No "live_migration data" nor "Starting monitoring". */
START_TEST(test_info_only_log)
{
    size_t len;
    char *buf = readFixture("cmp-a01", "nova-compute.log", &len);
    char *info = malloc(len + 1);
    size_t n = 0;
    char *p = buf;
    mpTimeline *tl = mpTimelineNew(NULL, NULL);
    json_t *truth = loadTruth("cmp-a01");
    json_t *got, *migs, *want = json_object_get(truth, "live_migrations");
    size_t i;

    while (p < buf + len) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(buf + len - p);

        if (l < 30 || memcmp(p + 23, " 3187 DEBUG ", 12) != 0) {
            memcpy(info + n, p, l);
            n += l;
        }
        p += l;
    }
    feedFile(tl, info, n, 1 << 20);
    got = mpTimelineToJSON(tl);
    migs = json_object_get(got, "live_migrations");
    ck_assert_uint_eq(json_array_size(migs), 6);
    for (i = 0; i < 6; i++) {
        json_t *a = json_array_get(want, i);
        json_t *b = json_array_get(migs, i);
        json_t *st = json_object_get(b, "started_at");
        const char *keys[] = { "instance_uuid", "request_id", "role", "outcome",
                               "completed_at", "switched_to_postcopy_at", "dest_host",
                               "completion_timeout_s", "memory_mb", "completed_message" };
        size_t k;

        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            assertJSONEqual(json_object_get(a, keys[k]), json_object_get(b, keys[k]), keys[k]);
        /* started_at: the "Increasing downtime ... after 0 sec" line, within 2 s of the
         * DEBUG "Starting monitoring" line (the monitor loop samples every 0.5 s) */
        ck_assert(json_is_object(st));
        ck_assert_int_ge(json_integer_value(json_object_get(st, "epoch_ms")),
                         json_integer_value(json_object_get(json_object_get(a, "started_at"),
                                                            "epoch_ms")));
        ck_assert_int_lt(json_integer_value(json_object_get(st, "epoch_ms")) -
                         json_integer_value(json_object_get(json_object_get(a, "started_at"),
                                                            "epoch_ms")), 2000);
        ck_assert(json_is_true(json_object_get(b, "complete_in_file")));
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(b, "progress_lines"),
                                                            "debug")), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(b, "progress_lines"),
                                                            "info")),
                         json_integer_value(json_object_get(json_object_get(a, "progress_lines"),
                                                            "info")));
    }
    json_decref(got);
    json_decref(truth);
    mpTimelineFree(tl);
    free(info);
    free(buf);
}
END_TEST

static int64_t
failingConverter(const struct tm *tm, int ms, void *opaque)
{
    (void)tm;
    (void)ms;
    (void)opaque;
    return INT64_MIN;
}

START_TEST(test_converters)
{
    struct tm tm;
    int64_t offset = 3600;     /* UTC+1 */
    mpTimeline *tl;
    json_t *j;
    const char *line = "2026-11-21 06:00:10.586 1 INFO nova.compute.manager [-] x";

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = 126;
    tm.tm_mon = 10;
    tm.tm_mday = 21;
    tm.tm_hour = 6;
    tm.tm_sec = 10;
    ck_assert_int_eq(mpTimeUTCToEpochMs(&tm, 586, NULL), 1795240810586LL);
    ck_assert_int_eq(mpTimeFixedOffsetToEpochMs(&tm, 586, &offset), 1795240810586LL - 3600000);
    tm.tm_mon = 12;
    ck_assert_int_eq(mpTimeUTCToEpochMs(&tm, 0, NULL), INT64_MIN);
    ck_assert_int_eq(mpTimeFixedOffsetToEpochMs(&tm, 0, &offset), INT64_MIN);

    tl = mpTimelineNew(mpTimeFixedOffsetToEpochMs, &offset);
    mpTimelineFeedRawLine(tl, line, strlen(line));
    j = mpTimelineToJSON(tl);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "first_line_at"),
                                                        "epoch_ms")), 1795240810586LL - 3600000);
    json_decref(j);
    mpTimelineSetConverter(tl, failingConverter, NULL);
    j = mpTimelineToJSON(tl);
    ck_assert(json_is_null(json_object_get(json_object_get(j, "first_line_at"), "epoch_ms")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "first_line_at"),
                                                       "local")), "2026-11-21 06:00:10.586");
    json_decref(j);
    mpTimelineFree(tl);
    mpTimelineFree(NULL);
}
END_TEST

START_TEST(test_hostile_input)
{
    mpTimeline *tl = mpTimelineNew(NULL, NULL);
    const char *I = "[instance: 11111111-2222-3333-4444-555555555555] ";
    char line[1024];
    size_t big = (1 << 20) + 17;
    char *mb = malloc(big);
    json_t *j, *rec;
    const mpTimelineCounters *c;

    /* progress numbers overflowing int64 are not progress */
    snprintf(line, sizeof(line), "2026-01-01 00:00:00.000 1 INFO d [None req-1 u] %s"
             "Migration running for 0 secs, memory 1%% remaining (bytes processed=1, "
             "remaining=1, total=1)\n", I);
    mpTimelineFeedBytes(tl, line, strlen(line));
    snprintf(line, sizeof(line), "2026-01-01 00:00:05.000 1 INFO d [None req-1 u] %s"
             "Migration running for 5 secs, memory 1%% remaining (bytes processed="
             "99999999999999999999999, remaining=1, total=1)\n", I);
    mpTimelineFeedBytes(tl, line, strlen(line));
    /* a 1 MB line, binary, NULs, bad dates, a line without newline at the end */
    memset(mb, 'x', big);
    mb[big - 1] = '\n';
    mpTimelineFeedBytes(tl, mb, big);
    mpTimelineFeedBytes(tl, "\x00\x01\xff\xfe\n", 5);
    mpTimelineFeedBytes(tl, "2026-13-01 00:00:00.000 1 INFO d [-] month 13\n", 46);
    mpTimelineFeedBytes(tl, "2026-02-30 00:00:00.000 1 INFO d [-] Feb 30\n", 44);
    mpTimelineFeedBytes(tl, "2026-01-01 00:00:06.000 1 NOTICE d [-] level\n", 45);
    snprintf(line, sizeof(line), "2026-01-01 00:00:07.000 1 WARNING d [None req-1 u] %s"
             "Migration operation was cancelled", I);
    mpTimelineFeedBytes(tl, line, strlen(line));
    mpTimelineEndOfFile(tl);

    c = mpTimelineGetCounters(tl);
    ck_assert_int_eq(c->totalLines, 8);
    ck_assert_int_eq(c->tooLong, 1);
    ck_assert_int_eq(c->withoutPrefix, 3);
    ck_assert_int_eq(c->unknown, 2);
    ck_assert_int_eq(c->byLevel[MP_LOG_LEVEL_INFO], 2);
    ck_assert_int_eq(c->byLevel[MP_LOG_LEVEL_WARNING], 1);
    ck_assert_uint_eq(mpTimelineRecordCount(tl), 1);
    ck_assert_ptr_null(mpTimelineRecord(tl, 1));
    j = mpTimelineToJSON(tl);
    rec = json_array_get(json_object_get(j, "live_migrations"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(rec, "progress_lines"),
                                                        "total")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(rec, "outcome")), "cancelled");
    /* no DEBUG lines: the 0-secs progress line is the start */
    ck_assert_int_eq(json_integer_value(json_object_get(rec, "duration_ms")), 7000);
    ck_assert_int_eq(json_integer_value(json_object_get(rec, "memory_mb")), 0);
    json_decref(j);
    free(mb);
    mpTimelineFree(tl);
}
END_TEST

/* Two instances migrating at once from one source; a second migration of the same instance
 * just after the first ended opens a new record. */
START_TEST(test_overlapping_migrations)
{
    static const char *const lines[] = {
        "2026-01-01 00:00:00.000 1 DEBUG m [None req-A u] live_migration data is X f /p.py:1",
        "2026-01-01 00:00:00.100 1 DEBUG m [None req-B u] live_migration data is Y f /p.py:1",
        "2026-01-01 00:00:01.000 1 DEBUG d [None req-B u] [instance: bbbbbbbb-0000-0000-0000-000000000000] Starting monitoring of live migration f /p.py:2",
        "2026-01-01 00:00:01.100 1 DEBUG d [None req-A u] [instance: aaaaaaaa-0000-0000-0000-000000000000] Starting monitoring of live migration f /p.py:2",
        "2026-01-01 00:00:02.000 1 INFO d [None req-A u] [instance: aaaaaaaa-0000-0000-0000-000000000000] Migration running for 0 secs, memory 100% remaining (bytes processed=0, remaining=10, total=1073741824); disk",
        "2026-01-01 00:00:03.000 1 INFO d [None req-B u] [instance: bbbbbbbb-0000-0000-0000-000000000000] Switching to post-copy migration mode",
        "2026-01-01 00:00:04.000 1 INFO d [None req-B u] [instance: bbbbbbbb-0000-0000-0000-000000000000] Migration operation has completed",
        "2026-01-01 00:00:05.000 1 ERROR d [None req-A u] [instance: aaaaaaaa-0000-0000-0000-000000000000] Migration operation has aborted",
        "2026-01-01 00:00:06.000 1 INFO c [None req-B u] [instance: bbbbbbbb-0000-0000-0000-000000000000] Migrating instance to hostX finished successfully.",
        "2026-01-01 00:00:20.000 1 DEBUG m [None req-C u] live_migration data is Z f /p.py:1",
        "2026-01-01 00:00:21.000 1 DEBUG d [None req-C u] [instance: aaaaaaaa-0000-0000-0000-000000000000] Starting monitoring of live migration f /p.py:2",
        "2026-01-01 00:00:22.000 1 INFO d [None req-C u] [instance: aaaaaaaa-0000-0000-0000-000000000000] Migration operation has completed",
        "2026-01-01 00:05:00.000 1 INFO c [-] [instance: aaaaaaaa-0000-0000-0000-000000000000] VM Stopped (Lifecycle Event)",
    };
    mpTimeline *tl = mpTimelineNew(NULL, NULL);
    size_t i;
    const mpMigrationRecord *r;

    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        mpTimelineFeedRawLine(tl, lines[i], strlen(lines[i]));
    ck_assert_uint_eq(mpTimelineRecordCount(tl), 3);
    r = mpTimelineRecord(tl, 0);
    ck_assert_str_eq(r->instanceUuid, "aaaaaaaa-0000-0000-0000-000000000000");
    ck_assert_str_eq(r->requestId, "req-A");
    ck_assert_int_eq(r->outcome, MP_MIGRATION_OUTCOME_FAILED);
    ck_assert_int_eq(r->progressTotal, 1);
    ck_assert_str_eq(r->lastSeenAt.text, "2026-01-01 00:00:05.000");
    r = mpTimelineRecord(tl, 1);
    ck_assert_str_eq(r->instanceUuid, "bbbbbbbb-0000-0000-0000-000000000000");
    ck_assert_int_eq(r->outcome, MP_MIGRATION_OUTCOME_COMPLETED);
    ck_assert(r->switchedToPostcopyAt.set);
    ck_assert_str_eq(r->destHost, "hostX");
    r = mpTimelineRecord(tl, 2);
    ck_assert_str_eq(r->requestId, "req-C");
    ck_assert_int_eq(r->outcome, MP_MIGRATION_OUTCOME_COMPLETED);
    /* the lifecycle line 5 minutes later is past the grace window */
    ck_assert_str_eq(r->lastSeenAt.text, "2026-01-01 00:00:22.000");
    ck_assert_str_eq(mpMigrationRoleName(r->role), "source");
    ck_assert_ptr_null(mpMigrationOutcomeName(MP_MIGRATION_OUTCOME_UNKNOWN));
    mpTimelineFree(tl);
}
END_TEST

static Suite *
timelineSuite(void)
{
    Suite *s = suite_create("timeline");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fixture_sources);
    tcase_add_test(tc, test_fixture_destination);
    tcase_add_test(tc, test_chunk_sizes);
    tcase_add_test(tc, test_rotated_files);
    tcase_add_test(tc, test_file_starts_mid_migration);
    tcase_add_test(tc, test_file_ends_mid_migration);
    tcase_add_test(tc, test_streaming_events);
    tcase_add_test(tc, test_info_only_log);
    tcase_add_test(tc, test_converters);
    tcase_add_test(tc, test_hostile_input);
    tcase_add_test(tc, test_overlapping_migrations);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(timelineSuite)
