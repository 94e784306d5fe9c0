/*
 * test_url.c: transport URLs in nova's syntax
 */
#include <stdio.h>
#include <string.h>

#include "mptest.h"
#include "mperror.h"
#include "mpurl.h"

START_TEST(test_url_basic)
{
    mpTransportUrl *u = mpTransportUrlParse("rabbit://nova:s%40cret@ctl:5673/");

    ck_assert_ptr_nonnull(u);
    ck_assert_uint_eq(u->nhosts, 1);
    ck_assert_str_eq(u->hosts[0].user, "nova");
    ck_assert_str_eq(u->hosts[0].password, "s@cret");
    ck_assert_str_eq(u->hosts[0].host, "ctl");
    ck_assert_int_eq(u->hosts[0].port, 5673);
    ck_assert_str_eq(u->vhost, "/");
    ck_assert_int_eq(u->ssl, 0);
    mpTransportUrlFree(u);
}
END_TEST

START_TEST(test_url_multi_host_vhost_ssl)
{
    mpTransportUrl *u = mpTransportUrlParse(
        "rabbit://a:pa@h1:5671,b:pb@[::1]:5672,h3/nova%2Fvh?ssl=1");

    ck_assert_ptr_nonnull(u);
    ck_assert_uint_eq(u->nhosts, 3);
    ck_assert_str_eq(u->hosts[1].host, "::1");
    ck_assert_int_eq(u->hosts[1].port, 5672);
    ck_assert_str_eq(u->hosts[2].host, "h3");
    ck_assert_int_eq(u->hosts[2].port, 5672);
    ck_assert_str_eq(u->hosts[2].user, "guest");
    ck_assert_str_eq(u->vhost, "nova/vh");
    ck_assert_int_eq(u->ssl, 1);
    mpTransportUrlFree(u);

    u = mpTransportUrlParse("amqps://u:p@broker");
    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(u->ssl, 1);
    ck_assert_str_eq(u->vhost, "/");
    mpTransportUrlFree(u);
}
END_TEST

START_TEST(test_url_errors)
{
    static const struct { const char *url; const char *err; } cases[] = {
        { "http://h/", "unsupported scheme 'http'" },
        { "kafka://h/", "unsupported scheme 'kafka'" },
        { "rabbit://u:p@h:99999/", "bad port '99999'" },
        { "rabbit://u:p@h:/", "bad port for host 'h'" },
        { "rabbit://u:p@:5672/", "a host is empty" },
        { "rabbit://u:p%zz@h/", "bad %-escape in the password" },
        { "rabbit://u%00:p@h/", "bad %-escape in the user name" },
        { "rabbit://u:p@[::1/", "unterminated [IPv6] host" },
        { "rabbit://h/%", "bad %-escape in the virtual host" },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mpTransportUrl *u = mpTransportUrlParse(cases[i].url);

        ck_assert_msg(u == NULL, "accepted %s", cases[i].url);
        ck_assert_msg(strstr(mpGetLastErrorMessage(), cases[i].err) != NULL,
                      "%s: '%s' lacks '%s'", cases[i].url, mpGetLastErrorMessage(),
                      cases[i].err);
        ck_assert_ptr_null(strstr(mpGetLastErrorMessage(), "zz"));
    }
}
END_TEST

START_TEST(test_url_ssl_query)
{
    static const struct { const char *query; int ssl; } cases[] = {
        { "?ssl=1", 1 }, { "?ssl=true", 1 }, { "?ssl=True", 1 }, { "?ssl=yes", 1 },
        { "?ssl=ON", 1 }, { "?a=b&ssl=1", 1 }, { "?ssl=1&a=b", 1 },
        { "?ssl=0", 0 }, { "?ssl=false", 0 }, { "?ssl=10", 0 }, { "?xssl=1", 0 },
        { "?a=ssl=1", 0 }, { "?ssl=", 0 }, { "?ssl=1&ssl=0", 0 }, { "?", 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char url[128];
        mpTransportUrl *u;

        snprintf(url, sizeof(url), "rabbit://u:p@h/vh%s", cases[i].query);
        u = mpTransportUrlParse(url);
        ck_assert_msg(u != NULL, "%s: %s", url, mpGetLastErrorMessage());
        ck_assert_msg(u->ssl == cases[i].ssl, "%s: ssl %d", url, u->ssl);
        ck_assert_str_eq(u->vhost, "vh");
        mpTransportUrlFree(u);
    }
}
END_TEST

START_TEST(test_url_resolve)
{
    const char *url = "unchanged";

    ck_assert_int_eq(mpTransportUrlResolve("rabbit://a/", "rabbit://n/", "rabbit://d/", &url),
                     MP_TRANSPORT_FROM_AGENT);
    ck_assert_str_eq(url, "rabbit://a/");
    ck_assert_int_eq(mpTransportUrlResolve("", "rabbit://n/", "rabbit://d/", &url),
                     MP_TRANSPORT_FROM_NOVA_NOTIFICATIONS);
    ck_assert_str_eq(url, "rabbit://n/");
    ck_assert_int_eq(mpTransportUrlResolve(NULL, NULL, "rabbit://d/", &url),
                     MP_TRANSPORT_FROM_NOVA_DEFAULT);
    ck_assert_str_eq(url, "rabbit://d/");
    ck_assert_int_eq(mpTransportUrlResolve(NULL, "", "", &url), MP_TRANSPORT_FROM_NONE);
    ck_assert_ptr_null(url);
    ck_assert_str_eq(mpTransportOriginSection(MP_TRANSPORT_FROM_AGENT), "[amqp]");
    ck_assert_str_eq(mpTransportOriginSection(MP_TRANSPORT_FROM_NOVA_NOTIFICATIONS),
                     "[oslo_messaging_notifications]");
    ck_assert_str_eq(mpTransportOriginSection(MP_TRANSPORT_FROM_NOVA_DEFAULT), "[DEFAULT]");
    ck_assert_ptr_null(mpTransportOriginSection(MP_TRANSPORT_FROM_NONE));
}
END_TEST

static Suite *
url_suite(void)
{
    Suite *s = suite_create("url");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, test_url_basic);
    tcase_add_test(tc, test_url_multi_host_vhost_ssl);
    tcase_add_test(tc, test_url_errors);
    tcase_add_test(tc, test_url_ssl_query);
    tcase_add_test(tc, test_url_resolve);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(url_suite)
