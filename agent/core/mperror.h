/*
 * mperror.h: report an error once, where it is detected; read it where it is shown
 */
#pragma once

#include <stdarg.h>

/* Records the error of the calling thread, replacing the previous one. */
void mpReportError(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mpReportErrorV(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* The calling thread's last error message; "unknown error" if none was reported. */
const char *mpGetLastErrorMessage(void);

/* Forgets the calling thread's last error. */
void mpResetLastError(void);

/* 1 if an error was reported since the last reset. */
int mpHasError(void);
