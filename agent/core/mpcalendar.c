/*
 * mpcalendar.c: calendar arithmetic and local time to epoch time (see mpcalendar.h)
 */
#include "mpcalendar.h"

void
mpCivilFromDays(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

bool
mpIsLeapYear(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
mpDaysInMonth(int64_t y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (m < 1 || m > 12)
        return 0;
    if (m == 2 && mpIsLeapYear(y))
        return 29;
    return days[m - 1];
}

int64_t
mpFloorDiv(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

int64_t
mpFloorMod(int64_t a, int64_t b)
{
    int64_t r = a % b;

    return r < 0 ? r + b : r;
}

int
mpWeekday(int64_t days)
{
    return (int)mpFloorMod(days + 4, 7);   /* 1970-01-01 was a Thursday */
}

/*
 * CPython's datetime._mktime (fold = 0): solve local = u + offset(u) for u. The offset a
 * at the local time read as UTC gives a first candidate; a zone change within a day
 * before it may give a second (b). Both solve it: a repeated time, the earlier wins;
 * neither does: a skipped time, read with the earlier offset (the larger u).
 */
int
mpLocalToEpoch(int64_t local, mpUTCOffsetFunc fn, void *opaque, int64_t *epoch)
{
    int64_t a, b, u1, u2, t1, t2, off;

    if (fn(local, &a, opaque) < 0)
        return -1;
    u1 = local - a;
    if (fn(u1, &off, opaque) < 0)
        return -1;
    t1 = u1 + off;
    if (t1 == local) {
        if (fn(u1 - MP_SECONDS_PER_DAY, &b, opaque) < 0)
            return -1;
        if (a == b) {
            *epoch = u1;
            return 0;
        }
    } else {
        b = t1 - u1;
    }
    u2 = local - b;
    if (fn(u2, &off, opaque) < 0)
        return -1;
    t2 = u2 + off;
    if (t2 == local)
        *epoch = u2;
    else if (t1 == local)
        *epoch = u1;
    else
        *epoch = u1 > u2 ? u1 : u2;
    return 0;
}
