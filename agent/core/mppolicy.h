/*
 * mppolicy.h: the convergence policy: when to switch a live migration to post-copy
 *
 * A pure, deterministic state machine: job samples (libvirt job stats) and pass events
 * (MIGRATION_ITERATION) go in, one decision per input comes out. No I/O, no clock: time
 * comes in the inputs (elapsed_ms since the job started).
 *
 * Model: pass k+1 resends what was dirtied while pass k was sent, so the remaining bytes at
 * the start of each pass shrink by rho = dirty rate / send rate, saturating at the guest's
 * writable working set. Pre-copy can finish once the remaining bytes at a pass start fit
 * in send rate x max downtime. The policy judges only per-pass figures (remaining at each
 * pass start, pass durations), never the saw-tooth of remaining within a pass, and
 * decides at the first sample of each pass from pass `min_pass` (>= 2) on.
 *
 * From pass 1's figures alone a saturated working set and a converging guest look the
 * same (QEMU's dirty rate of a sync period is capped by working set / period), so most
 * stalls are only recognised at pass 3. A measurement of the guest's dirtying
 * (mpdirty.h, fed with mpPolicySetDirty) removes the ambiguity: its shortest window gives
 * the write rate r, its longest the working set W = pages dirtied in it (rate x window,
 * capped by RAM; never the long window's rate as r: that one is capped by W / window).
 * At the first sample of pass 2 (of each pass up to min_pass) the policy then predicts
 * the passes from the remaining R at that pass start, the send rate B and the max
 * downtime in force (the sample's, which nova steps up): pass k lasts R_k / B and pass
 * k+1 resends R_k+1 = min(W, r x R_k / B). Pre-copy converges at the first R_k+1 within
 * B x downtime; it does not when the predicted passes stop shrinking (R_k+1 >= rho_max x
 * R_k) above it: switch, rule "working-set-exceeds-downtime"; a converging prediction
 * ending after deadline_ms switches with rule "deadline". When the shortest window is
 * saturated too, r is only a lower bound; if the prediction then depends on it, the
 * measurement is "inconclusive". Missing, stale (older than dirty_max_age_ms at the
 * decision), inconsistent or inconclusive measurements leave the decision to the rules
 * above, exactly as without a measurement, and the decision says so once. After min_pass
 * what the passes really did ("remaining-not-shrinking", a deadline) stands; the measured
 * prediction only replaces the rho estimate of the samples. After an inconclusive pass
 * that did not shrink, its own duration gives the rate a floor (R / duration), which
 * settles the question at the next pass. See docs/policy.md.
 */
#pragma once

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>

#include "mpdirty.h"
#include "mpenum.h"

/* ---- configuration ([policy] section) ---- */

typedef enum {
    MP_POLICY_MODE_AUTO = 0,    /* "auto": decide and ask the caller to switch */
    MP_POLICY_MODE_OBSERVE,     /* "observe": decide and report, never act */
    MP_POLICY_MODE_LAST
} mpPolicyMode;
MP_ENUM_DECL(PolicyMode);

typedef struct _mpPolicyConfig {
    mpPolicyMode mode;                   /* mode = auto | observe */
    unsigned int min_pass;               /* min_pass: never switch before this pass (>= 2) */
    double rho_max;                      /* rho_max: per-pass shrink ratio at or above which
                                          * pre-copy counts as not converging (0 < x <= 1) */
    unsigned int max_passes;             /* max_passes: more further passes predicted than
                                          * this = not converging */
    unsigned int shrink_passes;          /* shrink_passes: pass transitions over which
                                          * "remaining not shrinking" is judged */
    double shrink_min;                   /* shrink_min: fraction by which remaining must
                                          * shrink per pass (0 <= x < 1) */
    unsigned long long deadline_ms;      /* deadline_ms: switch if pre-copy is predicted to
                                          * end after this elapsed time; 0 = none */
    unsigned long long downtime_ms;      /* downtime_ms: max downtime assumed when samples
                                          * do not carry it (QEMU's default is 300) */
    unsigned int min_bandwidth_samples;  /* min_bandwidth_samples: send-rate samples needed
                                          * before predicting */
    unsigned long long dirty_max_age_ms; /* dirty_max_age_ms: a dirty-rate measurement
                                          * older than this at a decision is stale
                                          * (default 600000: one made when a migration
                                          * starts lasts a 10-minute first pass) */
} mpPolicyConfig;

/* Fills the defaults. */
void mpPolicyConfigInit(mpPolicyConfig *cfg);

/* Sets one key from its INI string value. Returns 0, or -1 with an error naming the key
 * and the problem (unknown key, not a number, out of range). cfg is unchanged on error. */
int mpPolicyConfigSet(mpPolicyConfig *cfg, const char *key, const char *value);

/* Checks the relations between keys. 0, or -1 with an error. */
int mpPolicyConfigValidate(const mpPolicyConfig *cfg);

typedef enum {
    MP_POLICY_KEY_UINT = 0,     /* unsigned integer */
    MP_POLICY_KEY_DOUBLE,       /* real number */
    MP_POLICY_KEY_STRING,       /* word (mode) */
    MP_POLICY_KEY_LAST
} mpPolicyKeyKind;
MP_ENUM_DECL(PolicyKeyKind);     /* "uint", "double", "string" */

/* The keys, for faces that list them: number of keys, and the name and kind of key i
 * (NULL when i is out of range). */
size_t mpPolicyConfigKeyCount(void);
const char *mpPolicyConfigKeyName(size_t i, mpPolicyKeyKind *kind);

/* The value of a key: numbers in *num (if num), the mode in *str (if str, static string).
 * Returns 0, or -1 with an error for an unknown key. */
/* What the table says of key i: name, kind, range of a number (min and max, each
 * inclusive unless its *_exclusive flag says otherwise; unused for STRING) and a one-line
 * help text (static strings). false when i is out of range. Defaults: mpPolicyConfigInit. */
typedef struct _mpPolicyKeyInfo {
    const char *name;
    mpPolicyKeyKind kind;
    double min;
    double max;
    bool min_exclusive;
    bool max_exclusive;
    const char *help;
} mpPolicyKeyInfo;

bool mpPolicyConfigKeyInfo(size_t i, mpPolicyKeyInfo *info);

int mpPolicyConfigGet(const mpPolicyConfig *cfg, const char *key,
                      double *num, const char **str);

/* ---- inputs ---- */

/* Which optional fields of a sample are present (libvirt's first poll may lack some). */
enum {
    MP_POLICY_HAS_PASS         = 1 << 0,
    MP_POLICY_HAS_TOTAL        = 1 << 1,
    MP_POLICY_HAS_PROCESSED    = 1 << 2,
    MP_POLICY_HAS_REMAINING    = 1 << 3,
    MP_POLICY_HAS_BPS          = 1 << 4,
    MP_POLICY_HAS_DIRTY        = 1 << 5,
    MP_POLICY_HAS_MAX_DOWNTIME = 1 << 6,
    MP_POLICY_HAS_EXP_DOWNTIME = 1 << 7,
};

/* One job-stats poll of an active outgoing migration (at most 250 ms apart). */
typedef struct _mpPolicySample {
    unsigned int has;                         /* MP_POLICY_HAS_* */
    unsigned long long elapsed_ms;            /* time_elapsed */
    unsigned int pass;                        /* memory_iteration */
    unsigned long long memory_total;          /* bytes */
    unsigned long long memory_processed;      /* bytes */
    unsigned long long memory_remaining;      /* bytes */
    unsigned long long memory_bps;            /* send rate, bytes/s */
    unsigned long long dirty_bps;             /* memory_dirty_rate x page size, bytes/s */
    unsigned long long max_downtime_ms;       /* virDomainMigrateGetMaxDowntime */
    unsigned long long expected_downtime_ms;  /* "downtime" of an active job */
    bool postcopy_permitted;                  /* started with VIR_MIGRATE_POSTCOPY */
    bool in_postcopy;                         /* already switched (by anyone) */
} mpPolicySample;

/* The page size when libvirt gives none (memory_page_size is newer than memory_dirty_rate). */
#define MP_POLICY_PAGE_SIZE_DEFAULT 4096ULL

/* Dirty pages/s x page size in bytes/s, saturating; page size 0: the default. */
unsigned long long mpPolicyDirtyBps(unsigned long long pagesPerSec,
                                    unsigned long long pageSize);

/* One of libvirt's job statistics by its typed-parameter name (the VIR_DOMAIN_JOB_* macros
 * are these strings: "time_elapsed", "memory_total", ...): true and *value when the job
 * has it as an unsigned integer. */
typedef bool (*mpJobStatFunc)(const char *name, unsigned long long *value, void *opaque);

/*
 * The job-stats part of a sample, from an active job's statistics (virDomainGetJobStats)
 * read through get: elapsed_ms, pass (memory_iteration; 0 during setup or after the job),
 * memory_*, dirty_bps (memory_dirty_rate x memory_page_size) and expected_downtime_ms
 * ("downtime"). The rest of *s (max_downtime_ms, postcopy_permitted, in_postcopy) is the
 * caller's: zeroed here. Missing statistics leave their MP_POLICY_HAS_* flag clear.
 */
void mpPolicySampleFromJobStats(mpPolicySample *s, mpJobStatFunc get, void *opaque);

/* ---- output ---- */

typedef enum {
    MP_POLICY_ACTION_NONE = 0,
    MP_POLICY_ACTION_SWITCH,    /* call virDomainMigrateStartPostCopy now; given once */
    MP_POLICY_ACTION_LAST
} mpPolicyAction;
MP_ENUM_DECL(PolicyAction);      /* "none", "switch" */

typedef enum {
    MP_POLICY_RULE_NONE = 0,                /* "none": no rule fired */
    MP_POLICY_RULE_NOT_CONVERGING,          /* "not-converging": rho >= rho_max or more
                                             * than max_passes further passes predicted */
    MP_POLICY_RULE_NOT_SHRINKING,           /* "remaining-not-shrinking": remaining at pass
                                             * starts shrank by < shrink_min per pass */
    MP_POLICY_RULE_DEADLINE,                /* "deadline": pre-copy would end after the
                                             * operator's deadline (or passed it) */
    MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED,  /* "postcopy-not-permitted": would switch, but
                                             * the job was started without post-copy */
    MP_POLICY_RULE_IN_POSTCOPY,             /* "in-postcopy": already in post-copy */
    MP_POLICY_RULE_WORKING_SET,             /* "working-set-exceeds-downtime": the measured
                                             * working set and rate say the passes stop
                                             * shrinking above send rate x max downtime */
    MP_POLICY_RULE_LAST
} mpPolicyRule;
MP_ENUM_DECL(PolicyRule);

/* What became of the dirty-rate measurement at the last decision point. */
typedef enum {
    MP_POLICY_DIRTY_MISSING = 0,            /* "missing": none fed */
    MP_POLICY_DIRTY_USED,                   /* "used": the prediction rests on it */
    MP_POLICY_DIRTY_STALE,                  /* "stale": older than dirty_max_age_ms */
    MP_POLICY_DIRTY_INCONSISTENT,           /* "inconsistent": windows contradict physics */
    MP_POLICY_DIRTY_INCONCLUSIVE,           /* "inconclusive": the rate is only a lower
                                             * bound and the outcome depends on it */
    MP_POLICY_DIRTY_LAST
} mpPolicyDirtyStatus;
MP_ENUM_DECL(PolicyDirtyStatus);

typedef enum {
    MP_POLICY_PREDICTION_UNKNOWN = 0,       /* "unknown": not enough evidence yet */
    MP_POLICY_PREDICTION_CONVERGING,        /* "converging": see predicted_finish_ms */
    MP_POLICY_PREDICTION_NOT_CONVERGING,    /* "not-converging" */
    MP_POLICY_PREDICTION_LAST
} mpPolicyPrediction;
MP_ENUM_DECL(PolicyPrediction);

#define MP_POLICY_EXPLANATION_MAX 256

typedef struct _mpPolicyDecision {
    mpPolicyAction action;        /* what the caller must do now */
    mpPolicyRule rule;            /* the rule behind this decision */
    bool switch_decided;          /* a switch has been decided (at this input or before) */
    bool acted_on;                /* false when a decided switch is only reported
                                   * (observe mode) */
    bool evaluated;               /* this input was a decision point (a pass start) */
    mpPolicyPrediction prediction;
    unsigned int pass;            /* current pass (0 = unknown) */
    unsigned long long elapsed_ms;
    /* Figures behind the prediction (from the last evaluated pass start); a negative
     * value means unknown. */
    double rho;                   /* per-pass shrink ratio used by the prediction */
    double rho_reported;          /* QEMU's dirty rate / send rate */
    long long remaining_start;    /* bytes remaining at the start of this pass */
    long long remaining_prev;     /* ... and of the previous pass */
    long long threshold_bytes;    /* send rate x max downtime */
    long long bandwidth_bps;      /* send rate used */
    double predicted_passes;      /* further passes to reach the threshold (-1: unbounded
                                   * or unknown) */
    long long predicted_finish_ms;/* elapsed ms at which pre-copy should end (-1: never or
                                   * unknown) */
    long long switch_cost_ms;     /* time post-copy needs to fetch what remains now */
    /* The dirty-rate measurement (mpPolicySetDirty) at the last evaluated pass start. */
    mpPolicyDirtyStatus dirty_status;
    bool dirty_fallback;          /* this decision announces (once per migration) that
                                   * the measurement is not used: today's rules decide */
    long long dirty_wss_bytes;    /* working set W used (-1: none) */
    long long dirty_write_bps;    /* write rate r used, bytes/s (-1: none) */
    long long dirty_age_ms;       /* the measurement's age at the decision (-1: none) */
    long long predicted_remaining;/* bytes the next pass resends, from W and r (-1: no
                                   * measured prediction) */
    char explanation[MP_POLICY_EXPLANATION_MAX];  /* one line for humans */
} mpPolicyDecision;

/*
 * A decision as JSON (new references), with one set of key names everywhere: the figures
 * are the switch notification's "figures" (prediction, rho, rho_reported,
 * remaining_at_pass_start_bytes, remaining_at_previous_pass_start_bytes, threshold_bytes,
 * bandwidth_bps, predicted_passes, predicted_finish_ms, switch_cost_ms: the published wire
 * format); the whole decision adds action, rule, switch_decided, acted_on, evaluated,
 * pass, elapsed_ms, dirty_status, dirty_fallback, dirty_wss_bytes, dirty_write_bps,
 * dirty_age_ms, predicted_remaining and explanation. Unknown figures are null.
 */
json_t *mpPolicyDecisionFiguresToJSON(const mpPolicyDecision *d);
json_t *mpPolicyDecisionToJSON(const mpPolicyDecision *d);

/* The names of the MP_ENUM_DECL tables above, never NULL: out-of-range values give
 * "unknown" (rule, prediction) or "auto" (mode), as the agent's callers expect. */
const char *mpPolicyRuleToString(mpPolicyRule rule);
const char *mpPolicyPredictionToString(mpPolicyPrediction prediction);
const char *mpPolicyModeToString(mpPolicyMode mode);

/* ---- the policy of one migration job ---- */

typedef struct _mpPolicy mpPolicy;

/* A policy for one migration; cfg is copied. NULL (error reported) if cfg is invalid. */
mpPolicy *mpPolicyNew(const mpPolicyConfig *cfg);
void mpPolicyFree(mpPolicy *policy);

const mpPolicyConfig *mpPolicyGetConfig(const mpPolicy *policy);

/* Feeds a job sample. Returns 0 and fills *decision, or -1 (error reported, state
 * unchanged) for a sample older than the previous one or going back a pass. */
int mpPolicyFeedSample(mpPolicy *policy, const mpPolicySample *sample,
                       mpPolicyDecision *decision);

/*
 * Feeds a measurement of the guest's dirtying (copied), at any time before or during the
 * migration; a later one replaces it, one with no windows withdraws it. Its age grows with
 * the samples' elapsed time from the last sample fed before it (the job's start if none).
 * It is judged at the next decision point: inconsistent figures (fewer than two windows,
 * lengths not increasing, a longer window reporting a higher rate or fewer pages, pages
 * beyond RAM, no RAM) are reported in the decision, not here. Returns 0, or -1 (error
 * reported, state unchanged) for NULL or more than MP_DIRTY_MAX_WINDOWS windows.
 */
int mpPolicySetDirty(mpPolicy *policy, const mpDirtyMeasurement *measurement);

/* Feeds a MIGRATION_ITERATION event: pass `pass` started at elapsed_ms. Stale or
 * duplicate events are ignored. Returns 0 and fills *decision. */
int mpPolicyFeedIteration(mpPolicy *policy, unsigned int pass,
                          unsigned long long elapsed_ms, mpPolicyDecision *decision);

/* ---- the measured guest, shared with the forecast (mpforecast.h) ---- */

/* The guest as a measurement describes it. */
typedef struct _mpPolicyDirtyGuest {
    double wss;                 /* W, bytes */
    double rate;                /* r, bytes/s */
    bool rate_lower_bound;      /* the shortest window is saturated too: r >= rate */
    double short_ms;            /* the shortest window */
    double age_ms;
} mpPolicyDirtyGuest;

/*
 * Derives W and r from measurement m (NULL or no windows: missing), age_ms old, as the
 * policy does at a decision: MP_POLICY_DIRTY_USED and *g, or MISSING, STALE (older than
 * max_age_ms) or INCONSISTENT with the reason in why. Pure.
 */
mpPolicyDirtyStatus mpPolicyDirtyDerive(const mpDirtyMeasurement *m, double age_ms,
                                        unsigned long long max_age_ms,
                                        mpPolicyDirtyGuest *g, char *why, size_t whylen);

/*
 * The policy's prediction of the passes from a pass with R bytes at its start, at elapsed
 * time now (ms): pass j lasts R_j / bw and the next resends min(W, r x R_j / bw); pre-copy
 * converges at the first resend within thr, and does not once a pass shrinks by less than
 * rho_max. Fills *next (what the next pass resends), *npasses (passes until what is left
 * fits in thr, -1 if never), *finish (elapsed ms, -1 if never), *ratio (shrink of the last
 * predicted pass) and, if last is not NULL, *last (what the final stop-and-copy sends, -1
 * if never). Pure.
 */
mpPolicyPrediction mpPolicyDirtyPredict(double wss, double rate, double R, double bw,
                                        double thr, double rho_max, double now,
                                        double *next, double *npasses, double *finish,
                                        double *ratio, double *last);
