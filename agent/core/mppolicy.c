/*
 * mppolicy.c: the convergence policy (see mppolicy.h for the model)
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpalloc.h"
#include "mperror.h"
#include "mppolicy.h"

/* Pass records kept: enough for the largest shrink_passes plus a skipped pass or two. */
#define MP_POLICY_HISTORY 16
/* Send-rate samples averaged (about 2-4 s at 250 ms): QEMU's mbps is a 100 ms figure. */
#define MP_POLICY_BW_WINDOW 16
#define MP_MIB (1024.0 * 1024.0)
/* The tail of a migration: what is left at a pass start is within this factor of what
 * fits in the downtime; such passes take at most a few downtimes each. */
#define MP_POLICY_TAIL_FACTOR 2.0
/* ... so "not shrinking" is judged there over at least this many passes. */
#define MP_POLICY_TAIL_PASSES 3
/* QEMU's page sampling hashes sample-pages pages per GiB (512 by default, and libvirt's
 * virDomainStartDirtyRateCalc cannot change it) and scales the share found dirty to the
 * RAM: the count is binomial, so windows are compared within this many standard errors
 * (a 1/32 working set of a 1 GiB guest is ~16 sampled pages, +-25 %). Exact modes
 * (dirty-bitmap, dirty-ring) only gain from the margin. */
#define MP_POLICY_DIRTY_SAMPLE_PAGES 512.0
#define MP_POLICY_DIRTY_SIGMAS 3.0
/* Two windows that found within this share of the same pages saw the same working set. */
#define MP_POLICY_DIRTY_SAME 0.25
/* QEMU reports whole MiB/s: the rounding a window's rate may carry. */
#define MP_POLICY_DIRTY_QUANTUM MP_MIB
/* Predicted passes beyond which a still-shrinking pre-copy counts as not converging. */
#define MP_POLICY_DIRTY_MAX_PASSES 1000

/* ---- configuration ---- */

typedef struct {
    const char *name;
    mpPolicyKeyKind kind;
    size_t offset;
    size_t size;            /* of an integer field */
    double min;
    double max;
    bool min_exclusive;
    bool max_exclusive;
    const char *help;       /* one line for the faces (nova.conf's [migpilot]) */
} mpPolicyKeyDef;

#define MP_UINT_KEY(field, lo, hi, text) \
    { #field, MP_POLICY_KEY_UINT, offsetof(mpPolicyConfig, field), \
      sizeof(((mpPolicyConfig *)0)->field), lo, hi, false, false, text }

static const mpPolicyKeyDef mpPolicyKeys[] = {
    { "mode", MP_POLICY_KEY_STRING, offsetof(mpPolicyConfig, mode), 0, 0, 0, false, false,
      "auto: decide and switch; observe: decide and report, never act." },
    MP_UINT_KEY(min_pass, 2, 1000000,
                "Never switch before this pass: the first pass sends all memory once, so "
                "post-copy only has the working set left to fetch."),
    { "rho_max", MP_POLICY_KEY_DOUBLE, offsetof(mpPolicyConfig, rho_max), 0, 0, 1,
      true, false,
      "Per-pass shrink ratio of the remaining bytes (dirtied / sent) at or above which "
      "pre-copy counts as not converging." },
    MP_UINT_KEY(max_passes, 1, 1000,
                "More further passes than this predicted before pre-copy could finish: "
                "not converging."),
    MP_UINT_KEY(shrink_passes, 1, MP_POLICY_HISTORY / 2,
                "Pass transitions over which \"remaining not shrinking\" is judged."),
    { "shrink_min", MP_POLICY_KEY_DOUBLE, offsetof(mpPolicyConfig, shrink_min), 0, 0, 1,
      false, true,
      "Fraction by which the remaining bytes at pass starts must shrink per pass." },
    /* 30 days: far beyond any migration, and exact as a double */
    MP_UINT_KEY(deadline_ms, 0, 2592000000.0,
                "Milliseconds: switch when pre-copy is predicted to end later than this "
                "after the migration started (or is still running then); 0 = no deadline."),
    MP_UINT_KEY(downtime_ms, 1, 600000,
                "Maximum downtime (ms) assumed when libvirt does not report the job's "
                "maximum downtime."),
    MP_UINT_KEY(min_bandwidth_samples, 1, MP_POLICY_BW_WINDOW,
                "Send-rate samples needed before the policy predicts anything."),
    /* one day: a measurement older than that says nothing about the guest now */
    MP_UINT_KEY(dirty_max_age_ms, 1, 86400000,
                "A dirty-rate measurement older than this (ms) at a decision is stale and "
                "not used."),
};

#define MP_POLICY_NKEYS (sizeof(mpPolicyKeys) / sizeof(mpPolicyKeys[0]))

void
mpPolicyConfigInit(mpPolicyConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mode = MP_POLICY_MODE_AUTO;
    cfg->min_pass = 2;
    /* Within measurement noise of "not shrinking at all". */
    cfg->rho_max = 0.9;
    /* Converging lab runs need <= 3 further passes at pass 2; the working-set trap
     * predicts >= 13 even from QEMU's under-reported dirty rate. */
    cfg->max_passes = 8;
    cfg->shrink_passes = 1;
    /* nova's Newton spec: remaining must drop by at least 10% per pass. */
    cfg->shrink_min = 0.1;
    cfg->deadline_ms = 0;
    /* QEMU's default downtime-limit. */
    cfg->downtime_ms = 300;
    cfg->min_bandwidth_samples = 2;
    /* A measurement made when the migration starts still judges pass 2 after a
     * 10-minute first pass (48 GiB at 1 Gb/s); the agent's periodic ones are rarer. */
    cfg->dirty_max_age_ms = 600000;
}

static const mpPolicyKeyDef *
mpPolicyKeyFind(const char *key)
{
    size_t i;

    for (i = 0; i < MP_POLICY_NKEYS; i++) {
        if (strcmp(mpPolicyKeys[i].name, key) == 0)
            return &mpPolicyKeys[i];
    }
    return NULL;
}

size_t
mpPolicyConfigKeyCount(void)
{
    return MP_POLICY_NKEYS;
}

const char *
mpPolicyConfigKeyName(size_t i, mpPolicyKeyKind *kind)
{
    if (i >= MP_POLICY_NKEYS)
        return NULL;
    if (kind)
        *kind = mpPolicyKeys[i].kind;
    return mpPolicyKeys[i].name;
}

bool
mpPolicyConfigKeyInfo(size_t i, mpPolicyKeyInfo *info)
{
    const mpPolicyKeyDef *def;

    if (i >= MP_POLICY_NKEYS)
        return false;
    def = &mpPolicyKeys[i];
    info->name = def->name;
    info->kind = def->kind;
    info->min = def->min;
    info->max = def->max;
    info->min_exclusive = def->min_exclusive;
    info->max_exclusive = def->max_exclusive;
    info->help = def->help;
    return true;
}

static double
mpPolicyKeyNumber(const mpPolicyConfig *cfg, const mpPolicyKeyDef *def)
{
    const char *base = (const char *)cfg + def->offset;

    if (def->kind == MP_POLICY_KEY_DOUBLE)
        return *(const double *)(const void *)base;
    if (def->size == sizeof(unsigned long long))
        return (double)*(const unsigned long long *)(const void *)base;
    return (double)*(const unsigned int *)(const void *)base;
}

static int
mpPolicyKeyRangeCheck(const mpPolicyKeyDef *def, double v, const char *shown)
{
    bool low = def->min_exclusive ? !(v > def->min) : !(v >= def->min);
    bool high = def->max_exclusive ? !(v < def->max) : !(v <= def->max);

    if (low || high) {
        mpReportError("[policy] %s = %s: out of range, must be %s %g and %s %g",
                      def->name, shown, def->min_exclusive ? ">" : ">=", def->min,
                      def->max_exclusive ? "<" : "<=", def->max);
        return -1;
    }
    return 0;
}

int
mpPolicyConfigGet(const mpPolicyConfig *cfg, const char *key, double *num, const char **str)
{
    const mpPolicyKeyDef *def = key ? mpPolicyKeyFind(key) : NULL;

    if (!def) {
        mpReportError("[policy] unknown key '%s'", key ? key : "(null)");
        return -1;
    }
    if (def->kind == MP_POLICY_KEY_STRING) {
        if (str)
            *str = mpPolicyModeToString(cfg->mode);
        if (num)
            *num = (double)cfg->mode;
        return 0;
    }
    if (num)
        *num = mpPolicyKeyNumber(cfg, def);
    if (str)
        *str = NULL;
    return 0;
}

/* Copies value without surrounding blanks into buf; -1 if it does not fit. */
static int
mpPolicyTrim(const char *value, char *buf, size_t size)
{
    size_t len;

    while (*value == ' ' || *value == '\t')
        value++;
    len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
                       value[len - 1] == '\r' || value[len - 1] == '\n'))
        len--;
    if (len >= size)
        return -1;
    memcpy(buf, value, len);
    buf[len] = '\0';
    return 0;
}

int
mpPolicyConfigSet(mpPolicyConfig *cfg, const char *key, const char *value)
{
    const mpPolicyKeyDef *def;
    char buf[64];
    char *end = NULL;
    char *base;

    if (!key || !value) {
        mpReportError("[policy] missing key or value");
        return -1;
    }
    if (!(def = mpPolicyKeyFind(key))) {
        mpReportError("[policy] unknown key '%.64s'", key);
        return -1;
    }
    if (mpPolicyTrim(value, buf, sizeof(buf)) < 0) {
        mpReportError("[policy] %s: value too long", def->name);
        return -1;
    }
    if (buf[0] == '\0') {
        mpReportError("[policy] %s: empty value", def->name);
        return -1;
    }
    base = (char *)cfg + def->offset;

    switch (def->kind) {
    case MP_POLICY_KEY_STRING: {
        int mode = mpPolicyModeTypeFromString(buf);

        if (mode < 0) {
            mpReportError("[policy] mode = %s: must be 'auto' or 'observe'", buf);
            return -1;
        }
        cfg->mode = mode;
        return 0;
    }

    case MP_POLICY_KEY_UINT: {
        unsigned long long v;

        /* strtoull accepts "-1" (wrapping) and blanks: allow digits only. */
        if (strspn(buf, "0123456789") != strlen(buf)) {
            mpReportError("[policy] %s = %s: not a non-negative integer", def->name, buf);
            return -1;
        }
        errno = 0;
        v = strtoull(buf, &end, 10);
        if (errno == ERANGE || *end != '\0') {
            mpReportError("[policy] %s = %s: not a non-negative integer in range",
                          def->name, buf);
            return -1;
        }
        /* Compare as integers so that huge values are not rounded into range. */
        if (v > (unsigned long long)def->max || v < (unsigned long long)def->min)
            return mpPolicyKeyRangeCheck(def, def->max + 1, buf);
        if (def->size == sizeof(unsigned long long))
            *(unsigned long long *)(void *)base = v;
        else
            *(unsigned int *)(void *)base = (unsigned int)v;
        return 0;
    }

    case MP_POLICY_KEY_DOUBLE: {
        double v;

        if (strspn(buf, "0123456789.eE+-") != strlen(buf)) {
            mpReportError("[policy] %s = %s: not a decimal number", def->name, buf);
            return -1;
        }
        errno = 0;
        v = strtod(buf, &end);
        if (end == buf || *end != '\0' || errno == ERANGE || !isfinite(v)) {
            mpReportError("[policy] %s = %s: not a decimal number", def->name, buf);
            return -1;
        }
        if (mpPolicyKeyRangeCheck(def, v, buf) < 0)
            return -1;
        *(double *)(void *)base = v;
        return 0;
    }

    case MP_POLICY_KEY_LAST:
        break;
    }
    mpReportError("[policy] %s: internal error (kind)", def->name);
    return -1;
}

int
mpPolicyConfigValidate(const mpPolicyConfig *cfg)
{
    size_t i;

    if (!mpPolicyModeTypeToString(cfg->mode)) {
        mpReportError("[policy] mode: must be 'auto' or 'observe'");
        return -1;
    }
    for (i = 0; i < MP_POLICY_NKEYS; i++) {
        const mpPolicyKeyDef *def = &mpPolicyKeys[i];
        char shown[64];
        double v;

        if (def->kind == MP_POLICY_KEY_STRING)
            continue;
        v = mpPolicyKeyNumber(cfg, def);
        snprintf(shown, sizeof(shown), "%g", v);
        if (!isfinite(v)) {
            mpReportError("[policy] %s = %s: not a number", def->name, shown);
            return -1;
        }
        if (mpPolicyKeyRangeCheck(def, v, shown) < 0)
            return -1;
    }
    return 0;
}

/* ---- names ---- */

MP_ENUM_IMPL(PolicyMode, MP_POLICY_MODE_LAST, "auto", "observe");
MP_ENUM_IMPL(PolicyKeyKind, MP_POLICY_KEY_LAST, "uint", "double", "string");
MP_ENUM_IMPL(PolicyAction, MP_POLICY_ACTION_LAST, "none", "switch");
MP_ENUM_IMPL(PolicyRule, MP_POLICY_RULE_LAST,
             "none", "not-converging", "remaining-not-shrinking", "deadline",
             "postcopy-not-permitted", "in-postcopy", "working-set-exceeds-downtime");
MP_ENUM_IMPL(PolicyDirtyStatus, MP_POLICY_DIRTY_LAST,
             "missing", "used", "stale", "inconsistent", "inconclusive");
MP_ENUM_IMPL(PolicyPrediction, MP_POLICY_PREDICTION_LAST,
             "unknown", "converging", "not-converging");

const char *
mpPolicyRuleToString(mpPolicyRule rule)
{
    const char *s = mpPolicyRuleTypeToString(rule);

    return s ? s : "unknown";
}

const char *
mpPolicyPredictionToString(mpPolicyPrediction prediction)
{
    const char *s = mpPolicyPredictionTypeToString(prediction);

    return s ? s : "unknown";
}

const char *
mpPolicyModeToString(mpPolicyMode mode)
{
    const char *s = mpPolicyModeTypeToString(mode);

    return s ? s : "auto";
}

/* ---- the state machine ---- */

typedef struct {
    unsigned int pass;          /* 0: slot unused */
    bool start_known;           /* from a MIGRATION_ITERATION event */
    double start_ms;            /* estimated from samples when !start_known */
    bool remaining_known;
    double remaining_start;     /* bytes at the start of the pass */
} mpPolicyPassRec;

struct _mpPolicy {
    mpPolicyConfig cfg;

    bool have_sample;
    mpPolicySample last;
    unsigned int sample_pass;   /* pass of the last sample */
    unsigned int event_pass;    /* highest pass announced by an event */
    double event_start_ms;      /* ... and when it started */

    mpPolicyPassRec recs[MP_POLICY_HISTORY];

    double bw[MP_POLICY_BW_WINDOW];
    size_t nbw;                 /* samples seen; the window holds the last ones */

    unsigned int evaluated_pass;
    mpPolicyDecision figures;   /* figures of the last evaluation, carried over */

    bool in_postcopy;
    bool switch_decided;
    mpPolicyRule decided_rule;
    unsigned int decided_pass;
    unsigned long long decided_ms;
    bool not_permitted_said;

    bool have_dirty;            /* a measurement with windows was fed */
    mpDirtyMeasurement dirty;
    unsigned long long dirty_fed_ms;    /* elapsed time of the last sample before it */
    bool dirty_said;            /* the fallback to the per-pass rules was announced */

    bool pass1_known;           /* pass 1's count: what it left to resend (pass 2's start) */
    double pass1_left;          /* ... in bytes */
    double pass1_secs;          /* ... and how long pass 1 ran */
};

mpPolicy *
mpPolicyNew(const mpPolicyConfig *cfg)
{
    mpPolicy *policy;

    if (mpPolicyConfigValidate(cfg) < 0)
        return NULL;
    policy = mpAlloc0(sizeof(*policy));
    policy->cfg = *cfg;
    policy->figures.rho = -1;
    policy->figures.rho_reported = -1;
    policy->figures.remaining_start = -1;
    policy->figures.remaining_prev = -1;
    policy->figures.threshold_bytes = -1;
    policy->figures.bandwidth_bps = -1;
    policy->figures.predicted_passes = -1;
    policy->figures.predicted_finish_ms = -1;
    policy->figures.switch_cost_ms = -1;
    policy->figures.dirty_status = MP_POLICY_DIRTY_MISSING;
    policy->figures.dirty_wss_bytes = -1;
    policy->figures.dirty_write_bps = -1;
    policy->figures.dirty_age_ms = -1;
    policy->figures.predicted_remaining = -1;
    return policy;
}

void
mpPolicyFree(mpPolicy *policy)
{
    free(policy);
}

const mpPolicyConfig *
mpPolicyGetConfig(const mpPolicy *policy)
{
    return &policy->cfg;
}

static mpPolicyPassRec *
mpPolicyRec(mpPolicy *policy, unsigned int pass)
{
    mpPolicyPassRec *rec = &policy->recs[pass % MP_POLICY_HISTORY];

    if (rec->pass != pass) {
        memset(rec, 0, sizeof(*rec));
        rec->pass = pass;
    }
    return rec;
}

/* The record of pass, or NULL if it is not (or no longer) kept. */
static const mpPolicyPassRec *
mpPolicyRecLookup(const mpPolicy *policy, unsigned int pass)
{
    const mpPolicyPassRec *rec = &policy->recs[pass % MP_POLICY_HISTORY];

    return pass != 0 && rec->pass == pass ? rec : NULL;
}

/* Mean send rate of the window; -1 until enough samples were seen. */
static double
mpPolicyBandwidth(const mpPolicy *policy)
{
    size_t n = policy->nbw < MP_POLICY_BW_WINDOW ? policy->nbw : MP_POLICY_BW_WINDOW;
    double sum = 0;
    size_t i;

    if (n == 0 || policy->nbw < policy->cfg.min_bandwidth_samples)
        return -1;
    for (i = 0; i < n; i++)
        sum += policy->bw[i];
    return sum / (double)n;
}

/* double -> long long without UB: -1 for NaN, negative or absurd values. */
static long long
mpPolicyToLL(double v)
{
    if (!isfinite(v) || v < 0 || v > 9.0e18)
        return -1;
    return (long long)v;
}

static void
mpPolicyDecisionInit(const mpPolicy *policy, mpPolicyDecision *d, unsigned int pass,
                     unsigned long long elapsed_ms)
{
    *d = policy->figures;
    d->action = MP_POLICY_ACTION_NONE;
    d->rule = MP_POLICY_RULE_NONE;
    d->switch_decided = policy->switch_decided;
    d->acted_on = policy->switch_decided && policy->cfg.mode == MP_POLICY_MODE_AUTO;
    d->evaluated = false;
    d->dirty_fallback = false;
    d->pass = pass;
    d->elapsed_ms = elapsed_ms;
    d->explanation[0] = '\0';
}

/*
 * Evaluates the start of pass k (R = remaining at its start) with the current figures.
 * Fills the prediction, the figures and the rule that fires (NONE if none). Returns
 * false when the evidence is not there yet (no send rate).
 */
static bool
mpPolicyEvaluateRules(const mpPolicy *policy, const mpPolicySample *s, unsigned int k,
                      mpPolicyDecision *d)
{
    const mpPolicyConfig *cfg = &policy->cfg;
    const mpPolicyPassRec *cur = mpPolicyRecLookup(policy, k);
    const mpPolicyPassRec *prev = mpPolicyRecLookup(policy, k - 1);
    const mpPolicyPassRec *win = NULL;
    double bw = mpPolicyBandwidth(policy);
    double downtime_ms;
    double thr, R, rho = -1, rho_rep = -1, rho_pass = -1, sigma = -1, sigma_win = -1;
    double npasses = -1, finish = -1, cost;
    double now = (double)s->elapsed_ms;
    double excess;
    bool tail;
    unsigned int j, window, win_span = 0;

    if (!cur || !cur->remaining_known || !(bw > 0))
        return false;
    R = cur->remaining_start;
    downtime_ms = (s->has & MP_POLICY_HAS_MAX_DOWNTIME) && s->max_downtime_ms > 0 ?
        (double)s->max_downtime_ms : (double)cfg->downtime_ms;
    thr = bw * downtime_ms / 1000.0;
    cost = R / bw * 1000.0;

    /* QEMU's dirty rate: pages newly dirtied per second, capped by the working set. */
    if (s->has & MP_POLICY_HAS_DIRTY)
        rho_rep = (double)s->dirty_bps / bw;
    /* QEMU syncs once what is left fits in the downtime, so a pass starts with up to
     * thr bytes left over from the one before plus what was dirtied while it was sent:
     * judge the excess over thr, or the short passes of a converging tail look stalled. */
    excess = R - thr;
    tail = R <= MP_POLICY_TAIL_FACTOR * thr;
    /* What the previous pass left: at least R - thr was dirtied while it was sent. */
    if (prev && k >= 2) {
        double tprev = (cur->start_ms - prev->start_ms) / 1000.0;

        if (tprev > 0)
            rho_pass = (excess > 0 ? excess : 0) / (bw * tprev);
    }
    /* Measured shrink of the excess between pass starts (pass 1 sent all RAM: not
     * comparable). In the tail a pass costs at most a few downtimes: wait for more. */
    window = cfg->shrink_passes;
    if (tail && window < MP_POLICY_TAIL_PASSES)
        window = MP_POLICY_TAIL_PASSES;
    for (j = k - 1; j >= 2 && k - j < MP_POLICY_HISTORY; j--) {
        const mpPolicyPassRec *r = mpPolicyRecLookup(policy, j);

        if (r && r->remaining_known && r->remaining_start - thr > 0 && excess > 0) {
            if (sigma < 0)
                sigma = pow(excess / (r->remaining_start - thr), 1.0 / (double)(k - j));
            if (k - j <= window) {
                win = r;
                win_span = k - j;
            }
        }
    }
    if (win && win_span >= (tail ? window : 1))
        sigma_win = pow(excess / (win->remaining_start - thr), 1.0 / (double)win_span);

    rho = rho_rep;
    if (rho_pass > rho)
        rho = rho_pass;
    if (sigma > rho)
        rho = sigma;

    d->evaluated = true;
    d->rho = isfinite(rho) ? rho : -1;
    d->rho_reported = isfinite(rho_rep) ? rho_rep : -1;
    d->remaining_start = mpPolicyToLL(R);
    d->remaining_prev = prev && prev->remaining_known && k - 1 >= 2 ?
        mpPolicyToLL(prev->remaining_start) : -1;
    d->threshold_bytes = mpPolicyToLL(thr);
    d->bandwidth_bps = mpPolicyToLL(bw);
    d->switch_cost_ms = mpPolicyToLL(cost);
    d->predicted_passes = -1;
    d->predicted_finish_ms = -1;

    if (R <= thr) {
        /* Fits in the downtime: QEMU completes at this sync. */
        d->prediction = MP_POLICY_PREDICTION_CONVERGING;
        d->predicted_passes = 0;
        d->predicted_finish_ms = mpPolicyToLL(now + cost);
        snprintf(d->explanation, sizeof(d->explanation),
                 "pass %u: %.1f MiB left fits in %.0f ms at %.1f MiB/s: pre-copy completing",
                 k, R / MP_MIB, downtime_ms, bw / MP_MIB);
        return true;
    }
    if (sigma_win >= 0 && sigma_win >= 1.0 - cfg->shrink_min) {
        d->prediction = MP_POLICY_PREDICTION_NOT_CONVERGING;
        d->rule = MP_POLICY_RULE_NOT_SHRINKING;
        snprintf(d->explanation, sizeof(d->explanation),
                 "pass %u: %.1f MiB left at pass start vs %.1f MiB at pass %u (excess over %.1f MiB"
                 " shrinks < %.0f%%/pass): not converging; switching costs ~%.1f s",
                 k, R / MP_MIB, win->remaining_start / MP_MIB, k - win_span, thr / MP_MIB,
                 cfg->shrink_min * 100, cost / 1000.0);
        return true;
    }
    if (rho < 0) {
        /* No shrink evidence at all (no dirty rate, no pass timing). */
        d->prediction = MP_POLICY_PREDICTION_UNKNOWN;
        snprintf(d->explanation, sizeof(d->explanation),
                 "pass %u: %.1f MiB left, no dirty rate or pass timing yet", k, R / MP_MIB);
        return false;
    }
    if (!tail && (rho >= cfg->rho_max || rho >= 1.0)) {
        d->prediction = MP_POLICY_PREDICTION_NOT_CONVERGING;
        d->rule = MP_POLICY_RULE_NOT_CONVERGING;
        snprintf(d->explanation, sizeof(d->explanation),
                 "pass %u: %.1f MiB left, %.1f MiB fits in %.0f ms at %.1f MiB/s; rho %.2f >= %.2f:"
                 " not converging; switching costs ~%.1f s",
                 k, R / MP_MIB, thr / MP_MIB, downtime_ms, bw / MP_MIB, rho, cfg->rho_max,
                 cost / 1000.0);
        return true;
    }
    if (rho >= 1.0)
        rho = cfg->rho_max < 1.0 ? cfg->rho_max : 0.99;
    /* Further passes n until R * rho^n <= thr; each pass sends what is left. */
    if (rho <= 1e-9) {
        npasses = 1;
    } else {
        npasses = ceil(log(R / thr) / log(1.0 / rho));
        if (!isfinite(npasses) || npasses < 1)
            npasses = 1;
    }
    finish = now + (R * (1.0 - pow(rho, npasses)) / (1.0 - rho) + thr) / bw * 1000.0;
    d->predicted_passes = npasses;
    d->predicted_finish_ms = mpPolicyToLL(finish);
    if (!tail && npasses > (double)cfg->max_passes) {
        d->prediction = MP_POLICY_PREDICTION_NOT_CONVERGING;
        d->rule = MP_POLICY_RULE_NOT_CONVERGING;
        snprintf(d->explanation, sizeof(d->explanation),
                 "pass %u: %.1f MiB left, %.1f MiB fits in %.0f ms at %.1f MiB/s; rho %.2f ->"
                 " %.0f more passes (max %u): not converging; switching costs ~%.1f s",
                 k, R / MP_MIB, thr / MP_MIB, downtime_ms, bw / MP_MIB, rho, npasses,
                 cfg->max_passes, cost / 1000.0);
        return true;
    }
    d->prediction = MP_POLICY_PREDICTION_CONVERGING;
    if (cfg->deadline_ms > 0 && finish > (double)cfg->deadline_ms) {
        d->rule = MP_POLICY_RULE_DEADLINE;
        snprintf(d->explanation, sizeof(d->explanation),
                 "pass %u: %.1f MiB left, rho %.2f: pre-copy would end at ~%.1f s, after the"
                 " %.1f s deadline; switching costs ~%.1f s",
                 k, R / MP_MIB, rho, finish / 1000.0, (double)cfg->deadline_ms / 1000.0,
                 cost / 1000.0);
        return true;
    }
    snprintf(d->explanation, sizeof(d->explanation),
             "pass %u: %.1f MiB left, rho %.2f: converging, ~%.0f more passes, pre-copy"
             " ends at ~%.1f s",
             k, R / MP_MIB, rho, npasses, finish / 1000.0);
    return true;
}

/* Puts prefix before the explanation already in d, truncating the end if need be. */
static void
mpPolicyExplainPrefix(mpPolicyDecision *d, const char *prefix)
{
    char why[MP_POLICY_EXPLANATION_MAX];
    size_t plen = strlen(prefix);
    size_t wlen;

    memcpy(why, d->explanation, sizeof(why));
    why[sizeof(why) - 1] = '\0';
    if (plen >= sizeof(d->explanation))
        plen = sizeof(d->explanation) - 1;
    memcpy(d->explanation, prefix, plen);
    wlen = strlen(why);
    if (wlen > sizeof(d->explanation) - 1 - plen)
        wlen = sizeof(d->explanation) - 1 - plen;
    memcpy(d->explanation + plen, why, wlen);
    d->explanation[plen + wlen] = '\0';
}

/* ---- the measured dirtying (mpdirty.h) ---- */

int
mpPolicySetDirty(mpPolicy *policy, const mpDirtyMeasurement *m)
{
    if (!m) {
        mpReportError("policy: no dirty-rate measurement given");
        return -1;
    }
    if (m->nwindows > MP_DIRTY_MAX_WINDOWS) {
        mpReportError("policy: dirty-rate measurement with %zu windows (at most %d)",
                      m->nwindows, MP_DIRTY_MAX_WINDOWS);
        return -1;
    }
    policy->have_dirty = m->nwindows > 0;
    policy->dirty = *m;
    policy->dirty_fed_ms = policy->have_dirty && policy->have_sample ?
        policy->last.elapsed_ms : 0;
    return 0;
}

/* Standard error (bytes) of the pages a window of a guest of ram bytes found dirty. */
static double
mpPolicyDirtySigma(double pages, double ram)
{
    double n = MP_POLICY_DIRTY_SAMPLE_PAGES * ram / (1024.0 * MP_MIB);
    double x, share;

    if (n < 1)
        n = 1;
    share = pages / ram;
    if (share > 1)
        share = 1;
    if (share < 0)
        share = 0;
    x = n * share;
    return sqrt(x * (1 - share) + 1) * ram / n;
}

mpPolicyDirtyStatus
mpPolicyDirtyDerive(const mpDirtyMeasurement *m, double age_ms,
                    unsigned long long max_age_ms, mpPolicyDirtyGuest *g,
                    char *why, size_t whylen)
{
    double pages[MP_DIRTY_MAX_WINDOWS], sigma[MP_DIRTY_MAX_WINDOWS], secs[MP_DIRTY_MAX_WINDOWS];
    double ram, q = MP_POLICY_DIRTY_QUANTUM, k = MP_POLICY_DIRTY_SIGMAS, slack;
    size_t i, last;

    why[0] = '\0';
    memset(g, 0, sizeof(*g));
    if (!m || m->nwindows == 0) {
        snprintf(why, whylen, "missing");
        return MP_POLICY_DIRTY_MISSING;
    }
    g->age_ms = age_ms;
    if (g->age_ms > (double)max_age_ms) {
        snprintf(why, whylen, "stale: %.1f s old, dirty_max_age_ms %llu", g->age_ms / 1000.0,
                 max_age_ms);
        return MP_POLICY_DIRTY_STALE;
    }
    if (m->nwindows > MP_DIRTY_MAX_WINDOWS) {
        snprintf(why, whylen, "inconsistent: %zu windows, at most %d", m->nwindows,
                 MP_DIRTY_MAX_WINDOWS);
        return MP_POLICY_DIRTY_INCONSISTENT;
    }
    if (m->nwindows < 2) {
        snprintf(why, whylen, "inconsistent: one window, rate and working set need two");
        return MP_POLICY_DIRTY_INCONSISTENT;
    }
    ram = (double)m->memory_bytes;
    if (!(ram > 0)) {
        snprintf(why, whylen, "inconsistent: no guest memory size");
        return MP_POLICY_DIRTY_INCONSISTENT;
    }
    for (i = 0; i < m->nwindows; i++) {
        const mpDirtyWindow *w = &m->windows[i];

        if (w->window_ms == 0 || (i > 0 && w->window_ms <= m->windows[i - 1].window_ms)) {
            snprintf(why, whylen, "inconsistent: window lengths not increasing");
            return MP_POLICY_DIRTY_INCONSISTENT;
        }
        secs[i] = (double)w->window_ms / 1000.0;
        pages[i] = (double)w->rate_mibs * MP_MIB * secs[i];
        sigma[i] = mpPolicyDirtySigma(pages[i], ram);
        if (i == 0)
            continue;
        /* A page written twice counts once: a longer window never finds fewer pages, nor
         * a higher rate (within the sampling error and QEMU's whole MiB/s). */
        slack = k * hypot(sigma[i], sigma[i - 1]);
        if (pages[i] < pages[i - 1] - slack - q * secs[i - 1]) {
            snprintf(why, whylen, "inconsistent: fewer pages dirtied in %llu ms than in"
                     " %llu ms", w->window_ms, m->windows[i - 1].window_ms);
            return MP_POLICY_DIRTY_INCONSISTENT;
        }
        slack = k * hypot(sigma[i] / secs[i], sigma[i - 1] / secs[i - 1]);
        if (pages[i] / secs[i] > pages[i - 1] / secs[i - 1] + slack + q) {
            snprintf(why, whylen, "inconsistent: %llu MiB/s over %llu ms > %llu MiB/s over"
                     " %llu ms", w->rate_mibs, w->window_ms, m->windows[i - 1].rate_mibs,
                     m->windows[i - 1].window_ms);
            return MP_POLICY_DIRTY_INCONSISTENT;
        }
    }
    last = m->nwindows - 1;
    if (pages[last] > ram + k * sigma[last] + q * secs[last]) {
        snprintf(why, whylen, "inconsistent: %.1f MiB dirtied, more than the %.1f MiB of RAM",
                 pages[last] / MP_MIB, ram / MP_MIB);
        return MP_POLICY_DIRTY_INCONSISTENT;
    }
    g->rate = pages[0] / secs[0];
    g->short_ms = (double)m->windows[0].window_ms;
    /* What the longest window found. If it did not see the whole working set either, W
     * is larger: the passes are then predicted short, never a needless switch (a rate
     * above the send rate stalls for any W beyond rate x window > send rate x downtime). */
    g->wss = pages[last] < ram ? pages[last] : ram;
    /* The shortest window found (about) the whole working set: the guest rewrites it
     * faster than that, so its rate is a floor. */
    g->rate_lower_bound = g->wss > 0 && pages[0] >= (1 - MP_POLICY_DIRTY_SAME) * g->wss;
    return MP_POLICY_DIRTY_USED;
}

/*
 * Judges the fed measurement at elapsed time now_ms: MP_POLICY_DIRTY_USED and *g, or
 * another status with the reason in why.
 */
static mpPolicyDirtyStatus
mpPolicyDirtyJudge(const mpPolicy *policy, unsigned long long now_ms, mpPolicyDirtyGuest *g,
                   char *why, size_t whylen)
{
    double age;

    if (!policy->have_dirty)
        return mpPolicyDirtyDerive(NULL, 0, 0, g, why, whylen);
    age = (double)policy->dirty.age_ms +
        (now_ms > policy->dirty_fed_ms ? (double)(now_ms - policy->dirty_fed_ms) : 0);
    return mpPolicyDirtyDerive(&policy->dirty, age, policy->cfg.dirty_max_age_ms, g,
                               why, whylen);
}

mpPolicyPrediction
mpPolicyDirtyPredict(double wss, double rate, double R, double bw, double thr,
                     double rho_max, double now, double *next, double *npasses,
                     double *finish, double *ratio, double *last)
{
    double rem = R, t = now;
    unsigned int n;

    *next = -1;
    *npasses = -1;
    *finish = -1;
    *ratio = -1;
    if (last)
        *last = -1;
    for (n = 1; n <= MP_POLICY_DIRTY_MAX_PASSES; n++) {
        double dur = rem / bw;
        double nx = rate * dur;

        if (!(nx <= wss))
            nx = wss;
        t += dur * 1000.0;
        if (n == 1)
            *next = nx;
        *ratio = nx / rem;
        if (nx <= thr) {
            *npasses = n;
            *finish = t + nx / bw * 1000.0;
            if (last)
                *last = nx;
            return MP_POLICY_PREDICTION_CONVERGING;
        }
        if (nx >= rho_max * rem)
            return MP_POLICY_PREDICTION_NOT_CONVERGING;
        rem = nx;
    }
    return MP_POLICY_PREDICTION_NOT_CONVERGING;
}

/*
 * The migration's own, exact evidence over the sampled rate: what pass 1 left to resend
 * (R, at pass 2's start) is what the guest dirtied while that pass ran. Where that pass did
 * not saturate the working set, the guest's rate is R / the pass's duration, counted page
 * by page rather than sampled (512 pages per GiB: a 4 MiB/s writer of a 256 MiB lab guest
 * read 14-26 MiB/s, and taken at its word would switch a migration that converges). A
 * saturated set only bounds the rate from below, and the measured one stands.
 */
static void
mpPolicyDirtyRateFromPass(const mpPolicy *policy, double thr, mpPolicyDirtyGuest *g)
{
    const mpDirtyWindow *last;
    double R = policy->pass1_left, secs = policy->pass1_secs, long_rate;

    /* pass 1 only: it sends all of RAM, so it lasts long next to the samples' 250 ms
     * spacing that dates a pass without an iteration event; later passes are short.
     * The count stands for every later pass too: a pass-3 decision from the sampled
     * rate alone would undo what pass 1 showed. */
    if (!policy->pass1_known)
        return;
    last = &policy->dirty.windows[policy->dirty.nwindows - 1];
    long_rate = g->wss / ((double)last->window_ms / 1000.0);
    /* pass 1 found less than the working set (it did not saturate), or it dirtied at
     * least at the long window's rate, the windows showing no saturation either: R counts
     * the guest's rate. Otherwise the set saturated during pass 1 and R / its duration is
     * only a floor. */
    if (!(R < (1 - MP_POLICY_DIRTY_SAME) * g->wss) &&
        (g->rate_lower_bound || !(R / secs >= (1 - MP_POLICY_DIRTY_SAME) * long_rate)))
        goto saturated;
    g->rate = R / secs;
    g->rate_lower_bound = false;
    return;

 saturated:
    /* Pass 1 found the set whole, page by page: W is at least what it counted, R less
     * what QEMU may have left unsent when it synced (it syncs once less than the
     * threshold remains). Sampling reads a small set low (48 MiB for a 64 MiB set
     * rewritten flat out: pass 1 counted 77 with 19 of threshold). Where even the
     * shortest window saturated, the whole set is rewritten within it, so the floor of
     * the rate is W over that window, with W as pass 1 counted it. */
    if (R - thr > g->wss) {
        g->wss = R - thr;
        if (g->rate_lower_bound && g->short_ms > 0 && g->wss / (g->short_ms / 1000.0) > g->rate)
            g->rate = g->wss / (g->short_ms / 1000.0);
    }
}

/*
 * The measured prediction of pass k over the per-pass rules' evaluation in d (which has R,
 * the send rate and the threshold). Returns true if the measurement decided; false (d
 * untouched but for the dirty figures) to leave it to the rules, with the reason in why.
 */
static bool
mpPolicyDirtyEvaluate(const mpPolicy *policy, const mpPolicySample *s, unsigned int k,
                      mpPolicyDecision *d, char *why, size_t whylen)
{
    const mpPolicyConfig *cfg = &policy->cfg;
    mpPolicyDirtyGuest g;
    mpPolicyPrediction pred;
    double R = (double)d->remaining_start, bw = (double)d->bandwidth_bps;
    double thr = (double)d->threshold_bytes, now = (double)s->elapsed_ms;
    double downtime_ms, next, npasses, finish, ratio, cost;

    d->dirty_status = mpPolicyDirtyJudge(policy, s->elapsed_ms, &g, why, whylen);
    d->dirty_wss_bytes = -1;
    d->dirty_write_bps = -1;
    d->dirty_age_ms = policy->have_dirty ? mpPolicyToLL(g.age_ms) : -1;
    d->predicted_remaining = -1;
    if (d->dirty_status != MP_POLICY_DIRTY_USED)
        return false;
    if (!(R > 0) || !(bw > 0) || !(thr > 0)) {
        d->dirty_wss_bytes = mpPolicyToLL(g.wss);
        d->dirty_write_bps = mpPolicyToLL(g.rate);
        return false;
    }
    mpPolicyDirtyRateFromPass(policy, thr, &g);
    d->dirty_wss_bytes = mpPolicyToLL(g.wss);
    d->dirty_write_bps = mpPolicyToLL(g.rate);
    if (R <= thr)
        return false;       /* the rules' "fits in the downtime": QEMU completes now */
    downtime_ms = thr / bw * 1000.0;
    cost = R / bw * 1000.0;

    pred = mpPolicyDirtyPredict(g.wss, g.rate, R, bw, thr, cfg->rho_max, now, &next,
                                &npasses, &finish, &ratio, NULL);
    if (pred == MP_POLICY_PREDICTION_CONVERGING && g.rate_lower_bound && g.wss > thr) {
        /* Converging at the floor of the rate, not if every pass resent W. */
        d->dirty_status = MP_POLICY_DIRTY_INCONCLUSIVE;
        snprintf(why, whylen, "inconclusive: %.1f MiB rewritten within the %.0f ms window,"
                 " rate >= %.1f MiB/s", g.wss / MP_MIB, g.short_ms, g.rate / MP_MIB);
        return false;
    }
    d->predicted_remaining = mpPolicyToLL(next);
    d->prediction = pred;
    d->rule = MP_POLICY_RULE_NONE;
    d->predicted_passes = npasses;
    d->predicted_finish_ms = mpPolicyToLL(finish);
    d->rho = ratio >= 0 && isfinite(ratio) ? ratio : -1;
    if (pred == MP_POLICY_PREDICTION_NOT_CONVERGING) {
        d->rule = MP_POLICY_RULE_WORKING_SET;
        snprintf(d->explanation, sizeof(d->explanation),
                 "pass %u: %.1f MiB left; measured W %.1f MiB, r %.1f MiB/s: pass %u resends"
                 " %.1f MiB, passes stop shrinking above %.1f MiB (%.1f MiB/s x %.0f ms):"
                 " not converging; switching costs ~%.1f s",
                 k, R / MP_MIB, g.wss / MP_MIB, g.rate / MP_MIB, k + 1, next / MP_MIB,
                 thr / MP_MIB, bw / MP_MIB, downtime_ms, cost / 1000.0);
        return true;
    }
    if (cfg->deadline_ms > 0 && finish > (double)cfg->deadline_ms) {
        d->rule = MP_POLICY_RULE_DEADLINE;
        snprintf(d->explanation, sizeof(d->explanation),
                 "pass %u: %.1f MiB left; measured W %.1f MiB, r %.1f MiB/s: pre-copy would"
                 " end at ~%.1f s, after the %.1f s deadline; switching costs ~%.1f s",
                 k, R / MP_MIB, g.wss / MP_MIB, g.rate / MP_MIB, finish / 1000.0,
                 (double)cfg->deadline_ms / 1000.0, cost / 1000.0);
        return true;
    }
    snprintf(d->explanation, sizeof(d->explanation),
             "pass %u: %.1f MiB left; measured W %.1f MiB, r %.1f MiB/s: pass %u resends"
             " %.1f MiB, converging in ~%.0f passes within %.0f ms, pre-copy ends at ~%.1f s",
             k, R / MP_MIB, g.wss / MP_MIB, g.rate / MP_MIB, k + 1, next / MP_MIB, npasses,
             downtime_ms, finish / 1000.0);
    return true;
}

/* Turns a fired rule into the decision, keeping the once-only promises. */
static void
mpPolicyFire(mpPolicy *policy, bool permitted, mpPolicyRule rule, mpPolicyDecision *d)
{
    char prefix[128];

    if (!permitted) {
        if (policy->not_permitted_said) {
            d->rule = MP_POLICY_RULE_NONE;
            mpPolicyExplainPrefix(d, "post-copy not permitted, no switch: ");
            return;
        }
        policy->not_permitted_said = true;
        d->rule = MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED;
        snprintf(prefix, sizeof(prefix),
                 "would switch (%s) but post-copy is not permitted for this job: ",
                 mpPolicyRuleToString(rule));
        mpPolicyExplainPrefix(d, prefix);
        return;
    }
    policy->switch_decided = true;
    policy->decided_rule = rule;
    policy->decided_pass = d->pass;
    policy->decided_ms = d->elapsed_ms;
    d->rule = rule;
    d->switch_decided = true;
    if (policy->cfg.mode == MP_POLICY_MODE_OBSERVE) {
        d->acted_on = false;
        snprintf(prefix, sizeof(prefix), "observe mode, not acted on: switch (%s): ",
                 mpPolicyRuleToString(rule));
    } else {
        d->acted_on = true;
        d->action = MP_POLICY_ACTION_SWITCH;
        snprintf(prefix, sizeof(prefix), "switch (%s): ", mpPolicyRuleToString(rule));
    }
    mpPolicyExplainPrefix(d, prefix);
}

/*
 * After an inconclusive pass (the shortest window saturated: the rate only a floor), the
 * pass just sent measures the rate: R at the start of pass k was dirtied while pass k-1
 * was sent, so r >= R / its duration (and W >= R). With that floor, a prediction that the
 * passes stop shrinking switches at once, rather than after the tail's wait. R also holds
 * what QEMU left unsent at the sync (up to the threshold), which would overstate the rate
 * of a converging tail: only a pass that did not shrink is taken as evidence.
 */
static void
mpPolicyDirtyRefine(const mpPolicy *policy, const mpPolicySample *s, unsigned int k,
                    mpPolicyDecision *d)
{
    const mpPolicyPassRec *cur = mpPolicyRecLookup(policy, k);
    const mpPolicyPassRec *prev = mpPolicyRecLookup(policy, k - 1);
    mpPolicyDirtyGuest g;
    double R = (double)d->remaining_start, bw = (double)d->bandwidth_bps;
    double thr = (double)d->threshold_bytes, tprev, rate, wss;
    double next, npasses, finish, ratio;
    char why[160];

    if (!cur || !prev || !(R > thr) || !(bw > 0) || !(thr > 0) || !prev->remaining_known ||
        R < (1 - policy->cfg.shrink_min) * prev->remaining_start)
        return;
    tprev = (cur->start_ms - prev->start_ms) / 1000.0;
    if (!(tprev > 0))
        return;
    if (mpPolicyDirtyJudge(policy, s->elapsed_ms, &g, why, sizeof(why)) !=
        MP_POLICY_DIRTY_USED)
        return;
    rate = R / tprev > g.rate ? R / tprev : g.rate;
    wss = R > g.wss ? R : g.wss;
    if (mpPolicyDirtyPredict(wss, rate, R, bw, thr, policy->cfg.rho_max,
                             (double)s->elapsed_ms, &next, &npasses, &finish, &ratio,
                             NULL) !=
        MP_POLICY_PREDICTION_NOT_CONVERGING)
        return;
    d->dirty_status = MP_POLICY_DIRTY_USED;
    d->dirty_wss_bytes = mpPolicyToLL(wss);
    d->dirty_write_bps = mpPolicyToLL(rate);
    d->dirty_age_ms = mpPolicyToLL(g.age_ms);
    d->predicted_remaining = mpPolicyToLL(next);
    d->prediction = MP_POLICY_PREDICTION_NOT_CONVERGING;
    d->predicted_passes = -1;
    d->predicted_finish_ms = -1;
    d->rho = isfinite(ratio) && ratio >= 0 ? ratio : -1;
    d->rule = MP_POLICY_RULE_WORKING_SET;
    snprintf(d->explanation, sizeof(d->explanation),
             "pass %u: %.1f MiB dirtied in a %.2f s pass: r >= %.1f MiB/s, W >= %.1f MiB;"
             " pass %u resends %.1f MiB > %.1f MiB, not shrinking: not converging;"
             " switching costs ~%.1f s",
             k, R / MP_MIB, tprev, rate / MP_MIB, wss / MP_MIB, k + 1, next / MP_MIB,
             thr / MP_MIB, R / bw);
}

/*
 * Evaluates the start of pass k: the per-pass rules, then the measured prediction over
 * them. Up to the first pass at which a switch is allowed it decides (or the decision
 * announces, once, that the rules decide without it); after that it only replaces the
 * rho estimate of the samples, not what the passes did. Returns false when the evidence
 * is not there yet.
 */
static bool
mpPolicyEvaluate(mpPolicy *policy, const mpPolicySample *s, unsigned int k,
                 mpPolicyDecision *d)
{
    unsigned int last = policy->cfg.min_pass > 2 ? policy->cfg.min_pass : 2;
    char why[160], prefix[224];

    bool ruled = mpPolicyEvaluateRules(policy, s, k, d);

    /* Not evaluated at all: no remaining or send rate yet. */
    if (!d->evaluated)
        return false;
    if (k > last) {
        mpPolicyDecision m = *d;

        /* What the passes did (remaining not shrinking, deadline) stands; the measurement
         * replaces the estimate from the samples' rho. Without it, or after a fallback,
         * the figures of the last measured pass carry over. */
        if (!ruled ||
            (d->rule != MP_POLICY_RULE_NONE && d->rule != MP_POLICY_RULE_NOT_CONVERGING))
            return ruled;
        if (mpPolicyDirtyEvaluate(policy, s, k, &m, why, sizeof(why))) {
            *d = m;
            return true;
        }
        if (m.dirty_status == MP_POLICY_DIRTY_INCONCLUSIVE && d->rule == MP_POLICY_RULE_NONE)
            mpPolicyDirtyRefine(policy, s, k, d);
        return true;
    }
    if (mpPolicyDirtyEvaluate(policy, s, k, d, why, sizeof(why)))
        return true;
    if (!ruled)
        return false;   /* the rules lack evidence too: judged again at the next sample */
    if (d->dirty_status != MP_POLICY_DIRTY_USED && !policy->dirty_said) {
        policy->dirty_said = true;
        d->dirty_fallback = true;
        snprintf(prefix, sizeof(prefix), "dirty-rate measurement %s; per-pass rules: ", why);
        mpPolicyExplainPrefix(d, prefix);
    }
    return true;
}

/* The states after which nothing more is decided. Returns true if d is final. */
static bool
mpPolicySettled(mpPolicy *policy, bool in_postcopy, mpPolicyDecision *d)
{
    if (in_postcopy)
        policy->in_postcopy = true;
    if (policy->in_postcopy) {
        d->rule = MP_POLICY_RULE_IN_POSTCOPY;
        snprintf(d->explanation, sizeof(d->explanation),
                 "in post-copy: nothing left to decide");
        return true;
    }
    if (policy->switch_decided) {
        d->rule = policy->decided_rule;
        snprintf(d->explanation, sizeof(d->explanation),
                 "switch already decided at pass %u, %llu ms (%s)%s", policy->decided_pass,
                 policy->decided_ms, mpPolicyRuleToString(policy->decided_rule),
                 policy->cfg.mode == MP_POLICY_MODE_OBSERVE ? ", not acted on" : "");
        return true;
    }
    return false;
}

static bool
mpPolicyDeadlinePassed(const mpPolicy *policy, unsigned int pass, unsigned long long now,
                       mpPolicyDecision *d)
{
    const mpPolicyConfig *cfg = &policy->cfg;

    if (cfg->deadline_ms == 0 || now < cfg->deadline_ms || pass < cfg->min_pass)
        return false;
    snprintf(d->explanation, sizeof(d->explanation),
             "pass %u: pre-copy still running at %.1f s, past the %.1f s deadline", pass,
             (double)now / 1000.0, (double)cfg->deadline_ms / 1000.0);
    return true;
}

/* ---- decisions as JSON ---- */

static json_t *
mpPolicyJSONOptInt(long long v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static json_t *
mpPolicyJSONOptReal(double v)
{
    return v >= 0 && isfinite(v) ? json_real(v) : json_null();
}

json_t *
mpPolicyDecisionFiguresToJSON(const mpPolicyDecision *d)
{
    json_t *fig = json_object();

    json_object_set_new(fig, "prediction",
                        json_string(mpPolicyPredictionToString(d->prediction)));
    json_object_set_new(fig, "rho", mpPolicyJSONOptReal(d->rho));
    json_object_set_new(fig, "rho_reported", mpPolicyJSONOptReal(d->rho_reported));
    json_object_set_new(fig, "remaining_at_pass_start_bytes",
                        mpPolicyJSONOptInt(d->remaining_start));
    json_object_set_new(fig, "remaining_at_previous_pass_start_bytes",
                        mpPolicyJSONOptInt(d->remaining_prev));
    json_object_set_new(fig, "threshold_bytes", mpPolicyJSONOptInt(d->threshold_bytes));
    json_object_set_new(fig, "bandwidth_bps", mpPolicyJSONOptInt(d->bandwidth_bps));
    json_object_set_new(fig, "predicted_passes", mpPolicyJSONOptReal(d->predicted_passes));
    json_object_set_new(fig, "predicted_finish_ms", mpPolicyJSONOptInt(d->predicted_finish_ms));
    json_object_set_new(fig, "switch_cost_ms", mpPolicyJSONOptInt(d->switch_cost_ms));
    return fig;
}

json_t *
mpPolicyDecisionToJSON(const mpPolicyDecision *d)
{
    json_t *j = mpPolicyDecisionFiguresToJSON(d);
    json_t *expl = json_string(d->explanation);

    if (!expl) {
        /* not UTF-8 (a cut multi-byte character): the ASCII of it */
        char ascii[MP_POLICY_EXPLANATION_MAX];
        size_t i;

        for (i = 0; i + 1 < sizeof(ascii) && d->explanation[i]; i++)
            ascii[i] = (unsigned char)d->explanation[i] < 0x80 ? d->explanation[i] : '?';
        ascii[i] = '\0';
        expl = json_string(ascii);
    }
    json_object_set_new(j, "action", json_string(mpPolicyActionTypeToString(d->action)));
    json_object_set_new(j, "rule", json_string(mpPolicyRuleToString(d->rule)));
    json_object_set_new(j, "switch_decided", json_boolean(d->switch_decided));
    json_object_set_new(j, "acted_on", json_boolean(d->acted_on));
    json_object_set_new(j, "evaluated", json_boolean(d->evaluated));
    json_object_set_new(j, "pass", json_integer(d->pass));
    json_object_set_new(j, "elapsed_ms", json_integer((json_int_t)d->elapsed_ms));
    json_object_set_new(j, "dirty_status",
                        json_string(mpPolicyDirtyStatusTypeToString(d->dirty_status)));
    json_object_set_new(j, "dirty_fallback", json_boolean(d->dirty_fallback));
    json_object_set_new(j, "dirty_wss_bytes", mpPolicyJSONOptInt(d->dirty_wss_bytes));
    json_object_set_new(j, "dirty_write_bps", mpPolicyJSONOptInt(d->dirty_write_bps));
    json_object_set_new(j, "dirty_age_ms", mpPolicyJSONOptInt(d->dirty_age_ms));
    json_object_set_new(j, "predicted_remaining", mpPolicyJSONOptInt(d->predicted_remaining));
    json_object_set_new(j, "explanation", expl);
    return j;
}

/* ---- libvirt's job statistics ---- */

unsigned long long
mpPolicyDirtyBps(unsigned long long pagesPerSec, unsigned long long pageSize)
{
    if (pageSize == 0)
        pageSize = MP_POLICY_PAGE_SIZE_DEFAULT;
    return pagesPerSec > ULLONG_MAX / pageSize ? ULLONG_MAX : pagesPerSec * pageSize;
}

/* The statistics a sample takes as they are: libvirt's name, the field, its flag. */
static const struct {
    const char *name;
    size_t offset;
    unsigned int has;   /* 0: always expected (time_elapsed) */
} mpPolicyJobStatFields[] = {
    { "time_elapsed", offsetof(mpPolicySample, elapsed_ms), 0 },
    { "memory_total", offsetof(mpPolicySample, memory_total), MP_POLICY_HAS_TOTAL },
    { "memory_processed", offsetof(mpPolicySample, memory_processed),
      MP_POLICY_HAS_PROCESSED },
    { "memory_remaining", offsetof(mpPolicySample, memory_remaining),
      MP_POLICY_HAS_REMAINING },
    { "memory_bps", offsetof(mpPolicySample, memory_bps), MP_POLICY_HAS_BPS },
    /* for an active job libvirt's "downtime" is QEMU's expected downtime */
    { "downtime", offsetof(mpPolicySample, expected_downtime_ms), MP_POLICY_HAS_EXP_DOWNTIME },
};

void
mpPolicySampleFromJobStats(mpPolicySample *s, mpJobStatFunc get, void *opaque)
{
    unsigned long long v, pageSize = MP_POLICY_PAGE_SIZE_DEFAULT;
    size_t i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < sizeof(mpPolicyJobStatFields) / sizeof(mpPolicyJobStatFields[0]); i++) {
        if (get(mpPolicyJobStatFields[i].name, &v, opaque)) {
            *(unsigned long long *)((char *)s + mpPolicyJobStatFields[i].offset) = v;
            s->has |= mpPolicyJobStatFields[i].has;
        }
    }
    /* the two that need converting */
    if (get("memory_iteration", &v, opaque)) {
        s->pass = v > UINT_MAX ? UINT_MAX : (unsigned int)v;
        s->has |= MP_POLICY_HAS_PASS;
    }
    if (!get("memory_page_size", &pageSize, opaque))
        pageSize = MP_POLICY_PAGE_SIZE_DEFAULT;
    if (get("memory_dirty_rate", &v, opaque)) {
        s->dirty_bps = mpPolicyDirtyBps(v, pageSize);
        s->has |= MP_POLICY_HAS_DIRTY;
    }
}

int
mpPolicyFeedSample(mpPolicy *policy, const mpPolicySample *s, mpPolicyDecision *d)
{
    const mpPolicyConfig *cfg = &policy->cfg;
    unsigned int pass;
    mpPolicyPassRec *rec;
    bool new_pass;

    if ((s->has & MP_POLICY_HAS_PASS) && s->pass == 0) {
        /* libvirt's stats during setup, or once the job is over (all zero, even the
         * elapsed time after an abort): nothing to judge, nothing to remember. */
        mpPolicyDecisionInit(policy, d, policy->sample_pass, s->elapsed_ms);
        if (!mpPolicySettled(policy, s->in_postcopy, d))
            snprintf(d->explanation, sizeof(d->explanation),
                     "no pass in progress (setup, or the job is over)");
        return 0;
    }
    if (policy->have_sample && s->elapsed_ms < policy->last.elapsed_ms) {
        mpReportError("policy: sample at %llu ms is older than the previous one (%llu ms)",
                      s->elapsed_ms, policy->last.elapsed_ms);
        return -1;
    }
    if ((s->has & MP_POLICY_HAS_PASS) && s->pass < policy->sample_pass) {
        mpReportError("policy: sample of pass %u after one of pass %u",
                      s->pass, policy->sample_pass);
        return -1;
    }
    if (s->has & MP_POLICY_HAS_PASS) {
        pass = s->pass;
    } else {
        pass = policy->event_pass > policy->sample_pass ?
            policy->event_pass : policy->sample_pass;
        if (pass == 0)
            pass = 1;
    }

    if ((s->has & MP_POLICY_HAS_BPS) && s->memory_bps > 0) {
        policy->bw[policy->nbw % MP_POLICY_BW_WINDOW] = (double)s->memory_bps;
        policy->nbw++;
    }

    new_pass = pass > policy->sample_pass && pass >= 1;
    rec = pass >= 1 ? mpPolicyRec(policy, pass) : NULL;
    if (new_pass && !rec->start_known) {
        if (policy->event_pass == pass) {
            rec->start_known = true;
            rec->start_ms = policy->event_start_ms;
        } else if (pass == 1) {
            rec->start_ms = 0;  /* the job's start */
        } else if (policy->have_sample) {
            /* The sync happened between the two samples. */
            rec->start_ms = ((double)policy->last.elapsed_ms + (double)s->elapsed_ms) / 2;
        } else {
            rec->start_ms = (double)s->elapsed_ms;
        }
    }
    if (rec && pass >= 2 && !rec->remaining_known && (s->has & MP_POLICY_HAS_REMAINING)) {
        /* Remaining only falls within a pass: add back what was sent since its start. */
        double bw = mpPolicyBandwidth(policy);
        double dt = ((double)s->elapsed_ms - rec->start_ms) / 1000.0;
        double sent = bw > 0 && dt > 0 ? bw * dt : 0;

        if (policy->have_sample && (s->has & MP_POLICY_HAS_PROCESSED) &&
            (policy->last.has & MP_POLICY_HAS_PROCESSED) &&
            s->memory_processed >= policy->last.memory_processed) {
            double delta = (double)(s->memory_processed - policy->last.memory_processed);

            if (sent > delta)
                sent = delta;
        }
        rec->remaining_known = true;
        rec->remaining_start = (double)s->memory_remaining + sent;
        if (pass == 2) {
            const mpPolicyPassRec *first = mpPolicyRecLookup(policy, 1);

            if (first && rec->start_ms > first->start_ms) {
                policy->pass1_known = true;
                policy->pass1_left = rec->remaining_start;
                policy->pass1_secs = (rec->start_ms - first->start_ms) / 1000.0;
            }
        }
    }

    policy->last = *s;
    policy->have_sample = true;
    if (pass > policy->sample_pass)
        policy->sample_pass = pass;

    mpPolicyDecisionInit(policy, d, pass, s->elapsed_ms);
    if (mpPolicySettled(policy, s->in_postcopy, d))
        return 0;

    if (pass >= 2 && policy->evaluated_pass < pass) {
        mpPolicyDecision e = *d;

        if (mpPolicyEvaluate(policy, s, pass, &e)) {
            policy->evaluated_pass = pass;
            *d = e;
            policy->figures = e;
            policy->figures.explanation[0] = '\0';
            if (pass < cfg->min_pass && d->rule != MP_POLICY_RULE_NONE) {
                char prefix[64];

                snprintf(prefix, sizeof(prefix), "before min_pass %u, no switch: ",
                         cfg->min_pass);
                mpPolicyExplainPrefix(d, prefix);
                d->rule = MP_POLICY_RULE_NONE;
            }
            if (d->rule != MP_POLICY_RULE_NONE) {
                mpPolicyFire(policy, s->postcopy_permitted, d->rule, d);
                return 0;
            }
        } else if (e.explanation[0]) {
            snprintf(d->explanation, sizeof(d->explanation), "%s", e.explanation);
        }
    }
    if (mpPolicyDeadlinePassed(policy, pass, s->elapsed_ms, d)) {
        mpPolicyFire(policy, s->postcopy_permitted, MP_POLICY_RULE_DEADLINE, d);
        return 0;
    }
    if (!d->explanation[0]) {
        if (pass < 2)
            snprintf(d->explanation, sizeof(d->explanation),
                     "pass %u: first pass, nothing to judge yet", pass);
        else if (policy->evaluated_pass == pass)
            snprintf(d->explanation, sizeof(d->explanation),
                     "pass %u: %s (judged at pass start)", pass,
                     mpPolicyPredictionToString(d->prediction));
        else
            snprintf(d->explanation, sizeof(d->explanation),
                     "pass %u: waiting for a send rate", pass);
    }
    return 0;
}

int
mpPolicyFeedIteration(mpPolicy *policy, unsigned int pass, unsigned long long elapsed_ms,
                      mpPolicyDecision *d)
{
    unsigned int cur = policy->sample_pass > policy->event_pass ?
        policy->sample_pass : policy->event_pass;

    mpPolicyDecisionInit(policy, d, pass > cur ? pass : cur, elapsed_ms);
    if (pass > policy->event_pass && pass >= policy->sample_pass) {
        mpPolicyPassRec *rec = mpPolicyRec(policy, pass);

        if (pass > policy->sample_pass || !rec->start_known) {
            /* The event is the exact pass start; samples only bracket it. */
            rec->start_known = true;
            rec->start_ms = (double)elapsed_ms;
            if (policy->have_sample && pass > policy->sample_pass &&
                elapsed_ms < policy->last.elapsed_ms)
                rec->start_ms = (double)policy->last.elapsed_ms;
        }
        policy->event_pass = pass;
        policy->event_start_ms = rec->start_ms;
        cur = pass > cur ? pass : cur;
    }
    d->pass = cur;

    if (mpPolicySettled(policy, false, d))
        return 0;
    if (policy->have_sample &&
        mpPolicyDeadlinePassed(policy, cur, elapsed_ms, d)) {
        mpPolicyFire(policy, policy->last.postcopy_permitted, MP_POLICY_RULE_DEADLINE, d);
        return 0;
    }
    snprintf(d->explanation, sizeof(d->explanation),
             "pass %u started at %.1f s%s", pass, (double)elapsed_ms / 1000.0,
             pass >= 2 && policy->evaluated_pass < pass ?
             ": judged at its first sample" : "");
    return 0;
}
