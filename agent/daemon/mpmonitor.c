/*
 * mpmonitor.c: libvirt's view of this host's outgoing live migrations
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "mpalloc.h"
#include "mpdirtyrate.h"
#include "mperror.h"
#include "mpfeatures.h"
#include "mplog.h"
#include "mpmonitor.h"
#include "mprecoverystate.h"

/* How long a finished job may wait for its JOB_COMPLETED event before it is reported
 * from what is known (a transient domain vanishes with its completed stats). */
#define MP_MONITOR_FINISH_GRACE_MS 3000

/* The first periodic dirty-rate round after start: soon, not a whole interval later. A
 * guest that boots or arrives by migration is measured as soon, on its own: libvirt
 * refuses a calc once a migration runs, so a guest moved on again before the next round
 * would otherwise leave with no measurement. */
#define MP_MONITOR_DIRTY_FIRST_MS 10000u
/* how often due arrivals are looked for while some are pending */
#define MP_MONITOR_DIRTY_ARRIVAL_TICK_MS 1000

/* What the resume of a paused post-copy migration asks of libvirt (as virsh migrate
 * --live --p2p --postcopy --postcopy-resume does). Nothing for post-copy preemption: libvirt
 * has no flag for it, QEMU keeps it on across the resume (mpfeatures.c). */
#define MP_MONITOR_RESUME_FLAGS (VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | \
                                 VIR_MIGRATE_POSTCOPY | VIR_MIGRATE_POSTCOPY_RESUME)

/* Saved destinations (mprecoverystate.h): older than this at start, no migration is left
 * to resume; one whose guest is here but not migrating is over after the idle time (the
 * record is written when nova prepares the destination, seconds before the job starts). */
#define MP_MONITOR_RECOVERY_MAX_AGE_MS (7LL * 24 * 3600 * 1000)
#define MP_MONITOR_RECOVERY_IDLE_MS (10LL * 60 * 1000)

/*
 * One attempt to resume a paused post-copy migration, in a thread of its own: the
 * migration call blocks until the migration ends (or fails at once while the link is
 * still down), and the event loop must go on meanwhile. The worker shares nothing with
 * the monitor but this struct; it opens its own libvirt connection.
 */
typedef struct _mpResume mpResume;
struct _mpResume {
    pthread_t thread;
    pthread_mutex_t lock;
    bool done;                      /* under lock: rc and error are final */
    bool abandoned;                 /* under lock: nobody joins; the worker frees it */
    int rc;
    char error[256];
    char uuid[VIR_UUID_STRING_BUFLEN];
    char *libvirtUri;
    char *destUri;
};

typedef struct _mpMigration mpMigration;
struct _mpMigration {
    char uuid[VIR_UUID_STRING_BUFLEN];
    char name[128];
    virDomainPtr dom;               /* NULL while libvirtd is away */
    mpPolicy *policy;
    int64_t startedAtMs;            /* wall clock, derived from libvirt's time_elapsed */
    unsigned int pass;
    unsigned int explainedPass;     /* the last pass whose "no switch" was logged */
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
    /* post-copy recovery */
    mpResume *resume;               /* the attempt running now, or NULL */
    int64_t nextResumeMono;
    int64_t alertedMono;            /* last loud report of this outage */
    unsigned resumeAttempts;
    char resumeError[256];          /* why the last attempt failed */
    char destUri[512];              /* where the last attempt went */
    bool warnedNoDestination;
    bool toldSavedDestination;      /* said once: the destination came from the state dir */
    /* the forecast made when it started (mpMonitorForecast) */
    bool forecastTried;             /* made, or said why not: once per migration */
    bool haveForecast;
    mpForecast forecast;
};

/* The latest dirty-rate measurement of a domain of this host. */
typedef struct _mpDirtyEntry mpDirtyEntry;
struct _mpDirtyEntry {
    char uuid[VIR_UUID_STRING_BUFLEN];
    char name[128];
    bool measured;
    mpDirtyMeasurement m;
    int64_t measuredMono;
    bool failing;               /* the last attempt failed: said once until one succeeds */
    int64_t arrivalDueMono;     /* booted, migrated in or stayed: measure then (0: none) */
    const char *arrivalWhy;     /* static: which of those */
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
    mpFeatureSet features;          /* of the libvirtd connected to, decided at connection */

    mpMigration **migrations;
    size_t nmigrations;
    size_t amigrations;

    mpDirtyRate *dirty;             /* NULL: [dirtyrate] enabled = false */
    int dirtyTimer;                 /* every [dirtyrate] interval_ms, or -1 */
    int arrivalTimer;               /* while arrivals are due, or -1 */
    mpDirtyEntry **dirtyEntries;
    size_t ndirtyEntries;
    size_t adirtyEntries;
    unsigned long long lastLinkBps; /* mean rate of the last completed migration, 0: none */
    mpRecoveryState *recovery;      /* saved destinations; NULL: state_dir/recovery unusable */
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
mpResumeFree(mpResume *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r->libvirtUri);
    free(r->destUri);
    free(r);
}

static void *
mpResumeRun(void *opaque)
{
    mpResume *r = opaque;
    virConnectPtr conn = NULL;
    virDomainPtr dom = NULL;
    bool abandoned;

    r->rc = -1;
    /* libvirt's errors are per thread: mpLibvirtError reads this thread's */
    if (!(conn = virConnectOpen(r->libvirtUri)) ||
        !(dom = virDomainLookupByUUIDString(conn, r->uuid)) ||
        virDomainMigrateToURI3(dom, r->destUri, NULL, 0, MP_MONITOR_RESUME_FLAGS) < 0)
        snprintf(r->error, sizeof(r->error), "%s", mpLibvirtError());
    else
        r->rc = 0;
    if (dom)
        virDomainFree(dom);
    if (conn)
        virConnectClose(conn);

    pthread_mutex_lock(&r->lock);
    r->done = true;
    abandoned = r->abandoned;
    pthread_mutex_unlock(&r->lock);
    if (abandoned)
        mpResumeFree(r);
    return NULL;
}

/* The monitor lets go of an attempt: joined if it is over, else it frees itself. */
static void
mpResumeRelease(mpResume *r)
{
    bool done;

    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    done = r->done;
    if (!done) {
        r->abandoned = true;
        pthread_detach(r->thread);
    }
    pthread_mutex_unlock(&r->lock);
    if (done) {
        pthread_join(r->thread, NULL);
        mpResumeFree(r);
    }
}

static void
mpMigrationFree(mpMigration *mig)
{
    if (!mig)
        return;
    mpResumeRelease(mig->resume);
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

/* libvirt's typed parameters, for mpPolicySampleFromJobStats. */
typedef struct {
    virTypedParameterPtr params;
    int nparams;
} mpMonitorJobParams;

static bool
mpMonitorJobStat(const char *name, unsigned long long *value, void *opaque)
{
    const mpMonitorJobParams *p = opaque;

    return virTypedParamsGetULLong(p->params, p->nparams, name, value) == 1;
}

/* Reads libvirt's typed parameters into a policy sample. */
static void
mpMonitorSampleFromParams(virTypedParameterPtr params, int nparams, mpPolicySample *s)
{
    mpMonitorJobParams p = { params, nparams };

    mpPolicySampleFromJobStats(s, mpMonitorJobStat, &p);
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

/* The source reports the post-copy phase broken: the guest is paused on both sides. */
static void
mpMonitorNotePaused(mpMigration *mig)
{
    if (mig->pausedInPostcopy)
        return;
    mig->inPostcopy = true;
    mig->pausedInPostcopy = true;
    mig->pausedSinceMono = mpNowMono();
    mig->alertedMono = mig->pausedSinceMono;
    mig->nextResumeMono = 0;        /* try at once: a broken socket may be all it was */
    MP_ERROR(mig->uuid, "post-copy migration of %s paused: the link to the destination "
             "broke; the guest stays paused until the migration is resumed", mig->name);
}

/* The post-copy phase runs again (or the migration ended): the outage is over. */
static void
mpMonitorNoteResumed(mpMigration *mig, const char *how)
{
    int64_t ms;

    if (!mig->pausedInPostcopy)
        return;
    ms = mpNowMono() - mig->pausedSinceMono;
    mig->pausedInPostcopy = false;
    mig->outageMs = (mig->outageMs > 0 ? mig->outageMs : 0) + ms;
    MP_WARN(mig->uuid, "post-copy migration of %s %s after an outage of %lld ms "
            "(%u resume attempt(s))", mig->name, how, (long long)ms, mig->resumeAttempts);
}

/* Reports a finished migration once and forgets it. params may be NULL (vanished job). */
static void
mpMonitorFinishFull(mpMonitor *mon, mpMigration *mig, mpOutcome outcome,
                    virTypedParameterPtr params, int nparams, const char *error)
{
    mpMigrationRecord rec;
    unsigned long long v;

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
    if (params && mon->features.on[MP_FEATURE_DOWNTIME_NET] &&
        virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DOWNTIME_NET, &v) == 1)
        rec.downtimeNetMs = (int64_t)v;
    if (error && !rec.error[0])
        MP_SET_FIELD(rec.error, error);
    if (outcome == MP_OUTCOME_COMPLETED)
        mpMonitorNoteResumed(mig, "completed");
    rec.postcopy = mig->inPostcopy;
    rec.postcopySwitchMs = mig->inPostcopy ? mig->switchElapsedMs : -1;
    if (mig->haveForecast) {
        rec.haveForecast = true;
        rec.forecast = mig->forecast;
    }
    /* the link rate of the next forecasts, when their migration sets no max speed */
    if (outcome == MP_OUTCOME_COMPLETED && rec.migrationTimeMs > 0 && rec.bytesTransferred)
        mon->lastLinkBps = (unsigned long long)((double)rec.bytesTransferred * 1000.0 /
                                                (double)rec.migrationTimeMs);
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
    /* nothing left to resume */
    if (mon->recovery && mpRecoveryStateRemove(mon->recovery, mig->uuid) < 0)
        MP_ERROR(mig->uuid, "%s", mpGetLastErrorMessage());
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

static void mpMonitorDirtyArrived(mpMonitor *mon, virDomainPtr dom, const char *uuid,
                                  const char *why);

/*
 * A job that ended with neither completed statistics nor JOB_COMPLETED: libvirt keeps no
 * statistics of a failed or cancelled migration. A domain still active here did not move.
 * (Whether an operator cancelled it is known only from nova: the agent refines that.)
 */
static void
mpMonitorFinishVanished(mpMonitor *mon, mpMigration *mig)
{
    mpOutcome outcome = MP_OUTCOME_UNKNOWN;

    if (mig->pausedInPostcopy) {
        /* destroyed (or lost with its host) while waiting for the link */
        mpMonitorFinishWithError(mon, mig, MP_OUTCOME_FAILED,
                                 "the post-copy migration was paused and its job ended "
                                 "before it could be resumed");
        return;
    }
    if (mig->dom && virDomainIsActive(mig->dom) == 1) {
        outcome = MP_OUTCOME_FAILED;
        /* the measurement the next attempt will be judged by */
        mpMonitorDirtyArrived(mon, mig->dom, mig->uuid, "stayed after a failed migration");
    }
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
    json_t *fig = mpPolicyDecisionFiguresToJSON(d);

    json_object_set_new(fig, "decision_latency_ms", json_integer(latencyMs));
    return fig;
}

static void
mpMonitorAct(mpMonitor *mon, mpMigration *mig, const mpPolicyDecision *d, int64_t latencyMs)
{
    mpSwitch sw = { 0 };

    /* why a pass was not switched, once per pass: the decision an operator looks for */
    if (d->evaluated && !d->switch_decided && d->pass > mig->explainedPass &&
        !mig->switchDecided) {
        mig->explainedPass = d->pass;
        MP_DEBUG(mig->uuid, "pass %u: no switch: %s", d->pass, d->explanation);
    }
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

/* ---- post-copy recovery ---- */

/*
 * The migration address of a destination nova names: its entry in [recovery]
 * destination_addresses, else the host name itself (only when that list is not set).
 * NULL (and why in *why) for a host that is not a plain host name or not listed.
 */
static const char *
mpMonitorDestinationAddress(const mpConfig *cfg, const char *host, const char **why)
{
    size_t hlen = strlen(host);
    size_t i;

    if (!mpRecoveryHostValid(host)) {
        *why = "the destination host nova named is not a plain host name";
        return NULL;
    }
    for (i = 0; i < cfg->nrecoveryAddresses; i++) {
        const char *pair = cfg->recoveryAddresses[i];

        if (strncmp(pair, host, hlen) == 0 && pair[hlen] == '=')
            return pair + hlen + 1;
    }
    if (cfg->nrecoveryAddresses) {
        *why = "its destination host is not in [recovery] destination_addresses";
        return NULL;
    }
    return host;
}

/*
 * The destination's libvirt URI: [recovery] destination_uri with the address of the host
 * nova named as the destination, in a notification since the agent started or, before
 * that, in the agent's recovery state. NULL (and why in *why) when it cannot be had:
 * libvirt does not tell where a migration goes, and bus input only names a host, which
 * must be a plain host name, and one of destination_addresses when that list is set.
 */
static char *
mpMonitorDestinationUri(mpMonitor *mon, mpMigration *mig, const char **why)
{
    const mpConfig *cfg = mon->cfg;
    const char *host = mon->cb.destination ? mon->cb.destination(mig->uuid, mon->opaque) :
        NULL;
    const mpRecoveryRecord *saved = NULL;
    const char *addr;
    const char *pct;

    if ((!host || !*host) && mon->recovery &&
        (saved = mpRecoveryStateGet(mon->recovery, mig->uuid)))
        host = saved->host;
    if (!host || !*host) {
        *why = "no nova notification has named its destination host, and the agent's "
            "recovery state has none";
        return NULL;
    }
    if (!(addr = mpMonitorDestinationAddress(cfg, host, why)))
        return NULL;
    if (saved && !mig->toldSavedDestination) {
        mig->toldSavedDestination = true;
        MP_INFO(mig->uuid, "recovery: destination %s of %s from the recovery state (saved "
                "%lld s ago, address %s then, %s now): nova has not named it since the "
                "agent started", host, mig->name,
                (long long)((mpNowWall() - saved->savedAtMs) / 1000), saved->address, addr);
    }
    /* the config check made sure there is exactly one %s */
    pct = strstr(cfg->recoveryDestUri, "%s");
    return mpAsprintf("%.*s%s%s", (int)(pct - cfg->recoveryDestUri), cfg->recoveryDestUri,
                      addr, pct + 2);
}

void
mpMonitorNoteDestination(mpMonitor *mon, const char *uuid, const char *host)
{
    const mpRecoveryRecord *old;
    mpRecoveryRecord rec;
    const char *addr;
    const char *why = NULL;
    virDomainPtr dom;

    if (!mon->recovery || !uuid || !host || !*host)
        return;
    if (!mpRecoveryUuidValid(uuid)) {
        MP_DEBUG(NULL, "recovery state: '%.40s' is not a UUID: not saved", uuid);
        return;
    }
    if (!(addr = mpMonitorDestinationAddress(mon->cfg, host, &why))) {
        MP_INFO(uuid, "recovery state: destination %.64s not saved: %s", host, why);
        return;
    }
    /* every agent hears every migration: save only those leaving this host */
    if (mon->conn) {
        if (!(dom = virDomainLookupByUUIDString(mon->conn, uuid))) {
            if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
                return;
            MP_DEBUG(uuid, "libvirt: cannot look the domain up (%s): saving its "
                     "destination all the same", mpLibvirtError());
        } else {
            virDomainFree(dom);
        }
    }
    /* pre.start and pre.end name the same host: written once */
    if ((old = mpRecoveryStateGet(mon->recovery, uuid)) && strcmp(old->host, host) == 0 &&
        strcmp(old->address, addr) == 0)
        return;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.uuid, sizeof(rec.uuid), "%s", uuid);
    snprintf(rec.host, sizeof(rec.host), "%s", host);
    snprintf(rec.address, sizeof(rec.address), "%s", addr);
    rec.savedAtMs = mpNowWall();
    if (mpRecoveryStatePut(mon->recovery, &rec) < 0) {
        MP_ERROR(uuid, "%s; an agent restarted during its migration cannot resume it "
                 "before nova names the destination again", mpGetLastErrorMessage());
        return;
    }
    MP_DEBUG(uuid, "recovery state: destination %s (address %s) saved", host, addr);
}

/*
 * Forgets saved destinations no migration needs any more (after each connection to
 * libvirtd, once the running migrations are picked up): the guest has left this host,
 * or it is here with no outgoing migration long after nova prepared one.
 */
static void
mpMonitorRecoveryPrune(mpMonitor *mon)
{
    int64_t now = mpNowWall();
    size_t i;

    if (!mon->recovery || !mon->conn)
        return;
    for (i = mpRecoveryStateCount(mon->recovery); i > 0; i--) {
        const mpRecoveryRecord *rec = mpRecoveryStateAt(mon->recovery, i - 1);
        char uuid[MP_RECOVERY_UUID_BUFLEN];
        virDomainPtr dom;
        const char *gone = NULL;

        if (mpMonitorFind(mon, rec->uuid))
            continue;
        memcpy(uuid, rec->uuid, sizeof(uuid));
        if ((dom = virDomainLookupByUUIDString(mon->conn, uuid))) {
            virDomainFree(dom);
            if (now - rec->savedAtMs > MP_MONITOR_RECOVERY_IDLE_MS)
                gone = "the guest is here with no outgoing migration";
        } else if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) {
            gone = "the guest is no longer on this host";
        }
        if (!gone)
            continue;
        MP_INFO(uuid, "recovery state: saved destination %s forgotten: %s", rec->host,
                gone);
        if (mpRecoveryStateRemove(mon->recovery, uuid) < 0)
            MP_ERROR(uuid, "%s", mpGetLastErrorMessage());
    }
}

/* Collects a finished resume attempt; true while one is still running. */
static bool
mpMonitorResumeBusy(mpMonitor *mon, mpMigration *mig)
{
    mpResume *r = mig->resume;
    bool done;

    if (!r)
        return false;
    pthread_mutex_lock(&r->lock);
    done = r->done;
    pthread_mutex_unlock(&r->lock);
    if (!done)
        return true;
    pthread_join(r->thread, NULL);
    mig->resume = NULL;
    if (r->rc == 0) {
        mpMonitorNoteResumed(mig, "resumed and finished");
    } else {
        /* the same refusal every retry_interval_ms is not news: once, then the alerts */
        if (strcmp(mig->resumeError, r->error) != 0)
            MP_INFO(mig->uuid, "resuming the post-copy migration of %s to %s failed: %s; "
                    "retrying every %u ms", mig->name, r->destUri, r->error,
                    mon->cfg->recoveryRetryMs);
        else
            MP_DEBUG(mig->uuid, "resume attempt %u failed: %s", mig->resumeAttempts,
                     r->error);
        MP_SET_FIELD(mig->resumeError, r->error);
    }
    mpResumeFree(r);
    mig->nextResumeMono = mpNowMono() + mon->cfg->recoveryRetryMs;
    return false;
}

static void
mpMonitorResumeStart(mpMonitor *mon, mpMigration *mig, char *destUri)
{
    mpResume *r = mpAlloc0(sizeof(*r));
    int err;

    pthread_mutex_init(&r->lock, NULL);
    memcpy(r->uuid, mig->uuid, sizeof(r->uuid));
    r->libvirtUri = mpStrdup(mon->cfg->libvirtUri);
    r->destUri = destUri;
    mig->resumeAttempts++;
    if (strcmp(mig->destUri, destUri) != 0 || mig->resumeAttempts == 1)
        MP_INFO(mig->uuid, "resuming the post-copy migration of %s to %s", mig->name,
                destUri);
    MP_SET_FIELD(mig->destUri, destUri);
    if ((err = pthread_create(&r->thread, NULL, mpResumeRun, r)) != 0) {
        MP_ERROR(mig->uuid, "cannot start a thread to resume the migration: %s",
                 strerror(err));
        mpResumeFree(r);
        mig->nextResumeMono = mpNowMono() + mon->cfg->recoveryRetryMs;
        return;
    }
    mig->resume = r;
}

/* While a post-copy migration is paused: alert every alert_after_ms, resume every
 * retry_interval_ms (one attempt at a time), never blocking the event loop. */
static void
mpMonitorRecover(mpMonitor *mon, mpMigration *mig)
{
    const mpConfig *cfg = mon->cfg;
    const char *why = NULL;
    const char *noResume;
    bool busy = mpMonitorResumeBusy(mon, mig);
    int64_t now;
    char *uri;

    if (!mig->pausedInPostcopy)
        return;
    now = mpNowMono();
    /* the operator may turn recovery off; a libvirt that breaks on resumes turns it off */
    noResume = !cfg->postcopyRecovery ? "[recovery] postcopy_recovery is off" :
        mpFeatureWhyOff(&mon->features, MP_FEATURE_POSTCOPY_RESUME);
    if (now - mig->alertedMono >= (int64_t)cfg->recoveryAlertMs) {
        mig->alertedMono = now;
        if (!noResume)
            MP_WARN(mig->uuid, "ALERT: post-copy migration of %s paused for %lld s, the "
                    "guest is stopped; still retrying every %u ms (%u attempt(s)%s%s%s)",
                    mig->name, (long long)((now - mig->pausedSinceMono) / 1000),
                    cfg->recoveryRetryMs, mig->resumeAttempts,
                    busy ? ", one waiting for the destination" : "",
                    mig->resumeError[0] ? ", last refusal: " : "", mig->resumeError);
        else
            MP_WARN(mig->uuid, "ALERT: post-copy migration of %s paused for %lld s, the "
                    "guest is stopped; not resumed by the agent (%s): resume it with "
                    "virsh migrate --live --p2p --postcopy --postcopy-resume",
                    mig->name, (long long)((now - mig->pausedSinceMono) / 1000), noResume);
    }
    if (busy || noResume || now < mig->nextResumeMono)
        return;
    if (!(uri = mpMonitorDestinationUri(mon, mig, &why))) {
        if (!mig->warnedNoDestination)
            MP_ERROR(mig->uuid, "cannot resume the post-copy migration of %s: %s; resume "
                     "it with virsh migrate --live --p2p --postcopy --postcopy-resume",
                     mig->name, why);
        mig->warnedNoDestination = true;
        /* nova may still tell: look again later */
        mig->nextResumeMono = now + cfg->recoveryRetryMs;
        return;
    }
    mpMonitorResumeStart(mon, mig, uri);
}

/* libvirt's state of the source tells a broken post-copy phase also when its event was
 * missed (agent or libvirtd restarted). */
static void
mpMonitorCheckState(mpMigration *mig)
{
    int state = VIR_DOMAIN_NOSTATE;
    int reason = 0;

    if (!mig->dom || virDomainGetState(mig->dom, &state, &reason, 0) < 0 ||
        state != VIR_DOMAIN_PAUSED)
        return;
    if (reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) {
        mpMonitorNotePaused(mig);
    } else if (reason == VIR_DOMAIN_PAUSED_POSTCOPY) {
        mig->inPostcopy = true;
        mpMonitorNoteResumed(mig, "resumed");
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

    mpMonitorRecover(mon, mig);
    if (!mon->conn)
        return; /* libvirtd is away: wait for it, the job may well go on */
    if (mig->ending) {
        if (mpMonitorFinishFromCompletedStats(mon, mig) == 0)
            return;
        if (mpNowMono() - mig->endingSinceMono > MP_MONITOR_FINISH_GRACE_MS)
            mpMonitorFinishVanished(mon, mig);
        return;
    }
    if (mig->dom && virDomainGetJobStats(mig->dom, &type, &params, &nparams, 0) < 0) {
        /* a domain that left (transient) or stopped (persistent) with its job is the usual
         * cause; anything else is worth a line, as collectd logs every failed libvirt call */
        int code = virGetLastErrorCode();

        if (code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_OPERATION_INVALID)
            MP_DEBUG(mig->uuid, "libvirt: no job statistics of %s: %s", mig->name,
                     mpLibvirtError());
        else
            MP_WARN(mig->uuid, "libvirt: cannot read the job statistics of %s: %s; taking "
                    "the job as over", mig->name, mpLibvirtError());
        type = VIR_DOMAIN_JOB_NONE;
    }
    if (!mig->dom || type == VIR_DOMAIN_JOB_NONE) {
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
    if (mig->inPostcopy || mig->pausedInPostcopy)
        mpMonitorCheckState(mig);
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

/* ---- dirty-rate measurements ---- */

static mpDirtyEntry *
mpMonitorDirtyEntry(mpMonitor *mon, const char *uuid, const char *name, bool create)
{
    mpDirtyEntry *e;
    size_t i;

    for (i = 0; i < mon->ndirtyEntries; i++) {
        if (strcmp(mon->dirtyEntries[i]->uuid, uuid) == 0)
            return mon->dirtyEntries[i];
    }
    if (!create)
        return NULL;
    e = mpAlloc0(sizeof(*e));
    snprintf(e->uuid, sizeof(e->uuid), "%s", uuid);
    snprintf(e->name, sizeof(e->name), "%s", name);
    mpGrow(&mon->dirtyEntries, &mon->adirtyEntries, mon->ndirtyEntries + 1, sizeof(e));
    mon->dirtyEntries[mon->ndirtyEntries++] = e;
    return e;
}

/* Forgets the measurements of domains no longer active here (doms: the active ones). */
static void
mpMonitorDirtyPrune(mpMonitor *mon, virDomainPtr *doms, int n)
{
    size_t i = 0;

    while (i < mon->ndirtyEntries) {
        mpDirtyEntry *e = mon->dirtyEntries[i];
        char uuid[VIR_UUID_STRING_BUFLEN];
        bool active = mpDirtyRateBusy(mon->dirty, e->uuid) || mpMonitorFind(mon, e->uuid);
        int j;

        for (j = 0; j < n && !active; j++)
            active = virDomainGetUUIDString(doms[j], uuid) == 0 && strcmp(uuid, e->uuid) == 0;
        if (active) {
            i++;
            continue;
        }
        free(e);
        memmove(mon->dirtyEntries + i, mon->dirtyEntries + i + 1,
                (mon->ndirtyEntries - i - 1) * sizeof(e));
        mon->ndirtyEntries--;
    }
}

/* Formats a measurement for the log. */
static void
mpMonitorDirtyText(const mpDirtyMeasurement *m, char *text, size_t size)
{
    size_t len = 0;
    size_t i;

    text[0] = '\0';
    for (i = 0; i < m->nwindows && len < size; i++)
        len += (size_t)snprintf(text + len, size - len, "%s%llu MiB/s over %llu ms",
                                i ? ", " : "", m->windows[i].rate_mibs,
                                m->windows[i].window_ms);
    if (len < size && m->nwindows)
        snprintf(text + len, size - len, " (>= %llu MiB dirtied in the longest window, "
                 "RAM %llu MiB)", m->windows[m->nwindows - 1].rate_mibs *
                 m->windows[m->nwindows - 1].window_ms / 1000, m->memory_bytes >> 20);
}

/* libvirt's max speed when none is set (QEMU_DOMAIN_MIG_BANDWIDTH_MAX, MiB/s) */
#define MP_MONITOR_SPEED_UNLIMITED_MIBS (INT64_MAX / (1024 * 1024))

/*
 * The forecast of mig from measurement m (its age as it stands), once per migration and
 * only during pass 1: at the link rate its migration is capped to, else the mean rate of
 * the last migration completed on this host; with the max downtime in force.
 */
static void
mpMonitorForecast(mpMonitor *mon, mpMigration *mig, const mpDirtyMeasurement *m)
{
    unsigned long speedMiBs = 0;
    unsigned long long bps = 0, downtime, ram, resident = 0;
    const char *from = NULL;

    if (mig->forecastTried || mig->pass > 1 || !mon->cb.forecast)
        return;
    mig->forecastTried = true;
    if (mig->dom && virDomainMigrateGetMaxSpeed(mig->dom, &speedMiBs, 0) == 0 &&
        speedMiBs > 0 && speedMiBs < MP_MONITOR_SPEED_UNLIMITED_MIBS) {
        bps = (unsigned long long)speedMiBs * 1024 * 1024;
        from = "its max speed";
    } else if (mon->lastLinkBps) {
        bps = mon->lastLinkBps;
        from = "the last migration's rate";
    }
    if (!bps) {
        MP_INFO(mig->uuid, "no forecast of %s: no link rate (no max speed set, no "
                "migration completed on this host yet)", mig->name);
        return;
    }
    downtime = mig->maxDowntimeMs ? mig->maxDowntimeMs : mon->policy->downtime_ms;
    ram = mig->last.memory_total ? mig->last.memory_total : m->memory_bytes;
    if (mig->dom) {
        /* QEMU's resident set: the pages the guest never touched are zero, which pass 1
         * sends as a few bytes each */
        virDomainMemoryStatStruct stats[VIR_DOMAIN_MEMORY_STAT_NR];
        int n = virDomainMemoryStats(mig->dom, stats, VIR_DOMAIN_MEMORY_STAT_NR, 0);
        int i;

        for (i = 0; i < n; i++)
            if (stats[i].tag == VIR_DOMAIN_MEMORY_STAT_RSS)
                resident = stats[i].val * 1024;
    }
    if (mpForecastCompute(m, ram, resident, bps, downtime, mon->policy,
                          &mig->forecast) < 0) {
        MP_WARN(mig->uuid, "no forecast of %s: %s", mig->name, mpGetLastErrorMessage());
        return;
    }
    mig->haveForecast = true;
    MP_INFO(mig->uuid, "forecast of %s at %.1f MiB/s (%s), %llu ms downtime, pass 1 %.1f "
            "MiB: %s", mig->name, (double)bps / (1024.0 * 1024.0), from, downtime,
            (double)mig->forecast.first_pass_bytes / (1024.0 * 1024.0),
            mig->forecast.explanation);
    mon->cb.forecast(mig->uuid, mig->startedAtMs, &mig->forecast, mon->opaque);
}

/*
 * A measurement of uuid (new, or the latest one at migration start, ageMs old): the
 * policy of its migration, if one is watched, takes it as its dirty-rate input, and the
 * migration gets its forecast.
 */
static void
mpMonitorDirtyMeasured(mpMonitor *mon, const char *uuid, const mpDirtyMeasurement *m,
                       int64_t ageMs)
{
    mpMigration *mig = mpMonitorFind(mon, uuid);
    mpDirtyMeasurement fed;

    if (!mig)
        return;
    fed = *m;
    fed.age_ms = (unsigned long long)(ageMs > 0 ? ageMs : 0);
    if (mpPolicySetDirty(mig->policy, &fed) < 0) {
        MP_ERROR(uuid, "dirty-rate measurement of %s not given to the policy: %s",
                 mig->name, mpGetLastErrorMessage());
        return;
    }
    MP_DEBUG(uuid, "dirty-rate measurement of %s (%llu ms old) given to the policy "
             "(pass %u)", mig->name, fed.age_ms, mig->pass);
    mpMonitorForecast(mon, mig, &fed);
}

static void
mpMonitorDirtyResult(const char *uuid, const char *name, mpDirtyRateStatus status,
                     const mpDirtyMeasurement *m, const char *error, void *opaque)
{
    mpMonitor *mon = opaque;
    mpDirtyEntry *e;
    char text[256];

    if (status == MP_DIRTYRATE_UNSUPPORTED)
        return;     /* said once by mpdirtyrate */
    e = mpMonitorDirtyEntry(mon, uuid, name, true);
    if (status == MP_DIRTYRATE_FAILED) {
        if (!e->failing)
            MP_WARN(uuid, "dirty rate of %s not measured: %s", name, error);
        else
            MP_DEBUG(uuid, "dirty rate of %s not measured: %s", name, error);
        e->failing = true;
        return;
    }
    e->failing = false;
    e->measured = true;
    e->m = *m;
    e->measuredMono = mpNowMono();
    mpMonitorDirtyText(m, text, sizeof(text));
    MP_INFO(uuid, "dirty rate of %s: %s", name, text);
    if (mon->cb.dirtyRate)
        mon->cb.dirtyRate(uuid, name, m, mpNowWall(), mon->opaque);
    mpMonitorDirtyMeasured(mon, uuid, m, 0);
}

/*
 * Starts measuring dom; why says what asked for it. Failures are said once per outage.
 * Returns mpDirtyRateMeasure's answer (or -1 when not measuring at all).
 */
static int
mpMonitorDirtyMeasure(mpMonitor *mon, virDomainPtr dom, const char *why)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    mpDirtyEntry *e;
    int rc;

    if (!mon->dirty || !mpDirtyRateSupported(mon->dirty) ||
        virDomainGetUUIDString(dom, uuid) < 0)
        return -1;
    if ((rc = mpDirtyRateMeasure(mon->dirty, dom)) == 0) {
        MP_DEBUG(uuid, "measuring the dirty rate of %s (%s)", virDomainGetName(dom), why);
        return 0;
    }
    if (rc > 0 || !mpDirtyRateSupported(mon->dirty))
        return rc;  /* under way already, or a job runs; or said once by mpdirtyrate */
    e = mpMonitorDirtyEntry(mon, uuid, virDomainGetName(dom), true);
    if (!e->failing)
        MP_WARN(uuid, "dirty rate of %s not measured: %s (%s)", e->name,
                mpGetLastErrorMessage(), why);
    else
        MP_DEBUG(uuid, "dirty rate of %s not measured: %s (%s)", e->name,
                 mpGetLastErrorMessage(), why);
    e->failing = true;
    return -1;
}

/*
 * A migration of mig started: measure at once if libvirt lets us (a calc started before
 * the migration is still read during it), else say which measurement there is.
 */
static void
mpMonitorDirtyAtMigrationStart(mpMonitor *mon, mpMigration *mig, virDomainPtr dom)
{
    const mpDirtyMeasurement *m;
    int64_t age = 0;
    char text[256];
    int rc;

    if (!mon->dirty || !mpDirtyRateSupported(mon->dirty))
        return;
    rc = mpMonitorDirtyMeasure(mon, dom, "migration start");
    if (rc == 0 || rc == 1) {
        MP_INFO(mig->uuid, "dirty rate of %s: measuring as its migration starts", mig->name);
        return;
    }
    if (!(m = mpMonitorDirtyLatest(mon, mig->uuid, &age))) {
        MP_INFO(mig->uuid, "dirty rate of %s: no measurement at migration start (libvirt "
                "cannot start one during a migration; [dirtyrate] interval_ms measures "
                "guests beforehand)", mig->name);
        return;
    }
    mpMonitorDirtyText(m, text, sizeof(text));
    MP_INFO(mig->uuid, "dirty rate of %s at migration start: measured %lld ms ago: %s",
            mig->name, (long long)age, text);
    mpMonitorDirtyMeasured(mon, mig->uuid, m, age);
}

static void
mpMonitorDirtyTimer(int timer, void *opaque)
{
    mpMonitor *mon = opaque;
    virDomainPtr *doms = NULL;
    int n;
    int i;

    /* the first round comes soon after start, the next ones every interval_ms */
    virEventUpdateTimeout(timer, (int)mon->cfg->dirtyIntervalMs);
    if (!mon->conn || !mon->dirty || !mpDirtyRateSupported(mon->dirty))
        return;
    if ((n = virConnectListAllDomains(mon->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE)) < 0) {
        MP_DEBUG(NULL, "libvirt: cannot list domains: %s", mpLibvirtError());
        return;
    }
    for (i = 0; i < n; i++) {
        mpMonitorDirtyMeasure(mon, doms[i], "periodic");
        virDomainFree(doms[i]);
    }
    free(doms);
}

/* Measures the guests whose arrival measurement is due; disarms itself when none is left. */
static void
mpMonitorDirtyArrivalTimer(int timer, void *opaque)
{
    mpMonitor *mon = opaque;
    int64_t now = mpNowMono();
    bool pending = false;
    size_t i;

    for (i = 0; i < mon->ndirtyEntries; i++) {
        mpDirtyEntry *e = mon->dirtyEntries[i];
        virDomainPtr dom;

        if (!e->arrivalDueMono)
            continue;
        if (e->arrivalDueMono > now) {
            pending = true;
            continue;
        }
        e->arrivalDueMono = 0;
        if (!mon->conn)
            continue;
        if (!(dom = virDomainLookupByUUIDString(mon->conn, e->uuid))) {
            MP_DEBUG(e->uuid, "libvirt: %s gone before its arrival measurement: %s",
                     e->name, mpLibvirtError());
            continue;
        }
        /* a migration (in or out) holds the domain's job: try again once it is over */
        if (mpMonitorDirtyMeasure(mon, dom, e->arrivalWhy) == 2) {
            e->arrivalDueMono = now + MP_MONITOR_DIRTY_FIRST_MS;
            pending = true;
        }
        virDomainFree(dom);
    }
    if (!pending)
        virEventUpdateTimeout(timer, -1);
}

/* dom booted, came in by migration, or stayed after a failed one (why: static text):
 * measure it MP_MONITOR_DIRTY_FIRST_MS later. */
static void
mpMonitorDirtyArrived(mpMonitor *mon, virDomainPtr dom, const char *uuid, const char *why)
{
    mpDirtyEntry *e;

    if (mon->arrivalTimer < 0 || !mon->dirty || !mpDirtyRateSupported(mon->dirty))
        return;
    e = mpMonitorDirtyEntry(mon, uuid, virDomainGetName(dom), true);
    e->arrivalDueMono = mpNowMono() + MP_MONITOR_DIRTY_FIRST_MS;
    e->arrivalWhy = why;
    virEventUpdateTimeout(mon->arrivalTimer, MP_MONITOR_DIRTY_ARRIVAL_TICK_MS);
}

/* A guest started here, or its incoming migration ended (pre-copy or post-copy). */
static bool
mpMonitorIsArrival(int event, int detail)
{
    if (event == VIR_DOMAIN_EVENT_STARTED)
        return detail != VIR_DOMAIN_EVENT_STARTED_MIGRATED;
    return event == VIR_DOMAIN_EVENT_RESUMED && detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED;
}

const mpDirtyMeasurement *
mpMonitorDirtyLatest(mpMonitor *mon, const char *uuid, int64_t *ageMs)
{
    mpDirtyEntry *e = mpMonitorDirtyEntry(mon, uuid, "", false);

    if (!e || !e->measured)
        return NULL;
    if (ageMs)
        *ageMs = mpNowMono() - e->measuredMono;
    return &e->m;
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
    /* picked up past pass 1 (an agent restart): too late to forecast it */
    mig->forecastTried = (s.has & MP_POLICY_HAS_PASS) && s.pass > 1;
    if (virDomainMigrateGetMaxDowntime(dom, &mig->maxDowntimeMs, 0) < 0)
        mig->maxDowntimeMs = 0;
    /* picked up after a restart: it may be in post-copy already, or paused in it */
    mpMonitorCheckState(mig);
    mpGrow(&mon->migrations, &mon->amigrations, mon->nmigrations + 1, sizeof(mig));
    mon->migrations[mon->nmigrations++] = mig;
    mpMonitorUpdatePollTimer(mon);
    MP_INFO(uuid, "watching outgoing migration of %s (running for %llu ms, pass %u, "
            "policy %s)", mig->name, s.elapsed_ms, s.pass,
            mpPolicyModeToString(mon->policy->mode));
    /* the guest's dirtying, before pass 1 is over (docs/reference/dirty-rate.md) */
    mpMonitorDirtyAtMigrationStart(mon, mig, dom);
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
    for (i = 0; i < n; i++)
        mpMonitorConsider(mon, doms[i]);
    if (mon->dirty)
        mpMonitorDirtyPrune(mon, doms, n);
    for (i = 0; i < n; i++)
        virDomainFree(doms[i]);
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
    if (virDomainGetUUIDString(dom, uuid) < 0)
        return;
    if (mpMonitorIsArrival(event, detail))
        mpMonitorDirtyArrived(mon, dom, uuid, "arrived on this host");
    if (!(mig = mpMonitorFind(mon, uuid)))
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
        /* a resumed migration is back in post-copy */
        mpMonitorNoteResumed(mig, "resumed");
    } else if (event == VIR_DOMAIN_EVENT_SUSPENDED &&
               detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED) {
        mpMonitorNotePaused(mig);
        mpMonitorRecover(mon, mig);
    } else if (event == VIR_DOMAIN_EVENT_RESUMED && mig->pausedInPostcopy) {
        mpMonitorNoteResumed(mig, "resumed");
    } else if (event == VIR_DOMAIN_EVENT_STOPPED) {
        /* source side of a finished migration: poll at once for its outcome */
        mpMonitorPollOne(mon, mig);
    }
}

static void mpMonitorScheduleReconnect(mpMonitor *mon);

static void
mpMonitorCloseCallback(virConnectPtr conn, int reason, void *opaque);

static void
mpMonitorDisconnect(mpMonitor *mon)
{
    size_t i;

    /* measurements under way are dropped: their domain handles die with the connection */
    if (mon->dirty)
        mpDirtyRateSetConnection(mon->dirty, NULL);
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
        /* libvirt finds the registration by its callback: without it, nothing is
         * unregistered and the callback may fire after the monitor is gone */
        if (virConnectUnregisterCloseCallback(mon->conn, mpMonitorCloseCallback) < 0)
            MP_DEBUG(NULL, "libvirt: close callback not unregistered: %s",
                     mpLibvirtError());
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
    if (mpFeaturesProbe(mon->conn, &mon->features) < 0) {
        MP_WARN(NULL, "%s; optional features off", mpGetLastErrorMessage());
        mpFeaturesDecide(0, 0, &mon->features);
    }
    mon->loggedDown = false;
    if (mon->dirty)
        mpDirtyRateSetConnection(mon->dirty, mon->conn);
    mpMonitorDiscover(mon);
    mpMonitorRecoveryPrune(mon);
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
    int n;

    mon->cfg = cfg;
    mon->policy = policy;
    mon->cb = *cb;
    mon->opaque = opaque;
    for (i = 0; i < sizeof(mon->callbackIds) / sizeof(mon->callbackIds[0]); i++)
        mon->callbackIds[i] = -1;
    mon->pollTimer = -1;
    mon->discoveryTimer = -1;
    mon->reconnectTimer = -1;
    mon->dirtyTimer = -1;
    mon->arrivalTimer = -1;
    if (cfg->dirtyEnabled &&
        !(mon->dirty = mpDirtyRateNew(cfg->dirtyWindowsS, cfg->ndirtyWindows,
                                      cfg->dirtyMarginMs, mpMonitorDirtyResult, mon))) {
        free(mon);
        return NULL;
    }
    /* without it recovery still works, as long as nova names the destination */
    if (!(mon->recovery = mpRecoveryStateNew(cfg->stateDir)) ||
        (n = mpRecoveryStateLoad(mon->recovery, mpNowWall(),
                                 MP_MONITOR_RECOVERY_MAX_AGE_MS)) < 0) {
        MP_ERROR(NULL, "%s; destinations of post-copy migrations are not kept across "
                 "restarts", mpGetLastErrorMessage());
        mpRecoveryStateFree(mon->recovery);
        mon->recovery = NULL;
    } else if (n > 0) {
        MP_INFO(NULL, "recovery state: %d saved destination(s) of migrations from this "
                "host", n);
    }
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
    if (mon->dirtyTimer >= 0)
        virEventRemoveTimeout(mon->dirtyTimer);
    if (mon->arrivalTimer >= 0)
        virEventRemoveTimeout(mon->arrivalTimer);
    mpMonitorDisconnect(mon);
    mpDirtyRateFree(mon->dirty);
    for (i = 0; i < mon->ndirtyEntries; i++)
        free(mon->dirtyEntries[i]);
    free(mon->dirtyEntries);
    for (i = 0; i < mon->nmigrations; i++)
        mpMigrationFree(mon->migrations[i]);
    free(mon->migrations);
    mpRecoveryStateFree(mon->recovery);
    free(mon);
}

int
mpMonitorStart(mpMonitor *mon)
{
    mon->pollTimer = virEventAddTimeout(-1, mpMonitorPoll, mon, NULL);
    mon->discoveryTimer = virEventAddTimeout((int)mon->cfg->discoveryIntervalMs,
                                             mpMonitorDiscoveryTimer, mon, NULL);
    if (mon->dirty && mon->cfg->dirtyIntervalMs)
        mon->dirtyTimer = virEventAddTimeout((int)(mon->cfg->dirtyIntervalMs <
                                                   MP_MONITOR_DIRTY_FIRST_MS ?
                                                   mon->cfg->dirtyIntervalMs :
                                                   MP_MONITOR_DIRTY_FIRST_MS),
                                             mpMonitorDirtyTimer, mon, NULL);
    /* arrivals are measured where guests are measured periodically: interval_ms = 0
     * asks for measurements at migration start only */
    if (mon->dirty && mon->cfg->dirtyIntervalMs)
        mon->arrivalTimer = virEventAddTimeout(-1, mpMonitorDirtyArrivalTimer, mon, NULL);
    if (mon->pollTimer < 0 || mon->discoveryTimer < 0 ||
        (mon->dirty && mon->cfg->dirtyIntervalMs &&
         (mon->dirtyTimer < 0 || mon->arrivalTimer < 0))) {
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
