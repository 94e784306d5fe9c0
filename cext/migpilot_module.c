/*
 * migpilot_module.c: the _migpilot module object; each area registers its own parts
 */
#include "mppy.h"

PyObject *mpPyError;

int
mpPyDictSteal(PyObject *dict, const char *key, PyObject *value)
{
    int rc;

    if (!value)
        return -1;
    rc = PyDict_SetItemString(dict, key, value);
    Py_DECREF(value);
    return rc;
}

static struct PyModuleDef migpilotModule = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_migpilot",
    .m_doc = "Bindings over migpilot's C core.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__migpilot(void)
{
    PyObject *mod = PyModule_Create(&migpilotModule);

    if (!mod)
        return NULL;
    if (PyModule_AddStringConstant(mod, "__version__", MP_VERSION_STR) < 0)
        goto error;
    mpPyError = PyErr_NewExceptionWithDoc("_migpilot.Error",
                                          "Input that migpilot rejects.",
                                          PyExc_ValueError, NULL);
    if (!mpPyError || PyModule_AddObjectRef(mod, "Error", mpPyError) < 0)
        goto error;
    if (mpPyLogsRegister(mod) < 0 || mpPyOsloRegister(mod) < 0 ||
        mpPyPolicyRegister(mod) < 0 || mpPyAmqpRegister(mod) < 0 ||
        mpPyForecastRegister(mod) < 0 || mpPyTextRegister(mod) < 0)
        goto error;
    return mod;

 error:
    Py_DECREF(mod);
    return NULL;
}
