/*
 * test_config.c: the agent's configuration file
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mptest.h"
#include "mpconfig.h"
#include "mperror.h"

static int
rejectPolicyKey(const char *key, const char *value, void *opaque)
{
    (void)opaque;
    if (strcmp(key, "mode") == 0 && strcmp(value, "auto") != 0 && strcmp(value, "observe") != 0) {
        mpReportError("expected auto or observe, got '%s'", value);
        return -1;
    }
    return 0;
}

START_TEST(test_config_defaults)
{
    mpConfig *cfg = mpConfigLoadString("t.conf", "[DEFAULT]\nhost = cmp-a01\n", NULL, NULL);

    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->host, "cmp-a01");
    ck_assert_str_eq(cfg->queue, "migpilot.cmp-a01");
    ck_assert_str_eq(cfg->exchange, "nova");
    ck_assert_str_eq(cfg->publishTopic, "notifications.info");
    ck_assert_uint_eq(cfg->nbindKeys, 2);
    ck_assert_str_eq(cfg->bindKeys[0], "versioned_notifications.info");
    ck_assert_str_eq(cfg->bindKeys[1], "notifications.info");
    ck_assert_uint_eq(cfg->pollIntervalMs, 250);
    ck_assert_str_eq(cfg->libvirtUri, "qemu:///system");
    ck_assert_int_eq(cfg->durable, 0);
    ck_assert_int_eq(cfg->quorum, 0);
    ck_assert_int_eq(cfg->queueTypeSetting, MP_CONFIG_QUEUE_AUTO);
    ck_assert_int_eq(cfg->durableSetting, MP_CONFIG_DURABLE_AUTO);
    ck_assert_ptr_null(cfg->transportUrl);
    mpConfigFree(cfg);
}
END_TEST

START_TEST(test_config_values)
{
    const char *text =
        "[DEFAULT]\nhost = lab-a\nstate_dir = /tmp/mp\nlog_level = debug\n"
        "[amqp]\ntransport_url = rabbit://guest:guest@127.0.0.1:5673/\n"
        "bind_keys = notifications.info , versioned_notifications.info,\n"
        "max_message_bytes = 4096\ndurable = yes\n"
        "[libvirt]\nuri = qemu+unix:///system?socket=/tmp/s\npoll_interval_ms = 100\n"
        "[policy]\nmode = observe\n";
    mpConfig *cfg = mpConfigLoadString("t.conf", text, rejectPolicyKey, NULL);

    ck_assert_msg(cfg != NULL, "%s", mpGetLastErrorMessage());
    ck_assert_str_eq(cfg->stateDir, "/tmp/mp");
    ck_assert_int_eq(cfg->logLevel, 0);
    ck_assert_str_eq(cfg->transportUrl, "rabbit://guest:guest@127.0.0.1:5673/");
    ck_assert_uint_eq(cfg->nbindKeys, 2);
    ck_assert_str_eq(cfg->bindKeys[0], "notifications.info");
    ck_assert_str_eq(cfg->bindKeys[1], "versioned_notifications.info");
    ck_assert_uint_eq(cfg->maxMessageBytes, 4096);
    ck_assert_int_eq(cfg->durable, 1);
    ck_assert_uint_eq(cfg->pollIntervalMs, 100);
    ck_assert_uint_eq(cfg->npolicy, 1);
    ck_assert_str_eq(cfg->policyKeys[0], "mode");
    ck_assert_str_eq(cfg->policyValues[0], "observe");
    mpConfigFree(cfg);
}
END_TEST

static void
expectError(const char *text, const char *expected)
{
    mpConfig *cfg;

    mpResetLastError();
    cfg = mpConfigLoadString("t.conf", text, rejectPolicyKey, NULL);
    ck_assert_msg(cfg == NULL, "accepted: %s", text);
    ck_assert_msg(strstr(mpGetLastErrorMessage(), expected) != NULL,
                  "error '%s' lacks '%s'", mpGetLastErrorMessage(), expected);
    ck_assert_ptr_null(strchr(mpGetLastErrorMessage(), '\n'));
}

START_TEST(test_config_errors)
{
    expectError("[libvirt]\npoll_interval_ms = 1000\n",
                "t.conf:2: [libvirt] poll_interval_ms: expected a whole number from 20 to 250");
    expectError("[libvirt]\npoll_interval_ms = -5\n", "[libvirt] poll_interval_ms");
    expectError("[libvirt]\npoll_interval_ms = 12abc\n", "got '12abc'");
    expectError("[amqp]\ndurable = maybe\n",
                "t.conf:2: [amqp] durable: expected auto, true or false, got 'maybe'");
    expectError("[amqp]\nqueue_type = mirrored\n",
                "t.conf:2: [amqp] queue_type: expected auto, classic or quorum, got 'mirrored'");
    expectError("[amqp]\nqueue_type = quorum\ndurable = false\n",
                "[amqp] durable: false, but queue_type is quorum");
    expectError("[amqp]\nbogus = 1\n", "t.conf:2: [amqp] bogus: unknown key");
    expectError("[nope]\nx = 1\n", "t.conf:2: [nope]: unknown section");
    expectError("[DEFAULT]\nlog_level = loud\n", "[DEFAULT] log_level: expected debug");
    expectError("[DEFAULT]\nhost = a\nhost = b\n", "t.conf:3: [DEFAULT] host: set twice");
    expectError("[policy]\nmin_pass = 2\nmin_pass = 3\n", "t.conf:3: [policy] min_pass: set twice");
    expectError("[DEFAULT]\nstate_dir = relative\n", "state_dir: must be an absolute path");
    expectError("this is not ini\n", "t.conf:1: not an INI line");
    expectError("[policy]\nmode = fast\n", "t.conf:2: expected auto or observe");
    expectError("[amqp]\nreconnect_min_ms = 5000\nreconnect_max_ms = 1000\n",
                "reconnect_min_ms: 5000 is larger than reconnect_max_ms");
    expectError("[amqp]\nssl_cert_file = /c.pem\n", "set both or neither");
    expectError("[amqp]\nbind_keys = , ,\n", "expected a comma-separated list");
}
END_TEST

START_TEST(test_config_missing_file)
{
    mpConfig *cfg = mpConfigLoad("/nonexistent/migpilot.conf", NULL, NULL);

    ck_assert_ptr_null(cfg);
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "/nonexistent/migpilot.conf: cannot read: No such file or directory");
}
END_TEST

START_TEST(test_config_nova_transport)
{
    char dir[] = "/tmp/mptest-XXXXXX";
    char path[256];
    char text[512];
    FILE *fp;
    mpConfig *cfg;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/nova.conf", dir);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("[DEFAULT]\ntransport_url = rabbit://nova:pw@ctl:5672/\n"
          "[oslo_messaging_notifications]\ndriver = messagingv2\n"
          "transport_url = rabbit://notif:pw@ctl2:5672/\n", fp);
    fclose(fp);
    snprintf(text, sizeof(text), "[amqp]\nnova_conf = %s\n", path);
    cfg = mpConfigLoadString("t.conf", text, NULL, NULL);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(mpConfigResolveTransport(cfg), 0);
    ck_assert_str_eq(cfg->transportUrl, "rabbit://notif:pw@ctl2:5672/");
    mpConfigFree(cfg);

    snprintf(text, sizeof(text), "[amqp]\nnova_conf = %s/missing.conf\n", dir);
    cfg = mpConfigLoadString("t.conf", text, NULL, NULL);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(mpConfigResolveTransport(cfg), -1);
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "missing.conf cannot be read"));
    mpConfigFree(cfg);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* [amqp] queue_type and durable against nova.conf's [oslo_messaging_rabbit]. */
START_TEST(test_config_queue_resolution)
{
    static const struct {
        const char *nova;       /* NULL: no nova.conf */
        const char *amqp;       /* more [amqp] lines of migpilot.conf */
        int quorum;             /* -1: a configuration error containing error */
        int durable;
        const char *error;
    } cases[] = {
        /* what existing sites have: classic, transient */
        { "[DEFAULT]\nhost = cmp\n", "", 0, 0, NULL },
        { NULL, "", 0, 0, NULL },
        { "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n", "", 1, 1, NULL },
        { "[oslo_messaging_rabbit]\nrabbit_quorum_queue = True\namqp_durable_queues = false\n",
          "", 1, 1, NULL },
        { "[oslo_messaging_rabbit]\namqp_durable_queues = yes\n", "", 0, 1, NULL },
        { "[oslo_messaging_rabbit]\nrabbit_quorum_queue = false\n", "", 0, 0, NULL },
        /* the last setting wins, as in oslo.config; other sections do not count */
        { "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_quorum_queue = 0\n",
          "", 0, 0, NULL },
        { "[DEFAULT]\nrabbit_quorum_queue = true\namqp_durable_queues = true\n", "", 0, 0,
          NULL },
        { "[oslo_messaging_rabbit]\nrabbit_quorum_queue =\n", "", 0, 0, NULL },
        /* explicit settings win over nova.conf */
        { "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n", "queue_type = classic\n",
          0, 1, NULL },
        { "", "queue_type = quorum\n", 1, 1, NULL },
        { NULL, "queue_type = quorum\n", 1, 1, NULL },
        { "[oslo_messaging_rabbit]\namqp_durable_queues = true\n", "durable = false\n", 0, 0,
          NULL },
        { "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n",
          "queue_type = classic\ndurable = off\n", 0, 0, NULL },
        { "", "durable = true\n", 0, 1, NULL },
        /* what oslo would refuse, and contradictions */
        { "[oslo_messaging_rabbit]\nrabbit_quorum_queue = maybe\n", "", -1, 0,
          "nova.conf: [oslo_messaging_rabbit] rabbit_quorum_queue: expected true or false, "
          "got 'maybe'" },
        { "[oslo_messaging_rabbit]\namqp_durable_queues = 2\n", "", -1, 0,
          "[oslo_messaging_rabbit] amqp_durable_queues: expected true or false, got '2'" },
        { "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n", "durable = false\n", -1, 0,
          "[amqp] durable: false, but " },
    };
    char dir[] = "/tmp/mptest-XXXXXX";
    char path[256];
    size_t i;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/nova.conf", dir);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024];
        mpConfig *cfg;
        int rc;

        unlink(path);
        if (cases[i].nova) {
            FILE *fp = fopen(path, "w");

            ck_assert_ptr_nonnull(fp);
            fputs(cases[i].nova, fp);
            fclose(fp);
        }
        snprintf(text, sizeof(text),
                 "[amqp]\ntransport_url = rabbit://u:p@h:5672/\nnova_conf = %s\n%s",
                 path, cases[i].amqp);
        cfg = mpConfigLoadString("t.conf", text, NULL, NULL);
        ck_assert_msg(cfg != NULL, "case %zu: %s", i, mpGetLastErrorMessage());
        mpResetLastError();
        rc = mpConfigResolveTransport(cfg);
        if (cases[i].quorum < 0) {
            ck_assert_msg(rc == -1, "case %zu accepted", i);
            ck_assert_msg(strstr(mpGetLastErrorMessage(), cases[i].error) != NULL,
                          "case %zu: '%s' lacks '%s'", i, mpGetLastErrorMessage(),
                          cases[i].error);
            ck_assert_ptr_null(strchr(mpGetLastErrorMessage(), '\n'));
        } else {
            ck_assert_msg(rc == 0, "case %zu: %s", i, mpGetLastErrorMessage());
            ck_assert_msg(cfg->quorum == cases[i].quorum && cfg->durable == cases[i].durable,
                          "case %zu: quorum %d durable %d", i, cfg->quorum, cfg->durable);
            ck_assert_ptr_nonnull(cfg->queueDecision);
            ck_assert_ptr_nonnull(strstr(cfg->queueDecision,
                                         cases[i].quorum ? "quorum queue" : "classic queue"));
            ck_assert_ptr_nonnull(strstr(cfg->queueDecision,
                                         cases[i].durable ? "durable" : "transient"));
        }
        mpConfigFree(cfg);
    }
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_config_password_file)
{
    char dir[] = "/tmp/mptest-XXXXXX";
    char path[256];
    char text[512];
    FILE *fp;
    mpConfig *cfg;
    char *pw;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pw", dir);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("s3cret\n", fp);
    fclose(fp);
    snprintf(text, sizeof(text), "[amqp]\npassword_file = %s\n", path);
    cfg = mpConfigLoadString("t.conf", text, NULL, NULL);
    ck_assert_ptr_nonnull(cfg);

    ck_assert_int_eq(chmod(path, 0644), 0);
    ck_assert_ptr_null(mpConfigReadPassword(cfg));
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "world-readable"));

    ck_assert_int_eq(chmod(path, 0640), 0);
    pw = mpConfigReadPassword(cfg);
    ck_assert_ptr_nonnull(pw);
    ck_assert_str_eq(pw, "s3cret");
    free(pw);

    /* a password longer than the reader takes is refused, not cut short */
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    for (size_t i = 0; i < 1500; i++)
        fputc('p', fp);
    fputc('\n', fp);
    fclose(fp);
    ck_assert_ptr_null(mpConfigReadPassword(cfg));
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "longer than 1022 bytes"));
    /* the longest one it takes */
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    for (size_t i = 0; i < 1022; i++)
        fputc('q', fp);
    fputc('\n', fp);
    fclose(fp);
    pw = mpConfigReadPassword(cfg);
    ck_assert_ptr_nonnull(pw);
    ck_assert_uint_eq(strlen(pw), 1022);
    free(pw);
    mpConfigFree(cfg);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_config_dirtyrate)
{
    static const struct {
        const char *windows;
        const char *err;
    } bad[] = {
        { "0,4", "t.conf: [dirtyrate] windows_s: '0' is not a whole number of seconds from 1 "
                 "to 60" },
        { "1,61", "t.conf: [dirtyrate] windows_s: '61' is not a whole number of seconds from "
                  "1 to 60" },
        { "1,0.5", "t.conf: [dirtyrate] windows_s: '0.5' is not a whole number of seconds "
                   "from 1 to 60" },
        { "4,1", "t.conf: [dirtyrate] windows_s: windows must be strictly increasing (1 "
                 "after 4)" },
        { "2,2", "t.conf: [dirtyrate] windows_s: windows must be strictly increasing (2 "
                 "after 2)" },
        { "1,2,3,4,5", "t.conf: [dirtyrate] windows_s: expected 1 to 4 windows, got 5" },
        { ",", "t.conf:2: [dirtyrate] windows_s: expected a comma-separated list, got ','" },
    };
    char text[256];
    mpConfig *cfg;
    size_t i;

    cfg = mpConfigLoadString("t.conf", "", NULL, NULL);
    ck_assert_ptr_nonnull(cfg);
    ck_assert(cfg->dirtyEnabled);
    ck_assert_uint_eq(cfg->dirtyIntervalMs, 300000);
    ck_assert_uint_eq(cfg->ndirtyWindows, 2);
    ck_assert_uint_eq(cfg->dirtyWindowsS[0], 1);
    ck_assert_uint_eq(cfg->dirtyWindowsS[1], 4);
    ck_assert_uint_eq(cfg->dirtyMarginMs, 200);
    mpConfigFree(cfg);

    cfg = mpConfigLoadString("t.conf", "[dirtyrate]\nenabled = false\ninterval_ms = 300000\n"
                             "windows_s = 1, 2,8\n", NULL, NULL);
    ck_assert_ptr_nonnull(cfg);
    ck_assert(!cfg->dirtyEnabled);
    ck_assert_uint_eq(cfg->dirtyIntervalMs, 300000);
    ck_assert_uint_eq(cfg->ndirtyWindows, 3);
    ck_assert_uint_eq(cfg->dirtyWindowsS[2], 8);
    mpConfigFree(cfg);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "[dirtyrate]\nwindows_s = %s\n", bad[i].windows);
        cfg = mpConfigLoadString("t.conf", text, NULL, NULL);
        ck_assert_msg(cfg == NULL, "accepted windows_s = %s", bad[i].windows);
        ck_assert_str_eq(mpGetLastErrorMessage(), bad[i].err);
    }
}
END_TEST

START_TEST(test_config_describe)
{
    char *doc = mpConfigDescribe();

    ck_assert_ptr_nonnull(strstr(doc, "[libvirt]\n"));
    ck_assert_ptr_nonnull(strstr(doc, "#poll_interval_ms = 250\n"));
    free(doc);
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");

    tcase_add_test(tc, test_config_defaults);
    tcase_add_test(tc, test_config_values);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_config_missing_file);
    tcase_add_test(tc, test_config_nova_transport);
    tcase_add_test(tc, test_config_queue_resolution);
    tcase_add_test(tc, test_config_password_file);
    tcase_add_test(tc, test_config_dirtyrate);
    tcase_add_test(tc, test_config_describe);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(config_suite)
