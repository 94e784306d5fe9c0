/*
 * test_features.c: the optional-feature table against the Debian 12 and 13 stacks
 */
#include <stdlib.h>
#include <string.h>

#include "mptest.h"
#include "mpfeatures.h"

/* Debian 12: libvirt 9.0.0, QEMU 7.2; Debian 13: libvirt 11.3.0, QEMU 10.0 */
#define LV_BOOKWORM 9000000ULL
#define QEMU_BOOKWORM 7002000ULL
#define LV_TRIXIE 11003000ULL
#define QEMU_TRIXIE 10000000ULL

START_TEST(test_features_bookworm)
{
    mpFeatureSet set;
    char *line;

    mpFeaturesDecide(LV_BOOKWORM, QEMU_BOOKWORM, &set);
    ck_assert(set.on[MP_FEATURE_DOWNTIME_NET]);
    ck_assert(set.on[MP_FEATURE_POSTCOPY_REQUESTS]);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_PREEMPT]);
    line = mpFeaturesSummary(&set);
    ck_assert_str_eq(line, "libvirt 9.0.0, QEMU 7.2.0; features: "
                     "downtime_net on (metrics: downtime_net_ms), "
                     "postcopy_requests on (metrics: postcopy_requests), "
                     "postcopy_preempt off (needs libvirt >= 11.3.0), "
                     "postcopy_resume on ([recovery] resumes broken post-copy migrations)");
    free(line);
    ck_assert(set.on[MP_FEATURE_POSTCOPY_RESUME]);
    ck_assert_ptr_null(mpFeatureWhyOff(&set, MP_FEATURE_POSTCOPY_RESUME));
}
END_TEST

/* libvirt 11.3 crashes the destination's libvirtd on a post-copy resume (lab): held off
 * there only, with the reason the agent's ALERT gives; 12.9 and 11.4 resume again */
START_TEST(test_features_resume_held_off_on_11_3)
{
    mpFeatureSet set;
    char *line;

    mpFeaturesDecide(LV_TRIXIE, QEMU_TRIXIE, &set);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_RESUME]);
    ck_assert_str_eq(mpFeatureWhyOff(&set, MP_FEATURE_POSTCOPY_RESUME),
                     "libvirt 11.3 crashes the destination's libvirtd on a resume; "
                     "12.9 resumes");
    line = mpFeaturesSummary(&set);
    ck_assert_ptr_nonnull(strstr(line, "postcopy_resume off (libvirt 11.3 crashes"));
    free(line);
    mpFeaturesDecide(11003009ULL, QEMU_TRIXIE, &set);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_RESUME]);
    mpFeaturesDecide(12009000ULL, QEMU_TRIXIE, &set);
    ck_assert(set.on[MP_FEATURE_POSTCOPY_RESUME]);
    mpFeaturesDecide(11004000ULL, QEMU_TRIXIE, &set);
    ck_assert(set.on[MP_FEATURE_POSTCOPY_RESUME]);
    /* before the resume API */
    mpFeaturesDecide(8004000ULL, QEMU_BOOKWORM, &set);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_RESUME]);
    ck_assert_str_eq(mpFeatureWhyOff(&set, MP_FEATURE_POSTCOPY_RESUME),
                     "this libvirt is too old");
}
END_TEST

START_TEST(test_features_trixie)
{
    mpFeatureSet set;
    char *line;

    mpFeaturesDecide(LV_TRIXIE, QEMU_TRIXIE, &set);
    ck_assert(set.on[MP_FEATURE_DOWNTIME_NET]);
    ck_assert(set.on[MP_FEATURE_POSTCOPY_REQUESTS]);
    ck_assert(set.on[MP_FEATURE_POSTCOPY_PREEMPT]);
    line = mpFeaturesSummary(&set);
    ck_assert_ptr_nonnull(strstr(line, "libvirt 11.3.0, QEMU 10.0.0; features: "));
    ck_assert_ptr_nonnull(strstr(line, "postcopy_preempt on (post-copy page requests "
                                 "preempt the background copy)"));
    free(line);

    /* libvirt 11.3 with the QEMU 7.2 of Debian 12 (x-postcopy-preempt only) */
    mpFeaturesDecide(LV_TRIXIE, QEMU_BOOKWORM, &set);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_PREEMPT]);
    line = mpFeaturesSummary(&set);
    ck_assert_ptr_nonnull(strstr(line, "postcopy_preempt off (needs QEMU >= 8.0.0)"));
    free(line);
}
END_TEST

START_TEST(test_features_old_and_unknown)
{
    mpFeatureSet set;
    char *line;

    /* libvirt 4.10 (before memory_postcopy_requests), QEMU unknown */
    mpFeaturesDecide(4010000ULL, 0, &set);
    ck_assert(set.on[MP_FEATURE_DOWNTIME_NET]);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_REQUESTS]);
    line = mpFeaturesSummary(&set);
    ck_assert_ptr_nonnull(strstr(line, "libvirt 4.10.0, QEMU unknown;"));
    ck_assert_ptr_nonnull(strstr(line, "postcopy_requests off (needs libvirt >= 5.0.0)"));
    free(line);

    /* a new enough libvirt whose QEMU is unknown or too old */
    mpFeaturesDecide(LV_TRIXIE, 0, &set);
    ck_assert(set.on[MP_FEATURE_DOWNTIME_NET]);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_REQUESTS]);
    mpFeaturesDecide(LV_TRIXIE, 2006000ULL, &set);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_REQUESTS]);
    line = mpFeaturesSummary(&set);
    ck_assert_ptr_nonnull(strstr(line, "postcopy_requests off (needs QEMU >= 2.7.0)"));
    free(line);

    /* nothing at all: everything off */
    mpFeaturesDecide(0, 0, &set);
    ck_assert(!set.on[MP_FEATURE_DOWNTIME_NET]);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_REQUESTS]);
    ck_assert(!set.on[MP_FEATURE_POSTCOPY_PREEMPT]);
}
END_TEST

START_TEST(test_features_names)
{
    ck_assert_str_eq(mpFeatureName(MP_FEATURE_DOWNTIME_NET), "downtime_net");
    ck_assert_str_eq(mpFeatureName(MP_FEATURE_POSTCOPY_PREEMPT), "postcopy_preempt");
    ck_assert_str_eq(mpFeatureName(MP_FEATURE_POSTCOPY_RESUME), "postcopy_resume");
    ck_assert_ptr_null(mpFeatureName(MP_FEATURE_LAST));
}
END_TEST

static Suite *
features_suite(void)
{
    Suite *s = suite_create("features");
    TCase *tc = tcase_create("decide");

    tcase_add_test(tc, test_features_bookworm);
    tcase_add_test(tc, test_features_trixie);
    tcase_add_test(tc, test_features_resume_held_off_on_11_3);
    tcase_add_test(tc, test_features_old_and_unknown);
    tcase_add_test(tc, test_features_names);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(features_suite)
