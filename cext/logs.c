/*
 * logs.c: placeholder until the logs bindings land
 */
#include "mppy.h"

int
mpPyLogsRegister(PyObject *module)
{
    (void)module;
    return 0;
}
