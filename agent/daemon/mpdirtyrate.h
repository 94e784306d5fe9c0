/*
 * mpdirtyrate.h: a guest's memory dirtying, measured with libvirt's dirty-rate calc
 *
 * virDomainStartDirtyRateCalc (libvirt >= 7.2, QEMU calc-dirty-rate) starts one window
 * and returns at once; its result appears in virDomainListGetStats(VIR_DOMAIN_STATS_
 * DIRTYRATE) once the window is over. A measurement is a few such windows of different
 * length, one after the other (QEMU runs one calc per domain at a time and refuses a
 * second). Nothing here blocks the event loop: each window is started, a timeout is
 * armed for its end plus a margin, and the statistics are read then. No calc is started
 * while a libvirt job runs on the domain: libvirt would block the call for the job's
 * lock (measured: 30 s during a migration, then "cannot acquire state change lock").
 *
 * Only the page-sampling mode is used: dirty-ring needs KVM's dirty ring, and the
 * dirty-bitmap mode crashed QEMU 7.2 under TCG (docs/reference/dirty-rate.md).
 */
#pragma once

#include <libvirt/libvirt.h>
#include <stdbool.h>

#include "mpdirty.h"

typedef struct _mpDirtyRate mpDirtyRate;

typedef enum {
    MP_DIRTYRATE_MEASURED,      /* m holds every window */
    MP_DIRTYRATE_FAILED,        /* this measurement failed (domain gone, calc refused) */
    MP_DIRTYRATE_UNSUPPORTED,   /* the connection cannot measure: the caller falls back */
} mpDirtyRateStatus;

/* One measurement ended. m is NULL unless MEASURED; error is NULL when MEASURED. All
 * borrowed for the duration of the call. */
typedef void (*mpDirtyRateCallback)(const char *uuid, const char *name,
                                    mpDirtyRateStatus status, const mpDirtyMeasurement *m,
                                    const char *error, void *opaque);

/* QEMU's calc-dirty-rate status, as libvirt's dirtyrate.calc_status reports it. */
typedef enum {
    MP_DIRTYRATE_CALC_UNSTARTED = 0,
    MP_DIRTYRATE_CALC_MEASURING = 1,
    MP_DIRTYRATE_CALC_MEASURED = 2,
} mpDirtyRateCalcStatus;

/* The dirtyrate.* statistics of one domain. */
typedef struct _mpDirtyRateStats {
    int status;                         /* mpDirtyRateCalcStatus */
    long long start_time_s;             /* QEMU's clock when the window began */
    int period_s;                       /* the window's length */
    long long rate_mibs;                /* -1: not given (not measured yet) */
    char mode[32];                      /* "page-sampling", ... ("" if not given) */
} mpDirtyRateStats;

/*
 * Pure: reads the dirtyrate.* typed parameters of one domain. -1 with an error when
 * calc_status is missing or a value is out of range.
 */
int mpDirtyRateParseStats(virTypedParameterPtr params, int nparams, mpDirtyRateStats *st);

/*
 * Pure: adds the window st measured to m once it is the one asked for (expectedS),
 * keeping m's windows shortest first. 0 added; 1 not this window's result yet (still
 * measuring, or an earlier calc's); -1 with an error (bad figures, too many windows).
 */
int mpDirtyRateAddWindow(mpDirtyMeasurement *m, const mpDirtyRateStats *st, int expectedS,
                         long long notBeforeS);

/*
 * windowsS: lengths of the windows in seconds, 1-60 each (libvirt takes whole seconds),
 * measured in this order; copied. marginMs: wait past a window's end before reading.
 */
mpDirtyRate *mpDirtyRateNew(const unsigned *windowsS, size_t nwindows, unsigned marginMs,
                            mpDirtyRateCallback cb, void *opaque);
/* Cancels measurements under way (no callbacks). Accepts NULL. */
void mpDirtyRateFree(mpDirtyRate *dr);

/*
 * The connection measurements use (borrowed; NULL while libvirtd is away: measurements
 * under way are dropped without callbacks). Detects support from the daemon's version.
 */
void mpDirtyRateSetConnection(mpDirtyRate *dr, virConnectPtr conn);

/* false once the connection showed it cannot measure (too old, or a calc refused). */
bool mpDirtyRateSupported(const mpDirtyRate *dr);

/*
 * Starts measuring dom (referenced while measured). 0: started (the callback will come);
 * 1: dom is being measured already; 2: not started, a libvirt job (a migration) runs on
 * dom: libvirt 9 would hold the calc up to 30 s for the job's lock, so none is started
 * then (no error reported); -1 with an error saying why dom is not measured (no
 * connection, unsupported, or the first calc failed; the caller names the domain). The callback comes only after 0. A measurement whose
 * domain starts migrating between two windows ends with the windows measured so far.
 */
int mpDirtyRateMeasure(mpDirtyRate *dr, virDomainPtr dom);

/* Whether dom (by UUID string) is being measured. */
bool mpDirtyRateBusy(const mpDirtyRate *dr, const char *uuid);
