/*
 * test_calendar.c: calendar arithmetic and local time to epoch time (mpcalendar)
 */
#include "mptest.h"
#include "mpcalendar.h"

START_TEST(test_days_from_civil_known_dates)
{
    /* the expected numbers are Python's (date(y, m, d) - date(1970, 1, 1)).days */
    ck_assert_int_eq(mpDaysFromCivil(1970, 1, 1), 0);
    ck_assert_int_eq(mpDaysFromCivil(1969, 12, 31), -1);
    ck_assert_int_eq(mpDaysFromCivil(2000, 1, 1), 10957);
    ck_assert_int_eq(mpDaysFromCivil(2000, 2, 29), 11016);
    ck_assert_int_eq(mpDaysFromCivil(2000, 3, 1), 11017);
    ck_assert_int_eq(mpDaysFromCivil(2024, 2, 29), 19782);
    ck_assert_int_eq(mpDaysFromCivil(1900, 3, 1), -25508);
    /* 2100 is not a leap year: February 28 is followed by March 1 */
    ck_assert_int_eq(mpDaysFromCivil(2100, 2, 28), 47540);
    ck_assert_int_eq(mpDaysFromCivil(2100, 3, 1), 47541);
    ck_assert_int_eq(mpDaysFromCivil(1, 1, 1), -719162);
    ck_assert_int_eq(mpDaysFromCivil(9999, 12, 31), 2932896);
}
END_TEST

START_TEST(test_civil_from_days_round_trip)
{
    int64_t days, y;
    int m, d;

    mpCivilFromDays(0, &y, &m, &d);
    ck_assert(y == 1970 && m == 1 && d == 1);
    mpCivilFromDays(11016, &y, &m, &d);
    ck_assert(y == 2000 && m == 2 && d == 29);
    mpCivilFromDays(47541, &y, &m, &d);
    ck_assert(y == 2100 && m == 3 && d == 1);
    mpCivilFromDays(-1, &y, &m, &d);
    ck_assert(y == 1969 && m == 12 && d == 31);
    mpCivilFromDays(-719162, &y, &m, &d);
    ck_assert(y == 1 && m == 1 && d == 1);
    /* every day from year 1 to 9999 and a little beyond: consecutive, valid dates */
    {
        int64_t py = 0;
        int pm = 12, pd = 31;

        for (days = -719162 - 366; days <= 2932896 + 366; days++) {
            mpCivilFromDays(days, &y, &m, &d);
            ck_assert_int_eq(mpDaysFromCivil(y, m, d), days);
            ck_assert(d >= 1 && d <= mpDaysInMonth(y, m));
            if (d == 1)
                ck_assert(pd == mpDaysInMonth(py, pm) && (m == pm % 12 + 1));
            else
                ck_assert(d == pd + 1 && m == pm && y == py);
            py = y;
            pm = m;
            pd = d;
        }
    }
}
END_TEST

START_TEST(test_leap_years_and_month_lengths)
{
    ck_assert(mpIsLeapYear(2000));
    ck_assert(mpIsLeapYear(2024));
    ck_assert(mpIsLeapYear(1972));
    ck_assert(!mpIsLeapYear(1970));
    ck_assert(!mpIsLeapYear(1900));
    ck_assert(!mpIsLeapYear(2100));
    ck_assert(!mpIsLeapYear(2023));
    ck_assert_int_eq(mpDaysInMonth(2000, 2), 29);
    ck_assert_int_eq(mpDaysInMonth(2024, 2), 29);
    ck_assert_int_eq(mpDaysInMonth(2100, 2), 28);
    ck_assert_int_eq(mpDaysInMonth(1900, 2), 28);
    ck_assert_int_eq(mpDaysInMonth(1970, 1), 31);
    ck_assert_int_eq(mpDaysInMonth(1970, 4), 30);
    ck_assert_int_eq(mpDaysInMonth(1970, 12), 31);
    ck_assert_int_eq(mpDaysInMonth(1970, 0), 0);
    ck_assert_int_eq(mpDaysInMonth(1970, 13), 0);
    ck_assert_int_eq(mpWeekday(0), 4);                              /* Thursday */
    ck_assert_int_eq(mpWeekday(mpDaysFromCivil(2000, 1, 1)), 6);     /* Saturday */
    ck_assert_int_eq(mpWeekday(-1), 3);
    ck_assert_int_eq(mpFloorDiv(-1, 1000), -1);
    ck_assert_int_eq(mpFloorMod(-1, 1000), 999);
    ck_assert_int_eq(mpFloorDiv(1999, 1000), 1);
}
END_TEST

/* +1 h before CHANGE_AT, +2 h from it on (clocks forward), or the reverse (back). */
#define CHANGE_AT INT64_C(1000000)

static int
forwardOffset(int64_t t, int64_t *offset, void *opaque)
{
    bool back = opaque != NULL;

    *offset = (t < CHANGE_AT) == back ? 7200 : 3600;
    return 0;
}

static int
failingOffset(int64_t t, int64_t *offset, void *opaque)
{
    (void)t;
    (void)offset;
    (void)opaque;
    return -1;
}

START_TEST(test_local_to_epoch_fold_zero)
{
    int64_t e;
    int back = 1;

    /* ordinary times, either side of the change */
    ck_assert_int_eq(mpLocalToEpoch(CHANGE_AT - 10000 + 3600, forwardOffset, NULL, &e), 0);
    ck_assert_int_eq(e, CHANGE_AT - 10000);
    ck_assert_int_eq(mpLocalToEpoch(CHANGE_AT + 10000 + 7200, forwardOffset, NULL, &e), 0);
    ck_assert_int_eq(e, CHANGE_AT + 10000);
    /* clocks forward: local [CHANGE_AT + 1 h, CHANGE_AT + 2 h) never occurs and is read
     * with the offset before the change */
    ck_assert_int_eq(mpLocalToEpoch(CHANGE_AT + 3600 + 1800, forwardOffset, NULL, &e), 0);
    ck_assert_int_eq(e, CHANGE_AT + 1800);
    ck_assert_int_eq(mpLocalToEpoch(CHANGE_AT + 7200, forwardOffset, NULL, &e), 0);
    ck_assert_int_eq(e, CHANGE_AT);
    /* clocks back: local [CHANGE_AT + 1 h, CHANGE_AT + 2 h) occurs twice: the earlier */
    ck_assert_int_eq(mpLocalToEpoch(CHANGE_AT + 3600 + 1800, forwardOffset, &back, &e), 0);
    ck_assert_int_eq(e, CHANGE_AT + 1800 - 3600);
    ck_assert_int_eq(mpLocalToEpoch(CHANGE_AT + 7200, forwardOffset, &back, &e), 0);
    ck_assert_int_eq(e, CHANGE_AT + 3600);
    ck_assert_int_eq(mpLocalToEpoch(CHANGE_AT + 3600 - 1, forwardOffset, &back, &e), 0);
    ck_assert_int_eq(e, CHANGE_AT - 3600 - 1);
    ck_assert_int_eq(mpLocalToEpoch(0, failingOffset, NULL, &e), -1);
}
END_TEST

static Suite *
calendar_suite(void)
{
    Suite *s = suite_create("calendar");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_days_from_civil_known_dates);
    tcase_add_test(tc, test_civil_from_days_round_trip);
    tcase_add_test(tc, test_leap_years_and_month_lengths);
    tcase_add_test(tc, test_local_to_epoch_fold_zero);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(calendar_suite)
