/*
 * mpconfig.c: the agent's INI configuration, parsed with inih and checked against a table
 */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpalloc.h"
#include "mpconfig.h"
#include "mperror.h"
#include "mplog.h"
#include "mptext.h"
#include "mpurl.h"

typedef enum {
    MP_OPT_STRING,
    MP_OPT_BOOL,
    MP_OPT_UINT,      /* unsigned with bounds */
    MP_OPT_SIZE,      /* size_t with bounds */
    MP_OPT_LOGLEVEL,
    MP_OPT_LIST,      /* comma-separated strings */
    MP_OPT_QUEUE_TYPE, /* auto, classic or quorum (mpConfigQueueType) */
    MP_OPT_DURABLE,   /* auto or a boolean (mpConfigDurable) */
} mpOptType;

typedef struct {
    const char *section;
    const char *name;
    mpOptType type;
    size_t offset;
    const char *defaultValue;  /* applied through the same parser, so defaults are checked */
    unsigned long long min;
    unsigned long long max;
    const char *help;
} mpOption;

#define OFF(field) offsetof(mpConfig, field)

/* A list option's count follows its array in mpConfig. */
_Static_assert(offsetof(mpConfig, nbindKeys) == offsetof(mpConfig, bindKeys) + sizeof(char **),
               "list count must follow the list");
_Static_assert(offsetof(mpConfig, nrecoveryAddresses) ==
               offsetof(mpConfig, recoveryAddresses) + sizeof(char **),
               "list count must follow the list");
_Static_assert(offsetof(mpConfig, ndirtyWindowsText) ==
               offsetof(mpConfig, dirtyWindowsText) + sizeof(char **),
               "list count must follow the list");

static const mpOption mpOptions[] = {
    { "DEFAULT", "host", MP_OPT_STRING, OFF(host), NULL, 0, 0,
      "This compute host's name as nova knows it ([DEFAULT] host of nova.conf); "
      "default: the system's host name." },
    { "DEFAULT", "state_dir", MP_OPT_STRING, OFF(stateDir), "/var/lib/migpilot", 0, 0,
      "Where unpublished metrics records are spooled until the broker takes them." },
    { "DEFAULT", "log_level", MP_OPT_LOGLEVEL, OFF(logLevel), "info", 0, 0,
      "debug, info, warning or error." },
    { "DEFAULT", "use_syslog", MP_OPT_BOOL, OFF(useSyslog), "false", 0, 0,
      "Log to syslog (daemon facility) instead of stderr." },
    { "DEFAULT", "progress_interval_ms", MP_OPT_UINT, OFF(progressIntervalMs), "5000",
      0, 3600000,
      "How often a compute.live_migration.progress notification is published during a "
      "migration; 0 publishes none." },

    { "amqp", "transport_url", MP_OPT_STRING, OFF(transportUrl), NULL, 0, 0,
      "Broker URL in nova's syntax (rabbit://user:pass@host:port/vhost); default: "
      "[oslo_messaging_notifications] or [DEFAULT] transport_url of nova_conf." },
    { "amqp", "nova_conf", MP_OPT_STRING, OFF(novaConf), "/etc/nova/nova.conf", 0, 0,
      "nova.conf to read transport_url from when this file sets none." },
    { "amqp", "exchange", MP_OPT_STRING, OFF(exchange), "nova", 0, 0,
      "Topic exchange nova notifies on (nova sets control_exchange = nova)." },
    { "amqp", "publish_topic", MP_OPT_STRING, OFF(publishTopic), "notifications.info", 0, 0,
      "Routing key of migpilot's notifications (Ceilometer reads notifications.info)." },
    { "amqp", "bind_keys", MP_OPT_LIST, OFF(bindKeys),
      "versioned_notifications.info,notifications.info", 0, 0,
      "Routing keys of nova's notifications that the agent's own queue is bound to." },
    { "amqp", "queue", MP_OPT_STRING, OFF(queue), NULL, 0, 0,
      "The agent's own queue (never one that Ceilometer reads); default migpilot.<host>." },
    { "amqp", "queue_type", MP_OPT_QUEUE_TYPE, OFF(queueTypeSetting), "auto", 0, 0,
      "Type of the agent's own queue: classic, quorum (durable, replicated, declared with "
      "x-queue-type = quorum), or auto: quorum when nova_conf sets [oslo_messaging_rabbit] "
      "rabbit_quorum_queue = true, classic otherwise. Either type is deleted by the broker "
      "after 1 h without a consumer (x-expires) and keeps at most 10000 messages "
      "(x-max-length), so a host whose agent is gone leaves nothing behind. An existing "
      "queue of the other type must be deleted first (rabbitmqctl delete_queue)." },
    { "amqp", "durable", MP_OPT_DURABLE, OFF(durableSetting), "auto", 0, 0,
      "Declare nova's exchange and a classic queue durable: must match the site's. auto: "
      "as oslo.messaging does, durable when nova_conf sets [oslo_messaging_rabbit] "
      "amqp_durable_queues or rabbit_quorum_queue to true (or queue_type is quorum). "
      "false with a quorum queue is an error." },
    { "amqp", "max_message_bytes", MP_OPT_SIZE, OFF(maxMessageBytes), "1048576",
      1024, 64ULL * 1024 * 1024,
      "Larger bus messages are rejected (acked, counted, logged)." },
    { "amqp", "max_message_depth", MP_OPT_UINT, OFF(maxMessageDepth), "64", 4, 1024,
      "Deeper JSON nesting in a bus message is rejected." },
    { "amqp", "ssl", MP_OPT_BOOL, OFF(ssl), "false", 0, 0,
      "Connect with TLS (also implied by an amqps:// URL)." },
    { "amqp", "ssl_ca_file", MP_OPT_STRING, OFF(sslCaFile), NULL, 0, 0,
      "CA certificates that verify the broker." },
    { "amqp", "ssl_cert_file", MP_OPT_STRING, OFF(sslCertFile), NULL, 0, 0,
      "Client certificate (optional)." },
    { "amqp", "ssl_key_file", MP_OPT_STRING, OFF(sslKeyFile), NULL, 0, 0,
      "Client key (optional)." },
    { "amqp", "ssl_verify", MP_OPT_BOOL, OFF(sslVerify), "true", 0, 0,
      "Verify the broker's certificate and host name." },
    { "amqp", "password_file", MP_OPT_STRING, OFF(passwordFile), NULL, 0, 0,
      "File holding the broker password (refused when world-readable)." },
    { "amqp", "reconnect_min_ms", MP_OPT_UINT, OFF(reconnectMinMs), "500", 10, 600000,
      "First delay before reconnecting to the broker; doubles up to reconnect_max_ms." },
    { "amqp", "reconnect_max_ms", MP_OPT_UINT, OFF(reconnectMaxMs), "30000", 10, 3600000,
      "Longest delay between broker reconnection attempts." },
    { "amqp", "heartbeat_s", MP_OPT_UINT, OFF(heartbeatS), "60", 0, 3600,
      "AMQP heartbeat; 0 disables it." },

    { "libvirt", "uri", MP_OPT_STRING, OFF(libvirtUri), "qemu:///system", 0, 0,
      "libvirt connection of this host." },
    { "libvirt", "poll_interval_ms", MP_OPT_UINT, OFF(pollIntervalMs), "250", 20, 250,
      "Job statistics of an active outgoing migration are read this often (at most 250)." },
    { "libvirt", "discovery_interval_ms", MP_OPT_UINT, OFF(discoveryIntervalMs), "5000",
      100, 600000,
      "Safety net: how often all domains are checked for migrations that raised no event." },
    { "libvirt", "reconnect_interval_ms", MP_OPT_UINT, OFF(reconnectIntervalMs), "2000",
      100, 600000,
      "Delay between attempts to reconnect to libvirtd." },

    { "logs", "nova_compute_log", MP_OPT_STRING, OFF(novaComputeLog),
      "/var/log/nova/nova-compute.log", 0, 0,
      "nova-compute's log, followed to time migrations as nova sees them; empty: off." },
    { "logs", "timezone", MP_OPT_STRING, OFF(timezone), NULL, 0, 0,
      "Time zone of nova-compute's log timestamps (IANA name); default: the host's." },
    { "logs", "wait_ms", MP_OPT_UINT, OFF(novaLogWaitMs), "2000", 0, 60000,
      "After a migration ends, its metrics wait at most this long for nova's log lines." },

    { "recovery", "postcopy_recovery", MP_OPT_BOOL, OFF(postcopyRecovery), "true", 0, 0,
      "Resume a post-copy migration whose network broke, when the link returns." },
    { "recovery", "retry_interval_ms", MP_OPT_UINT, OFF(recoveryRetryMs), "2000", 100,
      600000, "Delay between attempts to resume a paused post-copy migration." },
    { "recovery", "alert_after_ms", MP_OPT_UINT, OFF(recoveryAlertMs), "60000", 1000,
      86400000, "Report loudly when a post-copy migration stays paused this long." },
    { "recovery", "destination_uri", MP_OPT_STRING, OFF(recoveryDestUri),
      "qemu+tcp://%s/system", 0, 0,
      "libvirt URI of the destination a paused post-copy migration is resumed to, as "
      "nova's [libvirt] live_migration_scheme / live_migration_uri make it; %s is replaced "
      "by the destination's address. The destination host is the one nova's "
      "live-migration notifications name." },
    { "recovery", "destination_addresses", MP_OPT_LIST, OFF(recoveryAddresses), NULL, 0, 0,
      "host=address pairs, comma-separated: the migration address of a destination whose "
      "nova.conf sets [libvirt] live_migration_inbound_addr; other hosts are reached by "
      "their nova host name." },

    { "dirtyrate", "enabled", MP_OPT_BOOL, OFF(dirtyEnabled), "true", 0, 0,
      "Measure how fast guests dirty their memory (libvirt's virDomainStartDirtyRateCalc, "
      "page-sampling mode; libvirt >= 7.2). No calc is started during a migration (libvirt "
      "would hold it 30 s behind the migration's job): a migration is told the latest "
      "measurement. Where libvirt or QEMU cannot measure, the agent says so once." },
    { "dirtyrate", "interval_ms", MP_OPT_UINT, OFF(dirtyIntervalMs), "300000", 0, 86400000,
      "Measure every running guest this often (the first round 10 s after start); 0: "
      "never periodically. Cost of one measurement (QEMU 7.2): the windows' length in wall "
      "time, 0-20 ms of libvirtd CPU per window, no guest slowdown beyond noise." },
    { "dirtyrate", "windows_s", MP_OPT_LIST, OFF(dirtyWindowsText), "1,4", 0, 0,
      "Measurement windows in seconds (libvirt takes whole seconds, 1 to 60), strictly "
      "increasing, at most 4, run one after the other: the short one gives the rate, the "
      "long one the size of a saturated working set." },
    { "dirtyrate", "margin_ms", MP_OPT_UINT, OFF(dirtyMarginMs), "200", 0, 10000,
      "How long after a window's end its result is read." },
};

#define MP_NOPTIONS (sizeof(mpOptions) / sizeof(mpOptions[0]))

typedef struct {
    mpConfig *cfg;
    const char *name;
    mpConfigPolicyValidator validator;
    void *opaque;
    char error[1024];
    unsigned char seen[MP_NOPTIONS];
} mpConfigParse;

static void
mpConfigFreeList(char ***list, size_t *n)
{
    size_t i;

    for (i = 0; i < *n; i++)
        free((*list)[i]);
    MP_FREE(*list);
    *n = 0;
}

static int
mpConfigParseBool(const char *value, bool *out)
{
    if (mpParseBool(value, out) < 0) {
        mpReportError("expected true or false, got '%.64s'", value);
        return -1;
    }
    return 0;
}

static int
mpConfigParseUnsigned(const char *value, unsigned long long min, unsigned long long max,
                      unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    if (!*value || *value == '-' || *value == '+') {
        mpReportError("expected a whole number from %llu to %llu, got '%.64s'",
                      min, max, value);
        return -1;
    }
    v = strtoull(value, &end, 10);
    if (errno || *end || v < min || v > max) {
        mpReportError("expected a whole number from %llu to %llu, got '%.64s'",
                      min, max, value);
        return -1;
    }
    *out = v;
    return 0;
}

static int
mpConfigSetOption(mpConfig *cfg, const mpOption *opt, const char *value)
{
    void *field = (char *)cfg + opt->offset;
    unsigned long long num;
    int level;

    switch (opt->type) {
    case MP_OPT_STRING:
        free(*(char **)field);
        *(char **)field = mpStrdup(value);
        return 0;
    case MP_OPT_BOOL:
        return mpConfigParseBool(value, (bool *)field);
    case MP_OPT_UINT:
        if (mpConfigParseUnsigned(value, opt->min, opt->max, &num) < 0)
            return -1;
        *(unsigned *)field = (unsigned)num;
        return 0;
    case MP_OPT_SIZE:
        if (mpConfigParseUnsigned(value, opt->min, opt->max, &num) < 0)
            return -1;
        *(size_t *)field = (size_t)num;
        return 0;
    case MP_OPT_LOGLEVEL:
        if ((level = mpLogLevelFromString(value)) < 0) {
            mpReportError("expected debug, info, warning or error, got '%.64s'", value);
            return -1;
        }
        *(int *)field = level;
        return 0;
    case MP_OPT_QUEUE_TYPE:
        if (strcasecmp(value, "auto") == 0) {
            *(int *)field = MP_CONFIG_QUEUE_AUTO;
        } else if (strcasecmp(value, "classic") == 0) {
            *(int *)field = MP_CONFIG_QUEUE_CLASSIC;
        } else if (strcasecmp(value, "quorum") == 0) {
            *(int *)field = MP_CONFIG_QUEUE_QUORUM;
        } else {
            mpReportError("expected auto, classic or quorum, got '%.64s'", value);
            return -1;
        }
        return 0;
    case MP_OPT_DURABLE: {
        bool b;

        if (strcasecmp(value, "auto") == 0) {
            *(int *)field = MP_CONFIG_DURABLE_AUTO;
            return 0;
        }
        if (mpParseBool(value, &b) < 0) {
            mpReportError("expected auto, true or false, got '%.64s'", value);
            return -1;
        }
        *(int *)field = b ? MP_CONFIG_DURABLE_TRUE : MP_CONFIG_DURABLE_FALSE;
        return 0;
    }
    case MP_OPT_LIST: {
        char ***list = (char ***)field;
        size_t *n = (size_t *)((char *)field + sizeof(char **));
        size_t alloc = 0;
        const char *p = value;

        mpConfigFreeList(list, n);
        while (*p) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            const char *s = p;

            while (len && (*s == ' ' || *s == '\t')) {
                s++;
                len--;
            }
            while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
                len--;
            if (len) {
                mpGrow(list, &alloc, *n + 1, sizeof(char *));
                (*list)[(*n)++] = mpStrndup(s, len);
            }
            if (!end)
                break;
            p = end + 1;
        }
        if (*n == 0) {
            mpReportError("expected a comma-separated list, got '%.64s'", value);
            return -1;
        }
        return 0;
    }
    }
    return -1;
}

static int
mpConfigHandler(void *user, const char *section, const char *name, const char *value)
{
    mpConfigParse *parse = user;
    mpConfig *cfg = parse->cfg;
    size_t i;

    if (!*section || strcmp(section, "default") == 0)
        section = "DEFAULT";

    if (strcmp(section, "policy") == 0) {
        size_t alloc = cfg->npolicy;

        for (i = 0; i < cfg->npolicy; i++) {
            if (strcmp(cfg->policyKeys[i], name) == 0) {
                snprintf(parse->error, sizeof(parse->error), "[policy] %.64s: set twice",
                         name);
                return 0;
            }
        }
        if (parse->validator && parse->validator(name, value, parse->opaque) < 0) {
            /* the policy's own message names the key */
            snprintf(parse->error, sizeof(parse->error), "%s", mpGetLastErrorMessage());
            return 0;
        }
        mpGrow(&cfg->policyKeys, &alloc, cfg->npolicy + 1, sizeof(char *));
        alloc = cfg->npolicy;
        mpGrow(&cfg->policyValues, &alloc, cfg->npolicy + 1, sizeof(char *));
        cfg->policyKeys[cfg->npolicy] = mpStrdup(name);
        cfg->policyValues[cfg->npolicy] = mpStrdup(value);
        cfg->npolicy++;
        return 1;
    }

    for (i = 0; i < MP_NOPTIONS; i++) {
        if (strcmp(mpOptions[i].section, section) == 0 &&
            strcmp(mpOptions[i].name, name) == 0)
            break;
    }
    if (i == MP_NOPTIONS) {
        int knownSection = 0;
        size_t j;

        for (j = 0; j < MP_NOPTIONS; j++)
            knownSection |= strcmp(mpOptions[j].section, section) == 0;
        if (knownSection)
            snprintf(parse->error, sizeof(parse->error), "[%.64s] %.64s: unknown key",
                     section, name);
        else
            snprintf(parse->error, sizeof(parse->error), "[%.64s]: unknown section",
                     section);
        return 0;
    }
    if (parse->seen[i]) {
        snprintf(parse->error, sizeof(parse->error), "[%s] %s: set twice",
                 section, name);
        return 0;
    }
    parse->seen[i] = 1;
    if (mpConfigSetOption(cfg, &mpOptions[i], value) < 0) {
        snprintf(parse->error, sizeof(parse->error), "[%s] %s: %s",
                 section, name, mpGetLastErrorMessage());
        return 0;
    }
    return 1;
}

static int
mpConfigApplyDefaults(mpConfig *cfg)
{
    size_t i;

    for (i = 0; i < MP_NOPTIONS; i++) {
        if (!mpOptions[i].defaultValue)
            continue;
        if (mpConfigSetOption(cfg, &mpOptions[i], mpOptions[i].defaultValue) < 0)
            return -1;
    }
    return 0;
}

/* [recovery]: the URI template and the address map, checked before they are ever used. */
static int
mpConfigCheckRecovery(const mpConfig *cfg, const char *name)
{
    const char *p = strstr(cfg->recoveryDestUri, "%s");
    size_t i;

    /* expanded by plain substitution, never used as a format */
    if (!p || strchr(p + 2, '%') || strchr(cfg->recoveryDestUri, '%') != p) {
        mpReportError("%s: [recovery] destination_uri: expected one %%s (the destination's "
                      "address) and no other %%, got '%.64s'", name, cfg->recoveryDestUri);
        return -1;
    }
    for (i = 0; i < cfg->nrecoveryAddresses; i++) {
        const char *pair = cfg->recoveryAddresses[i];
        const char *eq = strchr(pair, '=');

        if (!eq || eq == pair || !eq[1] || strpbrk(eq + 1, " \t/@%=")) {
            mpReportError("%s: [recovery] destination_addresses: expected host=address, "
                          "got '%.64s'", name, pair);
            return -1;
        }
    }
    return 0;
}

/* [dirtyrate] windows_s: whole seconds libvirt accepts, shortest first. */
static int
mpConfigCheckDirtyRate(mpConfig *cfg, const char *name)
{
    size_t i;

    if (cfg->ndirtyWindowsText == 0 ||
        cfg->ndirtyWindowsText > sizeof(cfg->dirtyWindowsS) / sizeof(cfg->dirtyWindowsS[0])) {
        mpReportError("%s: [dirtyrate] windows_s: expected 1 to 4 windows, got %zu", name,
                      cfg->ndirtyWindowsText);
        return -1;
    }
    for (i = 0; i < cfg->ndirtyWindowsText; i++) {
        const char *text = cfg->dirtyWindowsText[i];
        char *end = NULL;
        unsigned long v;

        errno = 0;
        v = strtoul(text, &end, 10);
        if (errno || end == text || *end || text[0] == '-' || v < 1 || v > 60) {
            mpReportError("%s: [dirtyrate] windows_s: '%.32s' is not a whole number of "
                          "seconds from 1 to 60", name, text);
            return -1;
        }
        if (i > 0 && v <= cfg->dirtyWindowsS[i - 1]) {
            mpReportError("%s: [dirtyrate] windows_s: windows must be strictly increasing "
                          "(%lu after %u)", name, v, cfg->dirtyWindowsS[i - 1]);
            return -1;
        }
        cfg->dirtyWindowsS[i] = (unsigned)v;
    }
    cfg->ndirtyWindows = cfg->ndirtyWindowsText;
    return 0;
}

/* Cross-option checks and derived values, once the whole file is read. */
static int
mpConfigFinish(mpConfig *cfg, const char *name)
{
    char hostname[HOST_NAME_MAX + 1];

    if (!cfg->host || !*cfg->host) {
        if (gethostname(hostname, sizeof(hostname)) < 0) {
            mpReportError("%s: [DEFAULT] host: not set and the host name is unknown", name);
            return -1;
        }
        hostname[HOST_NAME_MAX] = '\0';
        free(cfg->host);
        cfg->host = mpStrdup(hostname);
    }
    if (strpbrk(cfg->host, " \t/#*")) {
        mpReportError("%s: [DEFAULT] host: '%.64s' is not a host name", name, cfg->host);
        return -1;
    }
    if (!cfg->queue || !*cfg->queue) {
        free(cfg->queue);
        cfg->queue = mpAsprintf("migpilot.%s", cfg->host);
    }
    if (cfg->reconnectMinMs > cfg->reconnectMaxMs) {
        mpReportError("%s: [amqp] reconnect_min_ms: %u is larger than reconnect_max_ms (%u)",
                      name, cfg->reconnectMinMs, cfg->reconnectMaxMs);
        return -1;
    }
    if (cfg->stateDir[0] != '/') {
        mpReportError("%s: [DEFAULT] state_dir: must be an absolute path, got '%.64s'",
                      name, cfg->stateDir);
        return -1;
    }
    if ((cfg->sslCertFile && *cfg->sslCertFile) != (cfg->sslKeyFile && *cfg->sslKeyFile)) {
        mpReportError("%s: [amqp] ssl_cert_file and ssl_key_file: set both or neither", name);
        return -1;
    }
    if (cfg->queueTypeSetting == MP_CONFIG_QUEUE_QUORUM &&
        cfg->durableSetting == MP_CONFIG_DURABLE_FALSE) {
        mpReportError("%s: [amqp] durable: false, but queue_type is quorum (a quorum queue "
                      "is durable, and so is the exchange oslo declares with it)", name);
        return -1;
    }
    /* what the settings say alone, until mpConfigResolveTransport reads nova.conf */
    cfg->quorum = cfg->queueTypeSetting == MP_CONFIG_QUEUE_QUORUM;
    cfg->durable = cfg->durableSetting == MP_CONFIG_DURABLE_TRUE || cfg->quorum;
    if (mpConfigCheckRecovery(cfg, name) < 0 || mpConfigCheckDirtyRate(cfg, name) < 0)
        return -1;
    return 0;
}

static mpConfig *
mpConfigLoadWith(const char *name, int (*parseFn)(const void *src, mpConfigParse *parse),
                 const void *src, mpConfigPolicyValidator validator, void *opaque)
{
    mpConfigParse parse = { 0 };
    mpConfig *cfg = mpAlloc0(sizeof(*cfg));
    mpConfig *ret = NULL;
    int line;

    parse.cfg = cfg;
    parse.name = name;
    parse.validator = validator;
    parse.opaque = opaque;

    if (mpConfigApplyDefaults(cfg) < 0) {
        mpReportError("%s: built-in default rejected: %s", name, mpGetLastErrorMessage());
        goto cleanup;
    }
    line = parseFn(src, &parse);
    if (line < 0) {
        mpReportError("%s: cannot read: %s", name, errno ? strerror(errno) : "error");
        goto cleanup;
    }
    if (line > 0) {
        if (parse.error[0])
            mpReportError("%s:%d: %s", name, line, parse.error);
        else
            mpReportError("%s:%d: not an INI line (expected [section] or key = value)",
                          name, line);
        goto cleanup;
    }
    if (mpConfigFinish(cfg, name) < 0)
        goto cleanup;

    ret = cfg;
    cfg = NULL;

 cleanup:
    mpConfigFree(cfg);
    return ret;
}

static int
mpConfigParseFile(const void *src, mpConfigParse *parse)
{
    errno = 0;
    return ini_parse((const char *)src, mpConfigHandler, parse);
}

static int
mpConfigParseString(const void *src, mpConfigParse *parse)
{
    return ini_parse_string((const char *)src, mpConfigHandler, parse);
}

mpConfig *
mpConfigLoad(const char *path, mpConfigPolicyValidator validator, void *opaque)
{
    return mpConfigLoadWith(path, mpConfigParseFile, path, validator, opaque);
}

mpConfig *
mpConfigLoadString(const char *name, const char *text,
                   mpConfigPolicyValidator validator, void *opaque)
{
    return mpConfigLoadWith(name, mpConfigParseString, text, validator, opaque);
}

void
mpConfigFree(mpConfig *cfg)
{
    size_t i;

    if (!cfg)
        return;
    for (i = 0; i < MP_NOPTIONS; i++) {
        void *field = (char *)cfg + mpOptions[i].offset;

        if (mpOptions[i].type == MP_OPT_STRING)
            free(*(char **)field);
        else if (mpOptions[i].type == MP_OPT_LIST)
            mpConfigFreeList((char ***)field, (size_t *)((char *)field + sizeof(char **)));
    }
    for (i = 0; i < cfg->npolicy; i++) {
        free(cfg->policyKeys[i]);
        free(cfg->policyValues[i]);
    }
    free(cfg->policyKeys);
    free(cfg->policyValues);
    free(cfg->queueDecision);
    free(cfg);
}

/* nova.conf: the notification bus is [oslo_messaging_notifications] transport_url,
 * falling back to [DEFAULT] transport_url, as oslo.messaging does; the queue options of
 * [oslo_messaging_rabbit] as its rabbit driver reads them (the last setting wins). */
typedef struct {
    char *defaultUrl;
    char *notificationsUrl;
    char *quorumQueue;        /* rabbit_quorum_queue as written, NULL: unset */
    char *durableQueues;      /* amqp_durable_queues */
} mpNovaConf;

static void
mpNovaConfSet(char **field, const char *value)
{
    free(*field);
    *field = mpStrdup(value);
}

static int
mpNovaConfHandler(void *user, const char *section, const char *name, const char *value)
{
    mpNovaConf *nc = user;

    if (strcmp(section, "oslo_messaging_rabbit") == 0) {
        if (strcmp(name, "rabbit_quorum_queue") == 0)
            mpNovaConfSet(&nc->quorumQueue, value);
        else if (strcmp(name, "amqp_durable_queues") == 0)
            mpNovaConfSet(&nc->durableQueues, value);
        return 1;
    }
    if (strcmp(name, "transport_url") != 0 || !*value)
        return 1;
    if (strcmp(section, "DEFAULT") == 0)
        mpNovaConfSet(&nc->defaultUrl, value);
    else if (strcmp(section, "oslo_messaging_notifications") == 0)
        mpNovaConfSet(&nc->notificationsUrl, value);
    return 1;
}

/* One of nova.conf's booleans; unset or empty is oslo's default, false. */
static int
mpNovaConfBool(const mpConfig *cfg, const char *key, const char *value, bool *out)
{
    *out = false;
    if (!value || !*value)
        return 0;
    if (mpParseBool(value, out) < 0) {
        mpReportError("%s: [oslo_messaging_rabbit] %s: expected true or false, got '%.64s'",
                      cfg->novaConf, key, value);
        return -1;
    }
    return 0;
}

/* queue_type and durable: explicit settings win, auto follows nova.conf as oslo does
 * (its Connection.durable is amqp_durable_queues or rabbit_quorum_queue). */
static int
mpConfigResolveQueue(mpConfig *cfg, const mpNovaConf *nc, bool novaRead)
{
    bool novaQuorum = false;
    bool novaDurable = false;
    const char *typeWhy;
    const char *durableWhy;

    if (novaRead &&
        (mpNovaConfBool(cfg, "rabbit_quorum_queue", nc->quorumQueue, &novaQuorum) < 0 ||
         mpNovaConfBool(cfg, "amqp_durable_queues", nc->durableQueues, &novaDurable) < 0))
        return -1;

    if (cfg->queueTypeSetting == MP_CONFIG_QUEUE_AUTO) {
        cfg->quorum = novaQuorum;
        typeWhy = !novaRead ? "queue_type = auto, nova_conf unreadable" :
            novaQuorum ? "queue_type = auto, nova_conf rabbit_quorum_queue = true" :
            "queue_type = auto, nova_conf sets no rabbit_quorum_queue = true";
    } else {
        cfg->quorum = cfg->queueTypeSetting == MP_CONFIG_QUEUE_QUORUM;
        typeWhy = "queue_type set";
    }

    if (cfg->durableSetting == MP_CONFIG_DURABLE_AUTO) {
        cfg->durable = novaDurable || novaQuorum || cfg->quorum;
        durableWhy = cfg->quorum && !novaDurable && !novaQuorum ? "quorum queue" :
            !novaRead ? "durable = auto, nova_conf unreadable" :
            novaQuorum ? "nova_conf rabbit_quorum_queue = true" :
            novaDurable ? "nova_conf amqp_durable_queues = true" :
            "durable = auto, nova_conf sets neither amqp_durable_queues nor "
            "rabbit_quorum_queue";
    } else {
        cfg->durable = cfg->durableSetting == MP_CONFIG_DURABLE_TRUE;
        durableWhy = "durable set";
        if (cfg->quorum && !cfg->durable) {
            mpReportError("[amqp] durable: false, but %s sets [oslo_messaging_rabbit] "
                          "rabbit_quorum_queue = true (a quorum queue is durable, and so is "
                          "the exchange oslo declares with it)", cfg->novaConf);
            return -1;
        }
    }
    free(cfg->queueDecision);
    cfg->queueDecision = mpAsprintf("%s queue (%s), exchange and queue %s (%s)",
                                    cfg->quorum ? "quorum" : "classic", typeWhy,
                                    cfg->durable ? "durable" : "transient", durableWhy);
    return 0;
}

/* A URL the agent could not use is a configuration error, found before starting. */
static int
mpConfigCheckTransport(const char *url, const char *where)
{
    mpTransportUrl *parsed = mpTransportUrlParse(url);

    if (!parsed) {
        char err[1024];

        snprintf(err, sizeof(err), "%s", mpGetLastErrorMessage());
        mpReportError("%s: %s", where, err);
        return -1;
    }
    mpTransportUrlFree(parsed);
    return 0;
}

/* A password file that would be refused at the first connection is a configuration
 * error: found by --check-config and before the daemon starts, not later. */
static int
mpConfigCheckPasswordFile(const mpConfig *cfg)
{
    char *pw;

    if (!cfg->passwordFile || !*cfg->passwordFile)
        return 0;
    if (!(pw = mpConfigReadPassword(cfg)))
        return -1;
    explicit_bzero(pw, strlen(pw));
    free(pw);
    return 0;
}

int
mpConfigResolveTransport(mpConfig *cfg)
{
    mpNovaConf nc = { NULL, NULL, NULL, NULL };
    const char *url = NULL;
    bool haveUrl = mpTransportUrlResolve(cfg->transportUrl, NULL, NULL, &url) ==
        MP_TRANSPORT_FROM_AGENT;
    char *where = NULL;
    int ret = -1;
    int rc;

    if (mpConfigCheckPasswordFile(cfg) < 0)
        return -1;
    errno = 0;
    rc = ini_parse(cfg->novaConf, mpNovaConfHandler, &nc);
    if (rc < 0 && !haveUrl) {
        mpReportError("[amqp] transport_url: not set, and %s cannot be read: %s",
                      cfg->novaConf, errno ? strerror(errno) : "error");
        goto cleanup;
    }
    /* with its own URL the agent needs no nova.conf: auto then means classic */
    if (mpConfigResolveQueue(cfg, &nc, rc >= 0) < 0)
        goto cleanup;
    if (haveUrl) {
        ret = mpConfigCheckTransport(cfg->transportUrl, "[amqp] transport_url");
        goto cleanup;
    }
    if (mpTransportUrlResolve(NULL, nc.notificationsUrl, nc.defaultUrl, &url) ==
        MP_TRANSPORT_FROM_NONE) {
        mpReportError("[amqp] transport_url: not set, and %s sets no transport_url",
                      cfg->novaConf);
        goto cleanup;
    }
    free(cfg->transportUrl);
    cfg->transportUrl = mpStrdup(url);
    where = mpAsprintf("%s: transport_url", cfg->novaConf);
    ret = mpConfigCheckTransport(cfg->transportUrl, where);

 cleanup:
    free(where);
    free(nc.defaultUrl);
    free(nc.notificationsUrl);
    free(nc.quorumQueue);
    free(nc.durableQueues);
    return ret;
}

char *
mpConfigReadPassword(const mpConfig *cfg)
{
    struct stat sb;
    char buf[1024];
    FILE *fp = NULL;
    char *ret = NULL;
    size_t len;

    if (!cfg->passwordFile || !*cfg->passwordFile) {
        mpReportError("[amqp] password_file: not set");
        return NULL;
    }
    if (!(fp = fopen(cfg->passwordFile, "r"))) {
        mpReportError("[amqp] password_file: cannot open %s: %s",
                      cfg->passwordFile, strerror(errno));
        goto cleanup;
    }
    if (fstat(fileno(fp), &sb) < 0) {
        mpReportError("[amqp] password_file: cannot stat %s: %s",
                      cfg->passwordFile, strerror(errno));
        goto cleanup;
    }
    if (sb.st_mode & S_IROTH) {
        mpReportError("[amqp] password_file: %s is world-readable; refusing it "
                      "(chmod o-rwx)", cfg->passwordFile);
        goto cleanup;
    }
    if (!fgets(buf, sizeof(buf), fp)) {
        mpReportError("[amqp] password_file: %s is empty", cfg->passwordFile);
        goto cleanup;
    }
    len = strcspn(buf, "\r\n");
    if (buf[len] == '\0' && len == sizeof(buf) - 1 && !feof(fp)) {
        /* fgets stopped at the buffer's end: the password is longer than it */
        mpReportError("[amqp] password_file: %s: the password is longer than %zu bytes",
                      cfg->passwordFile, sizeof(buf) - 2);
        goto cleanup;
    }
    buf[len] = '\0';
    ret = mpStrdup(buf);

 cleanup:
    explicit_bzero(buf, sizeof(buf));
    if (fp)
        fclose(fp);
    return ret;
}

char *
mpConfigDescribe(void)
{
    char *out = mpStrdup("");
    const char *section = "";
    size_t i;

    for (i = 0; i < MP_NOPTIONS; i++) {
        char *next;

        if (strcmp(section, mpOptions[i].section) != 0) {
            section = mpOptions[i].section;
            next = mpAsprintf("%s%s[%s]\n", out, *out ? "\n" : "", section);
            free(out);
            out = next;
        }
        next = mpAsprintf("%s# %s\n#%s = %s\n", out, mpOptions[i].help, mpOptions[i].name,
                          mpOptions[i].defaultValue ? mpOptions[i].defaultValue : "");
        free(out);
        out = next;
    }
    return out;
}
