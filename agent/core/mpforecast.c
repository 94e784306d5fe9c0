/*
 * mpforecast.c: a live migration predicted before it starts (see mpforecast.h)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mperror.h"
#include "mpforecast.h"

#define MP_MIB (1024.0 * 1024.0)

MP_ENUM_IMPL(ForecastVerdict, MP_FORECAST_LAST, "unknown", "pre-copy", "post-copy");

/* double -> long long without UB: -1 for NaN, negative or absurd values. */
static long long
mpForecastLL(double v)
{
    if (!isfinite(v) || v < 0 || v > 9.0e18)
        return -1;
    return (long long)llround(v);
}

static void
mpForecastUnknown(mpForecast *fc, const char *why)
{
    fc->verdict = MP_FORECAST_UNKNOWN;
    snprintf(fc->reason, sizeof(fc->reason), "%s", why);
    snprintf(fc->explanation, sizeof(fc->explanation), "no forecast: dirty-rate measurement %s",
             why);
}

int
mpForecastCompute(const mpDirtyMeasurement *m, unsigned long long memory_bytes,
                  unsigned long long resident_bytes, unsigned long long bandwidth_bps,
                  unsigned long long downtime_ms, const mpPolicyConfig *cfg,
                  mpForecast *fc)
{
    mpPolicyConfig defaults;
    mpPolicyDirtyGuest g;
    mpPolicyPrediction pred = MP_POLICY_PREDICTION_UNKNOWN;
    double ram = (double)memory_bytes, bw = (double)bandwidth_bps;
    double thr, wss, R, t = 0, next, npasses = -1, finish = -1, ratio, last = -1;
    unsigned int sp, k;
    char why[160];

    if (memory_bytes == 0 || bandwidth_bps == 0 || downtime_ms == 0) {
        mpReportError("forecast: %s must be positive", memory_bytes == 0 ? "the guest's RAM" :
                      bandwidth_bps == 0 ? "the link rate" : "the max downtime");
        return -1;
    }
    if (!cfg) {
        mpPolicyConfigInit(&defaults);
        cfg = &defaults;
    }
    memset(fc, 0, sizeof(*fc));
    fc->memory_bytes = memory_bytes;
    fc->first_pass_bytes = resident_bytes && resident_bytes < memory_bytes ?
        resident_bytes : memory_bytes;
    fc->bandwidth_bps = bandwidth_bps;
    fc->downtime_ms = downtime_ms;
    fc->wss_bytes = fc->write_bps = fc->age_ms = -1;
    fc->time_ms = fc->bytes = fc->expected_downtime_ms = -1;
    fc->passes = fc->switch_pass = -1;
    fc->switch_at_ms = fc->postcopy_bytes = -1;

    if (mpPolicyDirtyDerive(m, m ? (double)m->age_ms : 0, cfg->dirty_max_age_ms, &g, why,
                            sizeof(why)) != MP_POLICY_DIRTY_USED) {
        if (m && m->nwindows)
            fc->age_ms = (long long)m->age_ms;
        mpForecastUnknown(fc, why);
        return 0;
    }
    fc->age_ms = (long long)m->age_ms;
    /* the working set of a guest measured with another RAM size cannot exceed this one */
    wss = g.wss < ram ? g.wss : ram;
    fc->wss_bytes = mpForecastLL(wss);
    fc->write_bps = mpForecastLL(g.rate);
    thr = bw * (double)downtime_ms / 1000.0;
    sp = cfg->min_pass > 2 ? cfg->min_pass : 2;

    /* Passes 1 .. sp-1: nobody decides, pre-copy either ends there or reaches pass sp.
     * Pass 1 sends the non-zero pages (the zero ones cost a few bytes each). */
    R = (double)fc->first_pass_bytes;
    if (R <= thr) {
        npasses = 0;
        finish = R / bw * 1000.0;
        last = R;
        pred = MP_POLICY_PREDICTION_CONVERGING;
        k = 1;
    } else {
        for (k = 1; k < sp; k++) {
            pred = mpPolicyDirtyPredict(wss, g.rate, R, bw, thr, cfg->rho_max, t, &next,
                                        &npasses, &finish, &ratio, &last);
            if (pred == MP_POLICY_PREDICTION_CONVERGING && npasses == 1)
                break;
            t += R / bw * 1000.0;
            R = next;
        }
        if (k == sp)
            /* the policy's decision at the first sample of pass sp, as it will make it */
            pred = mpPolicyDirtyPredict(wss, g.rate, R, bw, thr, cfg->rho_max, t, &next,
                                        &npasses, &finish, &ratio, &last);
    }

    if (pred == MP_POLICY_PREDICTION_CONVERGING && g.rate_lower_bound && wss > thr) {
        snprintf(why, sizeof(why), "inconclusive: %.1f MiB rewritten within the %.0f ms"
                 " window, rate >= %.1f MiB/s", wss / MP_MIB, g.short_ms, g.rate / MP_MIB);
        mpForecastUnknown(fc, why);
        return 0;
    }
    if (pred == MP_POLICY_PREDICTION_CONVERGING &&
        !(k == sp && cfg->deadline_ms > 0 && finish > (double)cfg->deadline_ms)) {
        fc->verdict = MP_FORECAST_PRECOPY;
        snprintf(fc->reason, sizeof(fc->reason), "converging");
        fc->passes = (int)(k == sp ? (double)sp + npasses : (double)k + npasses);
        fc->time_ms = mpForecastLL(finish);
        fc->bytes = mpForecastLL(bw * finish / 1000.0);
        fc->expected_downtime_ms = mpForecastLL(last / bw * 1000.0);
        snprintf(fc->explanation, sizeof(fc->explanation),
                 "pre-copy converges: W %.1f MiB, r %.1f MiB/s at %.1f MiB/s: %d passes,"
                 " ~%.1f s, %.1f MiB sent, downtime ~%lld ms (%.1f MiB fit in %llu ms)",
                 wss / MP_MIB, g.rate / MP_MIB, bw / MP_MIB, fc->passes, finish / 1000.0,
                 bw * finish / 1000.0 / MP_MIB, fc->expected_downtime_ms, thr / MP_MIB,
                 downtime_ms);
        return 0;
    }

    /* The policy switches at the first sample of pass sp: post-copy fetches R. */
    fc->verdict = MP_FORECAST_POSTCOPY;
    snprintf(fc->reason, sizeof(fc->reason), "%s",
             mpPolicyRuleToString(pred == MP_POLICY_PREDICTION_CONVERGING ?
                                  MP_POLICY_RULE_DEADLINE : MP_POLICY_RULE_WORKING_SET));
    fc->passes = (int)sp;
    fc->switch_pass = (int)sp;
    fc->switch_at_ms = mpForecastLL(t);
    fc->postcopy_bytes = mpForecastLL(R);
    fc->time_ms = mpForecastLL(t + R / bw * 1000.0);
    fc->bytes = mpForecastLL(bw * t / 1000.0 + R);
    if (pred == MP_POLICY_PREDICTION_CONVERGING)
        snprintf(fc->explanation, sizeof(fc->explanation),
                 "post-copy needed: W %.1f MiB, r %.1f MiB/s at %.1f MiB/s: pre-copy would"
                 " end at ~%.1f s, after the %.1f s deadline; switch at pass %u (~%.1f s),"
                 " post-copy fetches %.1f MiB: ~%.1f s, %.1f MiB sent",
                 wss / MP_MIB, g.rate / MP_MIB, bw / MP_MIB, finish / 1000.0,
                 (double)cfg->deadline_ms / 1000.0, sp, t / 1000.0, R / MP_MIB,
                 (double)fc->time_ms / 1000.0, (double)fc->bytes / MP_MIB);
    else
        snprintf(fc->explanation, sizeof(fc->explanation),
                 "post-copy needed: W %.1f MiB, r %.1f MiB/s at %.1f MiB/s: passes stop"
                 " shrinking above %.1f MiB (%llu ms); switch at pass %u (~%.1f s),"
                 " post-copy fetches %.1f MiB: ~%.1f s, %.1f MiB sent",
                 wss / MP_MIB, g.rate / MP_MIB, bw / MP_MIB, thr / MP_MIB, downtime_ms, sp,
                 t / 1000.0, R / MP_MIB, (double)fc->time_ms / 1000.0,
                 (double)fc->bytes / MP_MIB);
    return 0;
}

/* Negative means unknown: null. */
static json_t *
mpForecastInt(long long v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *
mpForecastUnsigned(unsigned long long v)
{
    return json_integer(v > (unsigned long long)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

json_t *
mpForecastToJSON(const mpForecast *fc)
{
    json_t *obj = json_object();
    bool known = fc->verdict != MP_FORECAST_UNKNOWN;

    json_object_set_new(obj, "status", json_string(mpForecastVerdictTypeToString(fc->verdict)));
    json_object_set_new(obj, "reason", json_string(fc->reason));
    json_object_set_new(obj, "explanation", json_string(fc->explanation));
    json_object_set_new(obj, "postcopy",
                        known ? json_boolean(fc->verdict == MP_FORECAST_POSTCOPY) :
                        json_null());
    json_object_set_new(obj, "time_ms", mpForecastInt(fc->time_ms));
    json_object_set_new(obj, "bytes", mpForecastInt(fc->bytes));
    json_object_set_new(obj, "downtime_ms", mpForecastInt(fc->expected_downtime_ms));
    json_object_set_new(obj, "passes", mpForecastInt(fc->passes));
    json_object_set_new(obj, "switch_pass", mpForecastInt(fc->switch_pass));
    json_object_set_new(obj, "switch_at_ms", mpForecastInt(fc->switch_at_ms));
    json_object_set_new(obj, "postcopy_bytes", mpForecastInt(fc->postcopy_bytes));
    json_object_set_new(obj, "memory_bytes", mpForecastUnsigned(fc->memory_bytes));
    json_object_set_new(obj, "first_pass_bytes", mpForecastUnsigned(fc->first_pass_bytes));
    json_object_set_new(obj, "bandwidth_bps", mpForecastUnsigned(fc->bandwidth_bps));
    json_object_set_new(obj, "max_downtime_ms", mpForecastUnsigned(fc->downtime_ms));
    json_object_set_new(obj, "wss_bytes", mpForecastInt(fc->wss_bytes));
    json_object_set_new(obj, "write_bps", mpForecastInt(fc->write_bps));
    json_object_set_new(obj, "measurement_age_ms", mpForecastInt(fc->age_ms));
    return obj;
}
