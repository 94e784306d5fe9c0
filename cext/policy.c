/*
 * policy.c: _migpilot.Policy, the convergence policy (agent/core/mppolicy.h) for Python
 *
 *   p = _migpilot.Policy(mode="observe", deadline_ms=600000)   # keys of [policy]
 *   d = p.feed_sample({"elapsed_ms": 9500, "pass": 2, "memory_remaining": ..., ...})
 *   d = p.feed_iteration(2, 9400)
 *   p.set_dirty({"windows": [(1000, 90), (4000, 64)], "memory_bytes": ..., "age_ms": 0})
 *   p.config -> {"mode": "observe", "min_pass": 2, ...}
 *
 * Decisions are dicts; unknown figures are None. Bad config or input raises
 * _migpilot.Error with the core's message (which names the key).
 */
#include <math.h>
#include <string.h>

#include "mppy.h"
#include "mppyjson.h"
#include "mperror.h"
#include "mppolicy.h"

typedef struct {
    PyObject_HEAD
    mpPolicy *policy;
} mpPyPolicy;

static void
mpPyPolicyDealloc(mpPyPolicy *self)
{
    mpPolicyFree(self->policy);
    self->policy = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The INI string of a Python config value: str as is, int and float through str(). */
static PyObject *
mpPyPolicyConfigString(const char *key, PyObject *value)
{
    if (PyUnicode_Check(value)) {
        Py_INCREF(value);
        return value;
    }
    if (PyBool_Check(value) || !(PyLong_Check(value) || PyFloat_Check(value))) {
        PyErr_Format(mpPyError, "[policy] %s: expected a number or a string, not %s",
                     key, Py_TYPE(value)->tp_name);
        return NULL;
    }
    return PyObject_Str(value);
}

int
mpPyPolicyConfigFromDict(PyObject *dict, mpPolicyConfig *cfg)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;

    mpPolicyConfigInit(cfg);
    while (dict && PyDict_Next(dict, &pos, &key, &value)) {
        const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        const char *str;
        PyObject *s;

        if (!name) {
            if (!PyErr_Occurred())
                PyErr_SetString(mpPyError, "[policy] keys must be strings");
            return -1;
        }
        if (!(s = mpPyPolicyConfigString(name, value)))
            return -1;
        if (!(str = PyUnicode_AsUTF8(s))) {
            Py_DECREF(s);
            return -1;
        }
        if (mpPolicyConfigSet(cfg, name, str) < 0) {
            Py_DECREF(s);
            PyErr_SetString(mpPyError, mpGetLastErrorMessage());
            return -1;
        }
        Py_DECREF(s);
    }
    if (mpPolicyConfigValidate(cfg) < 0) {
        PyErr_SetString(mpPyError, mpGetLastErrorMessage());
        return -1;
    }
    return 0;
}

static int
mpPyPolicyInit(mpPyPolicy *self, PyObject *args, PyObject *kwargs)
{
    mpPolicyConfig cfg;
    mpPolicy *policy;

    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "Policy() takes keyword arguments only");
        return -1;
    }
    if (mpPyPolicyConfigFromDict(kwargs, &cfg) < 0)
        return -1;
    if (!(policy = mpPolicyNew(&cfg))) {
        PyErr_SetString(mpPyError, mpGetLastErrorMessage());
        return -1;
    }
    mpPolicyFree(self->policy);
    self->policy = policy;
    return 0;
}

static int
mpPyPolicyReady(mpPyPolicy *self)
{
    if (!self->policy) {
        PyErr_SetString(mpPyError, "Policy was not initialised");
        return -1;
    }
    return 0;
}

/* A non-negative integer (or integral float) of a sample. */
static int
mpPyPolicyULL(const char *key, PyObject *value, unsigned long long *out)
{
    if (PyBool_Check(value))
        goto bad;
    if (PyLong_Check(value)) {
        unsigned long long v = PyLong_AsUnsignedLongLong(value);

        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            goto bad;
        }
        *out = v;
        return 0;
    }
    if (PyFloat_Check(value)) {
        double v = PyFloat_AS_DOUBLE(value);

        if (!isfinite(v) || v < 0 || v >= 1.8e19)
            goto bad;
        *out = (unsigned long long)v;
        return 0;
    }

 bad:
    PyErr_Format(mpPyError, "sample: %s must be a non-negative integer", key);
    return -1;
}

static int
mpPyPolicyBool(const char *key, PyObject *value, bool *out)
{
    if (!PyBool_Check(value)) {
        PyErr_Format(mpPyError, "sample: %s must be True or False", key);
        return -1;
    }
    *out = value == Py_True;
    return 0;
}

typedef enum {
    MP_PY_F_ELAPSED, MP_PY_F_PASS, MP_PY_F_TOTAL, MP_PY_F_PROCESSED, MP_PY_F_REMAINING,
    MP_PY_F_BPS, MP_PY_F_DIRTY_BPS, MP_PY_F_DIRTY_PPS, MP_PY_F_PAGE_SIZE,
    MP_PY_F_MAX_DOWNTIME, MP_PY_F_EXP_DOWNTIME, MP_PY_F_PERMITTED, MP_PY_F_IN_POSTCOPY,
    MP_PY_F_IGNORED,
} mpPyField;

static const struct {
    const char *name;
    mpPyField field;
} mpPySampleKeys[] = {
    { "elapsed_ms", MP_PY_F_ELAPSED },
    { "time_elapsed_ms", MP_PY_F_ELAPSED },     /* the lab traces' name */
    { "pass", MP_PY_F_PASS },
    { "memory_total", MP_PY_F_TOTAL },
    { "memory_processed", MP_PY_F_PROCESSED },
    { "memory_remaining", MP_PY_F_REMAINING },
    { "memory_bps", MP_PY_F_BPS },
    { "dirty_rate_bps", MP_PY_F_DIRTY_BPS },
    { "dirty_rate_pps", MP_PY_F_DIRTY_PPS },
    { "page_size", MP_PY_F_PAGE_SIZE },
    { "max_downtime_ms", MP_PY_F_MAX_DOWNTIME },
    { "expected_downtime_ms", MP_PY_F_EXP_DOWNTIME },
    { "postcopy_permitted", MP_PY_F_PERMITTED },
    { "in_postcopy", MP_PY_F_IN_POSTCOPY },
    /* trace bookkeeping, so that a trace line's dict can be fed as it is */
    { "kind", MP_PY_F_IGNORED },
    { "t_ms", MP_PY_F_IGNORED },
    { "postcopy_requests", MP_PY_F_IGNORED },
};

/* Fills *s from a dict; None values count as missing. -1 with an exception. */
static int
mpPyPolicySampleFromDict(PyObject *dict, mpPolicySample *s)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    unsigned long long pps = 0, page = MP_POLICY_PAGE_SIZE_DEFAULT;
    bool have_pps = false, have_elapsed = false;

    memset(s, 0, sizeof(*s));
    s->postcopy_permitted = true;
    if (!PyDict_Check(dict)) {
        PyErr_SetString(PyExc_TypeError, "feed_sample() takes a dict");
        return -1;
    }
    while (PyDict_Next(dict, &pos, &key, &value)) {
        const char *name;
        size_t i;
        unsigned long long v = 0;
        int field = -1;

        if (!PyUnicode_Check(key)) {
            PyErr_SetString(mpPyError, "sample: keys must be strings");
            return -1;
        }
        if (!(name = PyUnicode_AsUTF8(key)))
            return -1;
        for (i = 0; i < sizeof(mpPySampleKeys) / sizeof(mpPySampleKeys[0]); i++) {
            if (strcmp(mpPySampleKeys[i].name, name) == 0) {
                field = (int)mpPySampleKeys[i].field;
                break;
            }
        }
        if (field < 0) {
            PyErr_Format(mpPyError, "sample: unknown key '%s'", name);
            return -1;
        }
        if (value == Py_None || field == MP_PY_F_IGNORED)
            continue;
        if (field == MP_PY_F_PERMITTED) {
            if (mpPyPolicyBool(name, value, &s->postcopy_permitted) < 0)
                return -1;
            continue;
        }
        if (field == MP_PY_F_IN_POSTCOPY) {
            if (mpPyPolicyBool(name, value, &s->in_postcopy) < 0)
                return -1;
            continue;
        }
        if (mpPyPolicyULL(name, value, &v) < 0)
            return -1;
        switch ((mpPyField)field) {
        case MP_PY_F_ELAPSED: s->elapsed_ms = v; have_elapsed = true; break;
        case MP_PY_F_PASS:
            if (v > 0xffffffffULL) {
                PyErr_Format(mpPyError, "sample: %s out of range", name);
                return -1;
            }
            s->pass = (unsigned int)v;
            s->has |= MP_POLICY_HAS_PASS;
            break;
        case MP_PY_F_TOTAL: s->memory_total = v; s->has |= MP_POLICY_HAS_TOTAL; break;
        case MP_PY_F_PROCESSED:
            s->memory_processed = v;
            s->has |= MP_POLICY_HAS_PROCESSED;
            break;
        case MP_PY_F_REMAINING:
            s->memory_remaining = v;
            s->has |= MP_POLICY_HAS_REMAINING;
            break;
        case MP_PY_F_BPS: s->memory_bps = v; s->has |= MP_POLICY_HAS_BPS; break;
        case MP_PY_F_DIRTY_BPS: s->dirty_bps = v; s->has |= MP_POLICY_HAS_DIRTY; break;
        case MP_PY_F_DIRTY_PPS: pps = v; have_pps = true; break;
        case MP_PY_F_PAGE_SIZE: page = v; break;
        case MP_PY_F_MAX_DOWNTIME:
            s->max_downtime_ms = v;
            s->has |= MP_POLICY_HAS_MAX_DOWNTIME;
            break;
        case MP_PY_F_EXP_DOWNTIME:
            s->expected_downtime_ms = v;
            s->has |= MP_POLICY_HAS_EXP_DOWNTIME;
            break;
        case MP_PY_F_PERMITTED:
        case MP_PY_F_IN_POSTCOPY:
        case MP_PY_F_IGNORED:
            break;
        }
    }
    if (!have_elapsed) {
        PyErr_SetString(mpPyError, "sample: elapsed_ms is required");
        return -1;
    }
    if (have_pps && !(s->has & MP_POLICY_HAS_DIRTY)) {
        s->dirty_bps = mpPolicyDirtyBps(pps, page);
        s->has |= MP_POLICY_HAS_DIRTY;
    }
    return 0;
}

static PyObject *
mpPyDecisionToDict(const mpPolicyDecision *d)
{
    json_t *j = mpPolicyDecisionToJSON(d);
    PyObject *dict = mpPyFromJSON(j);

    json_decref(j);
    return dict;
}

static PyObject *
mpPyPolicyFeedSample(mpPyPolicy *self, PyObject *arg)
{
    mpPolicySample s;
    mpPolicyDecision d;

    if (mpPyPolicyReady(self) < 0 || mpPyPolicySampleFromDict(arg, &s) < 0)
        return NULL;
    if (mpPolicyFeedSample(self->policy, &s, &d) < 0) {
        PyErr_SetString(mpPyError, mpGetLastErrorMessage());
        return NULL;
    }
    return mpPyDecisionToDict(&d);
}

static PyObject *
mpPyPolicyFeedIteration(mpPyPolicy *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = { "pass_", "elapsed_ms", NULL };
    PyObject *passobj, *elapsedobj;
    unsigned long long pass, elapsed;
    mpPolicyDecision d;

    if (mpPyPolicyReady(self) < 0)
        return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:feed_iteration", kwlist,
                                     &passobj, &elapsedobj))
        return NULL;
    if (mpPyPolicyULL("pass", passobj, &pass) < 0 ||
        mpPyPolicyULL("elapsed_ms", elapsedobj, &elapsed) < 0)
        return NULL;
    if (pass > 0xffffffffULL) {
        PyErr_SetString(mpPyError, "iteration: pass out of range");
        return NULL;
    }
    if (mpPolicyFeedIteration(self->policy, (unsigned int)pass, elapsed, &d) < 0) {
        PyErr_SetString(mpPyError, mpGetLastErrorMessage());
        return NULL;
    }
    return mpPyDecisionToDict(&d);
}

/* A non-negative integer argument (ints only, not bools); ctx and what name it in the
 * error. Shared by the measurement and the forecast bindings. */
int
mpPyNonNegativeULL(const char *ctx, const char *what, PyObject *value, unsigned long long *out)
{
    unsigned long long v;

    if (PyBool_Check(value) || !PyLong_Check(value))
        goto bad;
    v = PyLong_AsUnsignedLongLong(value);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        goto bad;
    }
    *out = v;
    return 0;

 bad:
    PyErr_Format(mpPyError, "%s: %s must be a non-negative integer", ctx, what);
    return -1;
}

/* A non-negative integer of a measurement (QEMU reports whole numbers). */
static int
mpPyDirtyULL(const char *what, PyObject *value, unsigned long long *out)
{
    return mpPyNonNegativeULL("dirty measurement", what, value, out);
}

int
mpPyDirtyFromDict(PyObject *dict, mpDirtyMeasurement *m)
{
    PyObject *key, *value, *seq = NULL;
    Py_ssize_t pos = 0, i, n;
    bool have_windows = false, have_memory = false;
    int ret = -1;

    memset(m, 0, sizeof(*m));
    if (!PyDict_Check(dict)) {
        PyErr_SetString(PyExc_TypeError, "a dirty measurement is a dict");
        return -1;
    }
    while (PyDict_Next(dict, &pos, &key, &value)) {
        const char *name;

        if (!PyUnicode_Check(key)) {
            PyErr_SetString(mpPyError, "dirty measurement: keys must be strings");
            goto cleanup;
        }
        if (!(name = PyUnicode_AsUTF8(key)))
            goto cleanup;
        if (strcmp(name, "memory_bytes") == 0) {
            if (mpPyDirtyULL(name, value, &m->memory_bytes) < 0)
                goto cleanup;
            have_memory = true;
        } else if (strcmp(name, "age_ms") == 0) {
            if (mpPyDirtyULL(name, value, &m->age_ms) < 0)
                goto cleanup;
        } else if (strcmp(name, "windows") == 0) {
            if (!PyList_Check(value) && !PyTuple_Check(value)) {
                PyErr_SetString(mpPyError, "dirty measurement: windows must be a list of"
                                " (window_ms, rate_mibs) pairs");
                goto cleanup;
            }
            Py_XDECREF(seq);
            if (!(seq = PySequence_Fast(value, "windows")))
                goto cleanup;
            have_windows = true;
        } else {
            PyErr_Format(mpPyError, "dirty measurement: unknown key '%s'", name);
            goto cleanup;
        }
    }
    if (!have_windows || !have_memory) {
        PyErr_SetString(mpPyError, "dirty measurement: windows and memory_bytes are required");
        goto cleanup;
    }
    n = PySequence_Fast_GET_SIZE(seq);
    if (n > MP_DIRTY_MAX_WINDOWS) {
        PyErr_Format(mpPyError, "dirty measurement: %zd windows, at most %d", n,
                     MP_DIRTY_MAX_WINDOWS);
        goto cleanup;
    }
    for (i = 0; i < n; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i);

        if (!PyTuple_Check(pair) && !PyList_Check(pair)) {
            PyErr_SetString(mpPyError, "dirty measurement: a window must be a"
                            " (window_ms, rate_mibs) pair");
            goto cleanup;
        }
        if (PySequence_Size(pair) != 2) {
            PyErr_SetString(mpPyError, "dirty measurement: a window must be a"
                            " (window_ms, rate_mibs) pair");
            goto cleanup;
        }
        {
            PyObject *a = PySequence_GetItem(pair, 0);
            PyObject *b = a ? PySequence_GetItem(pair, 1) : NULL;
            int rc = a && b &&
                mpPyDirtyULL("window_ms", a, &m->windows[i].window_ms) == 0 &&
                mpPyDirtyULL("rate_mibs", b, &m->windows[i].rate_mibs) == 0 ? 0 : -1;

            Py_XDECREF(a);
            Py_XDECREF(b);
            if (rc < 0)
                goto cleanup;
        }
    }
    m->nwindows = (size_t)n;
    ret = 0;

 cleanup:
    Py_XDECREF(seq);
    return ret;
}

static PyObject *
mpPyPolicySetDirty(mpPyPolicy *self, PyObject *arg)
{
    mpDirtyMeasurement m;

    if (mpPyPolicyReady(self) < 0)
        return NULL;
    if (arg == Py_None) {
        memset(&m, 0, sizeof(m));   /* withdraws the measurement */
    } else if (mpPyDirtyFromDict(arg, &m) < 0) {
        return NULL;
    }
    if (mpPolicySetDirty(self->policy, &m) < 0) {
        PyErr_SetString(mpPyError, mpGetLastErrorMessage());
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The value of key name in cfg as Python: int, float or str (new reference, or NULL with
 * an exception). */
static PyObject *
mpPyPolicyKeyValue(const mpPolicyConfig *cfg, const char *name, mpPolicyKeyKind kind)
{
    const char *str = NULL;
    double num = 0;

    if (mpPolicyConfigGet(cfg, name, &num, &str) < 0) {
        PyErr_SetString(mpPyError, mpGetLastErrorMessage());
        return NULL;
    }
    if (kind == MP_POLICY_KEY_STRING)
        return PyUnicode_FromString(str ? str : "");
    if (kind == MP_POLICY_KEY_UINT)
        return PyLong_FromUnsignedLongLong((unsigned long long)num);
    return PyFloat_FromDouble(num);
}

static PyObject *
mpPyPolicyGetConfig(mpPyPolicy *self, void *closure)
{
    const mpPolicyConfig *cfg;
    PyObject *dict;
    size_t i;

    (void)closure;
    if (mpPyPolicyReady(self) < 0)
        return NULL;
    cfg = mpPolicyGetConfig(self->policy);
    if (!(dict = PyDict_New()))
        return NULL;
    for (i = 0; i < mpPolicyConfigKeyCount(); i++) {
        mpPolicyKeyKind kind;
        const char *name = mpPolicyConfigKeyName(i, &kind);

        if (mpPyDictSteal(dict, name, mpPyPolicyKeyValue(cfg, name, kind)) < 0)
            goto error;
    }
    return dict;

 error:
    Py_DECREF(dict);
    return NULL;
}

/* A bound of a number key as Python (int for UINT keys), None for a STRING key. */
static PyObject *
mpPyPolicyKeyBound(mpPolicyKeyKind kind, double v)
{
    if (kind == MP_POLICY_KEY_STRING)
        Py_RETURN_NONE;
    if (kind == MP_POLICY_KEY_UINT)
        return PyLong_FromUnsignedLongLong((unsigned long long)v);
    return PyFloat_FromDouble(v);
}

static PyObject *
mpPyPolicyKeys(PyObject *module, PyObject *unused)
{
    mpPolicyConfig defaults;
    mpPolicyKeyInfo info;
    PyObject *list;
    size_t i;

    (void)module;
    (void)unused;
    mpPolicyConfigInit(&defaults);
    if (!(list = PyList_New(0)))
        return NULL;
    for (i = 0; mpPolicyConfigKeyInfo(i, &info); i++) {
        PyObject *d = PyDict_New();
        int rc;

        if (!d ||
            mpPyDictSteal(d, "name", PyUnicode_FromString(info.name)) < 0 ||
            mpPyDictSteal(d, "kind", PyUnicode_FromString(mpPolicyKeyKindTypeToString(info.kind))) < 0 ||
            mpPyDictSteal(d, "default", mpPyPolicyKeyValue(&defaults, info.name, info.kind)) < 0 ||
            mpPyDictSteal(d, "min", mpPyPolicyKeyBound(info.kind, info.min)) < 0 ||
            mpPyDictSteal(d, "max", mpPyPolicyKeyBound(info.kind, info.max)) < 0 ||
            mpPyDictSteal(d, "min_exclusive", PyBool_FromLong(info.min_exclusive)) < 0 ||
            mpPyDictSteal(d, "max_exclusive", PyBool_FromLong(info.max_exclusive)) < 0 ||
            mpPyDictSteal(d, "help", PyUnicode_FromString(info.help)) < 0) {
            Py_XDECREF(d);
            goto error;
        }
        /* the one string key is mode: its words are the mode enum's table */
        if (info.kind == MP_POLICY_KEY_STRING) {
            PyObject *choices = PyList_New(0);
            const char *word;
            int m;

            for (m = 0; choices && (word = mpPolicyModeTypeToString(m)); m++) {
                PyObject *w = PyUnicode_FromString(word);

                if (!w || PyList_Append(choices, w) < 0) {
                    Py_XDECREF(w);
                    Py_CLEAR(choices);
                    break;
                }
                Py_DECREF(w);
            }
            if (mpPyDictSteal(d, "choices", choices) < 0) {
                Py_DECREF(d);
                goto error;
            }
        }
        rc = PyList_Append(list, d);
        Py_DECREF(d);
        if (rc < 0)
            goto error;
    }
    return list;

 error:
    Py_DECREF(list);
    return NULL;
}

/* ---- libvirt's job statistics to a sample ---- */

typedef struct {
    PyObject *stats;
    bool failed;              /* a Python exception is pending */
} mpPyJobStats;

static bool
mpPyJobStat(const char *name, unsigned long long *value, void *opaque)
{
    mpPyJobStats *js = opaque;
    PyObject *v;

    if (js->failed || !(v = PyDict_GetItemString(js->stats, name)) || v == Py_None)
        return false;
    if (mpPyNonNegativeULL("job stats", name, v, value) < 0) {
        js->failed = true;
        return false;
    }
    return true;
}

static PyObject *
mpPyOptULL(const mpPolicySample *s, unsigned int has, unsigned long long v)
{
    if (has && !(s->has & has))
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *
mpPySampleFromJobStats(PyObject *self, PyObject *stats)
{
    mpPyJobStats js = { stats, false };
    mpPolicySample s;
    PyObject *dict;

    (void)self;
    if (!PyDict_Check(stats)) {
        PyErr_SetString(PyExc_TypeError, "sample_from_job_stats() takes a dict");
        return NULL;
    }
    mpPolicySampleFromJobStats(&s, mpPyJobStat, &js);
    if (js.failed || !(dict = PyDict_New()))
        return NULL;
    if (mpPyDictSteal(dict, "elapsed_ms", mpPyOptULL(&s, 0, s.elapsed_ms)) < 0 ||
        mpPyDictSteal(dict, "pass", mpPyOptULL(&s, MP_POLICY_HAS_PASS, s.pass)) < 0 ||
        mpPyDictSteal(dict, "memory_total",
                      mpPyOptULL(&s, MP_POLICY_HAS_TOTAL, s.memory_total)) < 0 ||
        mpPyDictSteal(dict, "memory_processed",
                      mpPyOptULL(&s, MP_POLICY_HAS_PROCESSED, s.memory_processed)) < 0 ||
        mpPyDictSteal(dict, "memory_remaining",
                      mpPyOptULL(&s, MP_POLICY_HAS_REMAINING, s.memory_remaining)) < 0 ||
        mpPyDictSteal(dict, "memory_bps",
                      mpPyOptULL(&s, MP_POLICY_HAS_BPS, s.memory_bps)) < 0 ||
        mpPyDictSteal(dict, "dirty_rate_bps",
                      mpPyOptULL(&s, MP_POLICY_HAS_DIRTY, s.dirty_bps)) < 0 ||
        mpPyDictSteal(dict, "expected_downtime_ms",
                      mpPyOptULL(&s, MP_POLICY_HAS_EXP_DOWNTIME, s.expected_downtime_ms)) < 0) {
        Py_DECREF(dict);
        return NULL;
    }
    return dict;
}

static PyMethodDef mpPyPolicyFunctions[] = {
    { "policy_keys", mpPyPolicyKeys, METH_NOARGS,
      "policy_keys() -> list\n\n"
      "The keys of the C policy's [policy] section, from its one key table, in order: one\n"
      "dict per key with name, kind ('uint', 'double' or 'string'), default, min and max\n"
      "(None for 'string'), min_exclusive and max_exclusive (the bounds are inclusive\n"
      "unless these say otherwise) and help (one line); a 'string' key adds choices\n"
      "(its words, in the C enum's order)." },
    { "sample_from_job_stats", (PyCFunction)mpPySampleFromJobStats, METH_O,
      "sample_from_job_stats(stats: dict) -> dict\n\n"
      "The job-stats part of a feed_sample() sample, from virDomainGetJobStats's dict of an\n"
      "active job, as the agent reads it: elapsed_ms, pass, memory_total,\n"
      "memory_processed, memory_remaining, memory_bps, dirty_rate_bps (memory_dirty_rate x\n"
      "memory_page_size) and expected_downtime_ms (libvirt's downtime); None where the job\n"
      "has no such figure (elapsed_ms: 0)." },
    { NULL, NULL, 0, NULL },
};

static PyMethodDef mpPyPolicyMethods[] = {
    { "feed_sample", (PyCFunction)mpPyPolicyFeedSample, METH_O,
      "feed_sample(sample: dict) -> dict\n\n"
      "Feeds one job-stats sample. Keys: elapsed_ms (required), pass, memory_total,\n"
      "memory_processed, memory_remaining, memory_bps, dirty_rate_bps (or dirty_rate_pps\n"
      "and page_size), max_downtime_ms, expected_downtime_ms, postcopy_permitted,\n"
      "in_postcopy. Returns the decision." },
    { "feed_iteration", (PyCFunction)(void (*)(void))mpPyPolicyFeedIteration,
      METH_VARARGS | METH_KEYWORDS,
      "feed_iteration(pass_, elapsed_ms) -> dict\n\n"
      "Feeds a MIGRATION_ITERATION event: pass pass_ started at elapsed_ms." },
    { "set_dirty", (PyCFunction)mpPyPolicySetDirty, METH_O,
      "set_dirty(measurement: dict | None) -> None\n\n"
      "Feeds a measurement of the guest's dirtying (QEMU calc-dirty-rate): windows, a\n"
      "list of (window_ms, rate_mibs) pairs, shortest first (two or more); memory_bytes,\n"
      "the guest's RAM; age_ms, its age now (default 0). None withdraws it. Judged at\n"
      "the next pass start: the decision's dirty_status says whether it was used." },
    { NULL, NULL, 0, NULL },
};

static PyGetSetDef mpPyPolicyGetSet[] = {
    { "config", (getter)mpPyPolicyGetConfig, NULL,
      "The effective [policy] configuration, as a dict.", NULL },
    { NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject mpPyPolicyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_migpilot.Policy",
    .tp_basicsize = sizeof(mpPyPolicy),
    .tp_dealloc = (destructor)mpPyPolicyDealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Policy(**config): the convergence policy of one migration.\n\n"
              "Keyword arguments are the keys of migpilot.conf's [policy] section.",
    .tp_methods = mpPyPolicyMethods,
    .tp_getset = mpPyPolicyGetSet,
    .tp_init = (initproc)mpPyPolicyInit,
    .tp_new = PyType_GenericNew,
};

int
mpPyPolicyRegister(PyObject *module)
{
    if (PyType_Ready(&mpPyPolicyType) < 0 ||
        PyModule_AddFunctions(module, mpPyPolicyFunctions) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Policy", (PyObject *)&mpPyPolicyType);
}
