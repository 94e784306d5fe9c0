/*
 * test_dirtyrate.c: libvirt's dirtyrate.* statistics into an mpDirtyMeasurement
 */
#include <libvirt/libvirt.h>
#include <string.h>

#include "mptest.h"
#include "mpdirtyrate.h"
#include "mperror.h"

/* The parameters libvirt 9.0 gave for a measured 1 s window (lab, QEMU 7.2 TCG). */
static int
mkStats(virTypedParameterPtr *params, int status, long long start, int period,
        long long rate, const char *mode)
{
    int n = 0;
    int max = 0;

    *params = NULL;
    if (status >= -10)
        ck_assert_int_eq(virTypedParamsAddInt(params, &n, &max, "dirtyrate.calc_status",
                                              status), 0);
    ck_assert_int_eq(virTypedParamsAddLLong(params, &n, &max, "dirtyrate.calc_start_time",
                                            start), 0);
    ck_assert_int_eq(virTypedParamsAddInt(params, &n, &max, "dirtyrate.calc_period",
                                          period), 0);
    if (mode)
        ck_assert_int_eq(virTypedParamsAddString(params, &n, &max, "dirtyrate.calc_mode",
                                                 mode), 0);
    if (rate != -1)
        ck_assert_int_eq(virTypedParamsAddLLong(params, &n, &max,
                                                "dirtyrate.megabytes_per_second", rate), 0);
    return n;
}

START_TEST(test_parse_measured)
{
    virTypedParameterPtr p;
    int n = mkStats(&p, 2, 441, 1, 68, "page-sampling");
    mpDirtyRateStats st;

    ck_assert_int_eq(mpDirtyRateParseStats(p, n, &st), 0);
    ck_assert_int_eq(st.status, MP_DIRTYRATE_CALC_MEASURED);
    ck_assert_int_eq(st.start_time_s, 441);
    ck_assert_int_eq(st.period_s, 1);
    ck_assert_int_eq(st.rate_mibs, 68);
    ck_assert_str_eq(st.mode, "page-sampling");
    virTypedParamsFree(p, n);
}
END_TEST

START_TEST(test_parse_unstarted_and_measuring)
{
    virTypedParameterPtr p;
    int n = mkStats(&p, 0, 0, 0, -1, "page-sampling");
    mpDirtyRateStats st;

    /* a domain never measured: libvirt gives status 0 and no rate */
    ck_assert_int_eq(mpDirtyRateParseStats(p, n, &st), 0);
    ck_assert_int_eq(st.status, MP_DIRTYRATE_CALC_UNSTARTED);
    ck_assert_int_eq(st.rate_mibs, -1);
    virTypedParamsFree(p, n);

    /* while measuring QEMU may still show the previous rate: it is not taken */
    n = mkStats(&p, 1, 500, 4, 19, NULL);
    ck_assert_int_eq(mpDirtyRateParseStats(p, n, &st), 0);
    ck_assert_int_eq(st.status, MP_DIRTYRATE_CALC_MEASURING);
    ck_assert_int_eq(st.rate_mibs, -1);
    ck_assert_str_eq(st.mode, "");
    virTypedParamsFree(p, n);
}
END_TEST

START_TEST(test_parse_errors)
{
    virTypedParameterPtr p;
    mpDirtyRateStats st;
    int n;

    n = mkStats(&p, -100, 1, 1, 5, NULL);     /* no calc_status */
    ck_assert_int_eq(mpDirtyRateParseStats(p, n, &st), -1);
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "dirty rate: no dirtyrate.calc_status in the domain's statistics");
    virTypedParamsFree(p, n);

    n = mkStats(&p, 7, 1, 1, 5, NULL);
    ck_assert_int_eq(mpDirtyRateParseStats(p, n, &st), -1);
    ck_assert_str_eq(mpGetLastErrorMessage(), "dirty rate: unknown dirtyrate.calc_status 7");
    virTypedParamsFree(p, n);

    n = mkStats(&p, 2, 1, 1, -1, NULL);       /* measured without a rate */
    ck_assert_int_eq(mpDirtyRateParseStats(p, n, &st), -1);
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "dirty rate: measured, but dirtyrate.megabytes_per_second is missing");
    virTypedParamsFree(p, n);

    n = mkStats(&p, 2, 1, 1, -5, NULL);
    ck_assert_int_eq(mpDirtyRateParseStats(p, n, &st), -1);
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "dirty rate: measured, but dirtyrate.megabytes_per_second is negative");
    virTypedParamsFree(p, n);

    n = mkStats(&p, 2, -3, 1, 5, NULL);
    ck_assert_int_eq(mpDirtyRateParseStats(p, n, &st), -1);
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "negative"));
    virTypedParamsFree(p, n);
}
END_TEST

static mpDirtyRateStats
measured(long long start, int period, long long rate)
{
    mpDirtyRateStats st = { MP_DIRTYRATE_CALC_MEASURED, start, period, rate, "page-sampling" };

    return st;
}

START_TEST(test_add_windows_sorted)
{
    mpDirtyMeasurement m = { 0 };
    mpDirtyRateStats st;

    /* the lab's 64 MiB working set written flat out: saturated, 68 then 19 MiB/s */
    st = measured(600, 4, 19);
    ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, 4, 0), 0);
    st = measured(605, 1, 68);
    ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, 1, 601), 0);
    ck_assert_uint_eq(m.nwindows, 2);
    ck_assert_uint_eq(m.windows[0].window_ms, 1000);
    ck_assert_uint_eq(m.windows[0].rate_mibs, 68);
    ck_assert_uint_eq(m.windows[1].window_ms, 4000);
    ck_assert_uint_eq(m.windows[1].rate_mibs, 19);
}
END_TEST

START_TEST(test_add_not_ours)
{
    mpDirtyMeasurement m = { 0 };
    mpDirtyRateStats st;

    st = measured(441, 1, 68);
    /* an earlier calc's result (started before ours) */
    ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, 1, 442), 1);
    /* another length: someone else's calc */
    ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, 4, 0), 1);
    /* still measuring */
    st.status = MP_DIRTYRATE_CALC_MEASURING;
    ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, 1, 0), 1);
    ck_assert_uint_eq(m.nwindows, 0);
}
END_TEST

START_TEST(test_add_errors)
{
    mpDirtyMeasurement m = { 0 };
    mpDirtyRateStats st = measured(10, 2, 5);
    int i;

    ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, 0, 0), -1);
    ck_assert_str_eq(mpGetLastErrorMessage(), "dirty rate: window of 0 s asked for");
    ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, 2, 0), 0);
    ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, 2, 0), -1);
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "dirty rate: two windows of 2 s in one measurement");
    for (i = 3; i < 3 + MP_DIRTY_MAX_WINDOWS - 1; i++) {
        st.period_s = i;
        ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, i, 0), 0);
    }
    st.period_s = 30;
    ck_assert_int_eq(mpDirtyRateAddWindow(&m, &st, 30, 0), -1);
    ck_assert_str_eq(mpGetLastErrorMessage(), "dirty rate: more than 4 windows in one measurement");
    ck_assert_uint_eq(m.nwindows, MP_DIRTY_MAX_WINDOWS);
}
END_TEST

START_TEST(test_new_rejects_bad_windows)
{
    unsigned w[] = { 1, 61 };
    mpDirtyRate *dr;

    ck_assert_ptr_null(mpDirtyRateNew(w, 2, 200, NULL, NULL));
    ck_assert_str_eq(mpGetLastErrorMessage(), "dirty rate: window of 61 s (libvirt takes 1 to 60)");
    ck_assert_ptr_null(mpDirtyRateNew(w, 0, 200, NULL, NULL));
    ck_assert_str_eq(mpGetLastErrorMessage(), "dirty rate: 0 windows (expected 1 to 4)");
    dr = mpDirtyRateNew(w, 1, 200, NULL, NULL);
    ck_assert_ptr_nonnull(dr);
    /* no connection yet: nothing can be measured */
    ck_assert(!mpDirtyRateSupported(dr));
    ck_assert(!mpDirtyRateBusy(dr, "00000000-0000-0000-0000-000000000000"));
    mpDirtyRateFree(dr);
}
END_TEST

/* libvirt's typed-parameter helpers need its per-thread error state. */
static void
setupLibvirt(void)
{
    ck_assert_int_eq(virInitialize(), 0);
}

static Suite *
dirtyrate_suite(void)
{
    Suite *s = suite_create("dirtyrate");
    TCase *tc = tcase_create("parse");

    tcase_add_unchecked_fixture(tc, setupLibvirt, NULL);
    tcase_add_test(tc, test_parse_measured);
    tcase_add_test(tc, test_parse_unstarted_and_measuring);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_add_windows_sorted);
    tcase_add_test(tc, test_add_not_ours);
    tcase_add_test(tc, test_add_errors);
    tcase_add_test(tc, test_new_rejects_bad_windows);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(dirtyrate_suite)
