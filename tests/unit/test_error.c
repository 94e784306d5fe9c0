/*
 * test_error.c: mperror and mpalloc
 */
#include <stdlib.h>
#include <string.h>

#include "mptest.h"
#include "mpalloc.h"
#include "mperror.h"

START_TEST(test_error_report_and_reset)
{
    mpResetLastError();
    ck_assert_int_eq(mpHasError(), 0);
    ck_assert_str_eq(mpGetLastErrorMessage(), "unknown error");
    mpReportError("bad key '%s' in [%s]", "interval", "policy");
    ck_assert_int_eq(mpHasError(), 1);
    ck_assert_str_eq(mpGetLastErrorMessage(), "bad key 'interval' in [policy]");
    mpResetLastError();
    ck_assert_int_eq(mpHasError(), 0);
}
END_TEST

START_TEST(test_error_truncates_long_messages)
{
    char big[4096];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mpReportError("%s", big);
    ck_assert_uint_lt(strlen(mpGetLastErrorMessage()), sizeof(big));
    ck_assert_uint_gt(strlen(mpGetLastErrorMessage()), 100);
}
END_TEST

START_TEST(test_alloc_grow)
{
    int *v = NULL;
    size_t alloc = 0;
    size_t i;

    for (i = 0; i < 1000; i++) {
        mpGrow(&v, &alloc, i + 1, sizeof(*v));
        v[i] = (int)i;
    }
    ck_assert_uint_ge(alloc, 1000);
    for (i = 0; i < 1000; i++)
        ck_assert_int_eq(v[i], (int)i);
    free(v);
}
END_TEST

START_TEST(test_alloc_asprintf)
{
    char *s = mpAsprintf("%s-%d", "lab", 7);

    ck_assert_str_eq(s, "lab-7");
    free(s);
}
END_TEST

static Suite *
error_suite(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_error_report_and_reset);
    tcase_add_test(tc, test_error_truncates_long_messages);
    tcase_add_test(tc, test_alloc_grow);
    tcase_add_test(tc, test_alloc_asprintf);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(error_suite)
