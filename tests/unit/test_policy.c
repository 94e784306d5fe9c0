/*
 * test_policy.c: the convergence policy (mppolicy)
 *
 * Three kinds of input:
 *  - a small page-level simulator of QEMU pre-copy (dirty bitmap synced at each pass, a
 *    send-rate limit, QEMU's way of computing the dirty rate, libvirt-like job samples and
 *    MIGRATION_ITERATION events), run on the scenarios of the lab and variations;
 *  - hand-built samples for the rules that need exact timing (deadline, validation);
 *  - JSON-lines traces recorded from real libvirt migrations (tests/data/traces, *.jsonl),
 *    replayed through the policy and judged by their scenario name (the set of files is
 *    fixed: a missing one fails), plus two hand-made traces shaped like the lab's runs;
 *    those of tests/data/traces/dirtyrate also carry the guest's dirty-rate measurement,
 *    fed to the policy before the replay.
 */
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mptest.h"
#include "mperror.h"
#include "mppolicy.h"

#define MIB (1024.0 * 1024.0)
#define PAGE 4096u

/* ------------------------------------------------------------------------------------ */
/* The simulator                                                                        */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    double ram_mib;             /* guest RAM */
    double touched_mib;         /* non-zero pages (the rest are sent almost for free) */
    double wss_mib;             /* working set the guest rewrites, cyclically */
    double dirty_mibps;         /* guest write speed, one write per page */
    double bw_mibps;            /* send rate (max-bandwidth) */
    unsigned int downtime_ms;   /* downtime-limit */
    unsigned int sample_ms;     /* job-stats poll period */
    double max_ms;              /* give up after */
    bool not_permitted;         /* started without VIR_MIGRATE_POSTCOPY */
    bool no_events;             /* deliver no MIGRATION_ITERATION events */
    /* a change mid-migration: change_delay_ms after the start of pass change_pass */
    unsigned int change_pass;
    double change_delay_ms;
    double dirty2_mibps;        /* new guest write speed (< 0: unchanged) */
    double bw2_mibps;           /* new send rate (< 0: unchanged) */
    unsigned int downtime2_ms;  /* new downtime-limit, as nova steps it (0: unchanged) */
    const mpDirtyMeasurement *dirty;    /* fed before the migration starts (NULL: none) */
} simScenario;

#define SIM_MAX_PASSES 256

typedef struct {
    /* outcome of the simulated migration */
    bool completed;             /* pre-copy finished by itself */
    bool switched;              /* the policy said switch (and the simulator did) */
    double end_ms;
    unsigned int passes;
    double pass_start_ms[SIM_MAX_PASSES];
    double pass_start_remaining[SIM_MAX_PASSES];  /* bytes, right after the sync */
    /* what the policy said */
    unsigned int nswitch;       /* decisions with action switch */
    unsigned int ndecided;      /* decisions that newly decided a switch (any mode) */
    unsigned int nnotpermitted; /* decisions with rule postcopy-not-permitted */
    unsigned int nevaluated_mid_pass;   /* evaluations not at the first sample of a pass */
    mpPolicyDecision first;     /* the first decision with a rule other than none */
    bool have_first;
    unsigned int first_pass;
    double first_ms;
    unsigned int nsamples;
    /* nova's removed Newton rule on the same samples: < 10% progress in 0.5 s, pass > 1 */
    bool nova_newton_fired;
    /* lowest reported-dirty / send ratio seen at a pass start >= 2 (the trap) */
    double min_rho_reported;
    /* the evaluation of each pass start (the first 16 passes) */
    mpPolicyDecision eval[16];
    bool have_eval[16];
    /* every decision, hashed: what a caller acts on, and with the explanations */
    uint64_t hash_core;
    uint64_t hash_full;
    unsigned int nfallback;     /* decisions announcing the dirty-rate fallback */
} simResult;

static uint64_t
simHash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void
simRecord(simResult *res, const mpPolicyDecision *d, bool was_decided)
{
    unsigned int core[6] = { d->action, d->rule, d->prediction, d->evaluated,
                             d->switch_decided, d->pass };

    res->hash_core = simHash(res->hash_core, core, sizeof(core));
    res->hash_core = simHash(res->hash_core, &d->elapsed_ms, sizeof(d->elapsed_ms));
    res->hash_full = simHash(res->hash_full, core, sizeof(core));
    res->hash_full = simHash(res->hash_full, d->explanation, strlen(d->explanation));
    if (d->dirty_fallback)
        res->nfallback++;
    if (d->action == MP_POLICY_ACTION_SWITCH)
        res->nswitch++;
    if (d->switch_decided && !was_decided)
        res->ndecided++;
    if (d->rule == MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED)
        res->nnotpermitted++;
    if (!res->have_first && d->rule != MP_POLICY_RULE_NONE &&
        d->rule != MP_POLICY_RULE_IN_POSTCOPY) {
        res->have_first = true;
        res->first = *d;
        res->first_pass = d->pass;
        res->first_ms = (double)d->elapsed_ms;
    }
}

/*
 * Runs the scenario through a fresh policy with cfg. Pages 0..touched are non-zero; the
 * guest rewrites pages 0..wss cyclically. QEMU's loop: send dirty pages of the migration
 * bitmap in order within the rate limit; when what is left fits in the downtime, sync the
 * dirty log into the bitmap (a new pass); complete if the bitmap then fits.
 */
static void
simRun(const simScenario *sc, const mpPolicyConfig *cfg, simResult *res)
{
    const double tick_ms = 5;
    size_t npages = (size_t)(sc->ram_mib * MIB / PAGE);
    size_t touched = (size_t)(sc->touched_mib * MIB / PAGE);
    size_t wss = (size_t)(sc->wss_mib * MIB / PAGE);
    uint8_t *mig = calloc(npages, 1);
    uint8_t *dlog = calloc(npages, 1);
    uint8_t *nonzero = calloc(npages, 1);
    mpPolicy *policy = mpPolicyNew(cfg);
    double t = 0, dirty = sc->dirty_mibps, bw = sc->bw_mibps;
    unsigned int downtime = sc->downtime_ms;
    double write_acc = 0, budget = 0;
    size_t wcursor = 0, scursor = 0, nmig;
    double processed = 0, sent_window = 0, next_sample = 0, last_sample_t = 0;
    double period_start = 0, period_pages = 0, dirty_rate_pps = 0;
    unsigned int pass = 1;
    bool changed = false, first_sample = true, decided = false;
    double nova_prev_remaining = -1, nova_prev_t = -1;
    size_t i;

    ck_assert_ptr_nonnull(mig);
    ck_assert_ptr_nonnull(dlog);
    ck_assert_ptr_nonnull(nonzero);
    ck_assert_msg(policy != NULL, "%s", mpGetLastErrorMessage());
    memset(res, 0, sizeof(*res));
    res->min_rho_reported = 1e9;
    res->hash_core = res->hash_full = 14695981039346656037ULL;
    if (sc->dirty)
        ck_assert_msg(mpPolicySetDirty(policy, sc->dirty) == 0, "%s", mpGetLastErrorMessage());
    if (touched > npages)
        touched = npages;
    if (wss > touched)
        wss = touched;
    for (i = 0; i < touched; i++)
        nonzero[i] = 1;

    /* setup: the first sync puts all RAM in the bitmap (pass 1) */
    memset(mig, 1, npages);
    nmig = npages;
    res->passes = 1;
    res->pass_start_ms[1] = 0;
    res->pass_start_remaining[1] = (double)npages * PAGE;
    if (!sc->no_events) {
        mpPolicyDecision d;

        ck_assert_int_eq(mpPolicyFeedIteration(policy, 1, 0, &d), 0);
        simRecord(res, &d, decided);
        decided = d.switch_decided;
    }

    while (t < sc->max_ms) {
        double thr;

        t += tick_ms;
        if (!changed && sc->change_pass && pass >= sc->change_pass &&
            t >= res->pass_start_ms[sc->change_pass] + sc->change_delay_ms) {
            changed = true;
            if (sc->dirty2_mibps >= 0)
                dirty = sc->dirty2_mibps;
            if (sc->bw2_mibps >= 0)
                bw = sc->bw2_mibps;
            if (sc->downtime2_ms)
                downtime = sc->downtime2_ms;
        }
        /* the guest writes */
        if (wss > 0) {
            write_acc += dirty * MIB / PAGE * tick_ms / 1000.0;
            while (write_acc >= 1) {
                dlog[wcursor] = 1;
                wcursor = (wcursor + 1) % wss;
                write_acc -= 1;
            }
        }
        /* QEMU sends within the rate limit */
        budget += bw * MIB * tick_ms / 1000.0;
        while (nmig > 0 && budget > 0) {
            size_t scanned = 0;

            while (!mig[scursor] && scanned < npages) {
                scursor = (scursor + 1) % npages;
                scanned++;
            }
            if (!mig[scursor])
                break;
            mig[scursor] = 0;
            nmig--;
            {
                double cost = nonzero[scursor] ? PAGE : 16;

                budget -= cost;
                processed += cost;
                sent_window += cost;
            }
            scursor = (scursor + 1) % npages;
        }
        if (nmig == 0 && budget > 0)
            budget = 0;     /* an idle link does not bank bandwidth */

        /* sync when what is left fits in the downtime */
        thr = bw * MIB * downtime / 1000.0;
        if ((double)nmig * PAGE < thr) {
            size_t newly = 0;

            for (i = 0; i < npages; i++) {
                if (dlog[i]) {
                    if (!mig[i]) {
                        mig[i] = 1;
                        nmig++;
                        newly++;
                    }
                    dlog[i] = 0;
                }
            }
            period_pages += (double)newly;
            if (t - period_start >= 1000) {
                dirty_rate_pps = period_pages * 1000.0 / (t - period_start);
                period_pages = 0;
                period_start = t;
            }
            if ((double)nmig * PAGE < thr) {
                res->completed = true;
                res->end_ms = t;
                break;
            }
            pass++;
            /* nova's step, right at the pass start: the first sample carries it */
            if (!changed && sc->change_pass == pass && sc->change_delay_ms == 0 &&
                sc->downtime2_ms) {
                changed = true;
                downtime = sc->downtime2_ms;
            }
            if (pass < SIM_MAX_PASSES) {
                res->passes = pass;
                res->pass_start_ms[pass] = t;
                res->pass_start_remaining[pass] = (double)nmig * PAGE;
            }
            if (!sc->no_events) {
                mpPolicyDecision d;

                ck_assert_int_eq(mpPolicyFeedIteration(policy, pass,
                                                       (unsigned long long)t, &d), 0);
                simRecord(res, &d, decided);
                decided = d.switch_decided;
                if (d.action == MP_POLICY_ACTION_SWITCH) {
                    res->switched = true;
                    res->end_ms = t;
                    break;
                }
            }
        }

        if (t >= next_sample) {
            mpPolicySample s = { 0 };
            mpPolicyDecision d;
            bool first_of_pass;

            s.has = MP_POLICY_HAS_PASS | MP_POLICY_HAS_TOTAL | MP_POLICY_HAS_PROCESSED |
                MP_POLICY_HAS_REMAINING | MP_POLICY_HAS_DIRTY;
            if (!first_sample)   /* libvirt's first poll lacks bps and downtime */
                s.has |= MP_POLICY_HAS_BPS | MP_POLICY_HAS_MAX_DOWNTIME |
                    MP_POLICY_HAS_EXP_DOWNTIME;
            s.elapsed_ms = (unsigned long long)t;
            s.pass = pass;
            s.memory_total = (unsigned long long)npages * PAGE;
            s.memory_processed = (unsigned long long)processed;
            s.memory_remaining = (unsigned long long)nmig * PAGE;
            s.memory_bps = first_sample || t <= last_sample_t ? 0 :
                (unsigned long long)(sent_window * 1000.0 / (t - last_sample_t));
            s.dirty_bps = (unsigned long long)(dirty_rate_pps * PAGE);
            s.max_downtime_ms = downtime;
            s.expected_downtime_ms = bw > 0 ?
                (unsigned long long)((double)nmig * PAGE / (bw * MIB) * 1000.0) : 0;
            s.postcopy_permitted = !sc->not_permitted;
            first_of_pass = pass >= 2 && last_sample_t < res->pass_start_ms[pass <
                                                                    SIM_MAX_PASSES ? pass : 0];
            ck_assert_int_eq(mpPolicyFeedSample(policy, &s, &d), 0);
            simRecord(res, &d, decided);
            decided = d.switch_decided;
            res->nsamples++;
            if (d.evaluated && !first_of_pass)
                res->nevaluated_mid_pass++;
            if (d.evaluated && pass < 16 && !res->have_eval[pass]) {
                res->have_eval[pass] = true;
                res->eval[pass] = d;
            }
            if (first_of_pass && s.memory_bps > 0) {
                double r = (double)s.dirty_bps / (double)s.memory_bps;

                if (r < res->min_rho_reported)
                    res->min_rho_reported = r;
            }
            /* nova 14-18's rule, sampled every 500 ms */
            if (t - nova_prev_t >= 500 || nova_prev_t < 0) {
                double rem = (double)s.memory_remaining;

                if (pass > 1 && nova_prev_remaining > 0 &&
                    (nova_prev_remaining - rem) * 100 / nova_prev_remaining < 10)
                    res->nova_newton_fired = true;
                nova_prev_remaining = rem;
                nova_prev_t = t;
            }
            sent_window = 0;
            last_sample_t = t;
            next_sample = t + sc->sample_ms;
            first_sample = false;
            if (d.action == MP_POLICY_ACTION_SWITCH) {
                mpPolicySample pc = s;

                /* the switch happens: the next sample is in post-copy */
                res->switched = true;
                res->end_ms = t;
                pc.elapsed_ms += sc->sample_ms;
                pc.in_postcopy = true;
                ck_assert_int_eq(mpPolicyFeedSample(policy, &pc, &d), 0);
                ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
                ck_assert_int_eq(d.rule, MP_POLICY_RULE_IN_POSTCOPY);
                break;
            }
        }
    }
    if (!res->completed && !res->switched)
        res->end_ms = t;
    mpPolicyFree(policy);
    free(mig);
    free(dlog);
    free(nonzero);
}

static void
simDefaults(simScenario *sc)
{
    memset(sc, 0, sizeof(*sc));
    /* the lab: 512 MiB guest, dirtier over 256 MiB, max-bandwidth 32 MiB/s */
    sc->ram_mib = 512;
    sc->touched_mib = 300;
    sc->wss_mib = 256;
    sc->dirty_mibps = 10;
    sc->bw_mibps = 32;
    sc->downtime_ms = 300;
    sc->sample_ms = 250;
    sc->max_ms = 90000;
    sc->dirty2_mibps = -1;
    sc->bw2_mibps = -1;
}

static void
simDump(const char *name, const simResult *res)
{
    unsigned int k;

    fprintf(stderr, "[%s] %s at %.0f ms, %u passes:", name,
            res->completed ? "completed" : res->switched ? "switched" : "gave up",
            res->end_ms, res->passes);
    for (k = 1; k <= res->passes && k < SIM_MAX_PASSES && k <= 12; k++)
        fprintf(stderr, " p%u@%.1fs=%.1fMiB", k, res->pass_start_ms[k] / 1000,
                res->pass_start_remaining[k] / MIB);
    fprintf(stderr, "\n");
    if (res->have_first)
        fprintf(stderr, "[%s]   first rule at pass %u, %.0f ms: %s\n", name, res->first_pass,
                res->first_ms, res->first.explanation);
}

/* The decision of the first sample of pass 2 arrives within a poll of its start. */
static void
assertSwitchAtPassStart(const simResult *res, unsigned int pass, mpPolicyRule rule,
                        unsigned int sample_ms)
{
    ck_assert_msg(res->have_first, "no rule fired");
    ck_assert_uint_eq(res->first_pass, pass);
    ck_assert_msg(res->first.rule == rule, "rule %s, expected %s: %s",
                  mpPolicyRuleToString(res->first.rule), mpPolicyRuleToString(rule),
                  res->first.explanation);
    ck_assert_msg(res->first_ms >= res->pass_start_ms[pass] &&
                  res->first_ms <= res->pass_start_ms[pass] + sample_ms,
                  "decided at %.0f ms, pass %u started at %.0f ms", res->first_ms, pass,
                  res->pass_start_ms[pass]);
    ck_assert(res->first.evaluated);
}

/* ---- simulated scenarios ---- */

START_TEST(test_sim_converging_never_switches)
{
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    simDump("converging", &res);
    ck_assert(res.completed);
    ck_assert_uint_ge(res.passes, 3);       /* the lab run took 6 iterations */
    ck_assert_uint_eq(res.nswitch, 0);
    ck_assert_msg(!res.have_first, "rule fired: %s", res.first.explanation);
    ck_assert_uint_eq(res.nevaluated_mid_pass, 0);
}
END_TEST

START_TEST(test_sim_converging_prediction)
{
    /* At pass 2 the policy predicts convergence, and a finish near the real one. */
    simScenario sc;
    mpPolicyConfig cfg;
    simResult res;
    const mpPolicyDecision *e;

    simDefaults(&sc);
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    ck_assert(res.completed);
    ck_assert(res.have_eval[2]);
    e = &res.eval[2];
    fprintf(stderr, "[converging] pass 2: %s\n", e->explanation);
    ck_assert_int_eq(e->prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_double_lt(e->rho, 0.5);
    ck_assert_double_le(e->predicted_passes, 4);
    ck_assert_msg(fabs((double)e->predicted_finish_ms - res.end_ms) < 2000,
                  "predicted %lld ms, ended %.0f ms", e->predicted_finish_ms, res.end_ms);
    ck_assert_int_gt(e->remaining_start, 0);
    ck_assert_int_eq(e->remaining_prev, -1);    /* pass 1 is not comparable */
    ck_assert(res.have_eval[3]);
    ck_assert_int_eq(res.eval[3].remaining_prev, e->remaining_start);
    ck_assert_int_lt(res.eval[3].remaining_start, e->remaining_start / 2);
}
END_TEST

START_TEST(test_sim_stalled_switches_at_pass2)
{
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    sc.dirty_mibps = 90;    /* flat out under TCG: 84-96 MiB/s */
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    simDump("stalled", &res);
    ck_assert(res.switched);
    ck_assert_uint_eq(res.nswitch, 1);
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_NOT_CONVERGING, sc.sample_ms);
    ck_assert(res.first.switch_decided && res.first.acted_on);
    ck_assert_int_eq(res.first.prediction, MP_POLICY_PREDICTION_NOT_CONVERGING);
    ck_assert_int_gt(res.first.remaining_start, (long long)(200 * MIB));
    ck_assert_int_gt(res.first.switch_cost_ms, 0);
    ck_assert_int_gt(res.first.threshold_bytes, 0);
    ck_assert_ptr_nonnull(strstr(res.first.explanation, "not-converging"));
}
END_TEST

START_TEST(test_sim_working_set_trap)
{
    /* QEMU reports a dirty rate below the send rate (rho ~0.8: "converging") but every
     * pass starts again with the whole working set. */
    simScenario sc;
    simResult res, ref;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    sc.dirty_mibps = 90;
    mpPolicyConfigInit(&cfg);
    /* ground truth without the policy: it never finishes, remaining does not shrink */
    cfg.mode = MP_POLICY_MODE_OBSERVE;
    sc.max_ms = 40000;
    simRun(&sc, &cfg, &ref);
    ck_assert(!ref.completed);
    ck_assert_uint_ge(ref.passes, 4);
    ck_assert_double_gt(ref.pass_start_remaining[3], 0.9 * ref.pass_start_remaining[2]);
    ck_assert_double_gt(ref.pass_start_remaining[4], 0.9 * ref.pass_start_remaining[3]);
    ck_assert_msg(ref.min_rho_reported < 1.0, "reported rho %.2f", ref.min_rho_reported);

    cfg.mode = MP_POLICY_MODE_AUTO;
    simRun(&sc, &cfg, &res);
    ck_assert(res.switched);
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_NOT_CONVERGING, sc.sample_ms);
    ck_assert_double_lt(res.first.rho_reported, 1.0);
    ck_assert_double_gt(res.first.predicted_passes, cfg.max_passes);
}
END_TEST

START_TEST(test_sim_small_working_set_trap_pass3)
{
    /* A 32 MiB working set rewritten flat out: at pass 2 the evidence says converging
     * (R2 is small against a 9 s first pass); pass 3 starts with the same 32 MiB, so the
     * policy switches there, by the measured shrink. */
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    sc.wss_mib = 32;
    sc.dirty_mibps = 90;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    simDump("small-wss", &res);
    ck_assert(res.switched);
    ck_assert_uint_ge(res.first_pass, 2);
    ck_assert_uint_le(res.first_pass, 3);
    assertSwitchAtPassStart(&res, res.first_pass,
                            res.first_pass == 3 ? MP_POLICY_RULE_NOT_SHRINKING :
                            MP_POLICY_RULE_NOT_CONVERGING, sc.sample_ms);
}
END_TEST

START_TEST(test_sim_sawtooth_does_not_trigger)
{
    /* Long passes polled every 100 ms: remaining falls by ~1% per poll within a pass,
     * which nova's removed Newton rule read as "no progress". */
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    sc.ram_mib = 2048;
    sc.touched_mib = 1500;
    sc.wss_mib = 1024;
    sc.dirty_mibps = 6;
    sc.sample_ms = 100;
    sc.max_ms = 200000;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    simDump("sawtooth", &res);
    ck_assert(res.completed);
    ck_assert_msg(res.nova_newton_fired, "the saw-tooth should fool nova's old rule");
    ck_assert_uint_eq(res.nswitch, 0);
    ck_assert_msg(!res.have_first, "rule fired: %s", res.first.explanation);
    ck_assert_uint_eq(res.nevaluated_mid_pass, 0);
}
END_TEST

START_TEST(test_sim_dirty_rate_rises)
{
    /* Converging at pass 2, then the guest speeds up during pass 2: switch at pass 3. */
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    sc.ram_mib = 1024;
    sc.touched_mib = 600;
    sc.wss_mib = 512;
    sc.dirty_mibps = 5;
    sc.change_pass = 2;
    sc.change_delay_ms = 500;
    sc.dirty2_mibps = 90;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    simDump("rising", &res);
    ck_assert(res.switched);
    ck_assert_uint_ge(res.passes, 3);
    assertSwitchAtPassStart(&res, 3, MP_POLICY_RULE_NOT_SHRINKING, sc.sample_ms);
    ck_assert_int_gt(res.first.remaining_prev, 0);
}
END_TEST

START_TEST(test_sim_bandwidth_drops)
{
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    sc.dirty_mibps = 8;
    sc.change_pass = 2;
    sc.change_delay_ms = 500;
    sc.bw2_mibps = 6;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    simDump("bw-drop", &res);
    ck_assert(res.switched);
    ck_assert_uint_eq(res.first_pass, 3);
    ck_assert_msg(res.first.rule == MP_POLICY_RULE_NOT_SHRINKING ||
                  res.first.rule == MP_POLICY_RULE_NOT_CONVERGING, "%s",
                  res.first.explanation);
    ck_assert_msg(res.first_ms <= res.pass_start_ms[3] + sc.sample_ms, "late: %s",
                  res.first.explanation);
    /* the same without the drop converges untouched */
    sc.change_pass = 0;
    simRun(&sc, &cfg, &res);
    ck_assert(res.completed);
    ck_assert_uint_eq(res.nswitch, 0);
}
END_TEST

START_TEST(test_sim_idle_and_tiny)
{
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    mpPolicyConfigInit(&cfg);
    /* idle guest over a fast link: done in pass 1-2 */
    simDefaults(&sc);
    sc.touched_mib = 64;
    sc.wss_mib = 0;
    sc.dirty_mibps = 0;
    sc.bw_mibps = 1000;
    simRun(&sc, &cfg, &res);
    simDump("idle", &res);
    ck_assert(res.completed);
    ck_assert_uint_le(res.passes, 2);
    ck_assert_uint_eq(res.nswitch, 0);
    ck_assert(!res.have_first);

    /* tiny guest, slow link, a little dirtying: pass 2 fits in the downtime */
    simDefaults(&sc);
    sc.ram_mib = 128;
    sc.touched_mib = 40;
    sc.wss_mib = 4;
    sc.dirty_mibps = 0.5;
    simRun(&sc, &cfg, &res);
    simDump("tiny", &res);
    ck_assert(res.completed);
    ck_assert_uint_eq(res.nswitch, 0);
    ck_assert(!res.have_first);

    /* finishes inside pass 1 (completion at the first sync) */
    simDefaults(&sc);
    sc.ram_mib = 64;
    sc.touched_mib = 8;
    sc.wss_mib = 0;
    sc.dirty_mibps = 0;
    sc.bw_mibps = 100;
    simRun(&sc, &cfg, &res);
    ck_assert(res.completed);
    ck_assert_uint_eq(res.passes, 1);
    ck_assert_uint_eq(res.nswitch, 0);
}
END_TEST

START_TEST(test_sim_postcopy_not_permitted)
{
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    sc.dirty_mibps = 90;
    sc.not_permitted = true;
    sc.max_ms = 40000;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    ck_assert(!res.completed && !res.switched);
    ck_assert_uint_ge(res.passes, 4);
    ck_assert_uint_eq(res.nswitch, 0);
    ck_assert_uint_eq(res.ndecided, 0);
    ck_assert_uint_eq(res.nnotpermitted, 1);   /* said once */
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED, sc.sample_ms);
    ck_assert_ptr_nonnull(strstr(res.first.explanation, "not permitted"));
    ck_assert_int_eq(res.first.prediction, MP_POLICY_PREDICTION_NOT_CONVERGING);
}
END_TEST

START_TEST(test_sim_observe_mode)
{
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    sc.dirty_mibps = 90;
    sc.max_ms = 40000;
    mpPolicyConfigInit(&cfg);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "mode", "observe"), 0);
    simRun(&sc, &cfg, &res);
    ck_assert(!res.completed && !res.switched);
    ck_assert_uint_eq(res.nswitch, 0);
    ck_assert_uint_eq(res.ndecided, 1);
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_NOT_CONVERGING, sc.sample_ms);
    ck_assert(res.first.switch_decided);
    ck_assert(!res.first.acted_on);
    ck_assert_int_eq(res.first.action, MP_POLICY_ACTION_NONE);
    ck_assert_ptr_nonnull(strstr(res.first.explanation, "not acted on"));
}
END_TEST

START_TEST(test_sim_min_pass_and_no_events)
{
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;

    simDefaults(&sc);
    sc.dirty_mibps = 90;
    mpPolicyConfigInit(&cfg);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "min_pass", "3"), 0);
    simRun(&sc, &cfg, &res);
    ck_assert(res.switched);
    assertSwitchAtPassStart(&res, 3, MP_POLICY_RULE_NOT_SHRINKING, sc.sample_ms);

    /* samples only (no MIGRATION_ITERATION events): pass starts come from the samples */
    mpPolicyConfigInit(&cfg);
    sc.no_events = true;
    simRun(&sc, &cfg, &res);
    ck_assert(res.switched);
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_NOT_CONVERGING, sc.sample_ms);
    sc.dirty_mibps = 10;
    simRun(&sc, &cfg, &res);
    ck_assert(res.completed);
    ck_assert_uint_eq(res.nswitch, 0);
}
END_TEST

START_TEST(test_sim_deadline_predicted)
{
    /* Converging, but pre-copy would end after the operator's deadline. */
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;
    char value[32];
    double end, deadline;

    simDefaults(&sc);
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    ck_assert(res.completed);
    end = res.end_ms;
    deadline = (res.pass_start_ms[2] + end) / 2;
    snprintf(value, sizeof(value), "%.0f", deadline);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "deadline_ms", value), 0);
    simRun(&sc, &cfg, &res);
    simDump("deadline", &res);
    ck_assert(res.switched);
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_DEADLINE, sc.sample_ms);
    ck_assert_int_eq(res.first.prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_double_gt((double)res.first.predicted_finish_ms, deadline);

    /* a deadline already past at the start of pass 2 fires at its event */
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "deadline_ms", "5000"), 0);
    simRun(&sc, &cfg, &res);
    ck_assert(res.switched);
    ck_assert_uint_eq(res.first_pass, 2);
    ck_assert_int_eq(res.first.rule, MP_POLICY_RULE_DEADLINE);
    ck_assert_double_eq(res.first_ms, res.pass_start_ms[2]);
}
END_TEST

/* ---- hand-fed samples ---- */

static mpPolicySample
mkSample(unsigned long long ms, unsigned int pass, double remaining_mib, double bps_mib,
         double dirty_mib)
{
    mpPolicySample s = { 0 };

    s.has = MP_POLICY_HAS_PASS | MP_POLICY_HAS_TOTAL | MP_POLICY_HAS_PROCESSED |
        MP_POLICY_HAS_REMAINING | MP_POLICY_HAS_BPS | MP_POLICY_HAS_DIRTY;
    s.elapsed_ms = ms;
    s.pass = pass;
    s.memory_total = (unsigned long long)(512 * MIB);
    s.memory_processed = (unsigned long long)(bps_mib * MIB * (double)ms / 1000.0);
    s.memory_remaining = (unsigned long long)(remaining_mib * MIB);
    s.memory_bps = (unsigned long long)(bps_mib * MIB);
    s.dirty_bps = (unsigned long long)(dirty_mib * MIB);
    s.postcopy_permitted = true;
    return s;
}

START_TEST(test_deadline_passed_mid_pass)
{
    mpPolicyConfig cfg;
    mpPolicy *p;
    mpPolicyDecision d;
    mpPolicySample s;
    unsigned long long t;

    mpPolicyConfigInit(&cfg);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "deadline_ms", "20000"), 0);
    ck_assert_ptr_nonnull(p = mpPolicyNew(&cfg));
    /* pass 1: 10 s; deadline passes during pass 1 would wait for pass 2 */
    for (t = 0; t <= 10000; t += 250) {
        s = mkSample(t, 1, 512 - 50.0 * (double)t / 1000, 32, 0);
        ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
        ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    }
    ck_assert_int_eq(mpPolicyFeedIteration(p, 2, 10100, &d), 0);
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_NONE);
    /* pass 2 starts with 60 MiB (rho ~0.19): converging, ends well before 20 s */
    s = mkSample(10250, 2, 55, 32, 6);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    ck_assert(d.evaluated);
    ck_assert_int_eq(d.prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_NONE);
    ck_assert_int_lt(d.predicted_finish_ms, 20000);
    /* ... but the link stalls (it happens) and pass 2 drags on past the deadline */
    for (t = 10500; t < 20000; t += 250) {
        s = mkSample(t, 2, 50, 32, 6);
        ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
        ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
        ck_assert(!d.evaluated);
    }
    s = mkSample(20000, 2, 50, 32, 6);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_SWITCH);
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_DEADLINE);
    ck_assert_str_eq(mpPolicyRuleToString(d.rule), "deadline");
    /* idempotent afterwards */
    s = mkSample(20250, 2, 50, 32, 6);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    ck_assert(d.switch_decided);
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_DEADLINE);
    ck_assert_int_eq(mpPolicyFeedIteration(p, 3, 20300, &d), 0);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    ck_assert(d.switch_decided);
    mpPolicyFree(p);
}
END_TEST

START_TEST(test_deadline_before_min_pass_waits)
{
    mpPolicyConfig cfg;
    mpPolicy *p;
    mpPolicyDecision d;
    mpPolicySample s;
    unsigned long long t;

    mpPolicyConfigInit(&cfg);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "deadline_ms", "3000"), 0);
    ck_assert_ptr_nonnull(p = mpPolicyNew(&cfg));
    for (t = 0; t <= 9000; t += 250) {
        s = mkSample(t, 1, 512 - 50.0 * (double)t / 1000, 32, 0);
        ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
        ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    }
    /* the event of pass 2 is the first moment allowed */
    ck_assert_int_eq(mpPolicyFeedIteration(p, 2, 9100, &d), 0);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_SWITCH);
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_DEADLINE);
    ck_assert_uint_eq(d.pass, 2);
    mpPolicyFree(p);
}
END_TEST

START_TEST(test_already_in_postcopy)
{
    mpPolicyConfig cfg;
    mpPolicy *p;
    mpPolicyDecision d;
    mpPolicySample s;

    mpPolicyConfigInit(&cfg);
    ck_assert_ptr_nonnull(p = mpPolicyNew(&cfg));
    s = mkSample(5000, 2, 250, 32, 30);
    s.in_postcopy = true;
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_IN_POSTCOPY);
    ck_assert(!d.switch_decided);
    /* later samples (even without the flag) never switch a post-copy job */
    s = mkSample(5250, 3, 250, 32, 30);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_IN_POSTCOPY);
    mpPolicyFree(p);
}
END_TEST

START_TEST(test_bad_input_rejected)
{
    mpPolicyConfig cfg;
    mpPolicy *p;
    mpPolicyDecision d;
    mpPolicySample s;

    mpPolicyConfigInit(&cfg);
    ck_assert_ptr_nonnull(p = mpPolicyNew(&cfg));
    s = mkSample(5000, 2, 250, 32, 30);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    mpResetLastError();
    s = mkSample(4000, 2, 250, 32, 30);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), -1);
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "older"));
    s = mkSample(6000, 1, 250, 32, 30);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), -1);
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "pass 1 after"));
    /* stale and duplicate events are ignored */
    ck_assert_int_eq(mpPolicyFeedIteration(p, 1, 100, &d), 0);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    ck_assert_uint_eq(d.pass, 2);
    mpPolicyFree(p);
}
END_TEST

START_TEST(test_zero_and_extreme_samples)
{
    /* Rates of 0, missing fields, huge values: no switch, no UB (UBSan checks). */
    mpPolicyConfig cfg;
    mpPolicy *p;
    mpPolicyDecision d;
    mpPolicySample s;
    unsigned int i;

    mpPolicyConfigInit(&cfg);
    ck_assert_ptr_nonnull(p = mpPolicyNew(&cfg));
    for (i = 0; i < 20; i++) {
        memset(&s, 0, sizeof(s));
        s.has = i % 2 ? 0xff : MP_POLICY_HAS_PASS;
        s.elapsed_ms = i * 250;
        s.pass = i / 4 + 1;
        s.postcopy_permitted = true;
        ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
        ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
        ck_assert(d.explanation[0] != '\0');
    }
    mpPolicyFree(p);

    ck_assert_ptr_nonnull(p = mpPolicyNew(&cfg));
    for (i = 0; i < 20; i++) {
        memset(&s, 0xff, sizeof(s));
        s.has = 0xff;
        s.elapsed_ms = ~0ULL - 20 + i;
        s.pass = 4000000000u + i / 4;
        s.postcopy_permitted = true;
        s.in_postcopy = false;
        ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
        ck_assert_uint_lt(strlen(d.explanation), MP_POLICY_EXPLANATION_MAX);
    }
    mpPolicyFree(p);
}
END_TEST

/* ---- the measured dirtying (mpPolicySetDirty) ---- */

/* What QEMU's calc-dirty-rate reports for the scenario's guest over 1 s and 4 s: the
 * simulator's writer dirties min(W, r x T) distinct pages in T seconds; whole MiB/s. */
static void
simMeasure(const simScenario *sc, mpDirtyMeasurement *m, unsigned long long age_ms)
{
    static const unsigned long long win[2] = { 1000, 4000 };
    size_t i;

    memset(m, 0, sizeof(*m));
    for (i = 0; i < 2; i++) {
        double secs = (double)win[i] / 1000.0;
        double pages = sc->dirty_mibps * secs;

        if (pages > sc->wss_mib)
            pages = sc->wss_mib;
        m->windows[i].window_ms = win[i];
        m->windows[i].rate_mibs = (unsigned long long)llround(pages / secs);
    }
    m->nwindows = 2;
    m->memory_bytes = (unsigned long long)(sc->ram_mib * MIB);
    m->age_ms = age_ms;
}

START_TEST(test_dirty_saturated_switches_at_pass2)
{
    /* 32 MiB rewritten flat out: from the samples alone pass 2 looks converging and the
     * policy switches at pass 3; the measurement (32 MiB in 1 s and in 4 s) shows the
     * working set, larger than 32 MiB/s x 300 ms: switch at pass 2. */
    simScenario sc;
    simResult before, res;
    mpPolicyConfig cfg;
    mpDirtyMeasurement m;

    simDefaults(&sc);
    sc.wss_mib = 32;
    sc.dirty_mibps = 90;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &before);
    ck_assert(before.switched);
    ck_assert_uint_eq(before.first_pass, 3);

    simMeasure(&sc, &m, 0);
    ck_assert_uint_eq(m.windows[0].rate_mibs, 32);
    ck_assert_uint_eq(m.windows[1].rate_mibs, 8);
    sc.dirty = &m;
    simRun(&sc, &cfg, &res);
    simDump("measured small-wss", &res);
    ck_assert(res.switched);
    ck_assert_uint_eq(res.nswitch, 1);
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_WORKING_SET, sc.sample_ms);
    ck_assert_int_eq(res.first.dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert(!res.first.dirty_fallback);
    ck_assert_int_eq(res.first.dirty_wss_bytes, (long long)(32 * MIB));
    ck_assert_int_eq(res.first.dirty_write_bps, (long long)(32 * MIB));
    ck_assert_int_ge(res.first.dirty_age_ms, 9000);    /* fed at 0, judged ~9.4 s later */
    ck_assert_int_le(res.first.dirty_age_ms, 10000);
    /* what pass 3 would resend: the whole working set, more than fits in the downtime */
    ck_assert_int_eq(res.first.predicted_remaining, (long long)(32 * MIB));
    ck_assert_int_gt(res.first.predicted_remaining, res.first.threshold_bytes);
    ck_assert_int_eq(res.first.prediction, MP_POLICY_PREDICTION_NOT_CONVERGING);
    ck_assert_ptr_nonnull(strstr(res.first.explanation,
                                 "switch (working-set-exceeds-downtime)"));
    ck_assert_ptr_nonnull(strstr(res.first.explanation, "measured W 32.0 MiB"));
    ck_assert_uint_eq(res.nfallback, 0);
    /* sooner than without it */
    ck_assert_double_lt(res.end_ms, before.end_ms);
}
END_TEST

START_TEST(test_dirty_converging_never_switches)
{
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;
    mpDirtyMeasurement m;
    const mpPolicyDecision *e;
    static const double wss[] = { 256, 4, 0 };
    static const double rate[] = { 10, 0.5, 0 };
    size_t i;

    mpPolicyConfigInit(&cfg);
    for (i = 0; i < sizeof(wss) / sizeof(wss[0]); i++) {
        simDefaults(&sc);
        sc.wss_mib = wss[i];
        sc.dirty_mibps = rate[i];
        simMeasure(&sc, &m, 0);
        sc.dirty = &m;
        simRun(&sc, &cfg, &res);
        simDump("measured converging", &res);
        ck_assert(res.completed);
        ck_assert_uint_eq(res.nswitch, 0);
        ck_assert_msg(!res.have_first, "rule fired: %s", res.first.explanation);
    }
    /* the lab's converging guest: predicted at pass 2, and near the real end */
    simDefaults(&sc);
    simMeasure(&sc, &m, 0);
    sc.dirty = &m;
    simRun(&sc, &cfg, &res);
    ck_assert(res.have_eval[2]);
    e = &res.eval[2];
    fprintf(stderr, "[measured converging] pass 2: %s\n", e->explanation);
    ck_assert_int_eq(e->dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert_int_eq(e->prediction, MP_POLICY_PREDICTION_CONVERGING);
    /* the 10 MiB/s the guest writes, as pass 1 counted it (it did not saturate the set) */
    ck_assert_int_ge(e->dirty_write_bps, (long long)(9.9 * MIB));
    ck_assert_int_le(e->dirty_write_bps, (long long)(10.1 * MIB));
    /* 10 MiB/s in 1 s and in 4 s: the working set is at least what 4 s found */
    ck_assert_int_eq(e->dirty_wss_bytes, (long long)(40 * MIB));
    ck_assert_int_lt(e->predicted_remaining, e->remaining_start / 2);
    ck_assert_msg(fabs((double)e->predicted_finish_ms - res.end_ms) < 0.1 * res.end_ms,
                  "predicted %lld ms, ended %.0f ms", e->predicted_finish_ms, res.end_ms);
}
END_TEST

START_TEST(test_dirty_rate_limited_below_bandwidth)
{
    /* A writer held at 70 % of the send rate over a large set: each pass shrinks by 0.7,
     * ~10 passes. From the samples the policy predicts more than max_passes and switches
     * at pass 2; the measurement says it converges, and it does. */
    simScenario sc;
    simResult before, res, truth;
    mpPolicyConfig cfg;
    mpDirtyMeasurement m;

    simDefaults(&sc);
    sc.touched_mib = 450;
    sc.wss_mib = 400;
    sc.dirty_mibps = 22.4;
    sc.max_ms = 200000;
    mpPolicyConfigInit(&cfg);
    cfg.mode = MP_POLICY_MODE_OBSERVE;
    simRun(&sc, &cfg, &truth);
    ck_assert(truth.completed);
    ck_assert_uint_ge(truth.passes, 6);

    cfg.mode = MP_POLICY_MODE_AUTO;
    simRun(&sc, &cfg, &before);
    ck_assert(before.switched);
    ck_assert_uint_eq(before.first_pass, 2);

    simMeasure(&sc, &m, 0);
    sc.dirty = &m;
    simRun(&sc, &cfg, &res);
    simDump("measured rate-limited", &res);
    ck_assert(res.completed);
    ck_assert_uint_eq(res.nswitch, 0);
    ck_assert(res.have_eval[2]);
    ck_assert_int_eq(res.eval[2].dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert_int_eq(res.eval[2].prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_double_lt(res.eval[2].rho, cfg.rho_max);
}
END_TEST

/* Pass 1 of 10 s at 32 MiB/s, then pass 2 starting with R2 MiB: the first sample of
 * pass 2, decided with measurement m. */
static mpPolicyDecision
handPass2(const mpDirtyMeasurement *m, double r2_mib, unsigned long long max_downtime_ms)
{
    mpPolicyConfig cfg;
    mpPolicy *p;
    mpPolicyDecision d;
    mpPolicySample s;
    unsigned long long t;

    mpPolicyConfigInit(&cfg);
    ck_assert_ptr_nonnull(p = mpPolicyNew(&cfg));
    if (m)
        ck_assert_int_eq(mpPolicySetDirty(p, m), 0);
    for (t = 0; t <= 10000; t += 250) {
        s = mkSample(t, 1, 512 - 50.0 * (double)t / 1000, 32, 0);
        ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    }
    ck_assert_int_eq(mpPolicyFeedIteration(p, 2, 10100, &d), 0);
    s = mkSample(10250, 2, r2_mib - 32 * 0.15, 32, r2_mib / 10);
    if (max_downtime_ms) {
        s.has |= MP_POLICY_HAS_MAX_DOWNTIME;
        s.max_downtime_ms = max_downtime_ms;
    }
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    ck_assert(d.evaluated);
    mpPolicyFree(p);
    return d;
}

START_TEST(test_dirty_trap_long_window_rate)
{
    /* 100 MiB rewritten at 90 MiB/s: over 4 s QEMU reports 25 MiB/s, below the 32 MiB/s
     * send rate. Taken as the guest's rate it says "converging"; it is the working set
     * over the window. */
    mpDirtyMeasurement m = { 0 }, trap;
    mpPolicyDecision d;

    m.nwindows = 2;
    m.windows[0].window_ms = 1000;
    m.windows[0].rate_mibs = 90;
    m.windows[1].window_ms = 4000;
    m.windows[1].rate_mibs = 25;
    m.memory_bytes = (unsigned long long)(512 * MIB);
    d = handPass2(&m, 100, 0);
    fprintf(stderr, "[trap] %s\n", d.explanation);
    ck_assert_int_eq(d.dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert_int_eq(d.dirty_write_bps, (long long)(90 * MIB));
    ck_assert_int_eq(d.dirty_wss_bytes, (long long)(100 * MIB));
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_WORKING_SET);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_SWITCH);
    ck_assert_int_eq(d.predicted_remaining, (long long)(100 * MIB));

    /* the long window's rate as the guest's rate: what the policy must not do */
    trap = m;
    trap.windows[0].rate_mibs = 25;
    d = handPass2(&trap, 100, 0);
    ck_assert_int_eq(d.dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert_int_eq(d.prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
}
END_TEST

/* A small guest's sampled rate over-reads (a 4 MiB/s writer of a 256 MiB lab guest read
 * 26 MiB/s over 1 s, 11 MiB/s over 4 s): pass 1 found only 18 MiB dirtied in its 10.1 s,
 * so the guest writes ~1.8 MiB/s and converges; the sampled figures alone would switch. */
START_TEST(test_dirty_overread_overruled_by_pass1)
{
    mpDirtyMeasurement m = { 0 };
    mpPolicyDecision d;

    m.nwindows = 2;
    m.windows[0].window_ms = 1000;
    m.windows[0].rate_mibs = 26;
    m.windows[1].window_ms = 4000;
    m.windows[1].rate_mibs = 11;
    m.memory_bytes = (unsigned long long)(256 * MIB);
    d = handPass2(&m, 18, 0);
    fprintf(stderr, "[over-read] %s\n", d.explanation);
    ck_assert_int_eq(d.dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert_int_eq(d.dirty_wss_bytes, (long long)(44 * MIB));
    /* the rate pass 1 counted, not the sampled 26 MiB/s */
    ck_assert_int_lt(d.dirty_write_bps, (long long)(2 * MIB));
    ck_assert_int_eq(d.prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);

    /* a guest that writes faster than the link, where pass 1 found the whole 44 MiB: the
     * working set saturated, the rate is at least the sampled one, and it stands */
    m.windows[0].rate_mibs = 40;
    d = handPass2(&m, 44, 0);
    ck_assert_int_eq(d.dirty_write_bps, (long long)(40 * MIB));
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_WORKING_SET);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_SWITCH);
}
END_TEST

/* A small set rewritten flat out reads low under page sampling (the lab: 48 MiB for a 64
 * MiB set), and saturates even the 1 s window: r is only a floor. Pass 1 counted 40 MiB
 * for the 20 MiB measured, so W is at least 40 less the 9.6 MiB QEMU may leave unsent at
 * its sync; rewritten within 1 s, it fills pass 3 again and pre-copy stalls: switch at pass
 * 2. Taken at the measured 20 MiB, the passes would shrink at the rate's floor and the
 * policy would wait for pass 3. */
START_TEST(test_dirty_saturated_set_at_least_pass1_count)
{
    mpDirtyMeasurement m = { 0 };
    mpPolicyDecision d;

    m.nwindows = 2;
    m.windows[0].window_ms = 1000;
    m.windows[0].rate_mibs = 20;
    m.windows[1].window_ms = 4000;
    m.windows[1].rate_mibs = 5;
    m.memory_bytes = (unsigned long long)(256 * MIB);
    d = handPass2(&m, 40, 0);
    fprintf(stderr, "[under-read set] %s\n", d.explanation);
    ck_assert_int_eq(d.dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert_int_ge(d.dirty_wss_bytes, (long long)(29 * MIB));
    ck_assert_int_le(d.dirty_wss_bytes, (long long)(31 * MIB));
    ck_assert_int_eq(d.dirty_write_bps, d.dirty_wss_bytes);     /* W within 1 s */
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_WORKING_SET);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_SWITCH);

    /* the same count within what QEMU may leave at the sync says nothing more: W stays
     * as measured, and so does the verdict the floor allows */
    d = handPass2(&m, 29, 0);
    ck_assert_int_eq(d.dirty_wss_bytes, (long long)(20 * MIB));
    ck_assert_int_ne(d.action, MP_POLICY_ACTION_SWITCH);
}
END_TEST

/* CI's four-migration run: a converging guest measured while it booted (50 MiB/s over
 * 1 s, 20 MiB/s over 4 s) whose pass 1 left only 22 MiB. Pass 2 trusted that count; pass 3,
 * starting 0.4 MiB above the threshold, went back to the sampled 50 MiB/s and switched a
 * migration that was converging. The count stands at every pass. */
START_TEST(test_dirty_pass1_count_holds_at_later_passes)
{
    mpPolicyConfig cfg;
    mpDirtyMeasurement m = { 0 };
    mpPolicy *p;
    mpPolicyDecision d;
    mpPolicySample s;
    unsigned long long t;

    m.nwindows = 2;
    m.windows[0].window_ms = 1000;
    m.windows[0].rate_mibs = 50;
    m.windows[1].window_ms = 4000;
    m.windows[1].rate_mibs = 20;
    m.memory_bytes = (unsigned long long)(256 * MIB);
    mpPolicyConfigInit(&cfg);
    ck_assert_ptr_nonnull(p = mpPolicyNew(&cfg));
    ck_assert_int_eq(mpPolicySetDirty(p, &m), 0);
    for (t = 0; t <= 10000; t += 250) {
        s = mkSample(t, 1, 256 - 25.0 * (double)t / 1000, 32, 0);
        ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    }
    ck_assert_int_eq(mpPolicyFeedIteration(p, 2, 10100, &d), 0);
    s = mkSample(10250, 2, 22 - 32 * 0.15, 32, 2);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    ck_assert(d.evaluated);
    ck_assert_int_eq(d.prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    s = mkSample(10500, 2, 22 - 32 * 0.4, 32, 2);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    ck_assert_int_eq(mpPolicyFeedIteration(p, 3, 10790, &d), 0);
    s = mkSample(10800, 3, 10 - 32 * 0.01, 32, 2);
    ck_assert_int_eq(mpPolicyFeedSample(p, &s, &d), 0);
    fprintf(stderr, "[pass-3 count] %s\n", d.explanation);
    ck_assert(d.evaluated);
    ck_assert_int_eq(d.dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert_int_lt(d.dirty_write_bps, (long long)(3 * MIB));
    ck_assert_int_eq(d.prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    ck_assert(!d.switch_decided);
    mpPolicyFree(p);
}
END_TEST

START_TEST(test_dirty_missing_is_todays_policy)
{
    /* No call, and a measurement without windows: the same decisions, word for word,
     * and the fallback said once. */
    static const double wss[] = { 256, 256, 32, 1024 };
    static const double rate[] = { 10, 90, 90, 6 };
    simScenario sc;
    simResult a, b;
    mpPolicyConfig cfg;
    mpDirtyMeasurement none = { 0 };
    size_t i;

    mpPolicyConfigInit(&cfg);
    for (i = 0; i < sizeof(wss) / sizeof(wss[0]); i++) {
        simDefaults(&sc);
        sc.wss_mib = wss[i];
        sc.dirty_mibps = rate[i];
        if (wss[i] > 512) {
            sc.ram_mib = 2048;
            sc.touched_mib = 1500;
            sc.max_ms = 200000;
        }
        simRun(&sc, &cfg, &a);
        sc.dirty = &none;
        simRun(&sc, &cfg, &b);
        ck_assert_uint_eq(a.nsamples, b.nsamples);
        ck_assert(a.hash_full == b.hash_full);
        ck_assert_uint_eq(a.nfallback, 1);
        ck_assert_uint_eq(b.nfallback, 1);
        ck_assert(a.have_eval[2]);
        ck_assert_int_eq(a.eval[2].dirty_status, MP_POLICY_DIRTY_MISSING);
        ck_assert_int_eq(a.eval[2].dirty_wss_bytes, -1);
        ck_assert_int_eq(a.eval[2].predicted_remaining, -1);
        ck_assert_ptr_nonnull(strstr(a.eval[2].explanation,
                                     "dirty-rate measurement missing; per-pass rules: "));
    }
}
END_TEST

START_TEST(test_dirty_stale_and_inconsistent_fall_back)
{
    simScenario sc;
    simResult ref, res;
    mpPolicyConfig cfg;
    mpDirtyMeasurement m, bad;

    /* the guest the measurement would switch at pass 2 (test above) */
    simDefaults(&sc);
    sc.wss_mib = 32;
    sc.dirty_mibps = 90;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &ref);

    /* 595 s old when fed, 604 s at pass 2: stale under the default 600 s */
    simMeasure(&sc, &m, 595000);
    sc.dirty = &m;
    simRun(&sc, &cfg, &res);
    ck_assert(res.hash_core == ref.hash_core);
    ck_assert_uint_eq(res.first_pass, 3);
    ck_assert_uint_eq(res.nfallback, 1);
    ck_assert_int_eq(res.eval[2].dirty_status, MP_POLICY_DIRTY_STALE);
    ck_assert(res.eval[2].dirty_fallback);
    ck_assert_ptr_nonnull(strstr(res.eval[2].explanation, "dirty-rate measurement stale"));
    ck_assert_int_gt(res.eval[2].dirty_age_ms, 600000);
    /* ... and used when the operator allows older ones */
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "dirty_max_age_ms", "700000"), 0);
    simRun(&sc, &cfg, &res);
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_WORKING_SET, sc.sample_ms);
    mpPolicyConfigInit(&cfg);

    /* a longer window with a higher rate than the shorter: physics says no */
    bad = m;
    bad.age_ms = 0;
    bad.windows[1].rate_mibs = 90;
    sc.dirty = &bad;
    simRun(&sc, &cfg, &res);
    ck_assert(res.hash_core == ref.hash_core);
    ck_assert_uint_eq(res.nfallback, 1);
    ck_assert_int_eq(res.eval[2].dirty_status, MP_POLICY_DIRTY_INCONSISTENT);
    ck_assert_ptr_nonnull(strstr(res.eval[2].explanation, "90 MiB/s over 4000 ms > 32 MiB/s"));
    /* one window, lengths not increasing, no RAM, more dirtied than RAM */
    bad = m;
    bad.age_ms = 0;
    bad.nwindows = 1;
    sc.dirty = &bad;
    simRun(&sc, &cfg, &res);
    ck_assert(res.hash_core == ref.hash_core);
    ck_assert_ptr_nonnull(strstr(res.eval[2].explanation, "one window"));
    bad.nwindows = 2;
    bad.windows[1].window_ms = 1000;
    simRun(&sc, &cfg, &res);
    ck_assert(res.hash_core == ref.hash_core);
    ck_assert_ptr_nonnull(strstr(res.eval[2].explanation, "not increasing"));
    bad = m;
    bad.age_ms = 0;
    bad.memory_bytes = 0;
    simRun(&sc, &cfg, &res);
    ck_assert(res.hash_core == ref.hash_core);
    ck_assert_ptr_nonnull(strstr(res.eval[2].explanation, "no guest memory size"));
    bad.memory_bytes = (unsigned long long)(16 * MIB);
    simRun(&sc, &cfg, &res);
    ck_assert(res.hash_core == ref.hash_core);
    ck_assert_ptr_nonnull(strstr(res.eval[2].explanation, "more than the 16.0 MiB of RAM"));
}
END_TEST

START_TEST(test_dirty_bad_struct_rejected)
{
    mpPolicyConfig cfg;
    mpPolicy *p;
    mpDirtyMeasurement m = { 0 };

    mpPolicyConfigInit(&cfg);
    ck_assert_ptr_nonnull(p = mpPolicyNew(&cfg));
    mpResetLastError();
    ck_assert_int_eq(mpPolicySetDirty(p, NULL), -1);
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "no dirty-rate measurement"));
    m.nwindows = MP_DIRTY_MAX_WINDOWS + 1;
    ck_assert_int_eq(mpPolicySetDirty(p, &m), -1);
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "at most 4"));
    m.nwindows = 0;
    ck_assert_int_eq(mpPolicySetDirty(p, &m), 0);
    mpPolicyFree(p);
}
END_TEST

START_TEST(test_dirty_downtime_in_force)
{
    /* A 30 MiB working set rewritten flat out: more than 32 MiB/s x 300 ms, so pre-copy
     * stalls; nova raises the max downtime to 1 s as pass 2 starts, and the set then fits:
     * the policy reads the downtime in force from the sample and leaves it alone. */
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;
    mpDirtyMeasurement m;

    simDefaults(&sc);
    sc.wss_mib = 30;
    sc.dirty_mibps = 90;
    simMeasure(&sc, &m, 0);
    sc.dirty = &m;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    simDump("downtime 300", &res);
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_WORKING_SET, sc.sample_ms);
    ck_assert_int_lt(res.first.threshold_bytes, (long long)(12 * MIB));

    sc.change_pass = 2;
    sc.change_delay_ms = 0;
    sc.downtime2_ms = 1000;
    simRun(&sc, &cfg, &res);
    simDump("downtime 300 -> 1000", &res);
    ck_assert(res.completed);
    ck_assert_uint_eq(res.nswitch, 0);
}
END_TEST

START_TEST(test_dirty_downtime_from_sample)
{
    /* Pass 2 starts with 70 MiB (the 40 MiB working set and pages left over from pass 1);
     * pass 3 would resend the 40 MiB. Within 300 ms at 32 MiB/s (9.6 MiB) it never fits:
     * switch; within the 2 s nova has stepped up to (64 MiB) it does: leave it alone. The
     * config's downtime_ms (300) only stands in for samples that lack it. */
    mpDirtyMeasurement m = { 0 };
    mpPolicyDecision d;

    m.nwindows = 2;
    m.windows[0].window_ms = 1000;
    m.windows[0].rate_mibs = 40;
    m.windows[1].window_ms = 4000;
    m.windows[1].rate_mibs = 10;
    m.memory_bytes = (unsigned long long)(512 * MIB);
    d = handPass2(&m, 70, 0);
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_WORKING_SET);
    ck_assert_int_eq(d.threshold_bytes, (long long)(32 * MIB * 0.3));
    d = handPass2(&m, 70, 300);
    ck_assert_int_eq(d.rule, MP_POLICY_RULE_WORKING_SET);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_SWITCH);
    d = handPass2(&m, 70, 2000);
    fprintf(stderr, "[downtime 2000] %s\n", d.explanation);
    ck_assert_int_eq(d.dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert_int_eq(d.threshold_bytes, (long long)(64 * MIB));
    ck_assert_int_eq(d.prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_int_eq(d.action, MP_POLICY_ACTION_NONE);
    ck_assert_int_eq(d.predicted_remaining, (long long)(40 * MIB));
    ck_assert_ptr_nonnull(strstr(d.explanation, "within 2000 ms"));
}
END_TEST

START_TEST(test_dirty_deadline)
{
    /* Converging by the measurement, but pre-copy ends after the operator's deadline. */
    simScenario sc;
    simResult res;
    mpPolicyConfig cfg;
    mpDirtyMeasurement m;
    char value[32];
    double end;

    simDefaults(&sc);
    simMeasure(&sc, &m, 0);
    sc.dirty = &m;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    ck_assert(res.completed);
    end = res.end_ms;
    snprintf(value, sizeof(value), "%.0f", (res.pass_start_ms[2] + end) / 2);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "deadline_ms", value), 0);
    simRun(&sc, &cfg, &res);
    simDump("measured deadline", &res);
    assertSwitchAtPassStart(&res, 2, MP_POLICY_RULE_DEADLINE, sc.sample_ms);
    ck_assert_int_eq(res.first.dirty_status, MP_POLICY_DIRTY_USED);
    ck_assert_int_eq(res.first.prediction, MP_POLICY_PREDICTION_CONVERGING);
    ck_assert_ptr_nonnull(strstr(res.first.explanation, "after the"));
    /* a deadline after the predicted end: untouched */
    snprintf(value, sizeof(value), "%.0f", end * 1.2);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "deadline_ms", value), 0);
    simRun(&sc, &cfg, &res);
    ck_assert(res.completed);
    ck_assert_uint_eq(res.nswitch, 0);
}
END_TEST

START_TEST(test_dirty_inconclusive_then_pass3)
{
    /* 16 MiB rewritten at 200 MiB/s: both windows see the whole set, so the rate is only
     * known to be >= 16 MiB/s, at which pass 2 (0.5 s) would converge; at 20 MiB/s or
     * more it cannot. Pass 2 is left to the per-pass rules (said once); pass 2 itself then
     * measures the rate (16 MiB in 0.5 s) and the policy switches at pass 3, where the
     * rules would wait out the tail (16 MiB is within twice the 9.6 MiB threshold). */
    simScenario sc;
    simResult before, res;
    mpPolicyConfig cfg;
    mpDirtyMeasurement m;

    simDefaults(&sc);
    sc.wss_mib = 16;
    sc.dirty_mibps = 200;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &before);
    ck_assert(before.switched);
    ck_assert_uint_gt(before.first_pass, 3);
    simMeasure(&sc, &m, 0);
    sc.dirty = &m;
    mpPolicyConfigInit(&cfg);
    simRun(&sc, &cfg, &res);
    simDump("inconclusive", &res);
    ck_assert(res.have_eval[2]);
    ck_assert_int_eq(res.eval[2].dirty_status, MP_POLICY_DIRTY_INCONCLUSIVE);
    ck_assert(res.eval[2].dirty_fallback);
    ck_assert_ptr_nonnull(strstr(res.eval[2].explanation, "inconclusive"));
    ck_assert_uint_eq(res.nfallback, 1);
    ck_assert(res.switched);
    assertSwitchAtPassStart(&res, 3, MP_POLICY_RULE_WORKING_SET, sc.sample_ms);
    ck_assert_int_ge(res.first.dirty_write_bps, (long long)(30 * MIB));
    ck_assert_int_eq(res.first.dirty_status, MP_POLICY_DIRTY_USED);
}
END_TEST

/* ---- configuration ---- */

START_TEST(test_config_defaults_and_keys)
{
    mpPolicyConfig cfg;
    double num;
    const char *str;
    mpPolicyKeyKind kind;
    size_t i;

    mpPolicyConfigInit(&cfg);
    ck_assert_int_eq(mpPolicyConfigValidate(&cfg), 0);
    ck_assert_int_eq(cfg.mode, MP_POLICY_MODE_AUTO);
    ck_assert_uint_eq(cfg.min_pass, 2);
    ck_assert_uint_eq(cfg.deadline_ms, 0);
    ck_assert_uint_eq(cfg.dirty_max_age_ms, 600000);
    ck_assert_uint_eq(mpPolicyConfigKeyCount(), 10);
    for (i = 0; i < mpPolicyConfigKeyCount(); i++) {
        const char *name = mpPolicyConfigKeyName(i, &kind);

        ck_assert_ptr_nonnull(name);
        ck_assert_int_eq(mpPolicyConfigGet(&cfg, name, &num, &str), 0);
        if (kind == MP_POLICY_KEY_STRING)
            ck_assert_str_eq(str, "auto");
    }
    ck_assert_ptr_null(mpPolicyConfigKeyName(i, &kind));
    ck_assert_int_eq(mpPolicyConfigGet(&cfg, "max_passes", &num, NULL), 0);
    ck_assert_double_eq(num, 8);
    ck_assert_int_eq(mpPolicyConfigGet(&cfg, "nope", &num, NULL), -1);

    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "mode", " observe "), 0);
    ck_assert_int_eq(cfg.mode, MP_POLICY_MODE_OBSERVE);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "rho_max", "0.95"), 0);
    ck_assert_double_eq_tol(cfg.rho_max, 0.95, 1e-12);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "deadline_ms", "600000"), 0);
    ck_assert_uint_eq(cfg.deadline_ms, 600000);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "min_pass", "3"), 0);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "shrink_min", "0"), 0);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "rho_max", "1"), 0);
    ck_assert_int_eq(mpPolicyConfigValidate(&cfg), 0);
}
END_TEST

static void
assertConfigError(const char *key, const char *value, const char *needle)
{
    mpPolicyConfig cfg, before;

    mpPolicyConfigInit(&cfg);
    before = cfg;
    mpResetLastError();
    ck_assert_msg(mpPolicyConfigSet(&cfg, key, value) == -1, "%s = %s accepted", key, value);
    ck_assert_msg(strstr(mpGetLastErrorMessage(), needle) != NULL,
                  "%s = %s: message '%s' lacks '%s'", key, value, mpGetLastErrorMessage(),
                  needle);
    ck_assert_msg(memcmp(&cfg, &before, sizeof(cfg)) == 0, "%s = %s changed cfg", key, value);
}

START_TEST(test_config_errors)
{
    mpPolicyConfig cfg;

    assertConfigError("modee", "auto", "unknown key 'modee'");
    assertConfigError("mode", "yes", "mode = yes: must be 'auto' or 'observe'");
    assertConfigError("mode", "", "mode: empty value");
    assertConfigError("min_pass", "1", "min_pass = 1: out of range");
    assertConfigError("min_pass", "0", "min_pass");
    assertConfigError("min_pass", "-2", "min_pass = -2: not a non-negative integer");
    assertConfigError("min_pass", "2x", "not a non-negative integer");
    assertConfigError("min_pass", "99999999999999999999999", "min_pass");
    assertConfigError("max_passes", "0", "max_passes = 0: out of range");
    assertConfigError("max_passes", "2.5", "not a non-negative integer");
    assertConfigError("rho_max", "0", "rho_max = 0: out of range");
    assertConfigError("rho_max", "1.5", "rho_max = 1.5: out of range");
    assertConfigError("rho_max", "nan", "rho_max = nan: not a decimal number");
    assertConfigError("rho_max", "inf", "not a decimal number");
    assertConfigError("rho_max", "0.9.1", "not a decimal number");
    assertConfigError("rho_max", "1e999", "not a decimal number");
    assertConfigError("shrink_min", "1", "shrink_min = 1: out of range");
    assertConfigError("shrink_min", "-0.1", "out of range");
    assertConfigError("shrink_passes", "9", "shrink_passes = 9: out of range");
    assertConfigError("deadline_ms", "10s", "deadline_ms = 10s: not a non-negative integer");
    assertConfigError("deadline_ms", "18446744073709551615", "deadline_ms");
    assertConfigError("downtime_ms", "0", "downtime_ms = 0: out of range");
    assertConfigError("min_bandwidth_samples", "17", "out of range");
    assertConfigError("min_bandwidth_samples", "   ", "empty value");
    assertConfigError("dirty_max_age_ms", "0", "dirty_max_age_ms = 0: out of range");
    assertConfigError("dirty_max_age_ms", "86400001", "out of range");
    assertConfigError("dirty_max_age_ms", "5m", "not a non-negative integer");

    mpPolicyConfigInit(&cfg);
    mpResetLastError();
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, NULL, "1"), -1);
    ck_assert_int_eq(mpPolicyConfigSet(&cfg, "mode", NULL), -1);

    /* a struct filled by hand is checked by mpPolicyNew */
    cfg.min_pass = 1;
    ck_assert_int_eq(mpPolicyConfigValidate(&cfg), -1);
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "min_pass"));
    ck_assert_ptr_null(mpPolicyNew(&cfg));
    mpPolicyConfigInit(&cfg);
    cfg.rho_max = NAN;
    ck_assert_ptr_null(mpPolicyNew(&cfg));
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "rho_max"));
    mpPolicyConfigInit(&cfg);
    cfg.mode = (mpPolicyMode)7;
    ck_assert_ptr_null(mpPolicyNew(&cfg));
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(mpPolicyRuleToString(MP_POLICY_RULE_NONE), "none");
    ck_assert_str_eq(mpPolicyRuleToString(MP_POLICY_RULE_NOT_CONVERGING), "not-converging");
    ck_assert_str_eq(mpPolicyRuleToString(MP_POLICY_RULE_NOT_SHRINKING),
                     "remaining-not-shrinking");
    ck_assert_str_eq(mpPolicyRuleToString(MP_POLICY_RULE_DEADLINE), "deadline");
    ck_assert_str_eq(mpPolicyRuleToString(MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED),
                     "postcopy-not-permitted");
    ck_assert_str_eq(mpPolicyRuleToString(MP_POLICY_RULE_IN_POSTCOPY), "in-postcopy");
    ck_assert_str_eq(mpPolicyRuleToString(MP_POLICY_RULE_WORKING_SET),
                     "working-set-exceeds-downtime");
    ck_assert_str_eq(mpPolicyDirtyStatusTypeToString(MP_POLICY_DIRTY_MISSING), "missing");
    ck_assert_str_eq(mpPolicyDirtyStatusTypeToString(MP_POLICY_DIRTY_USED), "used");
    ck_assert_str_eq(mpPolicyDirtyStatusTypeToString(MP_POLICY_DIRTY_STALE), "stale");
    ck_assert_str_eq(mpPolicyDirtyStatusTypeToString(MP_POLICY_DIRTY_INCONSISTENT),
                     "inconsistent");
    ck_assert_str_eq(mpPolicyDirtyStatusTypeToString(MP_POLICY_DIRTY_INCONCLUSIVE),
                     "inconclusive");
    ck_assert_str_eq(mpPolicyPredictionToString(MP_POLICY_PREDICTION_UNKNOWN), "unknown");
    ck_assert_str_eq(mpPolicyPredictionToString(MP_POLICY_PREDICTION_CONVERGING),
                     "converging");
    ck_assert_str_eq(mpPolicyPredictionToString(MP_POLICY_PREDICTION_NOT_CONVERGING),
                     "not-converging");
    ck_assert_str_eq(mpPolicyActionTypeToString(MP_POLICY_ACTION_SWITCH), "switch");
    ck_assert_str_eq(mpPolicyActionTypeToString(MP_POLICY_ACTION_NONE), "none");
    ck_assert_str_eq(mpPolicyModeToString(MP_POLICY_MODE_OBSERVE), "observe");
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Recorded traces                                                                      */
/* ------------------------------------------------------------------------------------ */

typedef enum {
    EXPECT_UNKNOWN = 0,
    EXPECT_NO_SWITCH,       /* converging, idle */
    EXPECT_SWITCH_PASS2,    /* stalled: switch decided within 1 s of the start of pass 2 */
} traceExpect;

/* What a scenario name promises. Names are the recorder's; unknown ones fail loudly. */
static traceExpect
traceExpectFor(const char *scenario)
{
    static const char *const noswitch[] = { "idle", "conv", "tiny", "small", NULL };
    static const char *const stall[] = { "stall", "nonconv", "non-conv", "not-conv",
                                         "not_conv", "trap", "diverg", "stuck", "flatout",
                                         "flat-out", "flat_out", NULL };
    size_t i;

    for (i = 0; stall[i]; i++) {
        if (strstr(scenario, stall[i]))
            return EXPECT_SWITCH_PASS2;
    }
    for (i = 0; noswitch[i]; i++) {
        if (strstr(scenario, noswitch[i]))
            return EXPECT_NO_SWITCH;
    }
    return EXPECT_UNKNOWN;
}

/* VIR_MIGRATE_POSTCOPY */
#define TRACE_FLAG_POSTCOPY 32768

typedef struct {
    bool honour_flags;          /* post-copy permitted only if meta "flags" has POSTCOPY */
    bool feed_dirty;            /* the meta line's "dirty" goes to mpPolicySetDirty first */
} traceOptions;

typedef struct {
    char scenario[128];
    bool flags_known;
    bool flags_postcopy;        /* the job was started with VIR_MIGRATE_POSTCOPY */
    unsigned int nnotpermitted; /* decisions with rule postcopy-not-permitted */
    double switch_event_ms;     /* when the recorder switched (-1: it did not) */
    unsigned int nsamples;
    unsigned int nswitch;
    bool have_first;
    mpPolicyDecision first;     /* first decision with a rule */
    bool have_pass2;
    mpPolicyDecision pass2;     /* first evaluated decision at pass 2 */
    double pass2_start_ms;      /* -1: pass 2 never started */
    bool completed;
    bool recorded_switch;       /* the recorder switched (postcopy_switch event) */
    unsigned int max_pass;
} traceResult;

static bool
jsonNum(json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out) && *out >= 0;
}

static unsigned long long
toULL(double v)
{
    return v >= 0 && v < 1.8e19 ? (unsigned long long)v : 0;
}

/*
 * The meta line's "dirty" object (tests/data/traces/README.md) as the policy's input.
 * Returns false with a message in err if it is missing or malformed.
 */
static bool
traceDirty(json_t *meta, mpDirtyMeasurement *m, char *err, size_t errlen)
{
    json_t *dirty = json_object_get(meta, "dirty");
    json_t *windows = json_object_get(dirty, "windows");
    double v;
    size_t i;

    memset(m, 0, sizeof(*m));
    if (!json_is_object(dirty) || !json_is_array(windows) ||
        json_array_size(windows) > MP_DIRTY_MAX_WINDOWS) {
        snprintf(err, errlen, "meta has no \"dirty\" object with at most %d windows",
                 MP_DIRTY_MAX_WINDOWS);
        return false;
    }
    for (i = 0; i < json_array_size(windows); i++) {
        json_t *w = json_array_get(windows, i);
        double ms, rate;

        if (!jsonNum(w, "window_ms", &ms) || !jsonNum(w, "rate_mibs", &rate)) {
            snprintf(err, errlen, "dirty window %zu without window_ms and rate_mibs", i);
            return false;
        }
        m->windows[i].window_ms = toULL(ms);
        m->windows[i].rate_mibs = toULL(rate);
    }
    m->nwindows = json_array_size(windows);
    if (!jsonNum(dirty, "memory_bytes", &v)) {
        snprintf(err, errlen, "dirty without memory_bytes");
        return false;
    }
    m->memory_bytes = toULL(v);
    if (jsonNum(dirty, "age_ms", &v))
        m->age_ms = toULL(v);
    return true;
}

/*
 * Replays a JSON-lines trace (text) through a policy with cfg. Returns 0, or -1 with a
 * message in err for a malformed trace.
 */
static int
traceReplay(const char *text, const char *name, const mpPolicyConfig *cfg,
            const traceOptions *opts, traceResult *res, char *err, size_t errlen)
{
    mpPolicy *policy = mpPolicyNew(cfg);
    const char *line = text;
    bool have_meta = false, in_postcopy = false, decided = false;
    bool permitted = true, have_offset = false;
    double offset = 0;            /* t_ms - time_elapsed_ms of the latest sample */
    double max_downtime = -1;
    unsigned long long last_elapsed = 0;
    unsigned int lineno = 0;
    int ret = -1;

    memset(res, 0, sizeof(*res));
    res->pass2_start_ms = -1;
    res->switch_event_ms = -1;
    if (!policy) {
        snprintf(err, errlen, "%s: %s", name, mpGetLastErrorMessage());
        return -1;
    }
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        json_error_t jerr;
        json_t *obj;
        const char *kind;
        mpPolicyDecision d;

        lineno++;
        if (len == 0 || (len == 1 && line[0] == '\r')) {
            line += len + (nl ? 1 : 0);
            continue;
        }
        obj = json_loadb(line, len, 0, &jerr);
        line += len + (nl ? 1 : 0);
        if (!obj || !json_is_object(obj)) {
            snprintf(err, errlen, "%s:%u: not a JSON object: %s", name, lineno,
                     obj ? "" : jerr.text);
            json_decref(obj);
            goto cleanup;
        }
        kind = json_string_value(json_object_get(obj, "kind"));
        if (!kind) {
            snprintf(err, errlen, "%s:%u: no \"kind\"", name, lineno);
            json_decref(obj);
            goto cleanup;
        }
        if (strcmp(kind, "meta") == 0) {
            const char *sc = json_string_value(json_object_get(obj, "scenario"));
            json_t *perm = json_object_get(obj, "postcopy_permitted");
            double v;

            if (!sc) {
                snprintf(err, errlen, "%s:%u: meta without \"scenario\"", name, lineno);
                json_decref(obj);
                goto cleanup;
            }
            snprintf(res->scenario, sizeof(res->scenario), "%s", sc);
            if (json_is_boolean(perm))
                permitted = json_is_true(perm);
            if (jsonNum(obj, "flags", &v)) {
                res->flags_known = true;
                res->flags_postcopy = ((unsigned long long)v & TRACE_FLAG_POSTCOPY) != 0;
                if (opts && opts->honour_flags)
                    permitted = res->flags_postcopy;
            }
            if (jsonNum(obj, "max_downtime_ms", &v) || jsonNum(obj, "downtime_limit_ms", &v) ||
                jsonNum(obj, "downtime_ms", &v))
                max_downtime = v;
            if (opts && opts->feed_dirty) {
                mpDirtyMeasurement dm;
                char derr[160];

                if (!traceDirty(obj, &dm, derr, sizeof(derr))) {
                    snprintf(err, errlen, "%s:%u: %s", name, lineno, derr);
                    json_decref(obj);
                    goto cleanup;
                }
                if (mpPolicySetDirty(policy, &dm) < 0) {
                    snprintf(err, errlen, "%s:%u: %s", name, lineno, mpGetLastErrorMessage());
                    json_decref(obj);
                    goto cleanup;
                }
            }
            have_meta = true;
        } else if (strcmp(kind, "sample") == 0) {
            mpPolicySample s = { 0 };
            double v, t_ms = -1, pps = -1, page = 4096;

            if (!jsonNum(obj, "time_elapsed_ms", &v)) {
                /* without libvirt's clock, use the recorder's */
                if (!jsonNum(obj, "t_ms", &v) || !have_offset) {
                    json_decref(obj);
                    continue;
                }
                v -= offset;
            }
            s.elapsed_ms = toULL(v);
            if (jsonNum(obj, "t_ms", &t_ms)) {
                offset = t_ms - v;
                have_offset = true;
            }
            if (s.elapsed_ms < last_elapsed)
                s.elapsed_ms = last_elapsed;   /* mixed clocks: never backwards */
            last_elapsed = s.elapsed_ms;
            if (jsonNum(obj, "pass", &v)) {
                s.has |= MP_POLICY_HAS_PASS;
                s.pass = (unsigned int)(v < 4e9 ? v : 0);
            }
            if (jsonNum(obj, "memory_total", &v)) {
                s.has |= MP_POLICY_HAS_TOTAL;
                s.memory_total = toULL(v);
            }
            if (jsonNum(obj, "memory_processed", &v)) {
                s.has |= MP_POLICY_HAS_PROCESSED;
                s.memory_processed = toULL(v);
            }
            if (jsonNum(obj, "memory_remaining", &v)) {
                s.has |= MP_POLICY_HAS_REMAINING;
                s.memory_remaining = toULL(v);
            }
            if (jsonNum(obj, "memory_bps", &v)) {
                s.has |= MP_POLICY_HAS_BPS;
                s.memory_bps = toULL(v);
            }
            jsonNum(obj, "page_size", &page);
            if (jsonNum(obj, "dirty_rate_pps", &pps)) {
                s.has |= MP_POLICY_HAS_DIRTY;
                s.dirty_bps = toULL(pps * (page > 0 ? page : 4096));
            }
            if (jsonNum(obj, "expected_downtime_ms", &v)) {
                s.has |= MP_POLICY_HAS_EXP_DOWNTIME;
                s.expected_downtime_ms = toULL(v);
            }
            if (max_downtime > 0 || jsonNum(obj, "max_downtime_ms", &max_downtime)) {
                s.has |= MP_POLICY_HAS_MAX_DOWNTIME;
                s.max_downtime_ms = toULL(max_downtime);
            }
            s.postcopy_permitted = permitted;
            s.in_postcopy = in_postcopy;
            if (s.pass > res->max_pass)
                res->max_pass = s.pass;
            if ((s.has & MP_POLICY_HAS_PASS) && s.pass >= 2 && res->pass2_start_ms < 0)
                res->pass2_start_ms = (double)s.elapsed_ms;
            if (mpPolicyFeedSample(policy, &s, &d) < 0) {
                snprintf(err, errlen, "%s:%u: %s", name, lineno, mpGetLastErrorMessage());
                json_decref(obj);
                goto cleanup;
            }
            res->nsamples++;
            goto decided;
        } else if (strcmp(kind, "event") == 0) {
            const char *ev = json_string_value(json_object_get(obj, "event"));
            double t_ms, p;

            if (ev && strcmp(ev, "iteration") == 0 && jsonNum(obj, "pass", &p)) {
                unsigned long long el = 0;

                if (jsonNum(obj, "time_elapsed_ms", &t_ms))
                    el = toULL(t_ms);
                else if (jsonNum(obj, "t_ms", &t_ms) && have_offset)
                    el = toULL(t_ms - offset);
                if (p >= 2 && (res->pass2_start_ms < 0 || (double)el < res->pass2_start_ms))
                    res->pass2_start_ms = (double)el;
                if ((unsigned int)p > res->max_pass)
                    res->max_pass = (unsigned int)p;
                mpPolicyFeedIteration(policy, (unsigned int)(p < 4e9 ? p : 0), el, &d);
                goto decided;
            }
            if (ev && strcmp(ev, "lifecycle") == 0) {
                const char *detail = json_string_value(json_object_get(obj, "detail"));

                /* The source entered post-copy (SUSPENDED/POSTCOPY): what libvirt tells
                 * the agent, so from here on samples are post-copy ones. */
                if (detail && strstr(detail, "POSTCOPY"))
                    in_postcopy = true;
            }
            if (ev && (strcmp(ev, "postcopy_switch") == 0 || strcmp(ev, "postcopy") == 0)) {
                /* The recorder asked for the switch (its own rule): it takes effect at
                 * the lifecycle event above; samples until then are still pre-copy. */
                res->recorded_switch = true;
                if (jsonNum(obj, "time_elapsed_ms", &t_ms))
                    res->switch_event_ms = t_ms;
                else if (jsonNum(obj, "t_ms", &t_ms) && have_offset)
                    res->switch_event_ms = t_ms - offset;
                else
                    res->switch_event_ms = (double)last_elapsed;
            }
        } else if (strcmp(kind, "completed") == 0) {
            res->completed = true;
        }
        json_decref(obj);
        continue;

     decided:
        json_decref(obj);
        if (d.evaluated && getenv("MP_TRACE_VERBOSE"))
            fprintf(stderr, "  %s @%llu ms: %s\n", name, d.elapsed_ms, d.explanation);
        if (d.action == MP_POLICY_ACTION_SWITCH)
            res->nswitch++;
        if (d.rule == MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED)
            res->nnotpermitted++;
        if (!res->have_first && d.rule != MP_POLICY_RULE_NONE &&
            d.rule != MP_POLICY_RULE_IN_POSTCOPY) {
            res->have_first = true;
            res->first = d;
        }
        if (!res->have_pass2 && d.evaluated && d.pass == 2) {
            res->have_pass2 = true;
            res->pass2 = d;
        }
        decided = d.switch_decided;
    }
    (void)decided;
    if (!have_meta) {
        snprintf(err, errlen, "%s: no meta line", name);
        goto cleanup;
    }
    ret = 0;

 cleanup:
    mpPolicyFree(policy);
    return ret;
}

/* Judges one trace; returns false with a message in msg if it fails its scenario. */
static bool
traceJudgeWith(const char *text, const char *name, const mpPolicyConfig *cfgp, char *msg,
               size_t msglen)
{
    mpPolicyConfig cfg = *cfgp;
    traceOptions opts = { false };
    traceResult res, hon;
    traceExpect expect;

    /* First as if post-copy were permitted: what would the policy decide? */
    if (traceReplay(text, name, &cfg, &opts, &res, msg, msglen) < 0)
        return false;
    expect = traceExpectFor(res.scenario);
    fprintf(stderr, "trace %s (%s): %u samples, max pass %u, pass 2 at %.0f ms%s: %s\n",
            name, res.scenario, res.nsamples, res.max_pass, res.pass2_start_ms,
            res.recorded_switch ? ", recorder switched" : "",
            res.have_first ? res.first.explanation : "no rule fired");
    if (res.nsamples == 0) {
        snprintf(msg, msglen, "%s: no samples", name);
        return false;
    }
    switch (expect) {
    case EXPECT_UNKNOWN:
        snprintf(msg, msglen, "%s: no expectation for scenario '%s' (add it to "
                 "traceExpectFor in test_policy.c)", name, res.scenario);
        return false;
    case EXPECT_NO_SWITCH:
        if (res.nswitch != 0 || res.have_first) {
            snprintf(msg, msglen, "%s (%s): converging/idle migration got rule %s at pass %u: %s",
                     name, res.scenario, mpPolicyRuleToString(res.first.rule),
                     res.first.pass, res.first.explanation);
            return false;
        }
        break;
    case EXPECT_SWITCH_PASS2:
        if (res.pass2_start_ms < 0) {
            snprintf(msg, msglen, "%s (%s): stalled trace never reaches pass 2", name,
                     res.scenario);
            return false;
        }
        /* the recorder's own switch request, well before pass 2, leaves nothing to judge
         * (clocks differ by a few ms: "at pass 2" may show a little before it) */
        if (res.recorded_switch && res.switch_event_ms + 1000 < res.pass2_start_ms) {
            snprintf(msg, msglen, "%s (%s): the recorder switched at %.0f ms, before pass 2:"
                     " nothing to judge", name, res.scenario, res.switch_event_ms);
            return false;
        }
        if (res.nswitch != 1 || !res.have_first ||
            res.first.action != MP_POLICY_ACTION_SWITCH) {
            snprintf(msg, msglen, "%s (%s): no switch (%u); said: %s", name,
                     res.scenario, res.nswitch,
                     res.have_first ? res.first.explanation : "no rule fired");
            return false;
        }
        if ((double)res.first.elapsed_ms > res.pass2_start_ms + 1000 ||
            res.first.pass != 2) {
            snprintf(msg, msglen, "%s (%s): switch at pass %u, %llu ms; pass 2 started at "
                     "%.0f ms", name, res.scenario, res.first.pass, res.first.elapsed_ms,
                     res.pass2_start_ms);
            return false;
        }
        break;
    }

    /* Then honouring the job's flags: without VIR_MIGRATE_POSTCOPY never a switch, and
     * a stalled job says so once. */
    if (res.flags_known && !res.flags_postcopy) {
        opts.honour_flags = true;
        if (traceReplay(text, name, &cfg, &opts, &hon, msg, msglen) < 0)
            return false;
        if (hon.nswitch != 0 ||
            hon.nnotpermitted != (expect == EXPECT_SWITCH_PASS2 ? 1u : 0u)) {
            snprintf(msg, msglen, "%s (%s): without VIR_MIGRATE_POSTCOPY: %u switches, "
                     "%u postcopy-not-permitted", name, res.scenario, hon.nswitch,
                     hon.nnotpermitted);
            return false;
        }
    }
    return true;
}

static bool
traceJudge(const char *text, const char *name, char *msg, size_t msglen)
{
    mpPolicyConfig cfg;

    mpPolicyConfigInit(&cfg);
    return traceJudgeWith(text, name, &cfg, msg, msglen);
}

/*
 * Traces built from the figures of libvirt-lab.md (lvpre, vpc1, lvconv): a 512 MiB guest
 * (RAM block 512 MiB + 264 KiB with the wrapper), max-bandwidth 32 MiB/s, samples every
 * 250 ms, the first one without bps/downtime.
 *  stalled: pass 1 ~10 s (166 MiB processed at 6 s), then remaining back to ~244-250 MiB at
 *           each sync, dirty rate 6446 pages/s.
 *  converging: 10 MiB/s dirtier, 6 iterations, 14.2 s.
 */
static char *
labTrace(bool stalled)
{
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    const double bw = 32 * MIB, total = 512 * MIB + 264 * 1024.0;
    /* indexed by pass: start (ms) and remaining at the start */
    const double starts_stalled[] = { 0, 0, 10200, 17950, 25700 };
    const double rem_stalled[] = { 0, 512 * MIB, 248 * MIB, 249 * MIB, 247 * MIB };
    /* converging: pass k+1 starts with ~9 MiB left over (QEMU syncs once what is left fits
     * in 300 ms at 32 MiB/s) plus 10 MiB/s x the duration of pass k */
    const double starts_conv[] = { 0, 0, 10200, 13100, 14000, 14260, 14320 };
    const double rem_conv[] = { 0, 512 * MIB, 102 * MIB, 38 * MIB, 18 * MIB, 11.6 * MIB,
                                9.7 * MIB };
    const double *starts = stalled ? starts_stalled : starts_conv;
    const double *rems = stalled ? rem_stalled : rem_conv;
    unsigned int npass = stalled ? 4 : 6;
    double end_ms = stalled ? 33450 : 14400;
    double t, processed = 0, dirty_pps = 0;
    unsigned int pass = 1, k;

    ck_assert_ptr_nonnull(buf);
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"kind\":\"meta\",\"scenario\":\"%s\",\"guest_mem_mib\":512,"
                            "\"bandwidth_mibs\":32,\"flags\":3,"
                            "\"source\":\"libvirt-lab.md figures\"}\n",
                            stalled ? "stalled-handmade" : "converging-handmade");
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"kind\":\"event\",\"t_ms\":1000,\"event\":\"iteration\","
                            "\"pass\":1}\n");
    for (t = 0; t < end_ms; t += 250) {
        double rem, sent_in_pass;

        for (k = pass + 1; k <= npass && starts[k] <= t; k++) {
            pass = k;
            len += (size_t)snprintf(buf + len, cap - len,
                                    "{\"kind\":\"event\",\"t_ms\":%.0f,\"event\":"
                                    "\"iteration\",\"pass\":%u}\n", starts[k] + 1000, k);
            /* QEMU's dirty rate at the sync: pages newly dirty over the pass before */
            dirty_pps = (rems[k] / 4096) / ((starts[k] - starts[k - 1]) / 1000);
        }
        sent_in_pass = pass == 1 ? (t - starts[1]) / 1000 * bw * 1.65 :   /* zero pages */
            (t - starts[pass]) / 1000 * bw;
        rem = rems[pass] - sent_in_pass;
        if (rem < 9 * MIB)
            rem = 9 * MIB;
        processed = (t / 1000) * bw;
        if (t == 0)
            len += (size_t)snprintf(buf + len, cap - len,
                                    "{\"kind\":\"sample\",\"t_ms\":%.0f,\"time_elapsed_ms\":%.0f,"
                                    "\"pass\":%u,\"memory_total\":%.0f,\"memory_processed\":0,"
                                    "\"memory_remaining\":%.0f}\n",
                                    t + 1000, t, pass, total, total);
        else
            len += (size_t)snprintf(buf + len, cap - len,
                                    "{\"kind\":\"sample\",\"t_ms\":%.0f,\"time_elapsed_ms\":%.0f,"
                                    "\"pass\":%u,\"memory_total\":%.0f,\"memory_processed\":%.0f,"
                                    "\"memory_remaining\":%.0f,\"memory_bps\":%.0f,"
                                    "\"dirty_rate_pps\":%.0f,\"page_size\":4096,"
                                    "\"expected_downtime_ms\":%.0f}\n",
                                    t + 1000, t, pass, total, processed, rem, bw, dirty_pps,
                                    rem / bw * 1000);
        ck_assert_uint_lt(len, cap - 1024);
    }
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"kind\":\"completed\",\"t_ms\":%.0f,\"outcome\":\"%s\"}\n",
                            end_ms + 1000, stalled ? "cancelled" : "completed");
    return buf;
}

START_TEST(test_trace_handmade_lab)
{
    char msg[512];
    char *stalled = labTrace(true);
    char *conv = labTrace(false);
    mpPolicyConfig cfg;
    traceOptions opts = { false };
    traceResult res;

    ck_assert_msg(traceJudge(stalled, "stalled-handmade", msg, sizeof(msg)), "%s", msg);
    ck_assert_msg(traceJudge(conv, "converging-handmade", msg, sizeof(msg)), "%s", msg);

    /* the stalled one, in detail */
    mpPolicyConfigInit(&cfg);
    ck_assert_int_eq(traceReplay(stalled, "stalled", &cfg, &opts, &res, msg, sizeof(msg)), 0);
    ck_assert_int_eq(res.first.rule, MP_POLICY_RULE_NOT_CONVERGING);
    ck_assert_double_lt(res.first.rho_reported, 1.0);   /* the trap: looks converging */
    ck_assert_int_gt(res.first.remaining_start, (long long)(240 * MIB));
    /* ... and a policy trusting rho < rho_max alone would not have switched */
    ck_assert_double_lt(res.first.rho, cfg.rho_max);
    /* started without VIR_MIGRATE_POSTCOPY (flags 3), as lvpre was: said once */
    opts.honour_flags = true;
    ck_assert_int_eq(traceReplay(stalled, "stalled", &cfg, &opts, &res, msg, sizeof(msg)), 0);
    ck_assert_int_eq(res.first.rule, MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED);
    ck_assert_uint_eq(res.nnotpermitted, 1);
    ck_assert_uint_eq(res.nswitch, 0);

    /* malformed traces are reported, not crashed on */
    ck_assert_int_eq(traceReplay("{\"kind\":\"sample\"", "bad", &cfg, &opts, &res, msg,
                                 sizeof(msg)), -1);
    ck_assert_int_eq(traceReplay("{\"kind\":\"completed\"}\n", "nometa", &cfg, &opts, &res, msg,
                                 sizeof(msg)), -1);
    free(stalled);
    free(conv);
}
END_TEST

/* The traces of tests/data/traces (see its README): each must be there and replayed, and a
 * new one must be added here, so that a missing or unreadable directory cannot pass. */
static const char *const traceFiles[] = {
    "converging.jsonl", "idle.jsonl", "stalled_abort.jsonl", "stalled_postcopy.jsonl",
    "wss256_flatout.jsonl",
};
#define TRACE_FILES_N (sizeof(traceFiles) / sizeof(traceFiles[0]))

START_TEST(test_trace_recorded)
{
    char dir[4096];
    DIR *dp;
    struct dirent *de;
    unsigned int n = 0, nfail = 0;
    char failures[4096] = "";
    bool seen[TRACE_FILES_N] = { false };
    size_t f;

    snprintf(dir, sizeof(dir), "%s", mpTestDataPath("traces"));
    dp = opendir(dir);
    ck_assert_msg(dp != NULL, "cannot open %s", dir);
    while ((de = readdir(dp))) {
        size_t len = strlen(de->d_name);
        char path[4096 + 512];
        char msg[512];
        char *text;

        if (len < 7 || strcmp(de->d_name + len - 6, ".jsonl") != 0)
            continue;
        for (f = 0; f < TRACE_FILES_N; f++) {
            if (strcmp(de->d_name, traceFiles[f]) == 0)
                break;
        }
        if (f == TRACE_FILES_N) {
            size_t fl = strlen(failures);

            nfail++;
            snprintf(failures + fl, sizeof(failures) - fl, "\n  %s: a trace this test does "
                     "not know (add it to traceFiles in test_policy.c)", de->d_name);
            continue;
        }
        seen[f] = true;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        text = mpTestReadFile(path, NULL);
        n++;
        if (!traceJudge(text, de->d_name, msg, sizeof(msg))) {
            size_t fl = strlen(failures);

            nfail++;
            snprintf(failures + fl, sizeof(failures) - fl, "\n  %s", msg);
        } else {
            /* The defaults are not on a knife-edge: the same verdicts with max_passes
             * halved or raised by half, and with a 500 ms downtime (nova's final one). */
            static const char *const variants[][2] = {
                { "max_passes", "4" }, { "max_passes", "12" }, { "downtime_ms", "500" },
                { "shrink_min", "0.2" }, { "min_bandwidth_samples", "8" },
            };
            size_t v;

            for (v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
                mpPolicyConfig cfg;
                char vmsg[512];

                mpPolicyConfigInit(&cfg);
                ck_assert_int_eq(mpPolicyConfigSet(&cfg, variants[v][0], variants[v][1]), 0);
                if (!traceJudgeWith(text, de->d_name, &cfg, vmsg, sizeof(vmsg))) {
                    size_t fl = strlen(failures);

                    nfail++;
                    snprintf(failures + fl, sizeof(failures) - fl, "\n  [%s=%s] %s",
                             variants[v][0], variants[v][1], vmsg);
                }
            }
        }
        free(text);
    }
    closedir(dp);
    fprintf(stderr, "recorded traces: %u replayed, %u failed\n", n, nfail);
    for (f = 0; f < TRACE_FILES_N; f++)
        ck_assert_msg(seen[f], "recorded trace %s/%s is missing", dir, traceFiles[f]);
    ck_assert_uint_eq(n, TRACE_FILES_N);
    ck_assert_msg(nfail == 0, "%u of %u recorded traces failed:%s", nfail, n, failures);
}
END_TEST

/*
 * The traces of tests/data/traces/dirtyrate (see the README there): regimes recorded with
 * the guest's dirty rate measured just before the migration (1, 2 and 4 s windows), fed to
 * the policy before the replay. Stalled ones switch at pass 2 (rule
 * working-set-exceeds-downtime, the measurement used), converging ones never; the set of
 * files is fixed.
 */
static const struct {
    const char *file;
    unsigned int switch_pass;   /* 0: never */
    /* Not met by today's policy, and why (see docs/policy.md): the test then asserts the
     * policy still misses it, so that a fix shows here and the entry is removed. */
    const char *known_gap;
} dirtyTraces[] = {
    { "wss128_rate16_bw64_converging.jsonl", 0, NULL },
    { "wss16_flatout_bw24_stalled.jsonl", 2,
      "pass 2 lasts 0.6 s, less than the 1 s window, which the 16 MiB set saturates "
      "(14 MiB/s is only a floor of the rate): the documented inconclusive case of whole-"
      "second windows; here not even recognised as such, the 4 s window having read 32 MiB "
      "(twice the set), so r = 14 MiB/s < 24 MiB/s predicts convergence at passes 2 and 3, "
      "and the passes shrink (16.5 -> 13.4 MiB) too much for remaining-not-shrinking" },
    { "wss192_rate64_bw32_stalled.jsonl", 2, NULL },
    { "wss224_flatout_bw96_stalled.jsonl", 2, NULL },
    { "wss64_flatout_bw48_stalled.jsonl", 2, NULL },
    { "wss64_rate8_bw24_converging.jsonl", 0, NULL },
};
#define DIRTY_TRACES_N (sizeof(dirtyTraces) / sizeof(dirtyTraces[0]))

/* Judges one dirty-rate trace with cfg (say: print what it decided); returns false with a
 * message in msg. */
static bool
traceJudgeDirty(const char *text, const char *name, unsigned int want, const char *gap,
                const mpPolicyConfig *cfg, bool say, char *msg, size_t msglen)
{
    traceOptions opts = { .feed_dirty = true };
    traceResult res;
    bool at_pass2;

    if (traceReplay(text, name, cfg, &opts, &res, msg, msglen) < 0)
        return false;
    if (say)
        fprintf(stderr, "dirty-rate trace %s: %u samples, max pass %u, pass 2 at %.0f ms;"
                " pass 2 (measurement %s): %s; %s%s\n", name, res.nsamples, res.max_pass,
                res.pass2_start_ms,
                res.have_pass2 ? mpPolicyDirtyStatusTypeToString(res.pass2.dirty_status) : "-",
                res.have_pass2 ? res.pass2.explanation : "not evaluated",
                res.have_first ? "first rule at pass " : "no rule fired",
                !res.have_first ? "" : res.first.pass == 2 ? "2" : res.first.explanation);
    if (!res.have_pass2 || res.pass2_start_ms < 0) {
        snprintf(msg, msglen, "%s: pass 2 never evaluated", name);
        return false;
    }
    /* the measurement is what the decision at pass 2 rests on, not the fallback */
    if (res.pass2.dirty_status != MP_POLICY_DIRTY_USED || res.pass2.dirty_fallback) {
        snprintf(msg, msglen, "%s: measurement %s at pass 2: %s", name,
                 mpPolicyDirtyStatusTypeToString(res.pass2.dirty_status), res.pass2.explanation);
        return false;
    }
    at_pass2 = res.nswitch == 1 && res.have_first &&
        res.first.action == MP_POLICY_ACTION_SWITCH && res.first.pass == 2 &&
        res.first.rule == MP_POLICY_RULE_WORKING_SET &&
        res.first.dirty_status == MP_POLICY_DIRTY_USED &&
        (double)res.first.elapsed_ms <= res.pass2_start_ms + 1000;
    if (gap) {
        if (at_pass2) {
            snprintf(msg, msglen, "%s: now switches at pass 2 (%s): remove its known_gap in "
                     "dirtyTraces", name, res.first.explanation);
            return false;
        }
        fprintf(stderr, "  known gap: %s\n", gap);
        return true;
    }
    if (want == 0) {
        if (res.nswitch != 0 || res.have_first) {
            snprintf(msg, msglen, "%s: converging migration got rule %s at pass %u: %s", name,
                     mpPolicyRuleToString(res.first.rule), res.first.pass,
                     res.first.explanation);
            return false;
        }
    } else if (!at_pass2) {
        snprintf(msg, msglen, "%s: %u switches, first at pass %u (rule %s, pass 2 began at "
                 "%.0f ms): %s", name, res.nswitch, res.have_first ? res.first.pass : 0,
                 res.have_first ? mpPolicyRuleToString(res.first.rule) : "none",
                 res.pass2_start_ms, res.have_first ? res.first.explanation : "no rule fired");
        return false;
    }

    /* The jobs ran without VIR_MIGRATE_POSTCOPY: honouring that, no switch, and a stalled
     * one says so once. */
    opts.honour_flags = true;
    if (traceReplay(text, name, cfg, &opts, &res, msg, msglen) < 0)
        return false;
    if (!res.flags_known || res.flags_postcopy) {
        snprintf(msg, msglen, "%s: meta flags without VIR_MIGRATE_POSTCOPY expected", name);
        return false;
    }
    if (res.nswitch != 0 || res.nnotpermitted != (want ? 1u : 0u)) {
        snprintf(msg, msglen, "%s: without VIR_MIGRATE_POSTCOPY: %u switches, %u "
                 "postcopy-not-permitted", name, res.nswitch, res.nnotpermitted);
        return false;
    }
    return true;
}

START_TEST(test_trace_dirtyrate_recorded)
{
    /* The per-pass rules' knobs do not move the measured verdict at pass 2. */
    static const char *const variants[][2] = {
        { NULL, NULL }, { "max_passes", "4" }, { "max_passes", "12" },
        { "shrink_min", "0.2" }, { "min_bandwidth_samples", "8" },
    };
    char dir[4096];
    DIR *dp;
    struct dirent *de;
    unsigned int n = 0, nfail = 0;
    char failures[8192] = "";
    bool seen[DIRTY_TRACES_N] = { false };
    size_t f, v;

    /* the table says what the names promise */
    for (f = 0; f < DIRTY_TRACES_N; f++) {
        const char *file = dirtyTraces[f].file;
        bool stalled = strstr(file, "_stalled.jsonl") != NULL;

        ck_assert_msg(stalled || strstr(file, "_converging.jsonl"), "%s: neither", file);
        ck_assert_uint_eq(dirtyTraces[f].switch_pass, stalled ? 2 : 0);
        ck_assert_msg(!dirtyTraces[f].known_gap || stalled, "%s", file);
    }
    snprintf(dir, sizeof(dir), "%s", mpTestDataPath("traces/dirtyrate"));
    dp = opendir(dir);
    ck_assert_msg(dp != NULL, "cannot open %s", dir);
    while ((de = readdir(dp))) {
        char path[4096 + 512];
        char *text;

        if (de->d_name[0] == '.')
            continue;
        for (f = 0; f < DIRTY_TRACES_N; f++) {
            if (strcmp(de->d_name, dirtyTraces[f].file) == 0)
                break;
        }
        if (f == DIRTY_TRACES_N) {
            size_t fl = strlen(failures);

            nfail++;
            snprintf(failures + fl, sizeof(failures) - fl, "\n  %s: a file this test does "
                     "not know (add it to dirtyTraces in test_policy.c)", de->d_name);
            continue;
        }
        seen[f] = true;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        text = mpTestReadFile(path, NULL);
        n++;
        for (v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
            mpPolicyConfig cfg;
            char msg[1024];

            mpPolicyConfigInit(&cfg);
            if (variants[v][0])
                ck_assert_int_eq(mpPolicyConfigSet(&cfg, variants[v][0], variants[v][1]), 0);
            if (!traceJudgeDirty(text, de->d_name, dirtyTraces[f].switch_pass,
                                 dirtyTraces[f].known_gap, &cfg, v == 0, msg,
                                 sizeof(msg))) {
                size_t fl = strlen(failures);

                nfail++;
                snprintf(failures + fl, sizeof(failures) - fl, "\n  [%s=%s] %s",
                         variants[v][0] ? variants[v][0] : "defaults",
                         variants[v][1] ? variants[v][1] : "", msg);
            }
        }
        free(text);
    }
    closedir(dp);
    fprintf(stderr, "dirty-rate traces: %u replayed, %u failed\n", n, nfail);
    for (f = 0; f < DIRTY_TRACES_N; f++)
        ck_assert_msg(seen[f], "dirty-rate trace %s/%s is missing", dir, dirtyTraces[f].file);
    ck_assert_uint_eq(n, DIRTY_TRACES_N);
    ck_assert_msg(nfail == 0, "%u dirty-rate trace judgements failed:%s", nfail, failures);
}
END_TEST

/* A dirty-rate trace whose meta lacks the measurement, or has a bad one, is reported. */
START_TEST(test_trace_dirtyrate_malformed)
{
    static const char *const bad[][2] = {
        { "{\"kind\":\"meta\",\"scenario\":\"x_stalled\"}\n", "no \"dirty\" object" },
        { "{\"kind\":\"meta\",\"scenario\":\"x\",\"dirty\":{\"windows\":[{\"window_ms\":1000}],"
          "\"memory_bytes\":1}}\n", "window 0 without" },
        { "{\"kind\":\"meta\",\"scenario\":\"x\",\"dirty\":{\"windows\":[]}}\n",
          "without memory_bytes" },
    };
    mpPolicyConfig cfg;
    traceOptions opts = { .feed_dirty = true };
    traceResult res;
    size_t i;

    mpPolicyConfigInit(&cfg);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char msg[512];

        ck_assert_int_eq(traceReplay(bad[i][0], "bad", &cfg, &opts, &res, msg, sizeof(msg)),
                         -1);
        ck_assert_msg(strstr(msg, bad[i][1]), "%s", msg);
    }
}
END_TEST

/* ---- decisions as JSON ---- */

START_TEST(test_decision_to_json)
{
    static const char *const figureKeys[] = {
        "prediction", "rho", "rho_reported", "remaining_at_pass_start_bytes",
        "remaining_at_previous_pass_start_bytes", "threshold_bytes", "bandwidth_bps",
        "predicted_passes", "predicted_finish_ms", "switch_cost_ms",
    };
    static const char *const otherKeys[] = {
        "action", "rule", "switch_decided", "acted_on", "evaluated", "pass", "elapsed_ms",
        "dirty_status", "dirty_fallback", "dirty_wss_bytes", "dirty_write_bps",
        "dirty_age_ms", "predicted_remaining", "explanation",
    };
    mpPolicyDecision d;
    json_t *fig, *j;
    size_t i;

    memset(&d, 0, sizeof(d));
    d.action = MP_POLICY_ACTION_SWITCH;
    d.rule = MP_POLICY_RULE_NOT_CONVERGING;
    d.switch_decided = true;
    d.pass = 3;
    d.elapsed_ms = 12345;
    d.rho = 0.97;
    d.rho_reported = INFINITY;           /* not a JSON number: null */
    d.remaining_start = 300;
    d.remaining_prev = -1;
    d.threshold_bytes = 20;
    d.bandwidth_bps = -1;
    d.predicted_passes = -1;
    d.predicted_finish_ms = -1;
    d.switch_cost_ms = 3500;
    d.dirty_wss_bytes = -1;
    d.dirty_write_bps = 7;
    d.dirty_age_ms = -1;
    d.predicted_remaining = -1;
    snprintf(d.explanation, sizeof(d.explanation), "cut \xc3");   /* half a character */

    fig = mpPolicyDecisionFiguresToJSON(&d);
    ck_assert_uint_eq(json_object_size(fig), sizeof(figureKeys) / sizeof(figureKeys[0]));
    for (i = 0; i < sizeof(figureKeys) / sizeof(figureKeys[0]); i++)
        ck_assert_msg(json_object_get(fig, figureKeys[i]), "no %s", figureKeys[i]);
    ck_assert_str_eq(json_string_value(json_object_get(fig, "prediction")), "unknown");
    ck_assert(json_real_value(json_object_get(fig, "rho")) == 0.97);
    ck_assert(json_is_null(json_object_get(fig, "rho_reported")));
    ck_assert_int_eq(json_integer_value(json_object_get(fig, "remaining_at_pass_start_bytes")),
                     300);
    ck_assert(json_is_null(json_object_get(fig, "remaining_at_previous_pass_start_bytes")));
    ck_assert(json_is_null(json_object_get(fig, "predicted_passes")));
    ck_assert_int_eq(json_integer_value(json_object_get(fig, "switch_cost_ms")), 3500);

    j = mpPolicyDecisionToJSON(&d);
    ck_assert_uint_eq(json_object_size(j), json_object_size(fig) +
                      sizeof(otherKeys) / sizeof(otherKeys[0]));
    for (i = 0; i < sizeof(otherKeys) / sizeof(otherKeys[0]); i++)
        ck_assert_msg(json_object_get(j, otherKeys[i]), "no %s", otherKeys[i]);
    ck_assert(json_equal(json_object_get(j, "rho"), json_object_get(fig, "rho")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "action")), "switch");
    ck_assert_str_eq(json_string_value(json_object_get(j, "rule")), "not-converging");
    ck_assert(json_is_true(json_object_get(j, "switch_decided")));
    ck_assert(json_is_false(json_object_get(j, "acted_on")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "pass")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "elapsed_ms")), 12345);
    ck_assert_str_eq(json_string_value(json_object_get(j, "dirty_status")), "missing");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "dirty_write_bps")), 7);
    ck_assert(json_is_null(json_object_get(j, "dirty_age_ms")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "explanation")), "cut ?");
    json_decref(fig);
    json_decref(j);
}
END_TEST

/* ---- libvirt's job statistics ---- */

typedef struct {
    const char *name;
    unsigned long long value;
} fakeStat;

static bool
fakeJobStat(const char *name, unsigned long long *value, void *opaque)
{
    const fakeStat *st;

    for (st = opaque; st->name; st++) {
        if (strcmp(st->name, name) == 0) {
            *value = st->value;
            return true;
        }
    }
    return false;
}

START_TEST(test_sample_from_job_stats)
{
    static const fakeStat full[] = {
        { "time_elapsed", 15000 }, { "memory_iteration", 2 }, { "memory_total", 1 << 30 },
        { "memory_processed", 600 << 20 }, { "memory_remaining", 500 << 20 },
        { "memory_bps", 100 << 20 }, { "memory_dirty_rate", 4800 },
        { "memory_page_size", 65536 }, { "downtime", 42 }, { "type", 2 }, { NULL, 0 },
    };
    static const fakeStat setup[] = {
        { "time_elapsed", 3 }, { "memory_iteration", 0 }, { "memory_dirty_rate", 10 },
        { NULL, 0 },
    };
    static const fakeStat huge[] = {
        { "memory_iteration", 1ULL << 40 }, { "memory_dirty_rate", ULLONG_MAX / 2 },
        { "memory_page_size", 0 }, { NULL, 0 },
    };
    mpPolicySample s;

    mpPolicySampleFromJobStats(&s, fakeJobStat, (void *)full);
    ck_assert_uint_eq(s.elapsed_ms, 15000);
    ck_assert_uint_eq(s.pass, 2);
    ck_assert_uint_eq(s.memory_total, 1 << 30);
    ck_assert_uint_eq(s.memory_processed, 600 << 20);
    ck_assert_uint_eq(s.memory_remaining, 500 << 20);
    ck_assert_uint_eq(s.memory_bps, 100 << 20);
    ck_assert_uint_eq(s.dirty_bps, 4800ULL * 65536);
    ck_assert_uint_eq(s.expected_downtime_ms, 42);
    ck_assert_uint_eq(s.has, MP_POLICY_HAS_PASS | MP_POLICY_HAS_TOTAL | MP_POLICY_HAS_PROCESSED |
                      MP_POLICY_HAS_REMAINING | MP_POLICY_HAS_BPS | MP_POLICY_HAS_DIRTY |
                      MP_POLICY_HAS_EXP_DOWNTIME);
    ck_assert(!s.postcopy_permitted && !s.in_postcopy && s.max_downtime_ms == 0);

    /* pass 0 is kept (the policy declines to judge it); no page size: 4096 */
    mpPolicySampleFromJobStats(&s, fakeJobStat, (void *)setup);
    ck_assert_uint_eq(s.has, MP_POLICY_HAS_PASS | MP_POLICY_HAS_DIRTY);
    ck_assert_uint_eq(s.pass, 0);
    ck_assert_uint_eq(s.elapsed_ms, 3);
    ck_assert_uint_eq(s.dirty_bps, 40960);

    /* out of range: saturated, never wrapped; page size 0: the default */
    mpPolicySampleFromJobStats(&s, fakeJobStat, (void *)huge);
    ck_assert_uint_eq(s.pass, UINT_MAX);
    ck_assert_uint_eq(s.dirty_bps, ULLONG_MAX);
    ck_assert_uint_eq(mpPolicyDirtyBps(3, 0), 3 * MP_POLICY_PAGE_SIZE_DEFAULT);

    /* nothing at all */
    mpPolicySampleFromJobStats(&s, fakeJobStat, (void *)&full[10]);
    ck_assert_uint_eq(s.has, 0);
    ck_assert_uint_eq(s.elapsed_ms, 0);
}
END_TEST

static Suite *
policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sim_converging_never_switches);
    tcase_add_test(tc, test_sim_converging_prediction);
    tcase_add_test(tc, test_sim_stalled_switches_at_pass2);
    tcase_add_test(tc, test_sim_working_set_trap);
    tcase_add_test(tc, test_sim_small_working_set_trap_pass3);
    tcase_add_test(tc, test_sim_sawtooth_does_not_trigger);
    tcase_add_test(tc, test_sim_dirty_rate_rises);
    tcase_add_test(tc, test_sim_bandwidth_drops);
    tcase_add_test(tc, test_sim_idle_and_tiny);
    tcase_add_test(tc, test_sim_postcopy_not_permitted);
    tcase_add_test(tc, test_sim_observe_mode);
    tcase_add_test(tc, test_sim_min_pass_and_no_events);
    tcase_add_test(tc, test_sim_deadline_predicted);
    tcase_add_test(tc, test_deadline_passed_mid_pass);
    tcase_add_test(tc, test_deadline_before_min_pass_waits);
    tcase_add_test(tc, test_already_in_postcopy);
    tcase_add_test(tc, test_bad_input_rejected);
    tcase_add_test(tc, test_zero_and_extreme_samples);
    tcase_add_test(tc, test_config_defaults_and_keys);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_dirty_saturated_switches_at_pass2);
    tcase_add_test(tc, test_dirty_converging_never_switches);
    tcase_add_test(tc, test_dirty_rate_limited_below_bandwidth);
    tcase_add_test(tc, test_dirty_trap_long_window_rate);
    tcase_add_test(tc, test_dirty_overread_overruled_by_pass1);
    tcase_add_test(tc, test_dirty_pass1_count_holds_at_later_passes);
    tcase_add_test(tc, test_dirty_saturated_set_at_least_pass1_count);
    tcase_add_test(tc, test_dirty_missing_is_todays_policy);
    tcase_add_test(tc, test_dirty_stale_and_inconsistent_fall_back);
    tcase_add_test(tc, test_dirty_bad_struct_rejected);
    tcase_add_test(tc, test_dirty_downtime_in_force);
    tcase_add_test(tc, test_dirty_downtime_from_sample);
    tcase_add_test(tc, test_dirty_deadline);
    tcase_add_test(tc, test_dirty_inconclusive_then_pass3);
    tcase_add_test(tc, test_trace_handmade_lab);
    tcase_add_test(tc, test_trace_recorded);
    tcase_add_test(tc, test_trace_dirtyrate_recorded);
    tcase_add_test(tc, test_trace_dirtyrate_malformed);
    tcase_add_test(tc, test_sample_from_job_stats);
    tcase_add_test(tc, test_decision_to_json);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(policy_suite)
