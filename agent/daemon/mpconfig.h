/*
 * mpconfig.h: /etc/migpilot/migpilot.conf, validated whole before the agent starts
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define MP_EXIT_CONFIG 78 /* EX_CONFIG */

/* [amqp] queue_type and durable as written; auto follows nova.conf */
typedef enum {
    MP_CONFIG_QUEUE_AUTO = 0,
    MP_CONFIG_QUEUE_CLASSIC,
    MP_CONFIG_QUEUE_QUORUM,
} mpConfigQueueType;

typedef enum {
    MP_CONFIG_DURABLE_AUTO = 0,
    MP_CONFIG_DURABLE_TRUE,
    MP_CONFIG_DURABLE_FALSE,
} mpConfigDurable;

typedef struct _mpConfig mpConfig;
struct _mpConfig {
    /* [DEFAULT] */
    char *host;                  /* this compute host's name, as nova's [DEFAULT] host */
    char *stateDir;              /* spool of unpublished records, migration state */
    int logLevel;                /* mpLogLevel */
    bool useSyslog;
    unsigned progressIntervalMs; /* 0: no progress notifications */

    /* [amqp] */
    char *transportUrl;          /* nova's syntax; NULL: read from novaConf */
    char *novaConf;
    char *exchange;
    char *publishTopic;          /* routing key of migpilot's notifications */
    char **bindKeys;             /* nova topics the agent's own queue is bound to */
    size_t nbindKeys;
    char *queue;                 /* NULL: "migpilot.<host>" */
    int queueTypeSetting;        /* mpConfigQueueType as written */
    int durableSetting;          /* mpConfigDurable as written */
    /* resolved by mpConfigResolveTransport (until then: the explicit settings, else
     * classic and not durable) */
    bool quorum;                 /* the agent's queue is a quorum queue */
    bool durable;                /* exchange and queue flags must match the site's */
    char *queueDecision;         /* why, for the log; NULL before resolution */
    size_t maxMessageBytes;
    unsigned maxMessageDepth;
    bool ssl;
    char *sslCaFile;
    char *sslCertFile;
    char *sslKeyFile;
    bool sslVerify;
    char *passwordFile;          /* overrides the URL's password; must not be world-readable */
    unsigned reconnectMinMs;
    unsigned reconnectMaxMs;
    unsigned heartbeatS;

    /* [libvirt] */
    char *libvirtUri;
    unsigned pollIntervalMs;
    unsigned discoveryIntervalMs;
    unsigned reconnectIntervalMs;

    /* [logs] */
    char *novaComputeLog;        /* NULL or "": do not follow nova-compute's log */
    char *timezone;              /* NULL: the host's */
    unsigned novaLogWaitMs;      /* metrics wait this long for nova's log after a job ends */

    /* [recovery] */
    bool postcopyRecovery;
    unsigned recoveryRetryMs;
    unsigned recoveryAlertMs;
    char *recoveryDestUri;       /* libvirt URI of the destination; "%s" = its address */
    char **recoveryAddresses;    /* "host=address": nova host name -> migration address */
    size_t nrecoveryAddresses;

    /* [dirtyrate] */
    bool dirtyEnabled;           /* measure guests' dirtying (libvirt's dirty-rate calc) */
    unsigned dirtyIntervalMs;    /* every domain this often; 0: only at migration start */
    char **dirtyWindowsText;     /* the windows as written, seconds */
    size_t ndirtyWindowsText;
    unsigned dirtyWindowsS[4];   /* parsed: 1-60 s each, strictly increasing */
    size_t ndirtyWindows;
    unsigned dirtyMarginMs;      /* wait past a window's end before reading its result */

    /* [policy]: kept as text, validated by the policy module (mpConfigPolicyPairs) */
    char **policyKeys;
    char **policyValues;
    size_t npolicy;
};

/*
 * Validates one [policy] key; set by the agent so that the policy's own table judges
 * its keys. Returns -1 and reports an error naming the problem.
 */
typedef int (*mpConfigPolicyValidator)(const char *key, const char *value, void *opaque);

/* Loads and validates path; NULL with an error "path:line: [section] key: problem". */
mpConfig *mpConfigLoad(const char *path, mpConfigPolicyValidator validator, void *opaque);
/* Same, from a string (tests, fuzzing); name is used in error messages. */
mpConfig *mpConfigLoadString(const char *name, const char *text,
                             mpConfigPolicyValidator validator, void *opaque);
void mpConfigFree(mpConfig *cfg);

/*
 * Reads what comes from nova.conf: transportUrl when unset (-1 with an error if neither
 * has one), and the queue type and durability when auto, from [oslo_messaging_rabbit]
 * rabbit_quorum_queue and amqp_durable_queues as oslo.messaging reads them. -1 with an
 * error on a value oslo would refuse or a contradiction with an explicit setting.
 */
int mpConfigResolveTransport(mpConfig *cfg);

/* Reads the password file (refused when world-readable). Caller frees. */
char *mpConfigReadPassword(const mpConfig *cfg);

/* Writes every option with its default and help, as etc/migpilot/migpilot.conf shows. */
char *mpConfigDescribe(void);
