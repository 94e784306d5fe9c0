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
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* ---- configuration ([policy] section) ---- */

typedef enum {
    MP_POLICY_MODE_AUTO = 0,    /* "auto": decide and ask the caller to switch */
    MP_POLICY_MODE_OBSERVE,     /* "observe": decide and report, never act */
} mpPolicyMode;

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
} mpPolicyKeyKind;

/* The keys, for faces that list them: number of keys, and the name and kind of key i
 * (NULL when i is out of range). */
size_t mpPolicyConfigKeyCount(void);
const char *mpPolicyConfigKeyName(size_t i, mpPolicyKeyKind *kind);

/* The value of a key: numbers in *num (if num), the mode in *str (if str, static string).
 * Returns 0, or -1 with an error for an unknown key. */
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

/* ---- output ---- */

typedef enum {
    MP_POLICY_ACTION_NONE = 0,
    MP_POLICY_ACTION_SWITCH,    /* call virDomainMigrateStartPostCopy now; given once */
} mpPolicyAction;

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
} mpPolicyRule;

typedef enum {
    MP_POLICY_PREDICTION_UNKNOWN = 0,       /* "unknown": not enough evidence yet */
    MP_POLICY_PREDICTION_CONVERGING,        /* "converging": see predicted_finish_ms */
    MP_POLICY_PREDICTION_NOT_CONVERGING,    /* "not-converging" */
} mpPolicyPrediction;

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
    char explanation[MP_POLICY_EXPLANATION_MAX];  /* one line for humans */
} mpPolicyDecision;

const char *mpPolicyRuleToString(mpPolicyRule rule);
const char *mpPolicyPredictionToString(mpPolicyPrediction prediction);
const char *mpPolicyActionToString(mpPolicyAction action);
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

/* Feeds a MIGRATION_ITERATION event: pass `pass` started at elapsed_ms. Stale or
 * duplicate events are ignored. Returns 0 and fills *decision. */
int mpPolicyFeedIteration(mpPolicy *policy, unsigned int pass,
                          unsigned long long elapsed_ms, mpPolicyDecision *decision);
