/*
 * forecast.c: _migpilot.forecast(), a migration predicted before it starts
 *
 *   _migpilot.forecast({"windows": [(1000, 64), (4000, 16)], "memory_bytes": ...,
 *                       "age_ms": 0}, memory_bytes, bandwidth_bps, downtime_ms,
 *                      policy={"min_pass": 2}, resident_bytes=None)
 *   -> {"status": "post-copy", "time_ms": ..., "bytes": ..., ...}
 */
#include "mppy.h"
#include "mppyjson.h"
#include "mperror.h"
#include "mpforecast.h"

/* A non-negative integer argument (0 is left to the core, which names the problem). */
static int
mpPyForecastULL(const char *what, PyObject *value, unsigned long long *out)
{
    return mpPyNonNegativeULL("forecast", what, value, out);
}

static PyObject *
mpPyForecast(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = { "measurement", "memory_bytes", "bandwidth_bps", "downtime_ms",
                              "policy", "resident_bytes", NULL };
    PyObject *mobj, *memobj, *bwobj, *dtobj, *policy = Py_None, *resobj = Py_None;
    unsigned long long mem, bw, dt, res = 0;
    mpDirtyMeasurement m;
    mpPolicyConfig cfg;
    mpForecast fc;
    json_t *j;
    PyObject *ret;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO|$OO:forecast", kwlist, &mobj,
                                     &memobj, &bwobj, &dtobj, &policy, &resobj))
        return NULL;
    if (mpPyForecastULL("memory_bytes", memobj, &mem) < 0 ||
        mpPyForecastULL("bandwidth_bps", bwobj, &bw) < 0 ||
        mpPyForecastULL("downtime_ms", dtobj, &dt) < 0 ||
        (resobj != Py_None && mpPyForecastULL("resident_bytes", resobj, &res) < 0))
        return NULL;
    if (policy != Py_None && !PyDict_Check(policy)) {
        PyErr_SetString(PyExc_TypeError, "forecast: policy must be a dict of [policy] keys");
        return NULL;
    }
    if (mpPyPolicyConfigFromDict(policy == Py_None ? NULL : policy, &cfg) < 0)
        return NULL;
    if (mobj == Py_None)
        memset(&m, 0, sizeof(m));
    else if (mpPyDirtyFromDict(mobj, &m) < 0)
        return NULL;
    if (mpForecastCompute(&m, mem, res, bw, dt, &cfg, &fc) < 0) {
        PyErr_SetString(mpPyError, mpGetLastErrorMessage());
        return NULL;
    }
    j = mpForecastToJSON(&fc);
    ret = mpPyFromJSON(j);
    json_decref(j);
    return ret;
}

static PyMethodDef mpPyForecastMethods[] = {
    { "forecast", (PyCFunction)(void (*)(void))mpPyForecast, METH_VARARGS | METH_KEYWORDS,
      "forecast(measurement, memory_bytes, bandwidth_bps, downtime_ms, *, policy=None,\n"
      "         resident_bytes=None) -> dict\n\n"
      "Predicts a live migration of a guest of memory_bytes RAM (resident_bytes of it ever\n"
      "touched, when known: pass 1 sends no more) over a link of bandwidth_bps\n"
      "bytes/s with downtime_ms of max downtime, from a dirty-rate measurement (the dict of\n"
      "Policy.set_dirty(), or None) and the [policy] keys in force: status (pre-copy,\n"
      "post-copy, unknown), reason, explanation, postcopy, time_ms, bytes, downtime_ms,\n"
      "passes, switch_pass, switch_at_ms, postcopy_bytes, the inputs, wss_bytes, write_bps\n"
      "and measurement_age_ms (None when unknown)." },
    { NULL, NULL, 0, NULL },
};

int
mpPyForecastRegister(PyObject *module)
{
    return PyModule_AddFunctions(module, mpPyForecastMethods);
}
