/*
 * mptzone.c: TZif and POSIX TZ rules (see mptzone.h)
 */
#include <stdlib.h>
#include <string.h>

#include "mpalloc.h"
#include "mpcalendar.h"
#include "mperror.h"
#include "mptzone.h"

#define MP_TZIF_HEADER 44

typedef enum {
    MP_TZ_DATE_JULIAN1,      /* Jn: 1..365, February 29 never counted */
    MP_TZ_DATE_JULIAN0,      /* n: 0..365 */
    MP_TZ_DATE_MONTH,        /* Mm.w.d */
} mpTzDateKind;

typedef struct {
    mpTzDateKind kind;
    int day, week, month;
    int64_t time;            /* seconds after local midnight, -167 h .. 167 h */
} mpTzDate;

typedef struct {
    int64_t stdOffset;
    int64_t dstOffset;
    bool hasDst;
    mpTzDate start, end;     /* start in standard time, end in daylight time */
} mpTzRule;

struct _mpTimeZone {
    int64_t *trans;          /* epoch seconds, ascending */
    int32_t *transOffset;    /* the offset from trans[i] on */
    size_t ntrans;
    int64_t firstOffset;     /* before trans[0] (time type 0) */
    bool hasRule;            /* after the last transition (or always, ntrans == 0) */
    mpTzRule rule;
};

/* ---- POSIX TZ rules ---- */

static const char *
mpTzParseName(const char *p)
{
    const char *start;

    if (*p == '<') {
        start = ++p;
        while (*p && *p != '>')
            p++;
        if (*p != '>' || p - start < 3)
            return NULL;
        return p + 1;
    }
    start = p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
        p++;
    return p - start >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hh up to maxHours; signed seconds in *out. */
static const char *
mpTzParseTime(const char *p, int maxHours, int64_t *out)
{
    int64_t sign = 1, v = 0, part;
    int i, n;

    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    for (i = 0; i < 3; i++) {
        if (i > 0) {
            if (*p != ':')
                break;
            p++;
        }
        part = 0;
        for (n = 0; *p >= '0' && *p <= '9' && n < 3; n++, p++)
            part = part * 10 + (*p - '0');
        if (n == 0 || (i == 0 && part > maxHours) || (i > 0 && (n != 2 || part > 59)))
            return NULL;
        v = v * 60 + part;
    }
    for (; i < 3; i++)
        v *= 60;
    *out = sign * v;
    return p;
}

static const char *
mpTzParseNumber(const char *p, int lo, int hi, int *out)
{
    int v = 0, n;

    for (n = 0; *p >= '0' && *p <= '9' && n < 3; n++, p++)
        v = v * 10 + (*p - '0');
    if (n == 0 || v < lo || v > hi)
        return NULL;
    *out = v;
    return p;
}

static const char *
mpTzParseDate(const char *p, mpTzDate *dt)
{
    memset(dt, 0, sizeof(*dt));
    if (*p == 'J') {
        dt->kind = MP_TZ_DATE_JULIAN1;
        p = mpTzParseNumber(p + 1, 1, 365, &dt->day);
    } else if (*p == 'M') {
        dt->kind = MP_TZ_DATE_MONTH;
        if (!(p = mpTzParseNumber(p + 1, 1, 12, &dt->month)) || *p++ != '.' ||
            !(p = mpTzParseNumber(p, 1, 5, &dt->week)) || *p++ != '.')
            return NULL;
        p = mpTzParseNumber(p, 0, 6, &dt->day);
    } else {
        dt->kind = MP_TZ_DATE_JULIAN0;
        p = mpTzParseNumber(p, 0, 365, &dt->day);
    }
    if (!p)
        return NULL;
    dt->time = 2 * 3600;
    if (*p == '/')
        p = mpTzParseTime(p + 1, 167, &dt->time);
    return p;
}

/* POSIX offsets count west of Greenwich: "CET-1" is UTC+1. */
static int
mpTzParseRule(const char *s, mpTzRule *r)
{
    const char *p = s;
    int64_t off;

    memset(r, 0, sizeof(*r));
    if (!(p = mpTzParseName(p)) || !(p = mpTzParseTime(p, 24, &off)))
        return -1;
    r->stdOffset = -off;
    if (*p == '\0')
        return 0;
    if (!(p = mpTzParseName(p)))
        return -1;
    r->hasDst = true;
    r->dstOffset = r->stdOffset + 3600;
    if (*p != ',' && *p != '\0') {
        if (!(p = mpTzParseTime(p, 24, &off)))
            return -1;
        r->dstOffset = -off;
    }
    /* TZif footers always carry the dates; no implementation-defined default here */
    if (*p++ != ',' || !(p = mpTzParseDate(p, &r->start)) || *p++ != ',' ||
        !(p = mpTzParseDate(p, &r->end)) || *p != '\0')
        return -1;
    return 0;
}

/* Local seconds (in the offset the date is written in) of a rule's date in year y. */
static int64_t
mpTzDateLocal(const mpTzDate *dt, int64_t y)
{
    int64_t days = mpDaysFromCivil(y, 1, 1);

    switch (dt->kind) {
    case MP_TZ_DATE_JULIAN1:
        days += dt->day - 1 + (mpIsLeapYear(y) && dt->day >= 60);
        break;
    case MP_TZ_DATE_JULIAN0:
        days += dt->day;
        break;
    case MP_TZ_DATE_MONTH: {
        int64_t first = mpDaysFromCivil(y, dt->month, 1);
        int64_t day = first + (dt->day - mpWeekday(first) + 7) % 7 + (dt->week - 1) * 7;

        if (day - first >= mpDaysInMonth(y, dt->month))
            day -= 7;
        days = day;
        break;
    }
    }
    return days * MP_SECONDS_PER_DAY + dt->time;
}

static int64_t
mpTzRuleOffset(const mpTzRule *r, int64_t t)
{
    int64_t y, start, end;
    int m, d;
    bool dst;

    if (!r->hasDst)
        return r->stdOffset;
    mpCivilFromDays(mpFloorDiv(t + r->stdOffset, MP_SECONDS_PER_DAY), &y, &m, &d);
    start = mpTzDateLocal(&r->start, y) - r->stdOffset;
    end = mpTzDateLocal(&r->end, y) - r->dstOffset;
    if (start < end)
        dst = t >= start && t < end;
    else
        dst = !(t >= end && t < start);   /* southern hemisphere: DST across new year */
    return dst ? r->dstOffset : r->stdOffset;
}

mpTimeZone *
mpTimeZoneNewPosix(const char *rule)
{
    mpTimeZone *tz = mpAlloc0(sizeof(*tz));

    if (!rule || mpTzParseRule(rule, &tz->rule) < 0) {
        mpReportError("time zone rule '%s' is not a POSIX TZ rule", rule ? rule : "");
        mpTimeZoneFree(tz);
        return NULL;
    }
    tz->hasRule = true;
    return tz;
}

/* ---- TZif ---- */

static uint32_t
mpTzifU32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
mpTzifI64(const unsigned char *p)
{
    return (int64_t)((uint64_t)mpTzifU32(p) << 32 | mpTzifU32(p + 4));
}

typedef struct {
    uint32_t isut, isstd, leap, time, type, chars;
} mpTzifCounts;

static size_t
mpTzifBlockLen(const mpTzifCounts *c, size_t timeSize)
{
    return (size_t)c->time * (timeSize + 1) + (size_t)c->type * 6 + c->chars +
           (size_t)c->leap * (timeSize + 4) + c->isstd + c->isut;
}

static int
mpTzifHeader(const unsigned char *p, size_t len, mpTzifCounts *c, int *version)
{
    if (len < MP_TZIF_HEADER || memcmp(p, "TZif", 4) != 0)
        return -1;
    *version = p[4] == 0 ? 1 : p[4] - '0';
    c->isut = mpTzifU32(p + 20);
    c->isstd = mpTzifU32(p + 24);
    c->leap = mpTzifU32(p + 28);
    c->time = mpTzifU32(p + 32);
    c->type = mpTzifU32(p + 36);
    c->chars = mpTzifU32(p + 40);
    /* bounded so that block lengths can not overflow */
    if (c->type == 0 || c->type > 256 || c->time > (1u << 24) || c->leap > (1u << 24) ||
        c->chars > (1u << 24) || (c->isut && c->isut != c->type) ||
        (c->isstd && c->isstd != c->type))
        return -1;
    return 0;
}

static const char *
mpTzifParse(mpTimeZone *tz, const unsigned char *buf, size_t len)
{
    mpTzifCounts c;
    int version;
    size_t timeSize = 4, blockLen, i;
    const unsigned char *p = buf, *types, *infos;

    if (mpTzifHeader(p, len, &c, &version) < 0)
        return "not a TZif file";
    blockLen = mpTzifBlockLen(&c, 4);
    if (len - MP_TZIF_HEADER < blockLen)
        return "truncated";
    if (version >= 2) {
        p += MP_TZIF_HEADER + blockLen;
        len -= MP_TZIF_HEADER + blockLen;
        if (mpTzifHeader(p, len, &c, &version) < 0)
            return "bad second header";
        timeSize = 8;
        blockLen = mpTzifBlockLen(&c, 8);
        if (len - MP_TZIF_HEADER < blockLen)
            return "truncated";
    }
    p += MP_TZIF_HEADER;
    len -= MP_TZIF_HEADER;
    types = p + (size_t)c.time * timeSize;
    infos = types + c.time;
    tz->ntrans = c.time;
    tz->trans = mpAllocN(c.time ? c.time : 1, sizeof(*tz->trans));
    tz->transOffset = mpAllocN(c.time ? c.time : 1, sizeof(*tz->transOffset));
    for (i = 0; i < c.time; i++) {
        const unsigned char *q = p + i * timeSize;

        if (types[i] >= c.type)
            return "bad time type index";
        tz->trans[i] = timeSize == 8 ? mpTzifI64(q) : (int32_t)mpTzifU32(q);
        if (i > 0 && tz->trans[i] <= tz->trans[i - 1])
            return "transitions out of order";
        tz->transOffset[i] = (int32_t)mpTzifU32(infos + (size_t)types[i] * 6);
    }
    tz->firstOffset = (int32_t)mpTzifU32(infos);
    if (version >= 2) {
        const char *foot = (const char *)p + blockLen;
        size_t footLen = len - blockLen;
        const char *nl;
        char *rule;
        int rc;

        if (footLen < 2 || foot[0] != '\n' || !(nl = memchr(foot + 1, '\n', footLen - 1)))
            return "bad footer";
        if (nl > foot + 1) {
            rule = mpStrndup(foot + 1, (size_t)(nl - foot - 1));
            rc = mpTzParseRule(rule, &tz->rule);
            free(rule);
            if (rc < 0)
                return "bad footer rule";
            tz->hasRule = true;
        }
    }
    return NULL;
}

mpTimeZone *
mpTimeZoneNewTZif(const char *name, const void *buf, size_t len)
{
    mpTimeZone *tz = mpAlloc0(sizeof(*tz));
    const char *why = mpTzifParse(tz, buf, len);

    if (why) {
        mpReportError("time zone '%s': %s", name ? name : "", why);
        mpTimeZoneFree(tz);
        return NULL;
    }
    return tz;
}

void
mpTimeZoneFree(mpTimeZone *tz)
{
    if (!tz)
        return;
    free(tz->trans);
    free(tz->transOffset);
    free(tz);
}

int64_t
mpTimeZoneOffset(const mpTimeZone *tz, int64_t t)
{
    size_t lo = 0, hi = tz->ntrans;

    if (tz->ntrans == 0)
        return tz->hasRule ? mpTzRuleOffset(&tz->rule, t) : tz->firstOffset;
    if (t < tz->trans[0])
        return tz->firstOffset;
    if (t >= tz->trans[tz->ntrans - 1] && tz->hasRule)
        return mpTzRuleOffset(&tz->rule, t);
    /* the last transition at or before t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->transOffset[lo];
}

int
mpTimeZoneOffsetFunc(int64_t t, int64_t *offset, void *opaque)
{
    *offset = mpTimeZoneOffset(opaque, t);
    return 0;
}
