/*
 * oslo.c: placeholder until the oslo bindings land
 */
#include "mppy.h"

int
mpPyOsloRegister(PyObject *module)
{
    (void)module;
    return 0;
}
