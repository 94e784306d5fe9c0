/*
 * mpmetrics.c: the payloads of migpilot's notifications
 */
#include <math.h>
#include <string.h>

#include "mpmetrics.h"

void
mpMigrationRecordInit(mpMigrationRecord *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->downtimeMs = -1;
    rec->downtimeNetMs = -1;
    rec->postcopySwitchMs = -1;
    rec->postcopyRequests = -1;
    rec->novaTimeMs = -1;
    rec->novaSwitchAtMs = -1;
    rec->novaPostcopyAtMs = -1;
    rec->outageMs = -1;
}

MP_ENUM_IMPL(Outcome, MP_OUTCOME_LAST,
             "unknown", "completed", "failed", "cancelled", "recovered");
MP_ENUM_IMPL(DecidedBy, MP_DECIDED_LAST, "none", "migpilot", "other");

const char *
mpOutcomeName(mpOutcome outcome)
{
    const char *s = mpOutcomeTypeToString(outcome);

    return s ? s : "unknown";
}

void
mpMetricsSetField(char *dst, size_t dstlen, const char *src)
{
    size_t len;

    if (!src) {
        dst[0] = '\0';
        return;
    }
    len = strnlen(src, dstlen - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* An empty field is sent as null: unknown, not the empty string. */
static json_t *
mpMetricsString(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* Negative means unknown: null. */
static json_t *
mpMetricsInt(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *
mpMetricsUnsigned(uint64_t v)
{
    /* json_int_t is signed 64-bit; byte counts never come near 2^63 */
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *
mpMetricsIdentity(const mpMigrationIdentity *id)
{
    json_t *obj = json_object();

    json_object_set_new(obj, "instance_id", mpMetricsString(id->instanceId));
    json_object_set_new(obj, "project_id", mpMetricsString(id->projectId));
    json_object_set_new(obj, "user_id", mpMetricsString(id->userId));
    json_object_set_new(obj, "request_id", mpMetricsString(id->requestId));
    json_object_set_new(obj, "source_host", mpMetricsString(id->sourceHost));
    json_object_set_new(obj, "dest_host", mpMetricsString(id->destHost));
    return obj;
}

json_t *
mpProgressPayload(const mpMigrationIdentity *id, const mpProgress *progress)
{
    json_t *obj = mpMetricsIdentity(id);

    json_object_set_new(obj, "elapsed_ms", mpMetricsInt(progress->elapsedMs));
    json_object_set_new(obj, "pass", json_integer(progress->pass));
    json_object_set_new(obj, "memory_total_bytes", mpMetricsUnsigned(progress->memoryTotal));
    json_object_set_new(obj, "memory_processed_bytes",
                        mpMetricsUnsigned(progress->memoryProcessed));
    json_object_set_new(obj, "memory_remaining_bytes",
                        mpMetricsUnsigned(progress->memoryRemaining));
    json_object_set_new(obj, "bandwidth_bps", mpMetricsUnsigned(progress->bandwidthBps));
    json_object_set_new(obj, "dirty_rate_bps", mpMetricsUnsigned(progress->dirtyRateBps));
    json_object_set_new(obj, "prediction",
                        json_string(progress->prediction ? progress->prediction : "unknown"));
    json_object_set_new(obj, "predicted_finish_ms", mpMetricsInt(progress->predictedFinishMs));
    return obj;
}

json_t *
mpSwitchPayload(const mpMigrationIdentity *id, const mpSwitch *sw)
{
    json_t *obj = mpMetricsIdentity(id);

    json_object_set_new(obj, "elapsed_ms", mpMetricsInt(sw->elapsedMs));
    json_object_set_new(obj, "pass", json_integer(sw->pass));
    json_object_set_new(obj, "reason", mpMetricsString(sw->reason));
    json_object_set_new(obj, "explanation", mpMetricsString(sw->explanation));
    json_object_set_new(obj, "figures", sw->figures ? json_incref(sw->figures) : json_object());
    json_object_set_new(obj, "decided_by", json_string(mpDecidedByTypeToString(sw->decidedBy)));
    json_object_set_new(obj, "acted", json_boolean(sw->acted));
    return obj;
}

/* (predicted - actual) / actual, null when either is unknown or actual is 0. */
static json_t *
mpMetricsRelError(long long predicted, int64_t actual)
{
    if (predicted < 0 || actual <= 0)
        return json_null();
    return json_real(((double)predicted - (double)actual) / (double)actual);
}

/* The forecast beside the outcome: what was predicted and how far off it was. */
static json_t *
mpMetricsForecastVsOutcome(const mpMigrationRecord *rec)
{
    const mpForecast *fc = &rec->forecast;
    bool known = fc->verdict != MP_FORECAST_UNKNOWN;
    bool done = rec->outcome == MP_OUTCOME_COMPLETED || rec->outcome == MP_OUTCOME_RECOVERED;
    int64_t bytes = rec->bytesTransferred > INT64_MAX ? INT64_MAX :
        (int64_t)rec->bytesTransferred;
    json_t *obj = json_object();

    json_object_set_new(obj, "status", json_string(mpForecastVerdictTypeToString(fc->verdict)));
    json_object_set_new(obj, "reason", json_string(fc->reason));
    json_object_set_new(obj, "time_ms", mpMetricsInt(fc->time_ms));
    json_object_set_new(obj, "bytes", mpMetricsInt(fc->bytes));
    json_object_set_new(obj, "downtime_ms", mpMetricsInt(fc->expected_downtime_ms));
    json_object_set_new(obj, "postcopy", known ?
                        json_boolean(fc->verdict == MP_FORECAST_POSTCOPY) : json_null());
    json_object_set_new(obj, "bandwidth_bps", mpMetricsUnsigned(fc->bandwidth_bps));
    /* errors only against a migration that completed: a failed one has no outcome */
    json_object_set_new(obj, "time_error", done ?
                        mpMetricsRelError(fc->time_ms, rec->migrationTimeMs) : json_null());
    json_object_set_new(obj, "bytes_error", done ?
                        mpMetricsRelError(fc->bytes, bytes) : json_null());
    json_object_set_new(obj, "downtime_error_ms",
                        done && fc->expected_downtime_ms >= 0 && rec->downtimeMs >= 0 ?
                        json_integer(fc->expected_downtime_ms - rec->downtimeMs) :
                        json_null());
    json_object_set_new(obj, "postcopy_correct", done && known ?
                        json_boolean((fc->verdict == MP_FORECAST_POSTCOPY) == rec->postcopy) :
                        json_null());
    return obj;
}

json_t *
mpMetricsPayload(const mpMigrationRecord *rec)
{
    json_t *obj = mpMetricsIdentity(&rec->id);

    json_object_set_new(obj, "outcome", json_string(mpOutcomeName(rec->outcome)));
    json_object_set_new(obj, "mode", json_string(rec->postcopy ? "post-copy" : "pre-copy"));
    json_object_set_new(obj, "migration_time_ms", mpMetricsInt(rec->migrationTimeMs));
    json_object_set_new(obj, "downtime_ms", mpMetricsInt(rec->downtimeMs));
    /* optional: only from a libvirt/QEMU that reports it (mpfeatures) */
    if (rec->downtimeNetMs >= 0)
        json_object_set_new(obj, "downtime_net_ms", json_integer(rec->downtimeNetMs));
    json_object_set_new(obj, "bytes_transferred", mpMetricsUnsigned(rec->bytesTransferred));
    json_object_set_new(obj, "memory_total_bytes", mpMetricsUnsigned(rec->memoryTotalBytes));
    json_object_set_new(obj, "passes", json_integer(rec->passes));
    json_object_set_new(obj, "postcopy_switch_ms", mpMetricsInt(rec->postcopySwitchMs));
    json_object_set_new(obj, "postcopy_requests", mpMetricsInt(rec->postcopyRequests));
    json_object_set_new(obj, "nova_time_ms", mpMetricsInt(rec->novaTimeMs));
    json_object_set_new(obj, "nova_switch_at_ms", mpMetricsInt(rec->novaSwitchAtMs));
    json_object_set_new(obj, "nova_postcopy_started_at_ms", mpMetricsInt(rec->novaPostcopyAtMs));
    json_object_set_new(obj, "outage_ms", mpMetricsInt(rec->outageMs));
    json_object_set_new(obj, "switch_reason", mpMetricsString(rec->switchReason));
    json_object_set_new(obj, "decided_by", json_string(mpDecidedByTypeToString(rec->decidedBy)));
    json_object_set_new(obj, "started_at_ms", mpMetricsInt(rec->startedAtMs));
    json_object_set_new(obj, "finished_at_ms", mpMetricsInt(rec->finishedAtMs));
    json_object_set_new(obj, "error", mpMetricsString(rec->error));
    json_object_set_new(obj, "forecast", rec->haveForecast ?
                        mpMetricsForecastVsOutcome(rec) : json_null());
    return obj;
}

json_t *
mpForecastPayload(const mpMigrationIdentity *id, const mpForecast *fc)
{
    json_t *obj = mpMetricsIdentity(id);
    json_t *f = mpForecastToJSON(fc);

    json_object_update(obj, f);
    json_decref(f);
    return obj;
}

json_t *
mpDirtyRatePayload(const mpMigrationIdentity *id, const char *name,
                   const mpDirtyMeasurement *m, int64_t measuredAtMs)
{
    json_t *obj = mpMetricsIdentity(id);
    json_t *windows = json_array();
    mpPolicyDirtyGuest g;
    mpPolicyDirtyStatus st;
    char why[160];
    size_t i;

    /* judged as it is measured: fresh, whatever dirty_max_age_ms says */
    st = mpPolicyDirtyDerive(m, 0, 0, &g, why, sizeof(why));
    json_object_set_new(obj, "name", mpMetricsString(name));
    json_object_set_new(obj, "status", json_string(st == MP_POLICY_DIRTY_USED ? "measured" :
                                                   why));
    json_object_set_new(obj, "wss_bytes", st == MP_POLICY_DIRTY_USED ?
                        mpMetricsInt((int64_t)llround(g.wss)) : json_null());
    json_object_set_new(obj, "dirty_rate_bps", st == MP_POLICY_DIRTY_USED ?
                        mpMetricsInt((int64_t)llround(g.rate)) : json_null());
    json_object_set_new(obj, "rate_is_lower_bound",
                        json_boolean(st == MP_POLICY_DIRTY_USED && g.rate_lower_bound));
    json_object_set_new(obj, "memory_bytes", mpMetricsUnsigned(m->memory_bytes));
    for (i = 0; i < m->nwindows && i < MP_DIRTY_MAX_WINDOWS; i++) {
        json_t *w = json_object();

        json_object_set_new(w, "window_ms", mpMetricsUnsigned(m->windows[i].window_ms));
        json_object_set_new(w, "rate_mibs", mpMetricsUnsigned(m->windows[i].rate_mibs));
        json_array_append_new(windows, w);
    }
    json_object_set_new(obj, "windows", windows);
    json_object_set_new(obj, "measured_at_ms", mpMetricsInt(measuredAtMs));
    return obj;
}
