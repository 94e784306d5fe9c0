/*
 * test_tzone.c: zones from TZif bytes and POSIX rules (mptzone), and a log's zone as the
 * agent and the extension read it (mplocalzone)
 */
#include <stdlib.h>
#include <string.h>

#include "mptest.h"
#include "mpcalendar.h"
#include "mperror.h"
#include "mplocalzone.h"
#include "mptzone.h"

/* Epoch seconds of a local wall-clock time in a zone, fold = 0. */
static int64_t
localToEpoch(mpTimeZone *tz, int64_t y, int mo, int d, int h, int mi)
{
    int64_t local = ((mpDaysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60;
    int64_t e = 0;

    ck_assert_int_eq(mpLocalToEpoch(local, mpTimeZoneOffsetFunc, tz, &e), 0);
    return e;
}

START_TEST(test_posix_rules)
{
    mpTimeZone *tz = mpTimeZoneNewPosix("CET-1CEST,M3.5.0,M10.5.0/3");

    ck_assert_ptr_nonnull(tz);
    /* the expected epochs are Python's datetime(..., tzinfo=ZoneInfo(...)).timestamp() */
    ck_assert_int_eq(localToEpoch(tz, 2026, 11, 21, 12, 0), 1795258800);
    ck_assert_int_eq(localToEpoch(tz, 2026, 7, 1, 12, 0), 1782900000);
    ck_assert_int_eq(localToEpoch(tz, 2026, 3, 29, 2, 30), 1774747800);   /* skipped */
    ck_assert_int_eq(localToEpoch(tz, 2026, 10, 25, 2, 30), 1792888200);  /* repeated */
    ck_assert_int_eq(mpTimeZoneOffset(tz, 1774747800 - 1800 - 1), 3600);
    ck_assert_int_eq(mpTimeZoneOffset(tz, 1774747800 - 1800), 7200);
    mpTimeZoneFree(tz);

    /* southern hemisphere: daylight time across the new year */
    tz = mpTimeZoneNewPosix("AEST-10AEDT,M10.1.0,M4.1.0/3");
    ck_assert_ptr_nonnull(tz);
    ck_assert_int_eq(localToEpoch(tz, 2026, 1, 15, 12, 0), 1768438800);
    ck_assert_int_eq(localToEpoch(tz, 2026, 7, 15, 12, 0), 1784080800);
    mpTimeZoneFree(tz);

    tz = mpTimeZoneNewPosix("EST5EDT,M3.2.0,M11.1.0");
    ck_assert_ptr_nonnull(tz);
    ck_assert_int_eq(localToEpoch(tz, 2040, 3, 11, 2, 30), 2215063800);
    ck_assert_int_eq(localToEpoch(tz, 2040, 11, 4, 1, 30), 2235619800);
    mpTimeZoneFree(tz);

    /* quoted names, minutes, Julian days, no daylight time */
    tz = mpTimeZoneNewPosix("<+0530>-5:30");
    ck_assert_ptr_nonnull(tz);
    ck_assert_int_eq(mpTimeZoneOffset(tz, 0), 19800);
    mpTimeZoneFree(tz);
    tz = mpTimeZoneNewPosix("XXX3YYY,J60/0,300/0");
    ck_assert_ptr_nonnull(tz);
    /* J60 is March 1 in every year; 300 counts February 29 */
    ck_assert_int_eq(mpTimeZoneOffset(tz, mpDaysFromCivil(2024, 3, 1) * 86400 + 3 * 3600), -7200);
    ck_assert_int_eq(mpTimeZoneOffset(tz, mpDaysFromCivil(2024, 3, 1) * 86400 + 3 * 3600 - 1),
                     -10800);
    ck_assert_int_eq(mpTimeZoneOffset(tz, mpDaysFromCivil(2024, 1, 1) * 86400 + 300 * 86400 +
                                      2 * 3600 - 1), -7200);
    ck_assert_int_eq(mpTimeZoneOffset(tz, mpDaysFromCivil(2024, 1, 1) * 86400 + 300 * 86400 +
                                      2 * 3600), -10800);
    mpTimeZoneFree(tz);
    tz = mpTimeZoneNewPosix("UTC0");
    ck_assert_int_eq(mpTimeZoneOffset(tz, 123456789), 0);
    mpTimeZoneFree(tz);
}
END_TEST

START_TEST(test_posix_rule_errors)
{
    static const char *const bad[] = {
        "", "CET", "C-1", "CET-25", "CET-1CEST", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,J0,J365",
        "CET-1CEST,M3.5.0,M10.5.0/168", "CET-1:5", "<AB>1", "CET-1 ",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mpResetLastError();
        ck_assert_msg(mpTimeZoneNewPosix(bad[i]) == NULL, "'%s' accepted", bad[i]);
        ck_assert_msg(strstr(mpGetLastErrorMessage(), "not a POSIX TZ rule"), "%s",
                      mpGetLastErrorMessage());
    }
}
END_TEST

/* ---- TZif ---- */

typedef struct {
    unsigned char buf[1024];
    size_t len;
} tzifBuf;

static void
put(tzifBuf *b, const void *p, size_t n)
{
    ck_assert_uint_le(b->len + n, sizeof(b->buf));
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}

static void
putBE(tzifBuf *b, uint64_t v, size_t n)
{
    while (n--)
        put(b, &(unsigned char){ (unsigned char)(v >> (8 * n)) }, 1);
}

/* Header + data block: transitions trans[] to types[], type offsets offs[] (isdst = 0). */
static void
putBlock(tzifBuf *b, char version, size_t timeSize, const int64_t *trans,
         const unsigned char *types, size_t ntrans, const int32_t *offs, size_t ntypes)
{
    size_t i;

    put(b, "TZif", 4);
    put(b, &version, 1);
    put(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
    putBE(b, 0, 4);                  /* isut */
    putBE(b, 0, 4);                  /* isstd */
    putBE(b, 0, 4);                  /* leap */
    putBE(b, ntrans, 4);
    putBE(b, ntypes, 4);
    putBE(b, 4, 4);                  /* chars: "ZZZ\0" */
    for (i = 0; i < ntrans; i++)
        putBE(b, (uint64_t)trans[i], timeSize);
    put(b, types, ntrans);
    for (i = 0; i < ntypes; i++) {
        putBE(b, (uint32_t)offs[i], 4);
        put(b, "\0\0", 2);
    }
    put(b, "ZZZ", 4);
}

static void
makeTZif(tzifBuf *b, const char *footer, const int64_t *trans, const unsigned char *types,
         size_t ntrans)
{
    static const int32_t offs[] = { 3600, 7200 };

    b->len = 0;
    putBlock(b, '2', 4, trans, types, ntrans, offs, 2);
    putBlock(b, '2', 8, trans, types, ntrans, offs, 2);
    put(b, "\n", 1);
    put(b, footer, strlen(footer));
    put(b, "\n", 1);
}

START_TEST(test_tzif)
{
    static const int64_t trans[] = { 1000000, 2000000 };
    static const unsigned char types[] = { 1, 0 };
    tzifBuf b;
    mpTimeZone *tz;

    makeTZif(&b, "<+01>-1", trans, types, 2);
    tz = mpTimeZoneNewTZif("Test/Zone", b.buf, b.len);
    ck_assert_ptr_nonnull(tz);
    ck_assert_int_eq(mpTimeZoneOffset(tz, -5000000000), 3600);   /* type 0 before */
    ck_assert_int_eq(mpTimeZoneOffset(tz, 999999), 3600);
    ck_assert_int_eq(mpTimeZoneOffset(tz, 1000000), 7200);
    ck_assert_int_eq(mpTimeZoneOffset(tz, 1999999), 7200);
    ck_assert_int_eq(mpTimeZoneOffset(tz, 2000000), 3600);        /* the footer from here */
    ck_assert_int_eq(mpTimeZoneOffset(tz, 5000000000), 3600);
    mpTimeZoneFree(tz);

    /* the footer's daylight rule after the last transition */
    makeTZif(&b, "CET-1CEST,M3.5.0,M10.5.0/3", trans, types, 2);
    tz = mpTimeZoneNewTZif("Test/Zone", b.buf, b.len);
    ck_assert_ptr_nonnull(tz);
    ck_assert_int_eq(mpTimeZoneOffset(tz, 1782900000), 7200);
    ck_assert_int_eq(mpTimeZoneOffset(tz, 1795258800), 3600);
    mpTimeZoneFree(tz);

    /* an empty footer: the last transition's type stays */
    makeTZif(&b, "", trans, types, 2);
    tz = mpTimeZoneNewTZif("Test/Zone", b.buf, b.len);
    ck_assert_ptr_nonnull(tz);
    ck_assert_int_eq(mpTimeZoneOffset(tz, 1782900000), 3600);
    mpTimeZoneFree(tz);

    /* version 1: 32-bit data only, no footer */
    {
        static const int32_t offs[] = { 3600, 7200 };

        b.len = 0;
        putBlock(&b, '\0', 4, trans, types, 2, offs, 2);
        tz = mpTimeZoneNewTZif("Test/V1", b.buf, b.len);
        ck_assert_ptr_nonnull(tz);
        ck_assert_int_eq(mpTimeZoneOffset(tz, 1500000), 7200);
        ck_assert_int_eq(mpTimeZoneOffset(tz, 2500000), 3600);
        mpTimeZoneFree(tz);
    }
}
END_TEST

START_TEST(test_tzif_errors)
{
    static const int64_t trans[] = { 1000000, 2000000 };
    static const int64_t unordered[] = { 2000000, 1000000 };
    static const unsigned char types[] = { 1, 0 };
    static const unsigned char badTypes[] = { 1, 2 };
    tzifBuf b;
    size_t len;

    makeTZif(&b, "CET-1CEST,M3.5.0,M10.5.0/3", trans, types, 2);
    for (len = 0; len < b.len; len++) {
        mpResetLastError();
        ck_assert_msg(mpTimeZoneNewTZif("Test/Zone", b.buf, len) == NULL, "%zu bytes", len);
        ck_assert(strstr(mpGetLastErrorMessage(), "time zone 'Test/Zone': "));
    }
    b.buf[0] = 'X';
    ck_assert_ptr_null(mpTimeZoneNewTZif("Test/Zone", b.buf, b.len));
    ck_assert_str_eq(mpGetLastErrorMessage(), "time zone 'Test/Zone': not a TZif file");
    makeTZif(&b, "CET-1CEST,M3.5.0,M10.5.0/3", unordered, types, 2);
    ck_assert_ptr_null(mpTimeZoneNewTZif("Test/Zone", b.buf, b.len));
    ck_assert_str_eq(mpGetLastErrorMessage(), "time zone 'Test/Zone': transitions out of order");
    makeTZif(&b, "CET-1CEST,M3.5.0,M10.5.0/3", trans, badTypes, 2);
    ck_assert_ptr_null(mpTimeZoneNewTZif("Test/Zone", b.buf, b.len));
    ck_assert_str_eq(mpGetLastErrorMessage(), "time zone 'Test/Zone': bad time type index");
    makeTZif(&b, "CET-1CEST", trans, types, 2);
    ck_assert_ptr_null(mpTimeZoneNewTZif("Test/Zone", b.buf, b.len));
    ck_assert_str_eq(mpGetLastErrorMessage(), "time zone 'Test/Zone': bad footer rule");
}
END_TEST

/* ---- the zone database and the host's zone ---- */

static int64_t
convert(mpLocalZone *zone, int y, int mo, int d, int h, int mi, int ms)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                     .tm_min = mi };

    return mpLocalZoneConvert(&tm, ms, zone);
}

START_TEST(test_local_zone_database)
{
    mpLocalZone *zone = mpLocalZoneNew("Europe/Paris");

    ck_assert_msg(zone != NULL, "%s", mpGetLastErrorMessage());
    ck_assert_int_eq(convert(zone, 2026, 11, 21, 12, 0, 250), INT64_C(1795258800250));
    ck_assert_int_eq(convert(zone, 2026, 3, 29, 2, 30, 0), INT64_C(1774747800000));
    ck_assert_int_eq(convert(zone, 2026, 10, 25, 2, 30, 0), INT64_C(1792888200000));
    ck_assert_int_eq(convert(zone, 1900, 1, 1, 0, 0, 0), INT64_C(-2208989361000));  /* LMT */
    ck_assert_int_eq(convert(zone, 0, 1, 1, 0, 0, 0), INT64_MIN);
    mpLocalZoneFree(zone);

    zone = mpLocalZoneNew("America/New_York");
    ck_assert_ptr_nonnull(zone);
    ck_assert_int_eq(convert(zone, 2040, 3, 11, 2, 30, 0), INT64_C(2215063800000));
    ck_assert_int_eq(convert(zone, 2040, 11, 4, 1, 30, 0), INT64_C(2235619800000));
    mpLocalZoneFree(zone);

    zone = mpLocalZoneNew("Asia/Tokyo");
    ck_assert_ptr_nonnull(zone);
    ck_assert_int_eq(convert(zone, 2026, 6, 1, 0, 0, 0), INT64_C(1780239600000));
    mpLocalZoneFree(zone);
}
END_TEST

START_TEST(test_local_zone_host)
{
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    mpLocalZone *zone;

    /* the test's own process, single-threaded: TZ is the host's zone here */
    setenv("TZ", "America/New_York", 1);
    zone = mpLocalZoneNew(NULL);
    ck_assert_ptr_nonnull(zone);
    ck_assert_int_eq(convert(zone, 2040, 3, 11, 2, 30, 0), INT64_C(2215063800000));
    ck_assert_int_eq(convert(zone, 2040, 11, 4, 1, 30, 5), INT64_C(2235619800005));
    mpLocalZoneFree(zone);
    setenv("TZ", "UTC", 1);
    zone = mpLocalZoneNew("");
    ck_assert_int_eq(convert(zone, 1970, 1, 1, 0, 0, 0), 0);
    mpLocalZoneFree(zone);
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    free(saved);
}
END_TEST

START_TEST(test_local_zone_errors)
{
    ck_assert_ptr_null(mpLocalZoneNew("No/Such_Zone"));
    ck_assert_msg(strstr(mpGetLastErrorMessage(), "unknown time zone 'No/Such_Zone' (") ==
                  mpGetLastErrorMessage(), "%s", mpGetLastErrorMessage());
    ck_assert_ptr_null(mpLocalZoneNew("/etc/localtime"));
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "unknown time zone '/etc/localtime': not an IANA zone name");
    ck_assert_ptr_null(mpLocalZoneNew("../zoneinfo/UTC"));
    ck_assert_ptr_null(mpLocalZoneNew("Europe"));   /* a directory */
    ck_assert_msg(strstr(mpGetLastErrorMessage(), "unknown time zone 'Europe' ("), "%s",
                  mpGetLastErrorMessage());
}
END_TEST

static Suite *
tzone_suite(void)
{
    Suite *s = suite_create("tzone");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_posix_rules);
    tcase_add_test(tc, test_posix_rule_errors);
    tcase_add_test(tc, test_tzif);
    tcase_add_test(tc, test_tzif_errors);
    tcase_add_test(tc, test_local_zone_database);
    tcase_add_test(tc, test_local_zone_host);
    tcase_add_test(tc, test_local_zone_errors);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(tzone_suite)
