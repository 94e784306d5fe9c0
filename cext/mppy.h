/*
 * mppy.h: the areas of the _migpilot module; each registers its types and functions
 */
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "mppolicy.h"

/* Each returns 0, or -1 with a Python exception set. */
int mpPyLogsRegister(PyObject *module);     /* logs.c: log scanning, timelines */
int mpPyOsloRegister(PyObject *module);     /* oslo.c: the oslo envelope codec */
int mpPyPolicyRegister(PyObject *module);   /* policy.c: the convergence policy */
int mpPyAmqpRegister(PyObject *module);     /* amqp.c: the AMQP notification listener */
int mpPyForecastRegister(PyObject *module); /* forecast.c: the migration forecast */
int mpPyTextRegister(PyObject *module);     /* text.c: booleans */

/* Sets dict[key] = value and drops the caller's reference to value (also on error);
 * value NULL means an exception is already set. 0, or -1 with an exception. */
int mpPyDictSteal(PyObject *dict, const char *key, PyObject *value);

/* The module's exception for bad input: migpilot.Error (a ValueError). */
extern PyObject *mpPyError;

/* A non-negative int argument into *out; 0, or -1 with "ctx: what must be a
 * non-negative integer" set (policy.c). */
int mpPyNonNegativeULL(const char *ctx, const char *what, PyObject *value,
                       unsigned long long *out);

/* policy.c, shared with forecast.c. */
/* Fills *cfg from the defaults and {key: value} of [policy] (dict may be NULL), validated.
 * 0, or -1 with an exception. */
int mpPyPolicyConfigFromDict(PyObject *dict, mpPolicyConfig *cfg);
/* Fills *m from {"windows": [(window_ms, rate_mibs), ...], "memory_bytes": n,
 * "age_ms": n}; age_ms may be left out (0). -1 with an exception. */
int mpPyDirtyFromDict(PyObject *dict, mpDirtyMeasurement *m);
