/*
 * mpenum.c: the lookups behind MP_ENUM_IMPL (see mpenum.h)
 */
#include <string.h>

#include "mpenum.h"

const char *
mpEnumToString(const char *const *names, size_t n, int value)
{
    if (value < 0 || (size_t)value >= n)
        return NULL;
    return names[value];
}

int
mpEnumFromString(const char *const *names, size_t n, const char *str)
{
    size_t i;

    if (!str)
        return -1;
    for (i = 0; i < n; i++) {
        if (names[i] && strcmp(names[i], str) == 0)
            return (int)i;
    }
    return -1;
}
