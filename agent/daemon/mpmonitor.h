/*
 * mpmonitor.h: libvirt's view of this host's outgoing live migrations
 *
 * Owns the libvirt connection, its domain events and the job-stats poll timer. Each
 * active outgoing migration gets a policy; when it says switch (auto mode) the monitor
 * calls virDomainMigrateStartPostCopy. A post-copy migration whose link broke (source
 * paused, POSTCOPY_FAILED) is resumed with VIR_MIGRATE_POSTCOPY_RESUME, retried until the
 * link is back, each attempt in a worker thread of its own so that the event loop never
 * blocks. Nothing but libvirt's own view can make it act.
 */
#pragma once

#include "mpconfig.h"
#include "mpdirty.h"
#include "mpforecast.h"
#include "mpmetrics.h"
#include "mppolicy.h"

typedef struct _mpMonitor mpMonitor;

typedef struct _mpMonitorCallbacks mpMonitorCallbacks;
struct _mpMonitorCallbacks {
    /* At most every progress_interval_ms during a migration. */
    void (*progress)(const char *uuid, int64_t startedAtMs, const mpProgress *progress,
                     void *opaque);
    /* A switch was decided (acted on or only reported), or someone else switched. */
    void (*switched)(const char *uuid, int64_t startedAtMs, const mpSwitch *sw,
                     void *opaque);
    /* Once per migration, before its first pass ends, when a dirty-rate measurement of
     * the guest and a link rate are known: the forecast (mpforecast.h). May be NULL. */
    void (*forecast)(const char *uuid, int64_t startedAtMs, const mpForecast *fc,
                     void *opaque);
    /* Each dirty-rate measurement of a guest of this host, migrating or not, taken at
     * measuredAtMs (epoch ms). May be NULL. */
    void (*dirtyRate)(const char *uuid, const char *name, const mpDirtyMeasurement *m,
                      int64_t measuredAtMs, void *opaque);
    /* Once per migration, when it has finished; rec->id has only the instance filled. */
    void (*finished)(mpMigrationRecord *rec, void *opaque);
    /* The destination's nova host name of this instance's migration, from nova's
     * notifications, or NULL if unknown; borrowed until the callback returns. Post-copy
     * recovery needs it: libvirt does not tell a migration's destination. */
    const char *(*destination)(const char *uuid, void *opaque);
};

/* cfg and policy are borrowed (NULL with an error if [dirtyrate] is unusable) and must outlive the monitor (see mpMonitorSetPolicy). */
mpMonitor *mpMonitorNew(const mpConfig *cfg, const mpPolicyConfig *policy,
                        const mpMonitorCallbacks *cb, void *opaque);
void mpMonitorFree(mpMonitor *mon);

/* Connects (retrying in the background if libvirtd is not there) and picks up
 * migrations already running. Needs libvirt's event loop registered. */
int mpMonitorStart(mpMonitor *mon);

/* New migrations use this policy configuration from now on (SIGHUP). */
void mpMonitorSetPolicy(mpMonitor *mon, const mpPolicyConfig *policy);

/*
 * nova named host as the destination of uuid's migration (its pre_live_migration
 * notifications, sent before the job starts). Saved in state_dir/recovery when the guest
 * is on this host, so that an agent restarted while the migration is paused in post-copy
 * can resume it; forgotten when the migration ends. Information only: it is used as
 * mpMonitorCallbacks.destination is, and only when nova has not named one since.
 */
void mpMonitorNoteDestination(mpMonitor *mon, const char *uuid, const char *host);

/* Number of migrations being watched. */
size_t mpMonitorActiveCount(mpMonitor *mon);

/*
 * The latest dirty-rate measurement of a domain active on this host (by UUID string), and
 * in *ageMs how old it is; NULL if none. Owned by the monitor, valid until the next event.
 */
const mpDirtyMeasurement *mpMonitorDirtyLatest(mpMonitor *mon, const char *uuid,
                                               int64_t *ageMs);
