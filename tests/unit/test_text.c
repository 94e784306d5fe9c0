/*
 * test_text.c: booleans and escaped excerpts (mptext)
 */
#include <string.h>

#include "mptest.h"
#include "mptext.h"

START_TEST(test_parse_bool)
{
    static const char *const truths[] = { "true", "TRUE", "True", "yes", "YeS", "on", "1" };
    static const char *const lies[] = { "false", "FALSE", "no", "NO", "off", "Off", "0" };
    static const char *const neither[] = { "", "2", "t", "y", "truee", " true", "true ",
                                           "enabled", "nein", "-1", "00" };
    size_t i;
    bool b;

    for (i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
        b = false;
        ck_assert_msg(mpParseBool(truths[i], &b) == 0 && b, "%s", truths[i]);
    }
    for (i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        b = true;
        ck_assert_msg(mpParseBool(lies[i], &b) == 0 && !b, "%s", lies[i]);
    }
    for (i = 0; i < sizeof(neither) / sizeof(neither[0]); i++) {
        b = true;
        ck_assert_msg(mpParseBool(neither[i], &b) == -1 && b, "%s", neither[i]);
    }
    ck_assert_int_eq(mpParseBool(NULL, &b), -1);
}
END_TEST

START_TEST(test_escape_bytes)
{
    char out[MP_ESCAPE_BUFLEN(8)];
    char tiny[10];

    ck_assert_str_eq(mpEscapeBytes("plain", 5, 8, out, sizeof(out)), "plain");
    ck_assert_str_eq(mpEscapeBytes("a\nb\\c\x1b\xff", 7, 8, out, sizeof(out)),
                     "a\\x0ab\\x5cc\\x1b\\xff");
    /* NUL bytes inside: the length counts, not the terminator */
    ck_assert_str_eq(mpEscapeBytes("a\0b", 3, 8, out, sizeof(out)), "a\\x00b");
    /* cut at maxIn input bytes */
    ck_assert_str_eq(mpEscapeBytes("0123456789", 10, 8, out, sizeof(out)), "01234567...");
    ck_assert_str_eq(mpEscapeBytes("", 0, 8, out, sizeof(out)), "");
    /* never beyond the output buffer, always terminated */
    ck_assert_str_eq(mpEscapeBytes("\x01\x02\x03\x04", 4, 4, tiny, sizeof(tiny)), "\\x01...");
    ck_assert_uint_lt(strlen(mpEscapeBytes("abcdefghijkl", 12, 12, tiny, sizeof(tiny))),
                      sizeof(tiny));
    ck_assert_str_eq(tiny, "ab...");
    /* the worst case of maxIn bytes fits MP_ESCAPE_BUFLEN(maxIn) whole */
    ck_assert_str_eq(mpEscapeBytes("\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9, 8, out,
                                   sizeof(out)),
                     "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff...");
}
END_TEST

static Suite *
text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_parse_bool);
    tcase_add_test(tc, test_escape_bytes);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(text_suite)
