/*
 * amqp.c: placeholder until the amqp bindings land
 */
#include "mppy.h"

int
mpPyAmqpRegister(PyObject *module)
{
    (void)module;
    return 0;
}
