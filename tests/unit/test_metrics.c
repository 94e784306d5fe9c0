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

static Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("payload");

    tcase_add_test(tc, test_metrics_optional_absent);
    tcase_add_test(tc, test_metrics_optional_present);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(metrics_suite)
