/*
 * mpmonitor.c: libvirt's view of this host's outgoing live migrations
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "mpalloc.h"
#include "mperror.h"
#include "mplog.h"
#include "mpmonitor.h"

/* How long a finished job may wait for its JOB_COMPLETED event before it is reported
 * from what is known (a transient domain vanishes with its completed stats). */
#define MP_MONITOR_FINISH_GRACE_MS 3000

typedef struct _mpMigration mpMigration;
struct _mpMigration {
    char uuid[VIR_UUID_STRING_BUFLEN];
    char name[128];
    virDomainPtr dom;               /* NULL while libvirtd is away */
    mpPolicy *policy;
    int64_t startedAtMs;            /* wall clock, derived from libvirt's time_elapsed */
    unsigned int pass;
    int64_t passStartedMono;        /* monotonic ms when the current pass was first seen */
    unsigned long long maxDowntimeMs;
    bool postcopyPermitted;         /* until libvirt says the job was started without it */
    bool inPostcopy;
    bool switchDecided;
    bool switchActed;
    mpDecidedBy decidedBy;
    int64_t switchElapsedMs;
    char switchReason[64];
    int64_t lastProgressMono;
    mpPolicySample last;            /* last sample, for records of vanished jobs */
    bool ending;                    /* job gone, completed stats not known yet */
    int64_t endingSinceMono;
    bool pausedInPostcopy;
    int64_t pausedSinceMono;
    int64_t outageMs;
};

struct _mpMonitor {
    const mpConfig *cfg;
    const mpPolicyConfig *policy;
    mpMonitorCallbacks cb;
    void *opaque;

    virConnectPtr conn;
    int callbackIds[3];
    int pollTimer;
    int discoveryTimer;
    int reconnectTimer;
    bool loggedDown;

    mpMigration **migrations;
    size_t nmigrations;
    size_t amigrations;
};

static int64_t
mpNowMono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
mpNowWall(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *
mpLibvirtError(void)
{
    virErrorPtr err = virGetLastError();

    return err && err->message ? err->message : "unknown libvirt error";
}

static mpMigration *
mpMonitorFind(mpMonitor *mon, const char *uuid)
{
    size_t i;

    for (i = 0; i < mon->nmigrations; i++) {
        if (strcmp(mon->migrations[i]->uuid, uuid) == 0)
            return mon->migrations[i];
    }
    return NULL;
}

static void
mpMigrationFree(mpMigration *mig)
{
    if (!mig)
        return;
    if (mig->dom)
        virDomainFree(mig->dom);
    mpPolicyFree(mig->policy);
    free(mig);
}

static void
mpMonitorUpdatePollTimer(mpMonitor *mon)
{
    if (mon->pollTimer >= 0)
        virEventUpdateTimeout(mon->pollTimer,
                              mon->nmigrations ? (int)mon->cfg->pollIntervalMs : -1);
}

static void
mpMonitorRemove(mpMonitor *mon, mpMigration *mig)
{
    size_t i;

    for (i = 0; i < mon->nmigrations; i++) {
        if (mon->migrations[i] == mig) {
            memmove(mon->migrations + i, mon->migrations + i + 1,
                    (mon->nmigrations - i - 1) * sizeof(mig));
            mon->nmigrations--;
            break;
        }
    }
    mpMigrationFree(mig);
    mpMonitorUpdatePollTimer(mon);
}

/* Job statistics a policy sample takes as they are: libvirt's name, the field, its flag. */
static const struct {
    const char *name;
    size_t offset;
    unsigned int has;   /* 0: always expected (time_elapsed) */
} mpMonitorSampleFields[] = {
    { VIR_DOMAIN_JOB_TIME_ELAPSED, offsetof(mpPolicySample, elapsed_ms), 0 },
    { VIR_DOMAIN_JOB_MEMORY_TOTAL, offsetof(mpPolicySample, memory_total),
      MP_POLICY_HAS_TOTAL },
    { VIR_DOMAIN_JOB_MEMORY_PROCESSED, offsetof(mpPolicySample, memory_processed),
      MP_POLICY_HAS_PROCESSED },
    { VIR_DOMAIN_JOB_MEMORY_REMAINING, offsetof(mpPolicySample, memory_remaining),
      MP_POLICY_HAS_REMAINING },
    { VIR_DOMAIN_JOB_MEMORY_BPS, offsetof(mpPolicySample, memory_bps), MP_POLICY_HAS_BPS },
    { VIR_DOMAIN_JOB_DOWNTIME, offsetof(mpPolicySample, expected_downtime_ms),
      MP_POLICY_HAS_EXP_DOWNTIME },
};

/* Reads libvirt's typed parameters into a policy sample. */
static void
mpMonitorSampleFromParams(virTypedParameterPtr params, int nparams, mpPolicySample *s)
{
    unsigned long long v;
    unsigned long long pageSize = 4096;
    size_t i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < sizeof(mpMonitorSampleFields) / sizeof(mpMonitorSampleFields[0]); i++) {
        if (virTypedParamsGetULLong(params, nparams, mpMonitorSampleFields[i].name, &v) == 1) {
            *(unsigned long long *)((char *)s + mpMonitorSampleFields[i].offset) = v;
            s->has |= mpMonitorSampleFields[i].has;
        }
    }
    /* the two that need converting */
    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_MEMORY_ITERATION, &v) == 1) {
        s->pass = (unsigned int)v;
        s->has |= MP_POLICY_HAS_PASS;
    }
    virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, &pageSize);
    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, &v) == 1) {
        s->dirty_bps = v * pageSize;
        s->has |= MP_POLICY_HAS_DIRTY;
    }
}

static void
mpMonitorRecordFromParams(mpMigration *mig, virTypedParameterPtr params, int nparams,
                          mpMigrationRecord *rec)
{
    unsigned long long v;
    const char *err = NULL;

    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_TIME_ELAPSED, &v) == 1)
        rec->migrationTimeMs = (int64_t)v;
    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
        rec->downtimeMs = (int64_t)v;
    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DATA_PROCESSED, &v) == 1 ||
        virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_MEMORY_PROCESSED, &v) == 1)
        rec->bytesTransferred = v;
    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_MEMORY_TOTAL, &v) == 1)
        rec->memoryTotalBytes = v;
    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_MEMORY_ITERATION, &v) == 1)
        rec->passes = (int)v;
    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_MEMORY_POSTCOPY_REQS, &v) == 1)
        rec->postcopyRequests = (int64_t)v;
    if (virTypedParamsGetString(params, nparams, VIR_DOMAIN_JOB_ERRMSG, &err) == 1)
        MP_SET_FIELD(rec->error, err);
    (void)mig;
}

/* Reports a finished migration once and forgets it. params may be NULL (vanished job). */
static void
mpMonitorFinishFull(mpMonitor *mon, mpMigration *mig, mpOutcome outcome,
                    virTypedParameterPtr params, int nparams, const char *error)
{
    mpMigrationRecord rec;

    mpMigrationRecordInit(&rec);
    MP_SET_FIELD(rec.id.instanceId, mig->uuid);
    rec.outcome = outcome;
    rec.startedAtMs = mig->startedAtMs;
    rec.finishedAtMs = mpNowWall();
    /* what the last sample knew, for jobs whose completed stats are gone */
    rec.migrationTimeMs = (int64_t)mig->last.elapsed_ms;
    rec.bytesTransferred = mig->last.memory_processed;
    rec.memoryTotalBytes = mig->last.memory_total;
    rec.passes = (int)mig->pass;
    if (params)
        mpMonitorRecordFromParams(mig, params, nparams, &rec);
    if (error && !rec.error[0])
        MP_SET_FIELD(rec.error, error);
    rec.postcopy = mig->inPostcopy;
    rec.postcopySwitchMs = mig->inPostcopy ? mig->switchElapsedMs : -1;
    rec.decidedBy = mig->inPostcopy ? mig->decidedBy : MP_DECIDED_NONE;
    if (mig->inPostcopy)
        MP_SET_FIELD(rec.switchReason, mig->switchReason);
    if (mig->outageMs > 0) {
        rec.outageMs = mig->outageMs;
        if (outcome == MP_OUTCOME_COMPLETED)
            rec.outcome = MP_OUTCOME_RECOVERED;
    }
    MP_INFO(mig->uuid, "migration %s: %s in %lld ms, downtime %lld ms, %llu bytes, "
            "%d passes, mode %s%s%s", mig->name, mpOutcomeName(rec.outcome),
            (long long)rec.migrationTimeMs, (long long)rec.downtimeMs,
            (unsigned long long)rec.bytesTransferred, rec.passes,
            rec.postcopy ? "post-copy" : "pre-copy", rec.error[0] ? ": " : "", rec.error);
    if (mon->cb.finished)
        mon->cb.finished(&rec, mon->opaque);
    mpMonitorRemove(mon, mig);
}

static void
mpMonitorFinish(mpMonitor *mon, mpMigration *mig, mpOutcome outcome,
                virTypedParameterPtr params, int nparams)
{
    mpMonitorFinishFull(mon, mig, outcome, params, nparams, NULL);
}

static void
mpMonitorFinishWithError(mpMonitor *mon, mpMigration *mig, mpOutcome outcome,
                         const char *error)
{
    mpMonitorFinishFull(mon, mig, outcome, NULL, 0, error);
}

/*
 * A job that ended with neither completed statistics nor JOB_COMPLETED: libvirt keeps no
 * statistics of a failed or cancelled migration. A domain still active here did not move.
 * (Whether an operator cancelled it is known only from nova: the agent refines that.)
 */
static void
mpMonitorFinishVanished(mpMonitor *mon, mpMigration *mig)
{
    mpOutcome outcome = MP_OUTCOME_UNKNOWN;

    if (mig->dom && virDomainIsActive(mig->dom) == 1)
        outcome = MP_OUTCOME_FAILED;
    else if (mig->inPostcopy)
        outcome = MP_OUTCOME_COMPLETED;
    mpMonitorFinishWithError(mon, mig, outcome,
                             outcome == MP_OUTCOME_FAILED ?
                             "the migration job ended without completing (failed or "
                             "cancelled); the guest still runs on the source" : NULL);
}

/* libvirt's completed-job statistics: KEEP_COMPLETED leaves them for nova to read too. */
static int
mpMonitorFinishFromCompletedStats(mpMonitor *mon, mpMigration *mig)
{
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type = VIR_DOMAIN_JOB_NONE;
    mpOutcome outcome;

    if (!mig->dom ||
        virDomainGetJobStats(mig->dom, &type, &params, &nparams,
                             VIR_DOMAIN_JOB_STATS_COMPLETED |
                             VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) < 0)
        return -1;
    switch (type) {
    case VIR_DOMAIN_JOB_COMPLETED:
        outcome = MP_OUTCOME_COMPLETED;
        break;
    case VIR_DOMAIN_JOB_FAILED:
        outcome = MP_OUTCOME_FAILED;
        break;
    case VIR_DOMAIN_JOB_CANCELLED:
        outcome = MP_OUTCOME_CANCELLED;
        break;
    default:
        virTypedParamsFree(params, nparams);
        return -1;
    }
    mpMonitorFinish(mon, mig, outcome, params, nparams);
    virTypedParamsFree(params, nparams);
    return 0;
}

/* The figures behind a decision, for the switch notification. */
static json_t *
mpMonitorDecisionFigures(const mpPolicyDecision *d, int64_t latencyMs)
{
    json_t *fig = json_object();

    json_object_set_new(fig, "prediction",
                        json_string(mpPolicyPredictionToString(d->prediction)));
    json_object_set_new(fig, "rho", d->rho >= 0 ? json_real(d->rho) : json_null());
    json_object_set_new(fig, "rho_reported",
                        d->rho_reported >= 0 ? json_real(d->rho_reported) : json_null());
    json_object_set_new(fig, "remaining_at_pass_start_bytes",
                        d->remaining_start >= 0 ? json_integer(d->remaining_start) : json_null());
    json_object_set_new(fig, "remaining_at_previous_pass_start_bytes",
                        d->remaining_prev >= 0 ? json_integer(d->remaining_prev) : json_null());
    json_object_set_new(fig, "threshold_bytes",
                        d->threshold_bytes >= 0 ? json_integer(d->threshold_bytes) : json_null());
    json_object_set_new(fig, "bandwidth_bps",
                        d->bandwidth_bps >= 0 ? json_integer(d->bandwidth_bps) : json_null());
    json_object_set_new(fig, "predicted_passes",
                        d->predicted_passes >= 0 ? json_real(d->predicted_passes) : json_null());
    json_object_set_new(fig, "predicted_finish_ms", d->predicted_finish_ms >= 0 ?
                        json_integer(d->predicted_finish_ms) : json_null());
    json_object_set_new(fig, "switch_cost_ms",
                        d->switch_cost_ms >= 0 ? json_integer(d->switch_cost_ms) : json_null());
    json_object_set_new(fig, "decision_latency_ms", json_integer(latencyMs));
    return fig;
}

static void
mpMonitorAct(mpMonitor *mon, mpMigration *mig, const mpPolicyDecision *d, int64_t latencyMs)
{
    mpSwitch sw = { 0 };

    if (!d->switch_decided || mig->switchDecided)
        return;
    mig->switchDecided = true;
    sw.elapsedMs = (int64_t)d->elapsed_ms;
    sw.pass = (int)d->pass;
    sw.reason = mpPolicyRuleToString(d->rule);
    sw.explanation = d->explanation;
    sw.decidedBy = MP_DECIDED_MIGPILOT;
    sw.acted = false;

    if (d->action == MP_POLICY_ACTION_SWITCH && mig->dom) {
        if (virDomainMigrateStartPostCopy(mig->dom, 0) < 0) {
            virErrorPtr err = virGetLastError();

            /* libvirt 9: "switching to post-copy requires migration to be started with
             * VIR_MIGRATE_POSTCOPY flag"; older: "postcopy migration not enabled" */
            if (err && err->code == VIR_ERR_OPERATION_INVALID && err->message &&
                strcasestr(err->message, "postcopy")) {
                mig->postcopyPermitted = false;
                MP_WARN(mig->uuid, "post-copy is not permitted for this migration: it was "
                        "started without VIR_MIGRATE_POSTCOPY (nova: [libvirt] "
                        "live_migration_permit_post_copy = True); measuring only (%s)",
                        err->message);
                sw.reason = mpPolicyRuleToString(MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED);
            } else {
                MP_ERROR(mig->uuid, "switch to post-copy failed: %s", mpLibvirtError());
            }
        } else {
            sw.acted = true;
            mig->switchActed = true;
            mig->decidedBy = MP_DECIDED_MIGPILOT;
            mig->switchElapsedMs = (int64_t)d->elapsed_ms;
            MP_SET_FIELD(mig->switchReason, sw.reason);
            MP_INFO(mig->uuid, "switched to post-copy at pass %u, %lld ms after the pass "
                    "began (rule %s): %s", d->pass, (long long)latencyMs, sw.reason,
                    d->explanation);
        }
    } else {
        MP_INFO(mig->uuid, "would switch to post-copy at pass %u (rule %s, %s mode, not "
                "acted on): %s", d->pass, sw.reason, mpPolicyModeToString(mon->policy->mode),
                d->explanation);
    }
    sw.figures = mpMonitorDecisionFigures(d, latencyMs);
    if (mon->cb.switched)
        mon->cb.switched(mig->uuid, mig->startedAtMs, &sw, mon->opaque);
    json_decref(sw.figures);
}

static void
mpMonitorPublishProgress(mpMonitor *mon, mpMigration *mig, const mpPolicyDecision *d)
{
    int64_t now = mpNowMono();
    mpProgress p;

    if (!mon->cfg->progressIntervalMs || !mon->cb.progress ||
        (mig->lastProgressMono && now - mig->lastProgressMono <
         (int64_t)mon->cfg->progressIntervalMs))
        return;
    mig->lastProgressMono = now;
    p.elapsedMs = (int64_t)mig->last.elapsed_ms;
    p.pass = (int)mig->pass;
    p.memoryTotal = mig->last.memory_total;
    p.memoryProcessed = mig->last.memory_processed;
    p.memoryRemaining = mig->last.memory_remaining;
    p.bandwidthBps = mig->last.memory_bps;
    p.dirtyRateBps = mig->last.dirty_bps;
    p.prediction = mpPolicyPredictionToString(d->prediction);
    p.predictedFinishMs = d->predicted_finish_ms;
    mon->cb.progress(mig->uuid, mig->startedAtMs, &p, mon->opaque);
}

static void
mpMonitorNotePass(mpMigration *mig, unsigned int pass)
{
    if (pass > mig->pass) {
        mig->pass = pass;
        mig->passStartedMono = mpNowMono();
        MP_DEBUG(mig->uuid, "pass %u started", pass);
    }
}

static void
mpMonitorPollOne(mpMonitor *mon, mpMigration *mig)
{
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type = VIR_DOMAIN_JOB_NONE;
    mpPolicySample s;
    mpPolicyDecision d;

    if (!mon->conn)
        return; /* libvirtd is away: wait for it, the job may well go on */
    if (mig->ending) {
        if (mpMonitorFinishFromCompletedStats(mon, mig) == 0)
            return;
        if (mpNowMono() - mig->endingSinceMono > MP_MONITOR_FINISH_GRACE_MS)
            mpMonitorFinishVanished(mon, mig);
        return;
    }
    if (!mig->dom ||
        virDomainGetJobStats(mig->dom, &type, &params, &nparams, 0) < 0 ||
        type == VIR_DOMAIN_JOB_NONE) {
        /* the job is over: its completed statistics, or the JOB_COMPLETED event, tell how */
        virTypedParamsFree(params, nparams);
        if (mpMonitorFinishFromCompletedStats(mon, mig) == 0)
            return;
        mig->ending = true;
        mig->endingSinceMono = mpNowMono();
        return;
    }
    mpMonitorSampleFromParams(params, nparams, &s);
    virTypedParamsFree(params, nparams);
    if (s.has & MP_POLICY_HAS_PASS)
        mpMonitorNotePass(mig, s.pass);
    if (mig->maxDowntimeMs) {
        s.max_downtime_ms = mig->maxDowntimeMs;
        s.has |= MP_POLICY_HAS_MAX_DOWNTIME;
    }
    s.postcopy_permitted = mig->postcopyPermitted;
    s.in_postcopy = mig->inPostcopy;
    mig->last = s;
    if (mpPolicyFeedSample(mig->policy, &s, &d) < 0) {
        MP_DEBUG(mig->uuid, "sample ignored: %s", mpGetLastErrorMessage());
        return;
    }
    mpMonitorAct(mon, mig, &d, mpNowMono() - mig->passStartedMono);
    mpMonitorPublishProgress(mon, mig, &d);
}

static void
mpMonitorPoll(int timer, void *opaque)
{
    mpMonitor *mon = opaque;
    size_t i;

    (void)timer;
    /* iterate backwards: finishing removes the entry */
    for (i = mon->nmigrations; i > 0; i--)
        mpMonitorPollOne(mon, mon->migrations[i - 1]);
}

/* Starts watching dom if it has an active outgoing migration. */
static void
mpMonitorConsider(mpMonitor *mon, virDomainPtr dom)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type = VIR_DOMAIN_JOB_NONE;
    int operation = 0;
    mpMigration *mig;
    mpPolicySample s;

    if (virDomainGetUUIDString(dom, uuid) < 0)
        return;
    if ((mig = mpMonitorFind(mon, uuid))) {
        if (!mig->dom) {
            /* libvirtd came back: the same migration, a fresh handle */
            virDomainRef(dom);
            mig->dom = dom;
        }
        return;
    }
    if (virDomainGetJobStats(dom, &type, &params, &nparams, 0) < 0 ||
        type != VIR_DOMAIN_JOB_UNBOUNDED ||
        virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &operation) != 1 ||
        operation != VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT)
        goto cleanup;

    mpMonitorSampleFromParams(params, nparams, &s);
    mig = mpAlloc0(sizeof(*mig));
    memcpy(mig->uuid, uuid, sizeof(uuid));
    snprintf(mig->name, sizeof(mig->name), "%s", virDomainGetName(dom));
    if (!(mig->policy = mpPolicyNew(mon->policy))) {
        MP_ERROR(uuid, "cannot watch migration: %s", mpGetLastErrorMessage());
        free(mig);
        goto cleanup;
    }
    virDomainRef(dom);
    mig->dom = dom;
    mig->startedAtMs = mpNowWall() - (int64_t)s.elapsed_ms;
    mig->postcopyPermitted = true;
    mig->switchElapsedMs = -1;
    mig->passStartedMono = mpNowMono();
    if (virDomainMigrateGetMaxDowntime(dom, &mig->maxDowntimeMs, 0) < 0)
        mig->maxDowntimeMs = 0;
    mpGrow(&mon->migrations, &mon->amigrations, mon->nmigrations + 1, sizeof(mig));
    mon->migrations[mon->nmigrations++] = mig;
    mpMonitorUpdatePollTimer(mon);
    MP_INFO(uuid, "watching outgoing migration of %s (running for %llu ms, pass %u, "
            "policy %s)", mig->name, s.elapsed_ms, s.pass,
            mpPolicyModeToString(mon->policy->mode));
    mpMonitorPollOne(mon, mig);

 cleanup:
    virTypedParamsFree(params, nparams);
}

static void
mpMonitorDiscover(mpMonitor *mon)
{
    virDomainPtr *doms = NULL;
    int n;
    int i;

    if (!mon->conn)
        return;
    if ((n = virConnectListAllDomains(mon->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE)) < 0) {
        MP_WARN(NULL, "libvirt: cannot list domains: %s", mpLibvirtError());
        return;
    }
    for (i = 0; i < n; i++) {
        mpMonitorConsider(mon, doms[i]);
        virDomainFree(doms[i]);
    }
    free(doms);
}

static void
mpMonitorDiscoveryTimer(int timer, void *opaque)
{
    (void)timer;
    mpMonitorDiscover(opaque);
}

static void
mpMonitorIterationEvent(virConnectPtr conn, virDomainPtr dom, int iteration, void *opaque)
{
    mpMonitor *mon = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN];
    mpMigration *mig;
    mpPolicyDecision d;

    (void)conn;
    if (virDomainGetUUIDString(dom, uuid) < 0)
        return;
    if (!(mig = mpMonitorFind(mon, uuid))) {
        /* the first pass of a new migration: start watching it */
        mpMonitorConsider(mon, dom);
        return;
    }
    mpMonitorNotePass(mig, (unsigned int)iteration);
    if (mpPolicyFeedIteration(mig->policy, (unsigned int)iteration,
                              (unsigned long long)(mpNowWall() - mig->startedAtMs), &d) < 0)
        return;
    mpMonitorAct(mon, mig, &d, mpNowMono() - mig->passStartedMono);
    /* a fresh sample at once: the decision point is the start of the pass */
    mpMonitorPollOne(mon, mig);
}

static void
mpMonitorJobCompletedEvent(virConnectPtr conn, virDomainPtr dom,
                           virTypedParameterPtr params, int nparams, void *opaque)
{
    mpMonitor *mon = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN];
    mpMigration *mig;

    (void)conn;
    if (virDomainGetUUIDString(dom, uuid) < 0 || !(mig = mpMonitorFind(mon, uuid)))
        return;
    mpMonitorFinish(mon, mig, MP_OUTCOME_COMPLETED, params, nparams);
}

static void
mpMonitorLifecycleEvent(virConnectPtr conn, virDomainPtr dom, int event, int detail,
                        void *opaque)
{
    mpMonitor *mon = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN];
    mpMigration *mig;

    (void)conn;
    if (virDomainGetUUIDString(dom, uuid) < 0 || !(mig = mpMonitorFind(mon, uuid)))
        return;
    if (event == VIR_DOMAIN_EVENT_SUSPENDED && detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY) {
        if (!mig->inPostcopy && !mig->switchActed) {
            mpSwitch sw = { 0 };

            /* nova's force-complete, its completion timeout, or an operator */
            mig->decidedBy = MP_DECIDED_OTHER;
            mig->switchElapsedMs = mpNowWall() - mig->startedAtMs;
            MP_SET_FIELD(mig->switchReason, "external");
            sw.elapsedMs = mig->switchElapsedMs;
            sw.pass = (int)mig->pass;
            sw.reason = "external";
            sw.explanation = "switched to post-copy by someone else (nova or an operator)";
            sw.decidedBy = MP_DECIDED_OTHER;
            sw.acted = true;
            MP_INFO(uuid, "%s at pass %u", sw.explanation, mig->pass);
            if (mon->cb.switched)
                mon->cb.switched(uuid, mig->startedAtMs, &sw, mon->opaque);
        }
        mig->inPostcopy = true;
    } else if (event == VIR_DOMAIN_EVENT_SUSPENDED &&
               detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED) {
        if (!mig->pausedInPostcopy) {
            mig->pausedInPostcopy = true;
            mig->pausedSinceMono = mpNowMono();
            MP_ERROR(uuid, "post-copy migration paused: the link to the destination broke; "
                     "the guest is kept paused until the migration is resumed");
        }
    } else if (event == VIR_DOMAIN_EVENT_RESUMED && mig->pausedInPostcopy) {
        mig->pausedInPostcopy = false;
        mig->outageMs += mpNowMono() - mig->pausedSinceMono;
    } else if (event == VIR_DOMAIN_EVENT_STOPPED) {
        /* source side of a finished migration: poll at once for its outcome */
        mpMonitorPollOne(mon, mig);
    }
}

static void mpMonitorScheduleReconnect(mpMonitor *mon);

static void
mpMonitorDisconnect(mpMonitor *mon)
{
    size_t i;

    for (i = 0; i < sizeof(mon->callbackIds) / sizeof(mon->callbackIds[0]); i++) {
        if (mon->callbackIds[i] >= 0 && mon->conn)
            virConnectDomainEventDeregisterAny(mon->conn, mon->callbackIds[i]);
        mon->callbackIds[i] = -1;
    }
    /* keep the migrations: they are picked up again after reconnecting */
    for (i = 0; i < mon->nmigrations; i++) {
        if (mon->migrations[i]->dom) {
            virDomainFree(mon->migrations[i]->dom);
            mon->migrations[i]->dom = NULL;
        }
    }
    if (mon->conn) {
        virConnectUnregisterCloseCallback(mon->conn, NULL);
        virConnectClose(mon->conn);
        mon->conn = NULL;
    }
}

static void
mpMonitorReconnectTimer(int timer, void *opaque);

static void
mpMonitorCloseCallback(virConnectPtr conn, int reason, void *opaque)
{
    mpMonitor *mon = opaque;

    (void)conn;
    MP_ERROR(NULL, "libvirt: connection to %s lost (reason %d); reconnecting",
             mon->cfg->libvirtUri, reason);
    /* close outside of libvirt's own callback */
    mpMonitorScheduleReconnect(mon);
}

static int
mpMonitorConnect(mpMonitor *mon)
{
    size_t i;

    if (!(mon->conn = virConnectOpen(mon->cfg->libvirtUri))) {
        mpReportError("libvirt: cannot connect to %s: %s", mon->cfg->libvirtUri,
                      mpLibvirtError());
        return -1;
    }
    if (virConnectSetKeepAlive(mon->conn, 5, 3) < 0)
        MP_DEBUG(NULL, "libvirt: no keepalive: %s", mpLibvirtError());
    if (virConnectRegisterCloseCallback(mon->conn, mpMonitorCloseCallback, mon, NULL) < 0)
        MP_WARN(NULL, "libvirt: no close callback: %s", mpLibvirtError());
    mon->callbackIds[0] = virConnectDomainEventRegisterAny(
        mon->conn, NULL, VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
        VIR_DOMAIN_EVENT_CALLBACK(mpMonitorIterationEvent), mon, NULL);
    mon->callbackIds[1] = virConnectDomainEventRegisterAny(
        mon->conn, NULL, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
        VIR_DOMAIN_EVENT_CALLBACK(mpMonitorJobCompletedEvent), mon, NULL);
    mon->callbackIds[2] = virConnectDomainEventRegisterAny(
        mon->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(mpMonitorLifecycleEvent), mon, NULL);
    for (i = 0; i < 3; i++) {
        if (mon->callbackIds[i] < 0) {
            mpReportError("libvirt: cannot register domain events: %s", mpLibvirtError());
            mpMonitorDisconnect(mon);
            return -1;
        }
    }
    MP_INFO(NULL, "libvirt: connected to %s", mon->cfg->libvirtUri);
    mon->loggedDown = false;
    mpMonitorDiscover(mon);
    /* migrations that were watched before libvirtd went away and are gone now */
    for (i = mon->nmigrations; i > 0; i--) {
        mpMigration *mig = mon->migrations[i - 1];

        if (!mig->dom) {
            virDomainPtr dom = virDomainLookupByUUIDString(mon->conn, mig->uuid);

            if (dom) {
                mig->dom = dom;
            } else {
                mig->ending = true;
                mig->endingSinceMono = mpNowMono();
            }
        }
    }
    return 0;
}

static void
mpMonitorReconnectTimer(int timer, void *opaque)
{
    mpMonitor *mon = opaque;

    (void)timer;
    virEventRemoveTimeout(mon->reconnectTimer);
    mon->reconnectTimer = -1;
    mpMonitorDisconnect(mon);
    if (mpMonitorConnect(mon) < 0) {
        if (!mon->loggedDown)
            MP_ERROR(NULL, "%s; retrying every %u ms", mpGetLastErrorMessage(),
                     mon->cfg->reconnectIntervalMs);
        mon->loggedDown = true;
        mpMonitorScheduleReconnect(mon);
    }
}

static void
mpMonitorScheduleReconnect(mpMonitor *mon)
{
    if (mon->reconnectTimer >= 0)
        return;
    mon->reconnectTimer = virEventAddTimeout((int)mon->cfg->reconnectIntervalMs,
                                             mpMonitorReconnectTimer, mon, NULL);
}

mpMonitor *
mpMonitorNew(const mpConfig *cfg, const mpPolicyConfig *policy,
             const mpMonitorCallbacks *cb, void *opaque)
{
    mpMonitor *mon = mpAlloc0(sizeof(*mon));
    size_t i;

    mon->cfg = cfg;
    mon->policy = policy;
    mon->cb = *cb;
    mon->opaque = opaque;
    for (i = 0; i < sizeof(mon->callbackIds) / sizeof(mon->callbackIds[0]); i++)
        mon->callbackIds[i] = -1;
    mon->pollTimer = -1;
    mon->discoveryTimer = -1;
    mon->reconnectTimer = -1;
    return mon;
}

void
mpMonitorFree(mpMonitor *mon)
{
    size_t i;

    if (!mon)
        return;
    if (mon->pollTimer >= 0)
        virEventRemoveTimeout(mon->pollTimer);
    if (mon->discoveryTimer >= 0)
        virEventRemoveTimeout(mon->discoveryTimer);
    if (mon->reconnectTimer >= 0)
        virEventRemoveTimeout(mon->reconnectTimer);
    mpMonitorDisconnect(mon);
    for (i = 0; i < mon->nmigrations; i++)
        mpMigrationFree(mon->migrations[i]);
    free(mon->migrations);
    free(mon);
}

int
mpMonitorStart(mpMonitor *mon)
{
    mon->pollTimer = virEventAddTimeout(-1, mpMonitorPoll, mon, NULL);
    mon->discoveryTimer = virEventAddTimeout((int)mon->cfg->discoveryIntervalMs,
                                             mpMonitorDiscoveryTimer, mon, NULL);
    if (mon->pollTimer < 0 || mon->discoveryTimer < 0) {
        mpReportError("libvirt: cannot add timers to the event loop");
        return -1;
    }
    if (mpMonitorConnect(mon) < 0) {
        MP_ERROR(NULL, "%s; retrying every %u ms", mpGetLastErrorMessage(),
                 mon->cfg->reconnectIntervalMs);
        mon->loggedDown = true;
        mpMonitorScheduleReconnect(mon);
    }
    return 0;
}

void
mpMonitorSetPolicy(mpMonitor *mon, const mpPolicyConfig *policy)
{
    mon->policy = policy;
}

size_t
mpMonitorActiveCount(mpMonitor *mon)
{
    return mon->nmigrations;
}
