/*
 * mpcalendar.h: proleptic Gregorian calendar arithmetic, and local time to epoch time
 *
 * Pure: no clock, no zone database, no environment. Days count from 1970-01-01 (day 0).
 * The zone itself is the caller's (mptzone.h for a TZif zone, the C library's for the
 * host's): it only answers "what is the UTC offset at this instant", and
 * mpLocalToEpoch() turns a local wall-clock time into an instant from that.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define MP_SECONDS_PER_DAY INT64_C(86400)
#define MP_MS_PER_DAY INT64_C(86400000)

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil;
 * exact for every int64 year that does not overflow). m 1..12; d is not checked, so d = 0
 * is the last day of the month before. Inline: every log line's timestamp goes through it. */
static inline int64_t
mpDaysFromCivil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The date of a day number (the inverse of mpDaysFromCivil). */
void mpCivilFromDays(int64_t days, int64_t *y, int *m, int *d);

bool mpIsLeapYear(int64_t y);

/* 28..31; 0 for a month outside 1..12. */
int mpDaysInMonth(int64_t y, int m);

/* 0 = Sunday .. 6 = Saturday. */
int mpWeekday(int64_t days);

/* floor(a / b) for b > 0, and the matching non-negative remainder. */
int64_t mpFloorDiv(int64_t a, int64_t b);
int64_t mpFloorMod(int64_t a, int64_t b);

/* The UTC offset (local - UTC, seconds) in effect at epoch second t; -1 if unknown. */
typedef int (*mpUTCOffsetFunc)(int64_t t, int64_t *offset, void *opaque);

/*
 * Local wall-clock seconds (since 1970-01-01 00:00 local) to epoch seconds, with Python's
 * rule for fold = 0: a time that occurs twice (clocks set back) is the earlier instant,
 * a time that never occurs (clocks set forward) is read with the offset in effect before
 * the change. Returns -1 when fn does (the error is fn's to report).
 */
int mpLocalToEpoch(int64_t local, mpUTCOffsetFunc fn, void *opaque, int64_t *epoch);
