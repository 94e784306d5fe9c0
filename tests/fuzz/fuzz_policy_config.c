/*
 * fuzz_policy_config.c: [policy] keys and job samples into the convergence policy
 *
 * Input: text up to the first NUL byte is split into lines "key=value" fed to
 * mpPolicyConfigSet(); the bytes after it are decoded into a stream of job samples,
 * MIGRATION_ITERATION events and dirty-rate measurements fed to a policy with that
 * configuration. Besides the
 * sanitizers, checks the promises of mppolicy.h: at most one switch, never one in
 * observe mode, before min_pass, without post-copy permitted or while in post-copy, and
 * a NUL-terminated explanation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mperror.h"
#include "mppolicy.h"

typedef struct {
    const uint8_t *p;
    size_t n;
} fzReader;

static uint64_t
fzGet(fzReader *r, size_t bytes)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < bytes; i++) {
        v <<= 8;
        if (r->n > 0) {
            v |= *r->p++;
            r->n--;
        }
    }
    return v;
}

static void
fzCheck(const mpPolicyDecision *d)
{
    if (memchr(d->explanation, '\0', sizeof(d->explanation)) == NULL)
        abort();
    if (d->action == MP_POLICY_ACTION_SWITCH &&
        (d->rule == MP_POLICY_RULE_NONE || d->rule == MP_POLICY_RULE_IN_POSTCOPY ||
         d->rule == MP_POLICY_RULE_POSTCOPY_NOT_PERMITTED || !d->switch_decided ||
         !d->acted_on))
        abort();
    (void)mpPolicyRuleToString(d->rule);
    (void)mpPolicyPredictionToString(d->prediction);
    (void)mpPolicyDirtyStatusTypeToString(d->dirty_status);
}

static void
fzConfigure(mpPolicyConfig *cfg, const char *text, size_t len)
{
    char *buf = malloc(len + 1);
    char *line, *save = NULL;

    if (!buf)
        return;
    memcpy(buf, text, len);
    buf[len] = '\0';
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');

        if (eq) {
            *eq = '\0';
            (void)mpPolicyConfigSet(cfg, line, eq + 1);
        } else {
            (void)mpPolicyConfigSet(cfg, line, "");
        }
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t textlen = nul ? (size_t)(nul - data) : size;
    fzReader r = { nul ? nul + 1 : data + size, nul ? size - textlen - 1 : 0 };
    mpPolicyConfig cfg;
    mpPolicy *policy;
    unsigned long long elapsed = 0;
    unsigned int pass = 1, nswitch = 0, steps = 0;
    bool postcopy = false;
    size_t i;

    mpPolicyConfigInit(&cfg);
    fzConfigure(&cfg, (const char *)data, textlen);
    for (i = 0; i < mpPolicyConfigKeyCount(); i++) {
        double num;
        const char *str;

        if (mpPolicyConfigGet(&cfg, mpPolicyConfigKeyName(i, NULL), &num, &str) < 0)
            abort();
    }
    /* every accepted value must make a valid configuration */
    if (mpPolicyConfigValidate(&cfg) < 0 || !(policy = mpPolicyNew(&cfg)))
        abort();

    while (r.n > 0 && steps++ < 4096) {
        unsigned int op = (unsigned int)fzGet(&r, 1);
        mpPolicyDecision d;

        if ((op & 0x1f) == 0x1e) {
            /* a dirty-rate measurement (any figures, up to one window too many) */
            mpDirtyMeasurement m;
            size_t w;

            memset(&m, 0, sizeof(m));
            m.nwindows = (size_t)fzGet(&r, 1) % (MP_DIRTY_MAX_WINDOWS + 2);
            for (w = 0; w < MP_DIRTY_MAX_WINDOWS; w++) {
                m.windows[w].window_ms = op & 0x80 ? fzGet(&r, 8) : fzGet(&r, 2);
                m.windows[w].rate_mibs = op & 0x80 ? fzGet(&r, 8) : fzGet(&r, 2);
            }
            m.memory_bytes = op & 0x40 ? fzGet(&r, 8) : fzGet(&r, 2) << 20;
            m.age_ms = op & 0x20 ? fzGet(&r, 8) : fzGet(&r, 3);
            if (mpPolicySetDirty(policy, &m) < 0) {
                if (m.nwindows <= MP_DIRTY_MAX_WINDOWS)
                    abort();    /* only a struct beyond its array is refused */
                mpResetLastError();
            }
            continue;
        }
        if (op & 1) {
            /* MIGRATION_ITERATION */
            unsigned int p = op & 0x40 ? (unsigned int)fzGet(&r, 4) :
                pass + (unsigned int)fzGet(&r, 1) % 3;
            unsigned long long t = op & 0x80 ? fzGet(&r, 8) : elapsed + fzGet(&r, 2);

            if (mpPolicyFeedIteration(policy, p, t, &d) < 0)
                abort();    /* events never fail */
        } else {
            mpPolicySample s;
            unsigned int flags;

            memset(&s, 0, sizeof(s));
            s.has = (unsigned int)fzGet(&r, 1);
            s.elapsed_ms = op & 0x80 ? fzGet(&r, 8) : elapsed + fzGet(&r, 1) * 4;
            s.pass = op & 0x40 ? (unsigned int)fzGet(&r, 4) :
                pass + (unsigned int)(fzGet(&r, 1) % 7 == 0);
            if (op & 0x20) {
                s.memory_total = fzGet(&r, 8);
                s.memory_processed = fzGet(&r, 8);
                s.memory_remaining = fzGet(&r, 8);
                s.memory_bps = fzGet(&r, 8);
                s.dirty_bps = fzGet(&r, 8);
            } else {
                s.memory_total = 512ULL << 20;
                s.memory_processed = fzGet(&r, 2) << 16;
                s.memory_remaining = fzGet(&r, 2) << 14;
                s.memory_bps = fzGet(&r, 1) << 18;
                s.dirty_bps = fzGet(&r, 1) << 18;
            }
            s.max_downtime_ms = fzGet(&r, 2);
            s.expected_downtime_ms = fzGet(&r, 2);
            flags = (unsigned int)fzGet(&r, 1);
            s.postcopy_permitted = !(flags & 1);
            s.in_postcopy = (flags & 6) == 6;
            if (mpPolicyFeedSample(policy, &s, &d) == 0) {
                elapsed = s.elapsed_ms;
                if ((s.has & MP_POLICY_HAS_PASS) && s.pass > pass)
                    pass = s.pass;
                if (d.action == MP_POLICY_ACTION_SWITCH &&
                    (!s.postcopy_permitted || s.in_postcopy || postcopy))
                    abort();
                if (s.in_postcopy)
                    postcopy = true;
            } else {
                mpResetLastError();
                continue;
            }
        }
        fzCheck(&d);
        if (d.action == MP_POLICY_ACTION_SWITCH) {
            if (cfg.mode != MP_POLICY_MODE_AUTO || d.pass < cfg.min_pass)
                abort();
            nswitch++;
        }
        if (nswitch > 1)
            abort();
    }
    mpPolicyFree(policy);
    mpResetLastError();
    return 0;
}
