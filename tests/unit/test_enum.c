/*
 * test_enum.c: the enum name tables (mpenum.h) and the core's enums built on them
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mptest.h"
#include "mpenum.h"
#include "mperror.h"
#include "mpforecast.h"
#include "mpmetrics.h"
#include "mposlo.h"
#include "mppolicy.h"

typedef const char *(*mpTestToString)(int value);
typedef int (*mpTestFromString)(const char *str);

typedef struct {
    const char *name;
    mpTestToString to;
    mpTestFromString from;
    int last;
    const char *first;          /* the name of value 0, to check the order too */
} mpTestEnum;

static const mpTestEnum mpTestEnums[] = {
    { "PolicyMode", mpPolicyModeTypeToString, mpPolicyModeTypeFromString,
      MP_POLICY_MODE_LAST, "auto" },
    { "PolicyKeyKind", mpPolicyKeyKindTypeToString, mpPolicyKeyKindTypeFromString,
      MP_POLICY_KEY_LAST, "uint" },
    { "PolicyAction", mpPolicyActionTypeToString, mpPolicyActionTypeFromString,
      MP_POLICY_ACTION_LAST, "none" },
    { "PolicyRule", mpPolicyRuleTypeToString, mpPolicyRuleTypeFromString,
      MP_POLICY_RULE_LAST, "none" },
    { "PolicyDirtyStatus", mpPolicyDirtyStatusTypeToString, mpPolicyDirtyStatusTypeFromString,
      MP_POLICY_DIRTY_LAST, "missing" },
    { "PolicyPrediction", mpPolicyPredictionTypeToString, mpPolicyPredictionTypeFromString,
      MP_POLICY_PREDICTION_LAST, "unknown" },
    { "ForecastVerdict", mpForecastVerdictTypeToString, mpForecastVerdictTypeFromString,
      MP_FORECAST_LAST, "unknown" },
    { "Outcome", mpOutcomeTypeToString, mpOutcomeTypeFromString, MP_OUTCOME_LAST, "unknown" },
    { "DecidedBy", mpDecidedByTypeToString, mpDecidedByTypeFromString, MP_DECIDED_LAST,
      "none" },
    { "OsloFormat", mpOsloFormatTypeToString, mpOsloFormatTypeFromString,
      MP_OSLO_FORMAT_LAST, "other" },
};

#define MP_TEST_NENUMS (sizeof(mpTestEnums) / sizeof(mpTestEnums[0]))

/* Every value of every enum round-trips, names are distinct, the table ends at _LAST. */
START_TEST(test_enum_round_trip)
{
    const mpTestEnum *e = &mpTestEnums[_i];
    int v, w;

    ck_assert_int_ge(e->last, 2);
    ck_assert_str_eq(e->to(0), e->first);
    for (v = 0; v < e->last; v++) {
        const char *s = e->to(v);

        ck_assert_msg(s && *s, "%s: value %d has no name", e->name, v);
        ck_assert_int_eq(e->from(s), v);
        for (w = 0; w < v; w++)
            ck_assert_str_ne(e->to(w), s);
    }
    ck_assert_ptr_null(e->to(e->last));
    ck_assert_ptr_null(e->to(-1));
}
END_TEST

START_TEST(test_enum_unknown_refused)
{
    const mpTestEnum *e = &mpTestEnums[_i];
    char upper[64];
    size_t i;

    ck_assert_int_eq(e->from("no-such-name"), -1);
    ck_assert_int_eq(e->from(""), -1);
    ck_assert_int_eq(e->from(NULL), -1);
    /* exact matching: case and blanks count */
    snprintf(upper, sizeof(upper), "%s", e->first);
    for (i = 0; upper[i]; i++)
        upper[i] = (char)(upper[i] >= 'a' && upper[i] <= 'z' ? upper[i] - 'a' + 'A' : upper[i]);
    ck_assert_int_eq(e->from(upper), -1);
    snprintf(upper, sizeof(upper), " %s", e->first);
    ck_assert_int_eq(e->from(upper), -1);
}
END_TEST

/* The strings on the wire and in logs are unchanged. */
START_TEST(test_enum_known_strings)
{
    ck_assert_str_eq(mpPolicyRuleTypeToString(MP_POLICY_RULE_NOT_SHRINKING),
                     "remaining-not-shrinking");
    ck_assert_str_eq(mpPolicyRuleTypeToString(MP_POLICY_RULE_WORKING_SET),
                     "working-set-exceeds-downtime");
    ck_assert_int_eq(mpPolicyRuleTypeFromString("postcopy-not-permitted"),
                     MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED);
    ck_assert_str_eq(mpPolicyActionTypeToString(MP_POLICY_ACTION_SWITCH), "switch");
    ck_assert_int_eq(mpPolicyModeTypeFromString("observe"), MP_POLICY_MODE_OBSERVE);
    ck_assert_str_eq(mpPolicyDirtyStatusTypeToString(MP_POLICY_DIRTY_INCONCLUSIVE),
                     "inconclusive");
    ck_assert_str_eq(mpPolicyPredictionTypeToString(MP_POLICY_PREDICTION_NOT_CONVERGING),
                     "not-converging");
    ck_assert_str_eq(mpForecastVerdictTypeToString(MP_FORECAST_PRECOPY), "pre-copy");
    ck_assert_str_eq(mpForecastVerdictTypeToString(MP_FORECAST_POSTCOPY), "post-copy");
    ck_assert_str_eq(mpOutcomeTypeToString(MP_OUTCOME_RECOVERED), "recovered");
    ck_assert_str_eq(mpDecidedByTypeToString(MP_DECIDED_MIGPILOT), "migpilot");
    ck_assert_str_eq(mpOsloFormatTypeToString(MP_OSLO_FORMAT_LEGACY), "legacy");
    ck_assert_str_eq(mpPolicyKeyKindTypeToString(MP_POLICY_KEY_DOUBLE), "double");
}
END_TEST

/* The old names the agent calls keep their fallbacks for values outside the enum. */
START_TEST(test_enum_wrappers_never_null)
{
    ck_assert_str_eq(mpPolicyRuleToString(MP_POLICY_RULE_DEADLINE), "deadline");
    ck_assert_str_eq(mpPolicyRuleToString((mpPolicyRule)MP_POLICY_RULE_LAST), "unknown");
    ck_assert_str_eq(mpPolicyPredictionToString(MP_POLICY_PREDICTION_CONVERGING),
                     "converging");
    ck_assert_str_eq(mpPolicyPredictionToString((mpPolicyPrediction)-1), "unknown");
    ck_assert_str_eq(mpPolicyModeToString(MP_POLICY_MODE_OBSERVE), "observe");
    ck_assert_str_eq(mpPolicyModeToString((mpPolicyMode)MP_POLICY_MODE_LAST), "auto");
    ck_assert_str_eq(mpOutcomeName(MP_OUTCOME_CANCELLED), "cancelled");
    ck_assert_str_eq(mpOutcomeName((mpOutcome)MP_OUTCOME_LAST), "unknown");
}
END_TEST

/* The generic lookups behind the macros. */
START_TEST(test_enum_lookup)
{
    static const char *const names[] = { "a", NULL, "c" };

    ck_assert_str_eq(mpEnumToString(names, 3, 0), "a");
    ck_assert_ptr_null(mpEnumToString(names, 3, 1));
    ck_assert_ptr_null(mpEnumToString(names, 3, 3));
    ck_assert_int_eq(mpEnumFromString(names, 3, "c"), 2);
    ck_assert_int_eq(mpEnumFromString(names, 2, "c"), -1);
    ck_assert_int_eq(mpEnumFromString(names, 3, "b"), -1);
}
END_TEST

/* The [policy] mode key parses through the table and keeps its message. */
START_TEST(test_enum_policy_mode_key)
{
    mpPolicyConfig cfg;

    mpPolicyConfigInit(&cfg);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "mode", " observe "), 0);
    ck_assert_int_eq(cfg.mode, MP_POLICY_MODE_OBSERVE);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "mode", "Observe"), -1);
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "[policy] mode = Observe: must be 'auto' or 'observe'");
    ck_assert_int_eq(cfg.mode, MP_POLICY_MODE_OBSERVE);
    cfg.mode = (mpPolicyMode)MP_POLICY_MODE_LAST;
    ck_assert_int_eq(mpPolicyConfigValidate(&cfg), -1);
}
END_TEST

static Suite *
enum_suite(void)
{
    Suite *s = suite_create("enum");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_enum_round_trip, 0, MP_TEST_NENUMS);
    tcase_add_loop_test(tc, test_enum_unknown_refused, 0, MP_TEST_NENUMS);
    tcase_add_test(tc, test_enum_known_strings);
    tcase_add_test(tc, test_enum_wrappers_never_null);
    tcase_add_test(tc, test_enum_lookup);
    tcase_add_test(tc, test_enum_policy_mode_key);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(enum_suite)
