/*
 * mpforecast.h: a live migration predicted before it starts
 *
 * From a measurement of the guest's dirtying (mpdirty.h), its RAM, a link rate B and the
 * max downtime, the passes as the policy models them: pass 1 sends the RAM, pass k+1
 * resends min(W, r x duration of pass k), W and r derived from the measurement exactly as
 * the policy derives them (mpPolicyDirtyDerive). QEMU sends a page of zeros as a few
 * bytes, so pass 1 takes the guest's non-zero pages: when the caller knows how much of the
 * RAM the guest ever touched (QEMU's resident set: pages never touched are zero), pass 1
 * sends that at most. Pre-copy ends once what a pass resends
 * fits in B x downtime. When it does not before the policy's decision pass (min_pass, 2 by
 * default), the policy's own prediction at that pass (mpPolicyDirtyPredict) says whether
 * it leaves pre-copy alone or switches to post-copy there; post-copy then fetches what
 * that pass would have resent. All traffic flows at B, so bytes sent = B x time.
 *
 * Pure and deterministic: no I/O, no clock.
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "mpdirty.h"
#include "mppolicy.h"

typedef enum {
    MP_FORECAST_UNKNOWN = 0,    /* "unknown": no usable measurement, see reason */
    MP_FORECAST_PRECOPY,        /* "pre-copy": converges without post-copy */
    MP_FORECAST_POSTCOPY,       /* "post-copy": the policy would switch */
    MP_FORECAST_LAST
} mpForecastVerdict;
MP_ENUM_DECL(ForecastVerdict);

#define MP_FORECAST_TEXT_MAX 256

typedef struct _mpForecast {
    mpForecastVerdict verdict;
    char reason[160];                  /* unknown: why ("missing", "stale: ..."); else
                                         * the rule ("converging", a policy rule) */
    char explanation[MP_FORECAST_TEXT_MAX];     /* one line for humans */
    /* the inputs */
    unsigned long long memory_bytes;
    unsigned long long first_pass_bytes;        /* what pass 1 sends: RAM, or less */
    unsigned long long bandwidth_bps;
    unsigned long long downtime_ms;
    long long wss_bytes;                /* W (-1: unknown) */
    long long write_bps;                /* r (-1: unknown) */
    long long age_ms;                   /* the measurement's age (-1: none) */
    /* the prediction; -1 = unknown */
    long long time_ms;                  /* total migration time */
    long long bytes;                    /* bytes sent */
    long long expected_downtime_ms;     /* pre-copy: the final stop-and-copy; post-copy:
                                         * not modelled (-1) */
    int passes;                         /* pre-copy passes, the final one included */
    int switch_pass;                    /* post-copy: the pass at whose start the policy
                                         * switches (-1 otherwise) */
    long long switch_at_ms;             /* ... and when (-1 otherwise) */
    long long postcopy_bytes;           /* post-copy: what it fetches (-1 otherwise) */
} mpForecast;


/*
 * Predicts the migration of a guest of memory_bytes RAM, resident_bytes of which it has
 * touched (0: unknown, all of it), over a link of bandwidth_bps with downtime_ms of max
 * downtime, from measurement m (NULL or no windows: missing; its age_ms as it stands now)
 * with the policy configuration cfg (NULL: the defaults).
 * Returns 0 and fills *fc (an "unknown" forecast with the reason for a missing, stale,
 * inconsistent or inconclusive measurement), or -1 with an error for a zero RAM,
 * bandwidth or downtime.
 */
int mpForecastCompute(const mpDirtyMeasurement *m, unsigned long long memory_bytes,
                      unsigned long long resident_bytes, unsigned long long bandwidth_bps,
                      unsigned long long downtime_ms, const mpPolicyConfig *cfg,
                      mpForecast *fc);

/*
 * The forecast as JSON (new reference): status, reason, explanation, postcopy (null when
 * unknown), time_ms, bytes, downtime_ms, passes, switch_pass, switch_at_ms,
 * postcopy_bytes, memory_bytes, first_pass_bytes, bandwidth_bps, max_downtime_ms,
 * wss_bytes, write_bps,
 * measurement_age_ms; unknown figures are null.
 */
json_t *mpForecastToJSON(const mpForecast *fc);
