/*
 * test_spool.c: records waiting for the broker
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mptest.h"
#include "mplog.h"
#include "mpspool.h"

typedef struct {
    char names[8][128];
    char bodies[8][128];
    int n;
    int failAt;
} Seen;

static int
collect(const char *name, const char *key, const char *body, void *opaque)
{
    Seen *seen = opaque;

    ck_assert_str_eq(key, "notifications.info");
    if (seen->n == seen->failAt)
        return -1;
    snprintf(seen->names[seen->n], sizeof(seen->names[0]), "%s", name);
    snprintf(seen->bodies[seen->n], sizeof(seen->bodies[0]), "%s", body);
    seen->n++;
    return 0;
}

START_TEST(test_spool_roundtrip_in_order)
{
    char dir[] = "/tmp/mpspool-XXXXXX";
    char name[256];
    char cmd[300];
    mpSpool *spool;
    Seen seen = { .failAt = -1 };
    int i;

    mpLogInit(MP_LOG_ERROR, 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    spool = mpSpoolNew(dir);
    ck_assert_ptr_nonnull(spool);
    for (i = 0; i < 5; i++) {
        char body[64];
        char id[64];

        snprintf(body, sizeof(body), "{\"n\": %d}", i);
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-00000000000%d", i);
        ck_assert_int_eq(mpSpoolPut(spool, id, "notifications.info", body, name,
                                    sizeof(name)), 0);
    }
    ck_assert_uint_eq(mpSpoolCount(spool), 5);
    ck_assert_int_eq(mpSpoolForEach(spool, collect, &seen), 0);
    ck_assert_int_eq(seen.n, 5);
    for (i = 0; i < 5; i++) {
        char body[64];

        snprintf(body, sizeof(body), "{\"n\": %d}", i);
        ck_assert_str_eq(seen.bodies[i], body);
    }
    /* a publisher that fails stops the walk; the rest stays spooled */
    memset(&seen, 0, sizeof(seen));
    seen.failAt = 2;
    ck_assert_int_eq(mpSpoolForEach(spool, collect, &seen), -1);
    ck_assert_int_eq(seen.n, 2);
    ck_assert_int_eq(mpSpoolRemove(spool, seen.names[0]), 0);
    ck_assert_int_eq(mpSpoolRemove(spool, seen.names[0]), 0); /* gone already: fine */
    ck_assert_uint_eq(mpSpoolCount(spool), 4);

    /* a new spool object on the same dir (agent restart) sees the same entries */
    mpSpoolFree(spool);
    spool = mpSpoolNew(dir);
    ck_assert_ptr_nonnull(spool);
    ck_assert_uint_eq(mpSpoolCount(spool), 4);
    mpSpoolFree(spool);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_spool_corrupt_entry_moved_aside)
{
    char dir[] = "/tmp/mpspool-XXXXXX";
    char path[300];
    char cmd[300];
    FILE *fp;
    mpSpool *spool;
    Seen seen = { .failAt = -1 };

    mpLogInit(MP_LOG_ERROR + 1, 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    spool = mpSpoolNew(dir);
    ck_assert_ptr_nonnull(spool);
    snprintf(path, sizeof(path), "%s/spool/0000000000000001-x.rec", dir);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("no newline here", fp);
    fclose(fp);
    ck_assert_int_eq(mpSpoolForEach(spool, collect, &seen), 0);
    ck_assert_int_eq(seen.n, 0);
    ck_assert_uint_eq(mpSpoolCount(spool), 0);
    strcat(path, ".bad");
    ck_assert_int_eq(access(path, F_OK), 0);
    mpSpoolFree(spool);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_spool_bad_dir)
{
    ck_assert_ptr_null(mpSpoolNew("/proc/nonexistent/spool"));
}
END_TEST

static Suite *
spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");

    tcase_add_test(tc, test_spool_roundtrip_in_order);
    tcase_add_test(tc, test_spool_corrupt_entry_moved_aside);
    tcase_add_test(tc, test_spool_bad_dir);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(spool_suite)
