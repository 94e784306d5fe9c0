/*
 * test_metrics.c: the metrics notification's optional keys
 */
#include <string.h>

#include "mptest.h"
#include "mpmetrics.h"

START_TEST(test_metrics_optional_absent)
{
    mpMigrationRecord rec;
    json_t *p;

    mpMigrationRecordInit(&rec);
    p = mpMetricsPayload(&rec);
    /* unknown: not sent at all */
    ck_assert_ptr_null(json_object_get(p, "downtime_net_ms"));
    /* postcopy_requests predates the optional keys: always sent, null when unknown */
    ck_assert(json_is_null(json_object_get(p, "postcopy_requests")));
    ck_assert(json_is_null(json_object_get(p, "downtime_ms")));
    json_decref(p);
}
END_TEST

START_TEST(test_metrics_optional_present)
{
    mpMigrationRecord rec;
    json_t *p;

    mpMigrationRecordInit(&rec);
    rec.downtimeMs = 57;
    rec.downtimeNetMs = 12;
    rec.postcopyRequests = 345;
    p = mpMetricsPayload(&rec);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "downtime_net_ms")), 12);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "downtime_ms")), 57);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "postcopy_requests")), 345);
    json_decref(p);

    /* 0 is a measurement, not "unknown" */
    rec.downtimeNetMs = 0;
    p = mpMetricsPayload(&rec);
    ck_assert(json_is_integer(json_object_get(p, "downtime_net_ms")));
    ck_assert_int_eq(json_integer_value(json_object_get(p, "downtime_net_ms")), 0);
    json_decref(p);
}
END_TEST


#define MIB (1024LL * 1024LL)

static mpDirtyMeasurement
mpTestSaturated(void)
{
    mpDirtyMeasurement m;

    /* 64 MiB rewritten flat out in a 256 MiB guest: 64 MiB/s over 1 s, 16 over 4 s */
    memset(&m, 0, sizeof(m));
    m.nwindows = 2;
    m.windows[0].window_ms = 1000;
    m.windows[0].rate_mibs = 64;
    m.windows[1].window_ms = 4000;
    m.windows[1].rate_mibs = 16;
    m.memory_bytes = 256 * MIB;
    return m;
}

START_TEST(test_metrics_forecast_payload)
{
    mpMigrationIdentity id;
    mpDirtyMeasurement m = mpTestSaturated();
    mpForecast fc;
    json_t *p;

    memset(&id, 0, sizeof(id));
    MP_SET_FIELD(id.instanceId, "0d6b7a2e-4c1f-4a39-9f35-6b2f5c1d2e3f");
    MP_SET_FIELD(id.sourceHost, "compute1");
    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 48 * MIB, 300, NULL, &fc), 0);
    p = mpForecastPayload(&id, &fc);
    ck_assert_str_eq(json_string_value(json_object_get(p, "instance_id")),
                     "0d6b7a2e-4c1f-4a39-9f35-6b2f5c1d2e3f");
    ck_assert_str_eq(json_string_value(json_object_get(p, "source_host")), "compute1");
    ck_assert(json_is_null(json_object_get(p, "dest_host")));
    ck_assert_str_eq(json_string_value(json_object_get(p, "status")), "post-copy");
    ck_assert(json_is_true(json_object_get(p, "postcopy")));
    ck_assert_int_eq(json_integer_value(json_object_get(p, "time_ms")), 6667);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "bytes")), 320 * MIB);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "switch_pass")), 2);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(p, "explanation")));
    json_decref(p);
}
END_TEST

START_TEST(test_metrics_forecast_beside_outcome)
{
    mpMigrationRecord rec;
    mpDirtyMeasurement m = mpTestSaturated();
    json_t *p, *f;

    mpMigrationRecordInit(&rec);
    p = mpMetricsPayload(&rec);
    /* no forecast: the key is there, null */
    ck_assert(json_is_null(json_object_get(p, "forecast")));
    json_decref(p);

    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 48 * MIB, 300, NULL, &rec.forecast),
                     0);
    rec.haveForecast = true;
    rec.outcome = MP_OUTCOME_COMPLETED;
    rec.postcopy = true;
    rec.migrationTimeMs = 7000;                     /* predicted 6667: -4.76 % */
    rec.bytesTransferred = 300 * MIB;               /* predicted 320 MiB: +6.67 % */
    rec.downtimeMs = 45;
    p = mpMetricsPayload(&rec);
    f = json_object_get(p, "forecast");
    ck_assert(json_is_object(f));
    ck_assert_str_eq(json_string_value(json_object_get(f, "status")), "post-copy");
    ck_assert_int_eq(json_integer_value(json_object_get(f, "time_ms")), 6667);
    ck_assert_int_eq(json_integer_value(json_object_get(f, "bytes")), 320 * MIB);
    ck_assert(json_is_null(json_object_get(f, "downtime_ms")));
    ck_assert(json_is_true(json_object_get(f, "postcopy")));
    ck_assert_double_eq_tol(json_real_value(json_object_get(f, "time_error")),
                            (6667.0 - 7000.0) / 7000.0, 1e-9);
    ck_assert_double_eq_tol(json_real_value(json_object_get(f, "bytes_error")),
                            20.0 / 300.0, 1e-9);
    ck_assert(json_is_null(json_object_get(f, "downtime_error_ms")));
    ck_assert(json_is_true(json_object_get(f, "postcopy_correct")));
    json_decref(p);

    /* a failed migration has no outcome to compare with */
    rec.outcome = MP_OUTCOME_FAILED;
    p = mpMetricsPayload(&rec);
    f = json_object_get(p, "forecast");
    ck_assert_int_eq(json_integer_value(json_object_get(f, "time_ms")), 6667);
    ck_assert(json_is_null(json_object_get(f, "time_error")));
    ck_assert(json_is_null(json_object_get(f, "postcopy_correct")));
    json_decref(p);

    /* a converging forecast that was wrong about post-copy, with a downtime error */
    m.windows[0].rate_mibs = 16;
    m.windows[1].rate_mibs = 16;
    ck_assert_int_eq(mpForecastCompute(&m, 256 * MIB, 0, 64 * MIB, 300, NULL, &rec.forecast),
                     0);
    rec.outcome = MP_OUTCOME_COMPLETED;
    p = mpMetricsPayload(&rec);
    f = json_object_get(p, "forecast");
    ck_assert(json_is_false(json_object_get(f, "postcopy")));
    ck_assert(json_is_false(json_object_get(f, "postcopy_correct")));
    ck_assert_int_eq(json_integer_value(json_object_get(f, "downtime_error_ms")), 250 - 45);
    json_decref(p);
}
END_TEST

START_TEST(test_metrics_dirty_rate_payload)
{
    mpMigrationIdentity id;
    mpDirtyMeasurement m = mpTestSaturated();
    json_t *p, *w;

    memset(&id, 0, sizeof(id));
    MP_SET_FIELD(id.instanceId, "0d6b7a2e-4c1f-4a39-9f35-6b2f5c1d2e3f");
    MP_SET_FIELD(id.projectId, "p1");
    p = mpDirtyRatePayload(&id, "instance-0000002a", &m, 1700000000000LL);
    ck_assert_str_eq(json_string_value(json_object_get(p, "name")), "instance-0000002a");
    ck_assert_str_eq(json_string_value(json_object_get(p, "project_id")), "p1");
    ck_assert_str_eq(json_string_value(json_object_get(p, "status")), "measured");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "wss_bytes")), 64 * MIB);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "dirty_rate_bps")), 64 * MIB);
    ck_assert(json_is_true(json_object_get(p, "rate_is_lower_bound")));
    ck_assert_int_eq(json_integer_value(json_object_get(p, "memory_bytes")), 256 * MIB);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "measured_at_ms")),
                     1700000000000LL);
    w = json_object_get(p, "windows");
    ck_assert_uint_eq(json_array_size(w), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(w, 1), "window_ms")),
                     4000);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(w, 1), "rate_mibs")),
                     16);
    json_decref(p);

    /* a longer window reporting a higher rate: no figures, the reason instead */
    m.windows[1].rate_mibs = 200;
    p = mpDirtyRatePayload(&id, "instance-0000002a", &m, 1700000000000LL);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(p, "status")),
                                 "inconsistent"));
    ck_assert(json_is_null(json_object_get(p, "wss_bytes")));
    ck_assert(json_is_null(json_object_get(p, "dirty_rate_bps")));
    json_decref(p);
}
END_TEST

static Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("payload");

    tcase_add_test(tc, test_metrics_optional_absent);
    tcase_add_test(tc, test_metrics_optional_present);
    tcase_add_test(tc, test_metrics_forecast_payload);
    tcase_add_test(tc, test_metrics_forecast_beside_outcome);
    tcase_add_test(tc, test_metrics_dirty_rate_payload);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(metrics_suite)
