/*
 * mpdirtyrate.c: a guest's memory dirtying, measured with libvirt's dirty-rate calc
 */
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpalloc.h"
#include "mpdirtyrate.h"
#include "mperror.h"
#include "mplog.h"

/* libvirt's statistics keys (VIR_DOMAIN_STATS_DIRTYRATE). */
#define MP_DIRTYRATE_KEY_STATUS "dirtyrate.calc_status"
#define MP_DIRTYRATE_KEY_START "dirtyrate.calc_start_time"
#define MP_DIRTYRATE_KEY_PERIOD "dirtyrate.calc_period"
#define MP_DIRTYRATE_KEY_RATE "dirtyrate.megabytes_per_second"
#define MP_DIRTYRATE_KEY_MODE "dirtyrate.calc_mode"

/* virDomainStartDirtyRateCalc appeared in libvirt 7.2.0. */
#define MP_DIRTYRATE_MIN_LIBVIRT 7002000UL

/* A window's result not there at its end + margin is polled for this often, this long. */
#define MP_DIRTYRATE_POLL_MS 250
#define MP_DIRTYRATE_MAX_POLLS 20

typedef struct _mpDirtyJob mpDirtyJob;
struct _mpDirtyJob {
    mpDirtyRate *dr;
    char uuid[VIR_UUID_STRING_BUFLEN];
    char name[128];
    virDomainPtr dom;
    int timer;
    size_t window;              /* index into dr->windowsS of the window under way */
    long long notBeforeS;       /* QEMU start time a result of ours has at least */
    unsigned polls;
    mpDirtyMeasurement m;
};

struct _mpDirtyRate {
    unsigned windowsS[MP_DIRTY_MAX_WINDOWS];
    size_t nwindows;
    unsigned marginMs;
    mpDirtyRateCallback cb;
    void *opaque;

    virConnectPtr conn;         /* borrowed */
    bool unsupported;
    bool warnedUnsupported;     /* "unsupported" is said once per agent run */
    mpDirtyJob **jobs;
    size_t njobs;
    size_t ajobs;
};

static const char *
mpDirtyRateLibvirtError(void)
{
    virErrorPtr err = virGetLastError();

    return err && err->message ? err->message : "unknown libvirt error";
}

int
mpDirtyRateParseStats(virTypedParameterPtr params, int nparams, mpDirtyRateStats *st)
{
    int status = -1;
    long long start = 0;
    int period = 0;
    long long rate = -1;
    const char *mode = NULL;

    memset(st, 0, sizeof(*st));
    st->rate_mibs = -1;
    if (virTypedParamsGetInt(params, nparams, MP_DIRTYRATE_KEY_STATUS, &status) != 1) {
        mpReportError("dirty rate: no %s in the domain's statistics", MP_DIRTYRATE_KEY_STATUS);
        return -1;
    }
    if (status < MP_DIRTYRATE_CALC_UNSTARTED || status > MP_DIRTYRATE_CALC_MEASURED) {
        mpReportError("dirty rate: unknown %s %d", MP_DIRTYRATE_KEY_STATUS, status);
        return -1;
    }
    virTypedParamsGetLLong(params, nparams, MP_DIRTYRATE_KEY_START, &start);
    virTypedParamsGetInt(params, nparams, MP_DIRTYRATE_KEY_PERIOD, &period);
    virTypedParamsGetLLong(params, nparams, MP_DIRTYRATE_KEY_RATE, &rate);
    virTypedParamsGetString(params, nparams, MP_DIRTYRATE_KEY_MODE, &mode);
    if (start < 0 || period < 0) {
        mpReportError("dirty rate: negative %s (%lld) or %s (%d)", MP_DIRTYRATE_KEY_START,
                      start, MP_DIRTYRATE_KEY_PERIOD, period);
        return -1;
    }
    if (status == MP_DIRTYRATE_CALC_MEASURED && rate < 0) {
        mpReportError("dirty rate: measured, but %s is %s", MP_DIRTYRATE_KEY_RATE,
                      rate == -1 ? "missing" : "negative");
        return -1;
    }
    st->status = status;
    st->start_time_s = start;
    st->period_s = period;
    st->rate_mibs = status == MP_DIRTYRATE_CALC_MEASURED ? rate : -1;
    if (mode)
        snprintf(st->mode, sizeof(st->mode), "%s", mode);
    return 0;
}

int
mpDirtyRateAddWindow(mpDirtyMeasurement *m, const mpDirtyRateStats *st, int expectedS,
                     long long notBeforeS)
{
    size_t i;
    unsigned long long windowMs;

    if (expectedS <= 0) {
        mpReportError("dirty rate: window of %d s asked for", expectedS);
        return -1;
    }
    /* still running, or a result of an earlier calc (ours or someone else's) */
    if (st->status != MP_DIRTYRATE_CALC_MEASURED || st->start_time_s < notBeforeS ||
        st->period_s != expectedS)
        return 1;
    if (st->rate_mibs < 0) {
        mpReportError("dirty rate: measured window without a rate");
        return -1;
    }
    if (m->nwindows >= MP_DIRTY_MAX_WINDOWS) {
        mpReportError("dirty rate: more than %d windows in one measurement",
                      MP_DIRTY_MAX_WINDOWS);
        return -1;
    }
    windowMs = (unsigned long long)expectedS * 1000;
    for (i = 0; i < m->nwindows; i++) {
        if (m->windows[i].window_ms == windowMs) {
            mpReportError("dirty rate: two windows of %d s in one measurement", expectedS);
            return -1;
        }
        if (m->windows[i].window_ms > windowMs)
            break;
    }
    memmove(m->windows + i + 1, m->windows + i, (m->nwindows - i) * sizeof(m->windows[0]));
    m->windows[i].window_ms = windowMs;
    m->windows[i].rate_mibs = (unsigned long long)st->rate_mibs;
    m->nwindows++;
    return 0;
}

mpDirtyRate *
mpDirtyRateNew(const unsigned *windowsS, size_t nwindows, unsigned marginMs,
               mpDirtyRateCallback cb, void *opaque)
{
    mpDirtyRate *dr;
    size_t i;

    if (nwindows == 0 || nwindows > MP_DIRTY_MAX_WINDOWS) {
        mpReportError("dirty rate: %zu windows (expected 1 to %d)", nwindows,
                      MP_DIRTY_MAX_WINDOWS);
        return NULL;
    }
    for (i = 0; i < nwindows; i++) {
        if (windowsS[i] < 1 || windowsS[i] > 60) {
            mpReportError("dirty rate: window of %u s (libvirt takes 1 to 60)", windowsS[i]);
            return NULL;
        }
    }
    dr = mpAlloc0(sizeof(*dr));
    memcpy(dr->windowsS, windowsS, nwindows * sizeof(windowsS[0]));
    dr->nwindows = nwindows;
    dr->marginMs = marginMs;
    dr->cb = cb;
    dr->opaque = opaque;
    return dr;
}

static void
mpDirtyJobFree(mpDirtyJob *job)
{
    if (!job)
        return;
    if (job->timer >= 0)
        virEventRemoveTimeout(job->timer);
    if (job->dom)
        virDomainFree(job->dom);
    free(job);
}

static void
mpDirtyRateDropJobs(mpDirtyRate *dr)
{
    size_t i;

    for (i = 0; i < dr->njobs; i++)
        mpDirtyJobFree(dr->jobs[i]);
    dr->njobs = 0;
}

void
mpDirtyRateFree(mpDirtyRate *dr)
{
    if (!dr)
        return;
    mpDirtyRateDropJobs(dr);
    free(dr->jobs);
    free(dr);
}

static void
mpDirtyRateSayUnsupported(mpDirtyRate *dr, const char *why)
{
    dr->unsupported = true;
    if (dr->warnedUnsupported)
        return;
    dr->warnedUnsupported = true;
    MP_WARN(NULL, "dirty rate: cannot measure guests on this host (%s); the policy decides "
            "without the measurement", why);
}

void
mpDirtyRateSetConnection(mpDirtyRate *dr, virConnectPtr conn)
{
    unsigned long version = 0;
    char why[128];

    mpDirtyRateDropJobs(dr);
    dr->conn = conn;
    dr->unsupported = false;
    if (!conn)
        return;
#if !LIBVIR_CHECK_VERSION(7, 2, 0)
    mpDirtyRateSayUnsupported(dr, "the agent was built against libvirt older than 7.2");
    return;
#endif
    if (virConnectGetLibVersion(conn, &version) < 0) {
        /* not decisive: the first calc will tell */
        MP_DEBUG(NULL, "dirty rate: libvirt version unknown: %s", mpDirtyRateLibvirtError());
        return;
    }
    if (version < MP_DIRTYRATE_MIN_LIBVIRT) {
        snprintf(why, sizeof(why), "libvirtd %lu.%lu.%lu is older than 7.2.0, which added "
                 "virDomainStartDirtyRateCalc", version / 1000000, version / 1000 % 1000,
                 version % 1000);
        mpDirtyRateSayUnsupported(dr, why);
    }
}

bool
mpDirtyRateSupported(const mpDirtyRate *dr)
{
    return dr->conn && !dr->unsupported;
}

static mpDirtyJob *
mpDirtyRateFind(const mpDirtyRate *dr, const char *uuid)
{
    size_t i;

    for (i = 0; i < dr->njobs; i++) {
        if (strcmp(dr->jobs[i]->uuid, uuid) == 0)
            return dr->jobs[i];
    }
    return NULL;
}

bool
mpDirtyRateBusy(const mpDirtyRate *dr, const char *uuid)
{
    return mpDirtyRateFind(dr, uuid) != NULL;
}

/* Removes job from the list, reports its end, frees it. */
static void
mpDirtyJobEnd(mpDirtyJob *job, mpDirtyRateStatus status, const char *error)
{
    mpDirtyRate *dr = job->dr;
    size_t i;

    for (i = 0; i < dr->njobs; i++) {
        if (dr->jobs[i] == job) {
            memmove(dr->jobs + i, dr->jobs + i + 1, (dr->njobs - i - 1) * sizeof(job));
            dr->njobs--;
            break;
        }
    }
    if (dr->cb)
        dr->cb(job->uuid, job->name, status,
               status == MP_DIRTYRATE_MEASURED ? &job->m : NULL, error, dr->opaque);
    mpDirtyJobFree(job);
}

/* Whether libvirt's refusal says this libvirt/QEMU cannot calc at all. */
static bool
mpDirtyRateRefusalIsUnsupported(virErrorPtr err)
{
    if (!err)
        return false;
    if (err->code == VIR_ERR_NO_SUPPORT)
        return true;
    /* QEMU without calc-dirty-rate (< 5.2): "The command ... has not been found" */
    return err->message && strstr(err->message, "calc-dirty-rate") &&
        strstr(err->message, "not been found");
}

/* The domain's dirtyrate.* statistics now; -1 with an error. */
static int
mpDirtyRateReadStats(mpDirtyRate *dr, virDomainPtr dom, mpDirtyRateStats *st)
{
    virDomainPtr doms[2] = { dom, NULL };
    virDomainStatsRecordPtr *records = NULL;
    int n;
    int ret = -1;

    if ((n = virDomainListGetStats(doms, VIR_DOMAIN_STATS_DIRTYRATE, &records, 0)) < 0) {
        mpReportError("cannot read its dirty-rate statistics: %s", mpDirtyRateLibvirtError());
        goto cleanup;
    }
    if (n != 1) {
        mpReportError("libvirt returned no dirty-rate statistics for it");
        goto cleanup;
    }
    if (mpDirtyRateParseStats(records[0]->params, records[0]->nparams, st) < 0)
        goto cleanup;
    ret = 0;

 cleanup:
    if (records)
        virDomainStatsRecordListFree(records);
    (void)dr;
    return ret;
}

/*
 * Whether a libvirt job (a migration) runs on dom. libvirt 9 holds a dirty-rate calc
 * for the job's lock until it times out (30 s), blocking the caller: so no calc is ever
 * started while one runs. A result of a calc started before is still read (a query).
 */
static bool
mpDirtyRateJobActive(virDomainPtr dom)
{
    virDomainJobInfo info;

    return virDomainGetJobInfo(dom, &info) == 0 && info.type != VIR_DOMAIN_JOB_NONE;
}

/*
 * Starts the job's current window and arms its timer. 0 started; 2 not started because a
 * libvirt job runs on the domain (no error reported); -1 with an error, *unsupported set
 * when libvirt/QEMU cannot calc at all.
 */
static int
mpDirtyJobStartWindow(mpDirtyJob *job, bool *unsupported)
{
    mpDirtyRate *dr = job->dr;
    int seconds = (int)dr->windowsS[job->window];
    mpDirtyRateStats before;

    *unsupported = false;
    if (mpDirtyRateJobActive(job->dom))
        return 2;
    /* what an earlier calc left: our result must be newer */
    if (mpDirtyRateReadStats(dr, job->dom, &before) < 0)
        return -1;
    if (before.status == MP_DIRTYRATE_CALC_MEASURING) {
        mpReportError("a dirty-rate calc is already running on it (started by someone else)");
        return -1;
    }
    job->notBeforeS = before.status == MP_DIRTYRATE_CALC_MEASURED ? before.start_time_s + 1 : 0;
#if LIBVIR_CHECK_VERSION(7, 2, 0)
    if (virDomainStartDirtyRateCalc(job->dom, seconds, 0) < 0) {
        *unsupported = mpDirtyRateRefusalIsUnsupported(virGetLastError());
        mpReportError("dirty-rate calc of %d s refused: %s", seconds, mpDirtyRateLibvirtError());
        return -1;
    }
#else
    *unsupported = true;
    mpReportError("dirty-rate calc needs libvirt 7.2");
    return -1;
#endif
    job->polls = 0;
    virEventUpdateTimeout(job->timer, seconds * 1000 + (int)dr->marginMs);
    return 0;
}

static void
mpDirtyJobTimer(int timer, void *opaque)
{
    mpDirtyJob *job = opaque;
    mpDirtyRate *dr = job->dr;
    mpDirtyRateStats st;
    bool unsupported;
    int rc;

    (void)timer;
    virEventUpdateTimeout(job->timer, -1);
    if (mpDirtyRateReadStats(dr, job->dom, &st) < 0 ||
        (rc = mpDirtyRateAddWindow(&job->m, &st, (int)dr->windowsS[job->window],
                                   job->notBeforeS)) < 0) {
        mpDirtyJobEnd(job, MP_DIRTYRATE_FAILED, mpGetLastErrorMessage());
        return;
    }
    if (rc == 1) {
        if (++job->polls > MP_DIRTYRATE_MAX_POLLS) {
            char why[128];

            snprintf(why, sizeof(why), "the %u s window gave no result %u ms after its end",
                     dr->windowsS[job->window],
                     dr->marginMs + MP_DIRTYRATE_MAX_POLLS * MP_DIRTYRATE_POLL_MS);
            mpDirtyJobEnd(job, MP_DIRTYRATE_FAILED, why);
            return;
        }
        virEventUpdateTimeout(job->timer, MP_DIRTYRATE_POLL_MS);
        return;
    }
    MP_DEBUG(job->uuid, "dirty rate of %s over %u s: %llu MiB/s (%s)", job->name,
             dr->windowsS[job->window], (unsigned long long)st.rate_mibs, st.mode);
    if (++job->window == dr->nwindows) {
        mpDirtyJobEnd(job, MP_DIRTYRATE_MEASURED, NULL);
        return;
    }
    if ((rc = mpDirtyJobStartWindow(job, &unsupported)) == 2) {
        /* a migration began meanwhile: the windows measured so far are the measurement */
        MP_DEBUG(job->uuid, "dirty rate of %s: a libvirt job started, %zu of %zu windows "
                 "measured", job->name, job->m.nwindows, dr->nwindows);
        mpDirtyJobEnd(job, MP_DIRTYRATE_MEASURED, NULL);
    } else if (rc < 0) {
        if (unsupported)
            mpDirtyRateSayUnsupported(dr, mpGetLastErrorMessage());
        mpDirtyJobEnd(job, unsupported ? MP_DIRTYRATE_UNSUPPORTED : MP_DIRTYRATE_FAILED,
                      mpGetLastErrorMessage());
    }
}

int
mpDirtyRateMeasure(mpDirtyRate *dr, virDomainPtr dom)
{
    mpDirtyJob *job = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    unsigned long maxKiB;
    bool unsupported;
    int rc;
    int ret = -1;

    if (!dr->conn) {
        mpReportError("not connected to libvirt");
        return -1;
    }
    if (dr->unsupported) {
        mpReportError("not supported by this host's libvirt or QEMU");
        return -1;
    }
    if (virDomainGetUUIDString(dom, uuid) < 0) {
        mpReportError("domain without a UUID: %s", mpDirtyRateLibvirtError());
        return -1;
    }
    if (mpDirtyRateFind(dr, uuid))
        return 1;

    job = mpAlloc0(sizeof(*job));
    job->dr = dr;
    job->timer = -1;
    memcpy(job->uuid, uuid, sizeof(uuid));
    snprintf(job->name, sizeof(job->name), "%s", virDomainGetName(dom));
    virDomainRef(dom);
    job->dom = dom;
    if ((maxKiB = virDomainGetMaxMemory(dom)) == 0) {
        mpReportError("cannot read its memory size: %s", mpDirtyRateLibvirtError());
        goto cleanup;
    }
    job->m.memory_bytes = (unsigned long long)maxKiB * 1024;
    if ((job->timer = virEventAddTimeout(-1, mpDirtyJobTimer, job, NULL)) < 0) {
        mpReportError("cannot add a timer to the event loop");
        goto cleanup;
    }
    if ((rc = mpDirtyJobStartWindow(job, &unsupported)) == 2) {
        ret = 2;
        goto cleanup;
    }
    if (rc < 0) {
        if (unsupported)
            mpDirtyRateSayUnsupported(dr, mpGetLastErrorMessage());
        goto cleanup;
    }
    mpGrow(&dr->jobs, &dr->ajobs, dr->njobs + 1, sizeof(job));
    dr->jobs[dr->njobs++] = job;
    job = NULL;
    ret = 0;

 cleanup:
    mpDirtyJobFree(job);
    return ret;
}
