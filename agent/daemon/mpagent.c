/*
 * mpagent.c: migpilot-agent: the monitor, the bus and the spool around one event loop
 *
 * libvirt's default event loop owns every fd and timer: libvirt's own connection, the
 * AMQP consumer socket, the signalfd, the poll, discovery, heartbeat and reconnect timers.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mpagent.h"
#include "mpalloc.h"
#include "mpamqp.h"
#include "mperror.h"
#include "mplog.h"
#include "mpmetrics.h"
#include "mplogfollow.h"
#include "mpmonitor.h"
#include "mposlo.h"
#include "mpspool.h"

/* nova's view of recent migrations, keyed by instance uuid (= libvirt domain uuid) */
#define MP_AGENT_NOVA_CACHE 1024
/* nova's log: bytes of history read at start, metrics that can wait for it at once, how
 * often it is checked besides inotify, and the slack between libvirt's and nova's start */
#define MP_AGENT_NOVA_LOG_TAIL (4 << 20)
#define MP_AGENT_NOVA_WAIT_MAX 64
#define MP_AGENT_NOVA_LOG_TICK_MS 250
#define MP_AGENT_NOVA_SLACK_MS 1000
/* excerpt of a rejected bus message in the log */
#define MP_AGENT_EXCERPT 80

typedef struct {
    mpMigrationIdentity id;
    bool aborted;           /* nova's abort API was called for its current migration */
    int64_t updatedMono;
} mpNovaEntry;

struct _mpAgent {
    mpConfig *cfg;
    char *configPath;
    mpPolicyConfig policy;
    mpMonitor *monitor;
    mpAmqp *amqp;
    mpSpool *spool;
    char publisherId[300];

    mpNovaEntry *nova;
    size_t nnova;

    int signalFd;
    int signalWatch;
    bool quit;

    unsigned long long received;
    unsigned long long rejected;

    /* nova-compute's log ([logs] nova_compute_log), and metrics waiting for it */
    mpLogFollow *novaLog;
    int novaLogWatch;
    int novaLogTimer;
    struct {
        mpMigrationRecord rec;
        int64_t untilMono;
        char spoolName[256];    /* the provisional record, replaced once published */
    } novaWait[MP_AGENT_NOVA_WAIT_MAX];
    size_t nnovaWait;
};

static int64_t
mpAgentNowWall(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t
mpAgentNowMono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
mpAgentValidatePolicyKey(const char *key, const char *value, void *opaque)
{
    mpPolicyConfig scratch;

    (void)opaque;
    mpPolicyConfigInit(&scratch);
    return mpPolicyConfigSet(&scratch, key, value);
}

int
mpAgentPolicyFromConfig(const mpConfig *cfg, mpPolicyConfig *policy)
{
    size_t i;

    mpPolicyConfigInit(policy);
    for (i = 0; i < cfg->npolicy; i++) {
        if (mpPolicyConfigSet(policy, cfg->policyKeys[i], cfg->policyValues[i]) < 0)
            return -1;
    }
    if (mpPolicyConfigValidate(policy) < 0)
        return -1;
    return 0;
}

/* ---- nova's identity of migrations, from the bus ---- */

static mpNovaEntry *
mpAgentNovaFind(mpAgent *agent, const char *uuid, bool create)
{
    mpNovaEntry *oldest = NULL;
    size_t i;

    for (i = 0; i < agent->nnova; i++) {
        if (strcmp(agent->nova[i].id.instanceId, uuid) == 0)
            return &agent->nova[i];
        if (!oldest || agent->nova[i].updatedMono < oldest->updatedMono)
            oldest = &agent->nova[i];
    }
    if (!create)
        return NULL;
    if (agent->nnova < MP_AGENT_NOVA_CACHE)
        oldest = &agent->nova[agent->nnova++];
    memset(oldest, 0, sizeof(*oldest));
    MP_SET_FIELD(oldest->id.instanceId, uuid);
    return oldest;
}

static void
mpAgentNoteNova(mpAgent *agent, const mpOsloInfo *info)
{
    mpNovaEntry *e = mpAgentNovaFind(agent, info->instance_uuid, true);
    mpMigrationIdentity *id = &e->id;

    e->updatedMono = mpAgentNowMono();
    if (info->tenant_id)
        MP_SET_FIELD(id->projectId, info->tenant_id);
    if (info->user_id)
        MP_SET_FIELD(id->userId, info->user_id);
    /* the migration's request id comes first (pre.start); force-complete and abort
     * requests carry their own and must not replace it */
    if (info->request_id && (!id->requestId[0] || info->lm_event == MP_OSLO_LM_PRE_START))
        MP_SET_FIELD(id->requestId, info->request_id);

    switch (info->lm_event) {
    case MP_OSLO_LM_ABORT_START:
    case MP_OSLO_LM_ABORT_END:
        e->aborted = true;
        if (info->publisher_host)
            MP_SET_FIELD(id->sourceHost, info->publisher_host);
        break;
    case MP_OSLO_LM_PRE_START:
        e->aborted = false; /* a new migration */
        /* fall through */
    case MP_OSLO_LM_PRE_END:
        /* sent by the destination; the payload's host is still the source */
        if (info->publisher_host)
            MP_SET_FIELD(id->destHost, info->publisher_host);
        if (info->host)
            MP_SET_FIELD(id->sourceHost, info->host);
        /* kept on disk for post-copy recovery after a restart (before the job starts:
         * post_dest.* comes after it ended, and must not bring the record back) */
        if (info->publisher_host && agent->monitor)
            mpMonitorNoteDestination(agent->monitor, info->instance_uuid, id->destHost);
        break;
    case MP_OSLO_LM_POST_DEST_START:
    case MP_OSLO_LM_POST_DEST_END:
    case MP_OSLO_LM_ROLLBACK_DEST_START:
    case MP_OSLO_LM_ROLLBACK_DEST_END:
        if (info->publisher_host)
            MP_SET_FIELD(id->destHost, info->publisher_host);
        break;
    default:
        if (info->publisher_host)
            MP_SET_FIELD(id->sourceHost, info->publisher_host);
        break;
    }
}

/* Bus input is information only: nothing here can act on a domain. */
static void
mpAgentOnMessage(const char *routingKey, const void *body, size_t len, void *opaque)
{
    mpAgent *agent = opaque;
    mpOsloDecodeOptions opts = { agent->cfg->maxMessageBytes,
                                 (int)agent->cfg->maxMessageDepth };
    mpOsloMessage *msg;
    const mpOsloInfo *info;

    agent->received++;
    if (!(msg = mpOsloDecode(body, len, &opts))) {
        char excerpt[MP_AGENT_EXCERPT + 1];
        size_t i;

        agent->rejected++;
        for (i = 0; i < len && i < MP_AGENT_EXCERPT; i++) {
            unsigned char c = ((const unsigned char *)body)[i];

            excerpt[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        excerpt[i] = '\0';
        MP_WARN(NULL, "rejected bus message (routing key %s, %zu bytes, %llu rejected so "
                "far): %s; starts: %s", routingKey, len, agent->rejected,
                mpGetLastErrorMessage(), excerpt);
        return;
    }
    info = mpOsloMessageGetInfo(msg);
    if (info->lm_event != MP_OSLO_LM_NONE && info->instance_uuid) {
        mpAgentNoteNova(agent, info);
        MP_DEBUG(info->instance_uuid, "nova: %s from %s (request %s)", info->event_type,
                 info->publisher_id ? info->publisher_id : "?",
                 info->request_id ? info->request_id : "-");
    }
    mpOsloMessageFree(msg);
}

static void
mpAgentFillIdentity(mpAgent *agent, mpMigrationIdentity *id, const char *uuid)
{
    mpNovaEntry *e = mpAgentNovaFind(agent, uuid, false);

    if (e) {
        *id = e->id;
    } else {
        memset(id, 0, sizeof(*id));
        MP_SET_FIELD(id->instanceId, uuid);
    }
    /* migpilot watches outgoing migrations: this host is the source */
    if (!id->sourceHost[0])
        MP_SET_FIELD(id->sourceHost, agent->cfg->host);
}

/* ---- publishing ---- */

/* Publishing never waits (mpamqp.h): each publish ends later, in mpAgentPublished. */
typedef enum {
    MP_AGENT_PUBLISH_RECORD,        /* a record just emitted, spooled first */
    MP_AGENT_PUBLISH_SPOOLED,       /* a record from the spool, after a reconnection */
    MP_AGENT_PUBLISH_BEST_EFFORT,   /* progress, dirty rate: not spooled */
} mpAgentPublishKind;

typedef struct {
    mpAgent *agent;
    mpAgentPublishKind kind;
    char uuid[64];                  /* "" when none */
    char eventType[64];
    char messageId[MP_OSLO_UUID_BUFLEN];
    char spoolName[256];            /* the spool entry to remove once confirmed, or "" */
} mpAgentPending;

static void
mpAgentPublished(bool confirmed, const char *error, void *data)
{
    mpAgentPending *pub = data;
    const char *uuid = pub->uuid[0] ? pub->uuid : NULL;

    if (confirmed && pub->spoolName[0] && mpSpoolRemove(pub->agent->spool,
                                                        pub->spoolName) < 0)
        MP_ERROR(uuid, "%s", mpGetLastErrorMessage());
    switch (pub->kind) {
    case MP_AGENT_PUBLISH_RECORD:
        if (confirmed)
            MP_INFO(uuid, "published %s %s", pub->eventType, pub->messageId);
        else if (pub->spoolName[0])
            MP_WARN(uuid, "%s %s spooled: %s", pub->eventType, pub->messageId, error);
        else
            MP_ERROR(uuid, "%s %s lost: neither spooled nor published: %s", pub->eventType,
                     pub->messageId, error);
        break;
    case MP_AGENT_PUBLISH_SPOOLED:
        if (confirmed)
            MP_INFO(NULL, "published spooled record %s", pub->spoolName);
        else
            MP_WARN(NULL, "spooled record %s not published yet: %s", pub->spoolName, error);
        break;
    case MP_AGENT_PUBLISH_BEST_EFFORT:
        if (!confirmed)
            MP_DEBUG(uuid, "%s not published: %s", pub->eventType, error);
        break;
    }
    free(pub);
}

/* Queues body; spoolName ("" or NULL: none) is removed once the broker confirmed it. -1
 * with an error when not connected. */
static int
mpAgentPublish(mpAgent *agent, mpAgentPublishKind kind, const char *uuid,
               const char *eventType, const char *messageId, const char *spoolName,
               const char *routingKey, const char *body)
{
    mpAgentPending *pub = mpAlloc0(sizeof(*pub));

    pub->agent = agent;
    pub->kind = kind;
    MP_SET_FIELD(pub->uuid, uuid ? uuid : "");
    MP_SET_FIELD(pub->eventType, eventType ? eventType : "");
    MP_SET_FIELD(pub->messageId, messageId ? messageId : "");
    MP_SET_FIELD(pub->spoolName, spoolName ? spoolName : "");
    if (mpAmqpPublish(agent->amqp, routingKey, body, mpAgentPublished, pub) < 0) {
        free(pub);
        return -1;
    }
    return 0;
}

static int
mpAgentPublishSpooled(const char *name, const char *routingKey, const char *body,
                      void *opaque)
{
    mpAgent *agent = opaque;

    /* the broker confirms (or not) later: the entry stays until then */
    return mpAgentPublish(agent, MP_AGENT_PUBLISH_SPOOLED, NULL, NULL, NULL, name,
                          routingKey, body);
}

static void
mpAgentFlushSpool(mpAgent *agent)
{
    size_t n = mpSpoolCount(agent->spool);

    if (!n)
        return;
    MP_INFO(NULL, "publishing %zu spooled record(s)", n);
    if (mpSpoolForEach(agent->spool, mpAgentPublishSpooled, agent) < 0)
        MP_WARN(NULL, "spooled records kept for later: %s", mpGetLastErrorMessage());
}

static void
mpAgentOnBusState(bool connected, void *opaque)
{
    mpAgent *agent = opaque;

    /* every publish of the previous link has ended before this (mpamqp.c): what is still
     * in the spool was not confirmed */
    if (connected)
        mpAgentFlushSpool(agent);
}

/*
 * Encodes and sends one notification. Records (switch, metrics) are spooled first and
 * removed once confirmed; progress is best effort. idName makes the message id stable.
 */
/* The oslo message of one notification; its message_id is derived from idName, so a
 * record re-sent after a crash keeps it. NULL (logged) on error. */
static char *
mpAgentEncode(mpAgent *agent, const char *uuid, const char *eventType, json_t *payload,
              const char *idName, char *messageId)
{
    mpOsloEncodeParams params = { 0 };
    char *body;

    mpOsloMessageIdFromName(idName, strlen(idName), messageId);
    params.event_type = eventType;
    params.publisher_id = agent->publisherId;
    params.priority = "INFO";
    params.payload = payload;
    params.message_id = messageId;
    params.timestamp_ms = mpAgentNowWall();
    if (!(body = mpOsloEncode(&params, NULL)))
        MP_ERROR(uuid, "cannot encode %s: %s", eventType, mpGetLastErrorMessage());
    return body;
}

static void
mpAgentEmit(mpAgent *agent, const char *uuid, const char *eventType, json_t *payload,
            const char *idName, bool record)
{
    char messageId[MP_OSLO_UUID_BUFLEN];
    char spoolName[256];
    char *body = NULL;

    if (!(body = mpAgentEncode(agent, uuid, eventType, payload, idName, messageId)))
        goto cleanup;
    if (record) {
        if (mpSpoolPut(agent->spool, messageId, agent->cfg->publishTopic, body, spoolName,
                       sizeof(spoolName)) < 0) {
            /* keep going: the broker may still take it */
            MP_ERROR(uuid, "%s", mpGetLastErrorMessage());
            spoolName[0] = '\0';
        }
        if (!mpAmqpIsConnected(agent->amqp)) {
            if (spoolName[0])
                MP_WARN(uuid, "%s %s spooled until the broker is back", eventType,
                        messageId);
            else
                MP_ERROR(uuid, "%s %s lost: neither spooled nor published (broker down)",
                         eventType, messageId);
            goto cleanup;
        }
        /* logged by mpAgentPublished, when the broker confirmed it or the link failed */
        if (mpAgentPublish(agent, MP_AGENT_PUBLISH_RECORD, uuid, eventType, messageId,
                           spoolName, agent->cfg->publishTopic, body) < 0)
            MP_ERROR(uuid, "%s %s not published: %s", eventType, messageId,
                     mpGetLastErrorMessage());
    } else if (mpAmqpIsConnected(agent->amqp)) {
        if (mpAgentPublish(agent, MP_AGENT_PUBLISH_BEST_EFFORT, uuid, eventType, messageId,
                           NULL, agent->cfg->publishTopic, body) < 0)
            MP_DEBUG(uuid, "%s not published: %s", eventType, mpGetLastErrorMessage());
    }

 cleanup:
    free(body);
}

static void
mpAgentOnProgress(const char *uuid, int64_t startedAtMs, const mpProgress *progress,
                  void *opaque)
{
    mpAgent *agent = opaque;
    mpMigrationIdentity id;
    char idName[128];
    json_t *payload;

    mpAgentFillIdentity(agent, &id, uuid);
    payload = mpProgressPayload(&id, progress);
    snprintf(idName, sizeof(idName), "%s/%lld/progress/%lld", uuid, (long long)startedAtMs,
             (long long)progress->elapsedMs);
    mpAgentEmit(agent, uuid, MP_EVENT_PROGRESS, payload, idName, false);
    json_decref(payload);
}

static void
mpAgentOnSwitch(const char *uuid, int64_t startedAtMs, const mpSwitch *sw, void *opaque)
{
    mpAgent *agent = opaque;
    mpMigrationIdentity id;
    char idName[128];
    json_t *payload;

    mpAgentFillIdentity(agent, &id, uuid);
    payload = mpSwitchPayload(&id, sw);
    snprintf(idName, sizeof(idName), "%s/%lld/switch", uuid, (long long)startedAtMs);
    mpAgentEmit(agent, uuid, MP_EVENT_SWITCH, payload, idName, true);
    json_decref(payload);
}

/* A record, spooled like the switch: operators compare it with the outcome. */
static void
mpAgentOnForecast(const char *uuid, int64_t startedAtMs, const mpForecast *fc, void *opaque)
{
    mpAgent *agent = opaque;
    mpMigrationIdentity id;
    char idName[128];
    json_t *payload;

    mpAgentFillIdentity(agent, &id, uuid);
    payload = mpForecastPayload(&id, fc);
    snprintf(idName, sizeof(idName), "%s/%lld/forecast", uuid, (long long)startedAtMs);
    mpAgentEmit(agent, uuid, MP_EVENT_FORECAST, payload, idName, true);
    json_decref(payload);
}

/* A gauge sample (Ceilometer): best effort like progress, the next measurement follows. */
static void
mpAgentOnDirtyRate(const char *uuid, const char *name, const mpDirtyMeasurement *m,
                   int64_t measuredAtMs, void *opaque)
{
    mpAgent *agent = opaque;
    mpMigrationIdentity id;
    char idName[128];
    json_t *payload;

    mpAgentFillIdentity(agent, &id, uuid);
    payload = mpDirtyRatePayload(&id, name, m, measuredAtMs);
    snprintf(idName, sizeof(idName), "%s/dirty_rate/%lld", uuid, (long long)measuredAtMs);
    mpAgentEmit(agent, uuid, MP_EVENT_DIRTY_RATE, payload, idName, false);
    json_decref(payload);
}

static void
mpAgentMetricsIdName(const mpMigrationRecord *rec, char *idName, size_t len)
{
    snprintf(idName, len, "%s/%lld/metrics", rec->id.instanceId, (long long)rec->startedAtMs);
}

static void
mpAgentPublishMetrics(mpAgent *agent, const mpMigrationRecord *rec)
{
    char idName[128];
    json_t *payload;

    payload = mpMetricsPayload(rec);
    mpAgentMetricsIdName(rec, idName, sizeof(idName));
    mpAgentEmit(agent, rec->id.instanceId, MP_EVENT_METRICS, payload, idName, true);
    json_decref(payload);
}

/* While metrics wait for nova's log, the record as it stands is already in the spool (same
 * message_id as the final one), so an agent killed meanwhile loses nothing. name receives
 * the entry's name, "" if it could not be spooled. */
static void
mpAgentSpoolProvisional(mpAgent *agent, const mpMigrationRecord *rec, char *name,
                        size_t namelen)
{
    char idName[128];
    char messageId[MP_OSLO_UUID_BUFLEN];
    json_t *payload = mpMetricsPayload(rec);
    char *body = NULL;

    name[0] = '\0';
    mpAgentMetricsIdName(rec, idName, sizeof(idName));
    if (!(body = mpAgentEncode(agent, rec->id.instanceId, MP_EVENT_METRICS, payload, idName,
                               messageId)))
        goto cleanup;
    if (mpSpoolPut(agent->spool, messageId, agent->cfg->publishTopic, body, name,
                   namelen) < 0) {
        MP_ERROR(rec->id.instanceId, "%s", mpGetLastErrorMessage());
        name[0] = '\0';
    }

 cleanup:
    free(body);
    json_decref(payload);
}

/* ---- nova's view from its log: nova_time_ms and nova's own switch ---- */

static bool
mpAgentNovaLogMatches(const mpNovaLogView *v, const mpMigrationRecord *rec)
{
    return strcmp(v->instanceUuid, rec->id.instanceId) == 0 &&
        v->completedAtMs >= rec->startedAtMs - MP_AGENT_NOVA_SLACK_MS;
}

static void
mpAgentNovaLogFill(mpMigrationRecord *rec, const mpNovaLogView *v)
{
    rec->novaTimeMs = v->novaTimeMs;
    rec->novaSwitchAtMs = v->switchAtMs;
    rec->novaPostcopyAtMs = v->postcopyStartedAtMs;
    MP_INFO(rec->id.instanceId, "nova's log: migration %s in %lld ms (request %s)",
            v->outcome ? v->outcome : "ended", (long long)v->novaTimeMs, v->requestId);
}

static void
mpAgentNovaLogProcess(mpAgent *agent)
{
    if (mpLogFollowProcess(agent->novaLog) < 0)
        MP_WARN(NULL, "%s", mpGetLastErrorMessage());
}

/* Publishes waiting metrics: those nova's log has (view) or whose wait is over. */
static void
mpAgentNovaWaitRelease(mpAgent *agent, const mpNovaLogView *view, bool all)
{
    int64_t now = mpAgentNowMono();
    size_t i = 0;

    while (i < agent->nnovaWait) {
        mpMigrationRecord *rec = &agent->novaWait[i].rec;
        mpMigrationRecord copy;
        char provisional[sizeof(agent->novaWait[i].spoolName)];

        if (view && mpAgentNovaLogMatches(view, rec)) {
            mpAgentNovaLogFill(rec, view);
        } else if (!all && now < agent->novaWait[i].untilMono) {
            i++;
            continue;
        } else if (!view) {
            MP_INFO(rec->id.instanceId, "nova's log has not shown the migration's end: "
                    "metrics without nova_time_ms");
        } else {
            i++;
            continue;
        }
        copy = *rec;
        memcpy(provisional, agent->novaWait[i].spoolName, sizeof(provisional));
        agent->novaWait[i] = agent->novaWait[--agent->nnovaWait];
        /* the final record is spooled (or sent) before the provisional one goes: a crash
         * in between sends both, with the same message_id */
        mpAgentPublishMetrics(agent, &copy);
        if (provisional[0] && mpSpoolRemove(agent->spool, provisional) < 0)
            MP_ERROR(copy.id.instanceId, "%s", mpGetLastErrorMessage());
    }
}

static void
mpAgentNovaLogFinished(const mpNovaLogView *view, void *opaque)
{
    mpAgentNovaWaitRelease(opaque, view, false);
}

/* True when rec waits for nova's log, to be published later; fills it when the log has
 * the migration already. */
static bool
mpAgentNovaLogWait(mpAgent *agent, mpMigrationRecord *rec)
{
    mpNovaLogView v;

    if (!agent->novaLog)
        return false;
    mpAgentNovaLogProcess(agent);
    if (mpLogFollowLookup(agent->novaLog, rec->id.instanceId,
                          rec->startedAtMs - MP_AGENT_NOVA_SLACK_MS, &v)) {
        mpAgentNovaLogFill(rec, &v);
        return false;
    }
    if (!agent->cfg->novaLogWaitMs || agent->nnovaWait == MP_AGENT_NOVA_WAIT_MAX)
        return false;
    agent->novaWait[agent->nnovaWait].rec = *rec;
    agent->novaWait[agent->nnovaWait].untilMono = mpAgentNowMono() + agent->cfg->novaLogWaitMs;
    mpAgentSpoolProvisional(agent, rec, agent->novaWait[agent->nnovaWait].spoolName,
                            sizeof(agent->novaWait[agent->nnovaWait].spoolName));
    agent->nnovaWait++;
    return true;
}

static void
mpAgentNovaLogReadable(int watch, int fd, int events, void *opaque)
{
    (void)watch;
    (void)fd;
    (void)events;
    mpAgentNovaLogProcess(opaque);
}

static void
mpAgentNovaLogTick(int timer, void *opaque)
{
    mpAgent *agent = opaque;

    (void)timer;
    /* besides inotify: a directory created later, a truncation seen as a write */
    mpAgentNovaLogProcess(agent);
    mpAgentNovaWaitRelease(agent, NULL, false);
}

static void
mpAgentOnFinished(mpMigrationRecord *rec, void *opaque)
{
    mpAgent *agent = opaque;
    mpNovaEntry *e;
    char uuid[sizeof(rec->id.instanceId)];

    memcpy(uuid, rec->id.instanceId, sizeof(uuid));
    mpAgentFillIdentity(agent, &rec->id, uuid);
    /* libvirt cannot tell a cancelled job from a failed one; nova's abort API can */
    if (rec->outcome == MP_OUTCOME_FAILED && (e = mpAgentNovaFind(agent, uuid, false)) &&
        e->aborted) {
        rec->outcome = MP_OUTCOME_CANCELLED;
        MP_SET_FIELD(rec->error, "cancelled through nova's live-migration abort");
    }
    if (mpAgentNovaLogWait(agent, rec))
        return;     /* published when nova's log has it, or after [logs] wait_ms */
    mpAgentPublishMetrics(agent, rec);
}

/* Where nova said the instance migrates to: for post-copy recovery, which libvirt
 * cannot tell. Only a host name; the monitor checks it and acts only on libvirt's view. */
static const char *
mpAgentDestination(const char *uuid, void *opaque)
{
    mpNovaEntry *e = mpAgentNovaFind(opaque, uuid, false);

    return e && e->id.destHost[0] ? e->id.destHost : NULL;
}

/* ---- signals ---- */

static void
mpAgentReload(mpAgent *agent)
{
    mpConfig *cfg;
    mpPolicyConfig policy;

    if (!(cfg = mpConfigLoad(agent->configPath, mpAgentValidatePolicyKey, NULL)) ||
        mpAgentPolicyFromConfig(cfg, &policy) < 0) {
        MP_ERROR(NULL, "SIGHUP: configuration not reloaded: %s", mpGetLastErrorMessage());
        mpConfigFree(cfg);
        return;
    }
    /* migrations already watched keep their policy; new ones get this one */
    agent->policy = policy;
    mpLogSetLevel((mpLogLevel)cfg->logLevel);
    MP_INFO(NULL, "SIGHUP: [policy] reloaded from %s (mode %s)", agent->configPath,
            mpPolicyModeToString(policy.mode));
    mpConfigFree(cfg);
}

static void
mpAgentSignal(int watch, int fd, int events, void *opaque)
{
    mpAgent *agent = opaque;
    struct signalfd_siginfo si;

    (void)watch;
    (void)events;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGHUP:
            mpAgentReload(agent);
            break;
        case SIGTERM:
        case SIGINT:
            MP_INFO(NULL, "signal %u: stopping (%zu migration(s) watched; they are picked "
                    "up again at the next start)", si.ssi_signo,
                    mpMonitorActiveCount(agent->monitor));
            agent->quit = true;
            break;
        default:
            break;
        }
    }
}

static void
mpAgentLibvirtErrorQuiet(void *opaque, virErrorPtr err)
{
    (void)opaque;
    (void)err;
}

mpAgent *
mpAgentNew(mpConfig *cfg, const char *configPath)
{
    mpAgent *agent = mpAlloc0(sizeof(*agent));
    mpAgent *ret = NULL;
    mpMonitorCallbacks cb = {
        .progress = mpAgentOnProgress,
        .switched = mpAgentOnSwitch,
        .forecast = mpAgentOnForecast,
        .dirtyRate = mpAgentOnDirtyRate,
        .finished = mpAgentOnFinished,
        .destination = mpAgentDestination,
    };
    sigset_t mask;

    agent->cfg = cfg;
    agent->configPath = mpStrdup(configPath);
    agent->signalFd = -1;
    agent->signalWatch = -1;
    agent->novaLogWatch = -1;
    agent->novaLogTimer = -1;
    agent->nova = mpAllocN(MP_AGENT_NOVA_CACHE, sizeof(mpNovaEntry));
    snprintf(agent->publisherId, sizeof(agent->publisherId), "migpilot.%s", cfg->host);

    if (mpAgentPolicyFromConfig(cfg, &agent->policy) < 0)
        goto cleanup;
    /* errors are reported once, by the agent's own log, not also by libvirt on stderr */
    virSetErrorFunc(NULL, mpAgentLibvirtErrorQuiet);
    if (virEventRegisterDefaultImpl() < 0) {
        mpReportError("libvirt: cannot register the default event loop");
        goto cleanup;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (agent->signalFd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
        (agent->signalWatch = virEventAddHandle(agent->signalFd, VIR_EVENT_HANDLE_READABLE,
                                                mpAgentSignal, agent, NULL)) < 0) {
        mpReportError("cannot set up signal handling");
        goto cleanup;
    }
    /* a broken pipe must be an error return, not the end of the agent */
    signal(SIGPIPE, SIG_IGN);
    if (!(agent->spool = mpSpoolNew(cfg->stateDir)))
        goto cleanup;
    if (!(agent->amqp = mpAmqpNew(cfg, mpAgentOnMessage, mpAgentOnBusState, agent)))
        goto cleanup;
    if (cfg->novaComputeLog && cfg->novaComputeLog[0]) {
        if (!(agent->novaLog = mpLogFollowNew(cfg->novaComputeLog, cfg->timezone,
                                              MP_AGENT_NOVA_LOG_TAIL, mpAgentNovaLogFinished,
                                              agent)))
            goto cleanup;
        if ((agent->novaLogWatch = virEventAddHandle(mpLogFollowFd(agent->novaLog),
                                                     VIR_EVENT_HANDLE_READABLE,
                                                     mpAgentNovaLogReadable, agent,
                                                     NULL)) < 0 ||
            (agent->novaLogTimer = virEventAddTimeout(MP_AGENT_NOVA_LOG_TICK_MS,
                                                      mpAgentNovaLogTick, agent, NULL)) < 0) {
            mpReportError("cannot watch nova-compute's log");
            goto cleanup;
        }
    }
    if (!(agent->monitor = mpMonitorNew(cfg, &agent->policy, &cb, agent)))
        goto cleanup;
    ret = agent;
    agent = NULL;

 cleanup:
    mpAgentFree(agent);
    return ret;
}

void
mpAgentFree(mpAgent *agent)
{
    if (!agent)
        return;
    mpMonitorFree(agent->monitor);
    if (agent->novaLogTimer >= 0)
        virEventRemoveTimeout(agent->novaLogTimer);
    if (agent->novaLogWatch >= 0)
        virEventRemoveHandle(agent->novaLogWatch);
    mpLogFollowFree(agent->novaLog);
    mpAmqpFree(agent->amqp);
    mpSpoolFree(agent->spool);
    if (agent->signalWatch >= 0)
        virEventRemoveHandle(agent->signalWatch);
    if (agent->signalFd >= 0)
        close(agent->signalFd);
    mpConfigFree(agent->cfg);
    free(agent->configPath);
    free(agent->nova);
    free(agent);
}

int
mpAgentRun(mpAgent *agent)
{
    MP_INFO(NULL, "migpilot-agent %s starting: host %s, libvirt %s, exchange %s, queue %s, "
            "policy %s", MP_VERSION, agent->cfg->host, agent->cfg->libvirtUri,
            agent->cfg->exchange, agent->cfg->queue, mpPolicyModeToString(agent->policy.mode));
    MP_INFO(NULL, "amqp: queue %s: %s", agent->cfg->queue,
            agent->cfg->queueDecision ? agent->cfg->queueDecision :
            agent->cfg->quorum ? "quorum" : "classic");
    if (mpAmqpStart(agent->amqp) < 0 || mpMonitorStart(agent->monitor) < 0)
        return -1;
    while (!agent->quit) {
        if (virEventRunDefaultImpl() < 0) {
            mpReportError("event loop failed: %s", virGetLastErrorMessage());
            return -1;
        }
    }
    /* metrics still waiting for nova's log are not lost: spooled or sent without it */
    if (agent->novaLog)
        mpAgentNovaWaitRelease(agent, NULL, true);
    MP_INFO(NULL, "stopped: %llu bus messages read, %llu rejected, %zu record(s) spooled",
            agent->received, agent->rejected, mpSpoolCount(agent->spool));
    return 0;
}
