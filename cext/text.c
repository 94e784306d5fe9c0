/*
 * text.c: _migpilot.parse_bool over the core's mptext
 */
#include <stdbool.h>
#include <string.h>

#include "mppy.h"
#include "mptext.h"

static PyObject *
mpPyParseBool(PyObject *self, PyObject *value)
{
    const char *s;
    Py_ssize_t len;
    bool b;

    (void)self;
    if (!PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "parse_bool() takes a str");
        return NULL;
    }
    if (!(s = PyUnicode_AsUTF8AndSize(value, &len)))
        return NULL;
    if ((size_t)len != strlen(s) || mpParseBool(s, &b) < 0)
        Py_RETURN_NONE;
    return PyBool_FromLong(b);
}

static PyMethodDef mpPyTextFunctions[] = {
    { "parse_bool", (PyCFunction)mpPyParseBool, METH_O,
      "parse_bool(value: str) -> bool | None\n\n"
      "A boolean as oslo.config and the agent spell it: true/yes/on/1, false/no/off/0, in\n"
      "any case; None for anything else." },
    { NULL, NULL, 0, NULL },
};

int
mpPyTextRegister(PyObject *module)
{
    return PyModule_AddFunctions(module, mpPyTextFunctions);
}
