/*
 * mppyjson.c: jansson values and oslo notification fields as Python objects, shared by
 * oslo.c and amqp.c
 */
#include <string.h>

#include "mppy.h"
#include "mppyjson.h"

PyObject *
mpPyFromJSON(json_t *v)
{
    PyObject *ret = NULL;
    PyObject *item = NULL;
    PyObject *key = NULL;

    if (Py_EnterRecursiveCall(" converting a JSON document"))
        return NULL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *child;

        if (!(ret = PyDict_New()))
            goto cleanup;
        json_object_foreach(v, k, child) {
            /* the decoder refuses \u0000, so keys are NUL-free UTF-8 */
            if (!(key = PyUnicode_DecodeUTF8(k, strlen(k), "strict")) ||
                !(item = mpPyFromJSON(child)) ||
                PyDict_SetItem(ret, key, item) < 0) {
                Py_CLEAR(ret);
                goto cleanup;
            }
            Py_CLEAR(key);
            Py_CLEAR(item);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;

        if (!(ret = PyList_New((Py_ssize_t)json_array_size(v))))
            goto cleanup;
        json_array_foreach(v, i, child) {
            if (!(item = mpPyFromJSON(child))) {
                Py_CLEAR(ret);
                goto cleanup;
            }
            PyList_SET_ITEM(ret, (Py_ssize_t)i, item);  /* steals */
            item = NULL;
        }
        break;
    }
    case JSON_STRING:
        ret = PyUnicode_DecodeUTF8(json_string_value(v), (Py_ssize_t)json_string_length(v),
                                   "strict");
        break;
    case JSON_INTEGER:
        ret = PyLong_FromLongLong(json_integer_value(v));
        break;
    case JSON_REAL:
        ret = PyFloat_FromDouble(json_real_value(v));
        break;
    case JSON_TRUE:
        ret = Py_NewRef(Py_True);
        break;
    case JSON_FALSE:
        ret = Py_NewRef(Py_False);
        break;
    case JSON_NULL:
        ret = Py_NewRef(Py_None);
        break;
    }

 cleanup:
    Py_XDECREF(key);
    Py_XDECREF(item);
    Py_LeaveRecursiveCall();
    return ret;
}

static int
mpPyDictSetStr(PyObject *dict, const char *key, const char *value)
{
    PyObject *v = value ? PyUnicode_DecodeUTF8(value, strlen(value), "strict")
                        : Py_NewRef(Py_None);

    return mpPyDictSteal(dict, key, v);
}

PyObject *
mpPyOsloInfoToDict(const mpOsloInfo *info)
{
    PyObject *d = NULL;

    if (!(d = PyDict_New()) ||
        mpPyDictSteal(d, "envelope_version",
                       PyUnicode_FromString(info->envelope_version == 2 ? "2.0" : "1.0")) < 0 ||
        mpPyDictSetStr(d, "format", mpOsloFormatTypeToString(info->format)) < 0 ||
        mpPyDictSetStr(d, "event_type", info->event_type) < 0 ||
        mpPyDictSetStr(d, "live_migration_event",
                       mpOsloLiveMigrationEventName(info->lm_event)) < 0 ||
        mpPyDictSetStr(d, "priority", info->priority) < 0 ||
        mpPyDictSetStr(d, "publisher_id", info->publisher_id) < 0 ||
        mpPyDictSetStr(d, "publisher_host", info->publisher_host) < 0 ||
        mpPyDictSetStr(d, "message_id", info->message_id) < 0 ||
        mpPyDictSetStr(d, "timestamp", info->timestamp) < 0 ||
        mpPyDictSteal(d, "timestamp_ms", info->has_timestamp ?
                       PyLong_FromLongLong(info->timestamp_ms) : Py_NewRef(Py_None)) < 0 ||
        mpPyDictSetStr(d, "instance_uuid", info->instance_uuid) < 0 ||
        mpPyDictSetStr(d, "tenant_id", info->tenant_id) < 0 ||
        mpPyDictSetStr(d, "user_id", info->user_id) < 0 ||
        mpPyDictSetStr(d, "request_id", info->request_id) < 0 ||
        mpPyDictSetStr(d, "host", info->host) < 0 ||
        mpPyDictSetStr(d, "node", info->node) < 0)
        Py_CLEAR(d);
    return d;
}
