/*
 * oslo.c: _migpilot.decode / notification_info / encode / message_id_from_name over mposlo
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mppy.h"
#include "mppyjson.h"
#include "mperror.h"
#include "mposlo.h"

/* ---- Python -> JSON ------------------------------------------------------------------- */

/* UTF-8 of a str, refusing NULs and lone surrogates with _migpilot.Error. */
static const char *
mpPyUtf8(PyObject *s, const char *what, Py_ssize_t *len)
{
    const char *u = PyUnicode_AsUTF8AndSize(s, len);

    if (!u) {
        PyErr_Clear();
        PyErr_Format(mpPyError, "%s is not encodable as UTF-8 (lone surrogate?)", what);
        return NULL;
    }
    if (memchr(u, '\0', (size_t)*len)) {
        PyErr_Format(mpPyError, "%s contains a NUL character", what);
        return NULL;
    }
    return u;
}

/* Containers deeper than limit are refused (also stops self-referencing structures). */
static json_t *
mpPyToJSON(PyObject *o, const char *what, int depth, int limit)
{
    json_t *ret = NULL;
    json_t *container = NULL;
    json_t *child = NULL;

    if (o == Py_None)
        return json_null();
    if (PyBool_Check(o))
        return json_boolean(o == Py_True);
    if (PyLong_Check(o)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);

        if (overflow) {
            PyErr_Format(mpPyError, "integer %R in %s is outside the 64-bit range", o, what);
            return NULL;
        }
        if (v == -1 && PyErr_Occurred())
            return NULL;
        return json_integer(v);
    }
    if (PyFloat_Check(o)) {
        double d = PyFloat_AS_DOUBLE(o);

        if (!isfinite(d)) {
            PyErr_Format(mpPyError, "%R in %s has no JSON form", o, what);
            return NULL;
        }
        return json_real(d);
    }
    if (PyUnicode_Check(o)) {
        Py_ssize_t n;
        const char *s = mpPyUtf8(o, "a string", &n);

        return s ? json_stringn(s, (size_t)n) : NULL;
    }
    if (!PyDict_Check(o) && !PyList_Check(o) && !PyTuple_Check(o)) {
        PyErr_Format(mpPyError, "cannot encode %.80s in %s as JSON", Py_TYPE(o)->tp_name, what);
        return NULL;
    }
    if (depth > limit) {
        PyErr_Format(mpPyError, "%s nests deeper than %d levels", what, limit);
        return NULL;
    }
    if (Py_EnterRecursiveCall(" converting to JSON"))
        return NULL;
    if (PyDict_Check(o)) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;

        container = json_object();
        while (PyDict_Next(o, &pos, &key, &value)) {
            const char *k;
            Py_ssize_t klen;

            if (!PyUnicode_Check(key)) {
                PyErr_Format(mpPyError, "key %R in %s is not a str", key, what);
                goto cleanup;
            }
            if (!(k = mpPyUtf8(key, "a key", &klen)) ||
                !(child = mpPyToJSON(value, what, depth + 1, limit)))
                goto cleanup;
            if (json_object_set_new(container, k, child) < 0) {
                child = NULL;   /* json_object_set_new took it even on failure */
                PyErr_Format(mpPyError, "cannot add key %R to %s", key, what);
                goto cleanup;
            }
            child = NULL;
        }
    } else {
        Py_ssize_t i, n = PySequence_Fast_GET_SIZE(o);

        container = json_array();
        for (i = 0; i < n; i++) {
            if (!(child = mpPyToJSON(PySequence_Fast_GET_ITEM(o, i), what, depth + 1, limit)))
                goto cleanup;
            if (json_array_append_new(container, child) < 0) {
                child = NULL;
                PyErr_Format(mpPyError, "cannot build an array in %s", what);
                goto cleanup;
            }
            child = NULL;
        }
    }
    ret = container;
    container = NULL;

 cleanup:
    Py_LeaveRecursiveCall();
    json_decref(child);
    json_decref(container);
    return ret;
}

/* ---- module functions ------------------------------------------------------------------ */

static PyObject *
mpPyRaise(void)
{
    PyErr_SetString(mpPyError, mpGetLastErrorMessage());
    return NULL;
}

/* Shared by decode and notification_info: parses the arguments and decodes the body. */
static mpOsloMessage *
mpPyDecodeArgs(PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = { "body", "max_bytes", "max_depth", NULL };
    Py_buffer body = { 0 };
    Py_ssize_t maxBytes = MP_OSLO_DEFAULT_MAX_BYTES;
    int maxDepth = MP_OSLO_DEFAULT_MAX_DEPTH;
    mpOsloDecodeOptions opts;
    mpOsloMessage *msg = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|ni", kwlist,
                                     &body, &maxBytes, &maxDepth))
        return NULL;
    if (maxBytes <= 0 || maxDepth <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_bytes and max_depth must be positive");
        goto cleanup;
    }
    opts.max_bytes = (size_t)maxBytes;
    opts.max_depth = maxDepth;
    Py_BEGIN_ALLOW_THREADS
    msg = mpOsloDecode(body.buf, (size_t)body.len, &opts);
    Py_END_ALLOW_THREADS
    if (!msg)
        mpPyRaise();

 cleanup:
    PyBuffer_Release(&body);
    return msg;
}

static PyObject *
mpPyOsloDecode(PyObject *self, PyObject *args, PyObject *kwargs)
{
    mpOsloMessage *msg;
    PyObject *ret;

    (void)self;
    if (!(msg = mpPyDecodeArgs(args, kwargs)))
        return NULL;
    ret = mpPyFromJSON(mpOsloMessageGetJSON(msg));
    mpOsloMessageFree(msg);
    return ret;
}

static PyObject *
mpPyOsloInfo(PyObject *self, PyObject *args, PyObject *kwargs)
{
    mpOsloMessage *msg;
    const mpOsloInfo *info;
    PyObject *ret = NULL;
    PyObject *d = NULL;

    (void)self;
    if (!(msg = mpPyDecodeArgs(args, kwargs)))
        return NULL;
    info = mpOsloMessageGetInfo(msg);
    if (!(d = mpPyOsloInfoToDict(info)))
        goto cleanup;
    ret = d;
    d = NULL;

 cleanup:
    Py_XDECREF(d);
    mpOsloMessageFree(msg);
    return ret;
}

static PyObject *
mpPyOsloEncode(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = { "event_type", "publisher_id", "payload", "message_id",
                              "timestamp_ms", "priority", "context", NULL };
    PyObject *eventType, *publisherId, *payload, *messageId, *timestamp;
    PyObject *priority = Py_None;
    PyObject *context = Py_None;
    mpOsloEncodeParams params = { 0 };
    json_t *jpayload = NULL;
    json_t *jcontext = NULL;
    PyObject *ret = NULL;
    char *body = NULL;
    size_t len = 0;
    Py_ssize_t n;
    int overflow = 0;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "UUO!UO!|OO", kwlist,
                                     &eventType, &publisherId, &PyDict_Type, &payload,
                                     &messageId, &PyLong_Type, &timestamp,
                                     &priority, &context))
        return NULL;
    if (priority != Py_None && !PyUnicode_Check(priority)) {
        PyErr_SetString(PyExc_TypeError, "priority must be a str or None");
        return NULL;
    }
    if (context != Py_None && !PyDict_Check(context)) {
        PyErr_SetString(PyExc_TypeError, "context must be a dict or None");
        return NULL;
    }
    if (!(params.event_type = mpPyUtf8(eventType, "event_type", &n)) ||
        !(params.publisher_id = mpPyUtf8(publisherId, "publisher_id", &n)) ||
        !(params.message_id = mpPyUtf8(messageId, "message_id", &n)) ||
        (priority != Py_None && !(params.priority = mpPyUtf8(priority, "priority", &n))))
        goto cleanup;
    params.timestamp_ms = PyLong_AsLongLongAndOverflow(timestamp, &overflow);
    if (overflow) {
        PyErr_Format(mpPyError, "timestamp_ms %R is outside the 64-bit range", timestamp);
        goto cleanup;
    }
    if (params.timestamp_ms == -1 && PyErr_Occurred())
        goto cleanup;
    if (!(jpayload = mpPyToJSON(payload, "payload", 1, MP_OSLO_DEFAULT_MAX_DEPTH - 1)))
        goto cleanup;
    if (context != Py_None &&
        !(jcontext = mpPyToJSON(context, "context", 1, MP_OSLO_DEFAULT_MAX_DEPTH)))
        goto cleanup;
    params.payload = jpayload;
    params.context = jcontext;
    if (!(body = mpOsloEncode(&params, &len))) {
        mpPyRaise();
        goto cleanup;
    }
    ret = PyBytes_FromStringAndSize(body, (Py_ssize_t)len);

 cleanup:
    free(body);
    json_decref(jpayload);
    json_decref(jcontext);
    return ret;
}

static PyObject *
mpPyOsloMessageId(PyObject *self, PyObject *arg)
{
    char out[MP_OSLO_UUID_BUFLEN];
    const char *s;
    Py_ssize_t n;

    (void)self;
    if (PyUnicode_Check(arg)) {
        if (!(s = PyUnicode_AsUTF8AndSize(arg, &n)))
            return NULL;
    } else if (PyBytes_Check(arg)) {
        s = PyBytes_AS_STRING(arg);
        n = PyBytes_GET_SIZE(arg);
    } else {
        PyErr_SetString(PyExc_TypeError, "name must be str or bytes");
        return NULL;
    }
    mpOsloMessageIdFromName(s, (size_t)n, out);
    return PyUnicode_FromString(out);
}

static PyMethodDef mpPyOsloMethods[] = {
    { "decode", (PyCFunction)(void (*)(void))mpPyOsloDecode, METH_VARARGS | METH_KEYWORDS,
      "decode(body: bytes, *, max_bytes=DEFAULT_MAX_BYTES, max_depth=DEFAULT_MAX_DEPTH)"
      " -> dict\n\nThe inner oslo message of an AMQP body (envelope 2.0 or bare 1.0), as"
      " Python objects. Raises _migpilot.Error if the body is not a well-formed"
      " notification." },
    { "notification_info", (PyCFunction)(void (*)(void))mpPyOsloInfo,
      METH_VARARGS | METH_KEYWORDS,
      "notification_info(body: bytes, *, max_bytes=..., max_depth=...) -> dict\n\n"
      "The fields migpilot extracts: envelope_version, format, event_type,"
      " live_migration_event, priority, publisher_id, publisher_host, message_id,"
      " timestamp, timestamp_ms, instance_uuid, tenant_id, user_id, request_id, host, node"
      " (None when absent)." },
    { "encode", (PyCFunction)(void (*)(void))mpPyOsloEncode, METH_VARARGS | METH_KEYWORDS,
      "encode(event_type, publisher_id, payload: dict, message_id, timestamp_ms,"
      " priority='INFO', context=None) -> bytes\n\nThe AMQP body (oslo envelope 2.0) of a"
      " notification; context keys are sent as _context_<key>." },
    { "message_id_from_name", mpPyOsloMessageId, METH_O,
      "message_id_from_name(name: str | bytes) -> str\n\nA deterministic message id:"
      " uuid5 of name in migpilot's namespace." },
    { NULL, NULL, 0, NULL },
};

int
mpPyOsloRegister(PyObject *module)
{
    PyMethodDef *def;

    for (def = mpPyOsloMethods; def->ml_name; def++) {
        PyObject *fn = PyCFunction_NewEx(def, NULL, NULL);

        if (!fn || PyModule_AddObject(module, def->ml_name, fn) < 0) {
            Py_XDECREF(fn);
            return -1;
        }
    }
    if (PyModule_AddIntConstant(module, "DEFAULT_MAX_BYTES", MP_OSLO_DEFAULT_MAX_BYTES) < 0 ||
        PyModule_AddIntConstant(module, "DEFAULT_MAX_DEPTH", MP_OSLO_DEFAULT_MAX_DEPTH) < 0)
        return -1;
    return 0;
}
