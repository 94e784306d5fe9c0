/*
 * mperror.c: per-thread last error, in the spirit of libvirt's virerror.c
 */
#include <stdio.h>

#include "mperror.h"

/* Fixed size: reporting an error must not itself be able to fail. */
#define MP_ERROR_MAX 1024

static __thread char mpLastError[MP_ERROR_MAX];
static __thread int mpLastErrorSet;

void
mpReportErrorV(const char *fmt, va_list ap)
{
    vsnprintf(mpLastError, sizeof(mpLastError), fmt, ap);
    mpLastErrorSet = 1;
}

void
mpReportError(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    mpReportErrorV(fmt, ap);
    va_end(ap);
}

const char *
mpGetLastErrorMessage(void)
{
    return mpLastErrorSet ? mpLastError : "unknown error";
}

void
mpResetLastError(void)
{
    mpLastError[0] = '\0';
    mpLastErrorSet = 0;
}

int
mpHasError(void)
{
    return mpLastErrorSet;
}
