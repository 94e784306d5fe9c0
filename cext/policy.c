/*
 * policy.c: placeholder until the policy bindings land
 */
#include "mppy.h"

int
mpPyPolicyRegister(PyObject *module)
{
    (void)module;
    return 0;
}
