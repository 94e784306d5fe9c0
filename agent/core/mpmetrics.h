/*
 * mpmetrics.h: what one migration cost, and the payloads of migpilot's notifications
 *
 *   compute.live_migration.progress   during a migration
 *   compute.live_migration.switch     when it is switched (or would be) to post-copy
 *   compute.live_migration.metrics    once, when it has finished, whatever the outcome
 *   compute.live_migration.forecast   when it starts and the guest's dirtying is measured:
 *                                     what the forecast (mpforecast.h) predicts
 *   compute.live_migration.dirty_rate each dirty-rate measurement of a guest of the host
 *                                     (migration or not): its working set and write rate
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "mpdirty.h"
#include "mpenum.h"
#include "mpforecast.h"

#define MP_EVENT_PROGRESS "compute.live_migration.progress"
#define MP_EVENT_SWITCH "compute.live_migration.switch"
#define MP_EVENT_METRICS "compute.live_migration.metrics"
#define MP_EVENT_FORECAST "compute.live_migration.forecast"
#define MP_EVENT_DIRTY_RATE "compute.live_migration.dirty_rate"

typedef enum {
    MP_OUTCOME_UNKNOWN = 0,
    MP_OUTCOME_COMPLETED,
    MP_OUTCOME_FAILED,
    MP_OUTCOME_CANCELLED,
    MP_OUTCOME_RECOVERED,   /* completed after its post-copy phase was paused and resumed */
    MP_OUTCOME_LAST
} mpOutcome;
MP_ENUM_DECL(Outcome);

typedef enum {
    MP_DECIDED_NONE = 0,
    MP_DECIDED_MIGPILOT,    /* the agent switched it */
    MP_DECIDED_OTHER,       /* nova's force-complete / timeout, or an operator */
    MP_DECIDED_LAST
} mpDecidedBy;
MP_ENUM_DECL(DecidedBy);

/* Who the migration is: from libvirt (instance) and nova's notifications (the rest). */
typedef struct _mpMigrationIdentity mpMigrationIdentity;
struct _mpMigrationIdentity {
    char instanceId[37];
    char projectId[65];
    char userId[65];
    char requestId[65];
    char sourceHost[256];
    char destHost[256];
};

typedef struct _mpMigrationRecord mpMigrationRecord;
struct _mpMigrationRecord {
    mpMigrationIdentity id;
    mpOutcome outcome;
    bool postcopy;                  /* mode: post-copy if it ever switched */
    int64_t startedAtMs;            /* UTC epoch ms */
    int64_t finishedAtMs;
    int64_t migrationTimeMs;        /* libvirt time_elapsed of the completed job */
    int64_t downtimeMs;             /* -1 unknown */
    int64_t downtimeNetMs;          /* libvirt's downtime_net: -1 unknown (not sent) */
    uint64_t bytesTransferred;      /* data_processed (memory + disk) */
    uint64_t memoryTotalBytes;
    int passes;                     /* memory_iteration */
    int64_t postcopySwitchMs;       /* ms after start; -1: never switched */
    int64_t postcopyRequests;       /* -1 unknown */
    int64_t novaTimeMs;             /* from nova-compute's log; -1 unknown */
    int64_t novaSwitchAtMs;         /* nova's "Switching to post-copy migration mode", epoch
                                     * ms from its log; -1 none or unknown */
    int64_t novaPostcopyAtMs;       /* nova's "VM Postcopy started" event, likewise */
    int64_t outageMs;               /* recovered post-copy: how long it was paused; -1 none */
    char switchReason[64];          /* the policy rule, "" when not switched */
    mpDecidedBy decidedBy;
    char error[256];                /* libvirt's error message of a failed job, or "" */
    bool haveForecast;              /* forecast holds what was predicted at the start */
    mpForecast forecast;
};

typedef struct _mpProgress mpProgress;
struct _mpProgress {
    int64_t elapsedMs;
    int pass;
    uint64_t memoryTotal;
    uint64_t memoryProcessed;
    uint64_t memoryRemaining;
    uint64_t bandwidthBps;
    uint64_t dirtyRateBps;
    const char *prediction;         /* "converging", "not-converging", "unknown" */
    int64_t predictedFinishMs;      /* -1 unknown */
};

typedef struct _mpSwitch mpSwitch;
struct _mpSwitch {
    int64_t elapsedMs;
    int pass;
    const char *reason;             /* the rule that fired */
    const char *explanation;        /* one line, the figures behind it */
    json_t *figures;                /* borrowed object, may be NULL */
    mpDecidedBy decidedBy;
    bool acted;                     /* false in observe mode or when post-copy is not permitted */
};

void mpMigrationRecordInit(mpMigrationRecord *rec);

/* mpOutcomeTypeToString, never NULL: "unknown" when out of range. */
const char *mpOutcomeName(mpOutcome outcome);

/* New references; the caller owns them. */
json_t *mpProgressPayload(const mpMigrationIdentity *id, const mpProgress *progress);
json_t *mpSwitchPayload(const mpMigrationIdentity *id, const mpSwitch *sw);
json_t *mpMetricsPayload(const mpMigrationRecord *rec);
/* The forecast of a starting migration: the identity and mpForecastToJSON's keys. */
json_t *mpForecastPayload(const mpMigrationIdentity *id, const mpForecast *fc);
/* A dirty-rate measurement of a guest (id: instance_id and what nova told; name its
 * libvirt name), measuredAtMs epoch ms, with W and r as the policy derives them (null
 * with the reason in "status" when the windows are inconsistent). */
json_t *mpDirtyRatePayload(const mpMigrationIdentity *id, const char *name,
                           const mpDirtyMeasurement *m, int64_t measuredAtMs);

/* Copies src into a fixed field, truncating; NULL leaves it empty. */
void mpMetricsSetField(char *dst, size_t dstlen, const char *src);
#define MP_SET_FIELD(dst, src) mpMetricsSetField((dst), sizeof(dst), (src))
