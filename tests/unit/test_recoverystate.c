/*
 * test_recoverystate.c: destinations of post-copy migrations kept across agent restarts
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mptest.h"
#include "mperror.h"
#include "mplog.h"
#include "mprecoverystate.h"

#define UUID1 "6df41457-140b-4e81-8df1-9bbaae6d6d1c"
#define UUID2 "37bc563a-816c-4f8a-87b7-ee919b247d77"
#define NOW_MS 1796000000000LL
#define DAY_MS (24LL * 3600 * 1000)

#define GOOD "format=1\nuuid=" UUID1 "\ndestination_host=lab-b\n" \
    "destination_address=10.77.0.12\nsaved_at_ms=1796000000000\n"

#define STALE "format=1\nuuid=55555555-5555-4555-8555-555555555555\n" \
    "destination_host=lab-b\ndestination_address=lab-b\nsaved_at_ms=1795827200000\n"

static void
writeFile(const char *dir, const char *name, const char *text, size_t len)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/recovery/%s", dir, name);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);
}

static bool
exists(const char *dir, const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/recovery/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void
removeDir(const char *dir)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_record_parse_good)
{
    mpRecoveryRecord rec;
    char *text;

    ck_assert_int_eq(mpRecoveryRecordParse(GOOD, &rec), 0);
    ck_assert_str_eq(rec.uuid, UUID1);
    ck_assert_str_eq(rec.host, "lab-b");
    ck_assert_str_eq(rec.address, "10.77.0.12");
    ck_assert_int_eq(rec.savedAtMs, NOW_MS);
    /* what Format writes, Parse reads back the same */
    text = mpRecoveryRecordFormat(&rec);
    ck_assert_str_eq(text, GOOD);
    free(text);
    /* keys in any order, no final newline; an upper-case uuid is libvirt's lower case */
    ck_assert_int_eq(mpRecoveryRecordParse("saved_at_ms=0\ndestination_address=[fd00::2]\n"
                                           "destination_host=b.example.org\nuuid="
                                           "6DF41457-140B-4E81-8DF1-9BBAAE6D6D1C\nformat=1",
                                           &rec), 0);
    ck_assert_str_eq(rec.uuid, UUID1);
    ck_assert_str_eq(rec.address, "[fd00::2]");
    ck_assert_int_eq(rec.savedAtMs, 0);
}
END_TEST

START_TEST(test_record_parse_bad)
{
    static const struct {
        const char *text;
        const char *error;
    } cases[] = {
        { "", "format missing" },
        { "garbage", "line 1: expected key=value, got 'garbage'" },
        { "format=2\n", "format '2' is not 1" },
        { "format=1\nformat=1\n", "line 2: format given twice" },
        { "format=1\ncolour=blue\n", "line 2: unknown key 'colour'" },
        { "format=1\nuuid=" UUID1 "\n", "destination_host missing" },
        { "format=1\nuuid=../../etc/passwd\n", "uuid '../../etc/passwd' is not a UUID" },
        { "format=1\nuuid=" UUID1 "0\n", "is not a UUID" },
        { "format=1\ndestination_host=lab b\n", "'lab b' is not a plain host name" },
        { "format=1\ndestination_host=\n", "'' is not a plain host name" },
        { "format=1\ndestination_address=user@host\n", "'user@host' is not an address" },
        { "format=1\ndestination_address=a b\n", "'a b' is not an address" },
        { "format=1\nsaved_at_ms=-5\n", "'-5' is not a time in ms" },
        { "format=1\nsaved_at_ms=12x\n", "'12x' is not a time in ms" },
        { "format=1\nsaved_at_ms=99999999999999999999\n", "is not a time in ms" },
        { "format=1\nuuid=" UUID1 "\ndestination_host=lab-b\n"
          "destination_address=10.77.0.12\n", "saved_at_ms missing" },
        { "format=1\n\nuuid=" UUID1 "\n", "line 2: expected key=value" },
        { " format=1\n", "unknown key ' format'" },
    };
    mpRecoveryRecord rec;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&rec, 0x5a, sizeof(rec));
        ck_assert_msg(mpRecoveryRecordParse(cases[i].text, &rec) == -1, "case %zu", i);
        ck_assert_msg(strstr(mpGetLastErrorMessage(), cases[i].error) != NULL,
                      "case %zu: %s", i, mpGetLastErrorMessage());
        /* one line each */
        ck_assert_ptr_null(strchr(mpGetLastErrorMessage(), '\n'));
        ck_assert_str_eq(rec.uuid, "");
    }
}
END_TEST

START_TEST(test_validators)
{
    char longHost[300];

    ck_assert(mpRecoveryUuidValid(UUID1));
    ck_assert(!mpRecoveryUuidValid("6df41457-140b-4e81-8df1-9bbaae6d6d1"));
    ck_assert(!mpRecoveryUuidValid("6df41457x140b-4e81-8df1-9bbaae6d6d1c"));
    ck_assert(!mpRecoveryUuidValid("6df41457-140b-4e81-8df1-9bbaae6d6d1g"));
    ck_assert(!mpRecoveryUuidValid(""));
    ck_assert(mpRecoveryHostValid("compute-1.example.org"));
    ck_assert(!mpRecoveryHostValid("a/b"));
    ck_assert(!mpRecoveryHostValid(""));
    memset(longHost, 'a', sizeof(longHost));
    longHost[253] = '\0';
    ck_assert(mpRecoveryHostValid(longHost));
    longHost[253] = 'a';
    longHost[254] = '\0';
    ck_assert(!mpRecoveryHostValid(longHost));
}
END_TEST

START_TEST(test_state_put_load_remove)
{
    char dir[] = "/tmp/mprecovery-XXXXXX";
    mpRecoveryState *st;
    mpRecoveryRecord rec = { 0 };
    const mpRecoveryRecord *got;

    mpLogInit(MP_LOG_ERROR + 1, 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    st = mpRecoveryStateNew(dir);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(mpRecoveryStateLoad(st, NOW_MS, DAY_MS), 0);
    /* upper case in, the file is named as libvirt spells the uuid */
    snprintf(rec.uuid, sizeof(rec.uuid), "%s", "6DF41457-140B-4E81-8DF1-9BBAAE6D6D1C");
    snprintf(rec.host, sizeof(rec.host), "lab-b");
    snprintf(rec.address, sizeof(rec.address), "10.77.0.12");
    rec.savedAtMs = NOW_MS;
    ck_assert_int_eq(mpRecoveryStatePut(st, &rec), 0);
    ck_assert(exists(dir, UUID1 ".dest"));
    ck_assert(!exists(dir, "." UUID1 ".dest.tmp"));
    /* replaced, not added */
    snprintf(rec.host, sizeof(rec.host), "lab-c");
    ck_assert_int_eq(mpRecoveryStatePut(st, &rec), 0);
    ck_assert_uint_eq(mpRecoveryStateCount(st), 1);
    snprintf(rec.uuid, sizeof(rec.uuid), UUID2);
    ck_assert_int_eq(mpRecoveryStatePut(st, &rec), 0);
    ck_assert_uint_eq(mpRecoveryStateCount(st), 2);
    /* a bad record is refused and changes nothing */
    snprintf(rec.host, sizeof(rec.host), "lab c");
    ck_assert_int_eq(mpRecoveryStatePut(st, &rec), -1);
    ck_assert_str_eq(mpRecoveryStateGet(st, UUID2)->host, "lab-c");
    mpRecoveryStateFree(st);

    /* the agent restarted: the same records */
    st = mpRecoveryStateNew(dir);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(mpRecoveryStateLoad(st, NOW_MS + 1000, DAY_MS), 2);
    got = mpRecoveryStateGet(st, "6DF41457-140B-4E81-8DF1-9BBAAE6D6D1C");
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got->uuid, UUID1);
    ck_assert_str_eq(got->host, "lab-c");
    ck_assert_str_eq(got->address, "10.77.0.12");
    ck_assert_int_eq(got->savedAtMs, NOW_MS);
    ck_assert_int_eq(mpRecoveryStateRemove(st, UUID1), 1);
    ck_assert_int_eq(mpRecoveryStateRemove(st, UUID1), 0);
    ck_assert(!exists(dir, UUID1 ".dest"));
    ck_assert_ptr_null(mpRecoveryStateGet(st, UUID1));
    ck_assert_ptr_nonnull(mpRecoveryStateAt(st, 0));
    ck_assert_ptr_null(mpRecoveryStateAt(st, 1));
    ck_assert_int_eq(mpRecoveryStateRemove(st, UUID2), 1);
    ck_assert_uint_eq(mpRecoveryStateCount(st), 0);
    mpRecoveryStateFree(st);
    removeDir(dir);
}
END_TEST

START_TEST(test_state_load_bad_and_stale)
{
    char dir[] = "/tmp/mprecovery-XXXXXX";
    char big[5000];
    mpRecoveryState *st;

    mpLogInit(MP_LOG_ERROR + 1, 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    st = mpRecoveryStateNew(dir);
    ck_assert_ptr_nonnull(st);
    /* kept */
    writeFile(dir, UUID1 ".dest", GOOD, strlen(GOOD));
    /* corrupt, truncated, NUL inside, too large, another uuid's record: moved aside */
    writeFile(dir, "11111111-1111-4111-8111-111111111111.dest", "garbage\n", 8);
    writeFile(dir, "22222222-2222-4222-8222-222222222222.dest", "format=1\nuuid=", 14);
    writeFile(dir, "33333333-3333-4333-8333-333333333333.dest", "format=1\0\n", 10);
    memset(big, 'x', sizeof(big));
    writeFile(dir, "44444444-4444-4444-8444-444444444444.dest", big, sizeof(big));
    writeFile(dir, UUID2 ".dest", GOOD, strlen(GOOD));
    /* saved two days ago: removed */
    writeFile(dir, "55555555-5555-4555-8555-555555555555.dest", STALE, strlen(STALE));
    /* an unfinished write: removed; other names: left alone */
    writeFile(dir, "." UUID2 ".dest.tmp", "format=1\n", 9);
    writeFile(dir, "README", "notes\n", 6);
    ck_assert_int_eq(mpRecoveryStateLoad(st, NOW_MS, DAY_MS), 1);
    ck_assert_ptr_nonnull(mpRecoveryStateGet(st, UUID1));
    ck_assert_ptr_null(mpRecoveryStateGet(st, UUID2));
    ck_assert(exists(dir, UUID1 ".dest"));
    ck_assert(exists(dir, "11111111-1111-4111-8111-111111111111.dest.bad"));
    ck_assert(exists(dir, "22222222-2222-4222-8222-222222222222.dest.bad"));
    ck_assert(exists(dir, "33333333-3333-4333-8333-333333333333.dest.bad"));
    ck_assert(exists(dir, "44444444-4444-4444-8444-444444444444.dest.bad"));
    ck_assert(exists(dir, UUID2 ".dest.bad"));
    ck_assert(!exists(dir, UUID2 ".dest"));
    ck_assert(!exists(dir, "55555555-5555-4555-8555-555555555555.dest"));
    ck_assert(!exists(dir, "." UUID2 ".dest.tmp"));
    ck_assert(exists(dir, "README"));
    mpRecoveryStateFree(st);

    /* the next start finds only the good one, and complains no more */
    st = mpRecoveryStateNew(dir);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(mpRecoveryStateLoad(st, NOW_MS, DAY_MS), 1);
    ck_assert(!exists(dir, "11111111-1111-4111-8111-111111111111.dest.bad.bad"));
    mpRecoveryStateFree(st);
    removeDir(dir);
}
END_TEST

START_TEST(test_state_bad_dir)
{
    char dir[] = "/tmp/mprecovery-XXXXXX";
    char path[300];
    mpRecoveryState *st;

    ck_assert_ptr_null(mpRecoveryStateNew("/proc/nonexistent"));
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "cannot create"));
    /* recovery/ is a file: no state, said once */
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/recovery", dir);
    ck_assert_int_eq(close(creat(path, 0640)), 0);
    st = mpRecoveryStateNew(dir);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(mpRecoveryStateLoad(st, NOW_MS, DAY_MS), -1);
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "cannot list"));
    mpRecoveryStateFree(st);
    removeDir(dir);
}
END_TEST

static Suite *
recoverystate_suite(void)
{
    Suite *s = suite_create("recoverystate");
    TCase *tc = tcase_create("recoverystate");

    tcase_add_test(tc, test_record_parse_good);
    tcase_add_test(tc, test_record_parse_bad);
    tcase_add_test(tc, test_validators);
    tcase_add_test(tc, test_state_put_load_remove);
    tcase_add_test(tc, test_state_load_bad_and_stale);
    tcase_add_test(tc, test_state_bad_dir);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(recoverystate_suite)
