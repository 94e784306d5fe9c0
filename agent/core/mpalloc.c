/*
 * mpalloc.c: allocation that aborts on out-of-memory
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpalloc.h"

static void __attribute__((noreturn))
mpAllocAbort(size_t size)
{
    fprintf(stderr, "migpilot: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
mpAlloc0(size_t size)
{
    void *ret = calloc(1, size ? size : 1);

    if (!ret)
        mpAllocAbort(size);
    return ret;
}

void *
mpAllocN(size_t count, size_t size)
{
    void *ret;

    if (size && count > SIZE_MAX / size)
        mpAllocAbort(SIZE_MAX);
    ret = calloc(count ? count : 1, size ? size : 1);
    if (!ret)
        mpAllocAbort(count * size);
    return ret;
}

void *
mpRealloc(void *ptr, size_t size)
{
    void *ret = realloc(ptr, size ? size : 1);

    if (!ret)
        mpAllocAbort(size);
    return ret;
}

void
mpGrow(void *ptrptr, size_t *alloc, size_t want, size_t size)
{
    void **ptr = ptrptr;
    size_t newalloc = *alloc ? *alloc : 8;

    if (want <= *alloc)
        return;
    while (newalloc < want) {
        if (newalloc > SIZE_MAX / 2)
            mpAllocAbort(SIZE_MAX);
        newalloc *= 2;
    }
    if (size && newalloc > SIZE_MAX / size)
        mpAllocAbort(SIZE_MAX);
    *ptr = mpRealloc(*ptr, newalloc * size);
    memset((char *)*ptr + *alloc * size, 0, (newalloc - *alloc) * size);
    *alloc = newalloc;
}

char *
mpStrdup(const char *s)
{
    char *ret = strdup(s);

    if (!ret)
        mpAllocAbort(strlen(s) + 1);
    return ret;
}

char *
mpStrndup(const char *s, size_t n)
{
    char *ret = strndup(s, n);

    if (!ret)
        mpAllocAbort(n + 1);
    return ret;
}

char *
mpAsprintf(const char *fmt, ...)
{
    va_list ap;
    char *ret = NULL;
    int rc;

    va_start(ap, fmt);
    rc = vasprintf(&ret, fmt, ap);
    va_end(ap);
    if (rc < 0)
        mpAllocAbort(strlen(fmt));
    return ret;
}
