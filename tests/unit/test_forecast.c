/*
 * test_forecast.c: a migration predicted from a dirty-rate measurement, synthetic cases
 * with the passes worked out by hand in the comments
 */
#include <string.h>

#include "mptest.h"
#include "mperror.h"
#include "mpforecast.h"

#define MIB (1024ULL * 1024ULL)

static mpDirtyMeasurement
mpTestMeasurement(unsigned long long ram_mib, unsigned long long rate1s,
                  unsigned long long rate4s, unsigned long long age_ms)
{
    mpDirtyMeasurement m;

    memset(&m, 0, sizeof(m));
    m.nwindows = 2;
    m.windows[0].window_ms = 1000;
    m.windows[0].rate_mibs = rate1s;
    m.windows[1].window_ms = 4000;
    m.windows[1].rate_mibs = rate4s;
    m.memory_bytes = ram_mib * MIB;
    m.age_ms = age_ms;
    return m;
}

/* Rate-limited writer under the link: 16 MiB/s over a 64 MiB set, 256 MiB at 64 MiB/s,
 * 19.2 MiB fit in 300 ms. Pass 1: 4 s, resends min(64, 16 x 4) = 64 MiB; pass 2: 1 s,
 * resends 16 MiB: fits. 4 + 1 + 0.25 s, 256 + 64 + 16 MiB, downtime 250 ms, 3 passes. */
START_TEST(test_forecast_converging)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 16, 16, 0);
    mpForecast fc;

    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 300, NULL, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_PRECOPY);
    ck_assert_str_eq(fc.reason, "converging");
    ck_assert_int_eq(fc.wss_bytes, 64 * MIB);
    ck_assert_int_eq(fc.write_bps, 16 * MIB);
    ck_assert_int_eq(fc.time_ms, 5250);
    ck_assert_int_eq(fc.bytes, 336 * MIB);
    ck_assert_int_eq(fc.expected_downtime_ms, 250);
    ck_assert_int_eq(fc.passes, 3);
    ck_assert_int_eq(fc.switch_pass, -1);
    ck_assert_int_eq(fc.postcopy_bytes, -1);
    ck_assert_ptr_nonnull(strstr(fc.explanation, "pre-copy converges"));
    ck_assert_ptr_null(strchr(fc.explanation, '\n'));
}
END_TEST

/* The same guest having touched only 128 MiB (the rest zero pages, a few bytes each):
 * pass 1 2 s, resends min(64, 16 x 2) = 32 MiB, pass 2 0.5 s resends 8 MiB: 2.625 s,
 * 128 + 32 + 8 MiB. A resident set above the RAM (QEMU's own memory) changes nothing. */
START_TEST(test_forecast_resident)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 16, 16, 0);
    mpForecast fc;

    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 128 * MIB, 64 * MIB, 300, NULL, &fc),
                     0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_PRECOPY);
    ck_assert_uint_eq(fc.first_pass_bytes, 128 * MIB);
    ck_assert_int_eq(fc.time_ms, 2625);
    ck_assert_int_eq(fc.bytes, 168 * MIB);
    ck_assert_int_eq(fc.passes, 3);
    ck_assert_int_eq(fc.expected_downtime_ms, 125);
    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 300 * MIB, 64 * MIB, 300, NULL, &fc),
                     0);
    ck_assert_uint_eq(fc.first_pass_bytes, 256 * MIB);
    ck_assert_int_eq(fc.time_ms, 5250);
}
END_TEST

/* A nearly idle guest converges at the end of pass 1: 4 MiB resent after a 4 s pass. */
START_TEST(test_forecast_converging_pass1)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 1, 1, 0);
    mpForecast fc;

    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 300, NULL, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_PRECOPY);
    ck_assert_int_eq(fc.passes, 2);
    ck_assert_int_eq(fc.time_ms, 4063);         /* 4 s + 4 MiB / 64 MiB/s = 62.5 ms */
    ck_assert_int_eq(fc.bytes, 260 * MIB);
    ck_assert_int_eq(fc.expected_downtime_ms, 63);
}
END_TEST

/* Saturated working set: 64 MiB rewritten flat out (64 MiB/s over 1 s, 16 over 4 s: the
 * same 64 MiB). 256 MiB at 48 MiB/s, 14.4 MiB fit: pass 1 5.33 s, pass 2 resends 64 MiB,
 * and again: not shrinking. Switch at pass 2 (5.33 s), post-copy fetches 64 MiB in
 * 1.33 s: 6.67 s, 320 MiB. */
START_TEST(test_forecast_saturated)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 64, 16, 0);
    mpForecast fc;

    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 48 * MIB, 300, NULL, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_POSTCOPY);
    ck_assert_str_eq(fc.reason, "working-set-exceeds-downtime");
    ck_assert_int_eq(fc.wss_bytes, 64 * MIB);
    ck_assert_int_eq(fc.switch_pass, 2);
    ck_assert_int_eq(fc.switch_at_ms, 5333);
    ck_assert_int_eq(fc.postcopy_bytes, 64 * MIB);
    ck_assert_int_eq(fc.time_ms, 6667);
    ck_assert_int_eq(fc.bytes, 320 * MIB);
    ck_assert_int_eq(fc.expected_downtime_ms, -1);
    ck_assert_int_eq(fc.passes, 2);
    ck_assert_ptr_nonnull(strstr(fc.explanation, "post-copy needed"));
}
END_TEST

/* The same guest with min_pass 3: the policy switches a pass later, 64 MiB more sent. */
START_TEST(test_forecast_saturated_min_pass)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 64, 16, 0);
    mpPolicyConfig cfg;
    mpForecast fc;

    mpPolicyConfigInit(&cfg);
    cfg.min_pass = 3;
    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 48 * MIB, 300, &cfg, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_POSTCOPY);
    ck_assert_int_eq(fc.switch_pass, 3);
    ck_assert_int_eq(fc.switch_at_ms, 6667);
    ck_assert_int_eq(fc.time_ms, 8000);
    ck_assert_int_eq(fc.bytes, 384 * MIB);
}
END_TEST

/* Rate-limited writer above the link: 48 MiB/s over a 192 MiB set (both windows 48 MiB/s:
 * not saturated), 384 MiB at 32 MiB/s. Pass 1 12 s, pass 2 resends min(192, 576) = 192
 * MiB, pass 3 192 again: switch at pass 2 (12 s), 6 s of post-copy: 18 s, 576 MiB. */
START_TEST(test_forecast_rate_limited_stalls)
{
    mpDirtyMeasurement m = mpTestMeasurement(384, 48, 48, 0);
    mpForecast fc;

    ck_assert_int_eq(mpForecastCompute(&m, 384 * MIB, 0, 32 * MIB, 300, NULL, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_POSTCOPY);
    ck_assert_int_eq(fc.write_bps, 48 * MIB);
    ck_assert_int_eq(fc.wss_bytes, 192 * MIB);
    ck_assert_int_eq(fc.switch_at_ms, 12000);
    ck_assert_int_eq(fc.time_ms, 18000);
    ck_assert_int_eq(fc.bytes, 576 * MIB);
}
END_TEST

/* An operator's deadline before pre-copy's end (5.25 s, the converging case) switches. */
START_TEST(test_forecast_deadline)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 16, 16, 0);
    mpPolicyConfig cfg;
    mpForecast fc;

    mpPolicyConfigInit(&cfg);
    cfg.deadline_ms = 5000;
    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 300, &cfg, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_POSTCOPY);
    ck_assert_str_eq(fc.reason, "deadline");
    ck_assert_int_eq(fc.switch_at_ms, 4000);
    ck_assert_int_eq(fc.time_ms, 5000);
    ck_assert_int_eq(fc.bytes, 320 * MIB);
}
END_TEST

/* A saturated shortest window makes r a floor: a converging prediction rests on it. */
START_TEST(test_forecast_inconclusive)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 20, 5, 0);
    mpForecast fc;

    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 300, NULL, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(fc.reason, "inconclusive"));
    ck_assert_int_eq(fc.time_ms, -1);
}
END_TEST

START_TEST(test_forecast_missing)
{
    mpDirtyMeasurement m;
    mpForecast fc;
    json_t *j;

    ck_assert_int_eq(mpForecastCompute(NULL, 256 * MIB, 0, 64 * MIB, 300, NULL, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_UNKNOWN);
    ck_assert_str_eq(fc.reason, "missing");
    ck_assert_str_eq(fc.explanation, "no forecast: dirty-rate measurement missing");
    memset(&m, 0, sizeof(m));
    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 300, NULL, &fc), 0);
    ck_assert_str_eq(fc.reason, "missing");
    ck_assert_int_eq(fc.age_ms, -1);

    j = mpForecastToJSON(&fc);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "unknown");
    ck_assert(json_is_null(json_object_get(j, "postcopy")));
    ck_assert(json_is_null(json_object_get(j, "time_ms")));
    ck_assert(json_is_null(json_object_get(j, "bytes")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "bandwidth_bps")), 64 * MIB);
    json_decref(j);
}
END_TEST

START_TEST(test_forecast_stale)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 16, 16, 600001);
    mpForecast fc;

    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 300, NULL, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(fc.reason, "stale: 600.0 s old"));
    ck_assert_int_eq(fc.age_ms, 600001);
    /* within the limit it is used */
    m.age_ms = 600000;
    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 300, NULL, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_PRECOPY);
}
END_TEST

START_TEST(test_forecast_inconsistent)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 16, 16, 0);
    mpForecast fc;

    m.nwindows = 1;
    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 300, NULL, &fc), 0);
    ck_assert_int_eq(fc.verdict, MP_FORECAST_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(fc.reason, "inconsistent: one window"));
}
END_TEST

START_TEST(test_forecast_bad_arguments)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 16, 16, 0);
    mpForecast fc;

    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 0, 300, NULL, &fc), -1);
    ck_assert_str_eq(mpGetLastErrorMessage(), "forecast: the link rate must be positive");
    ck_assert_int_eq(mpForecastCompute(&m, 0, 0, 64 * MIB, 300, NULL, &fc), -1);
    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 0, NULL, &fc), -1);
}
END_TEST

START_TEST(test_forecast_json)
{
    mpDirtyMeasurement m = mpTestMeasurement(256, 64, 16, 1500);
    mpForecast fc;
    json_t *j;

    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 48 * MIB, 300, NULL, &fc), 0);
    j = mpForecastToJSON(&fc);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "post-copy");
    ck_assert(json_is_true(json_object_get(j, "postcopy")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "time_ms")), 6667);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "bytes")), 320 * MIB);
    ck_assert(json_is_null(json_object_get(j, "downtime_ms")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "switch_pass")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "measurement_age_ms")), 1500);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "max_downtime_ms")), 300);
    json_decref(j);
}
END_TEST

static Suite *
forecast_suite(void)
{
    Suite *s = suite_create("forecast");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_forecast_converging);
    tcase_add_test(tc, test_forecast_converging_pass1);
    tcase_add_test(tc, test_forecast_resident);
    tcase_add_test(tc, test_forecast_saturated);
    tcase_add_test(tc, test_forecast_saturated_min_pass);
    tcase_add_test(tc, test_forecast_rate_limited_stalls);
    tcase_add_test(tc, test_forecast_deadline);
    tcase_add_test(tc, test_forecast_inconclusive);
    tcase_add_test(tc, test_forecast_missing);
    tcase_add_test(tc, test_forecast_stale);
    tcase_add_test(tc, test_forecast_inconsistent);
    tcase_add_test(tc, test_forecast_bad_arguments);
    tcase_add_test(tc, test_forecast_json);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(forecast_suite)
