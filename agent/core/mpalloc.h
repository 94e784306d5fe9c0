/*
 * mpalloc.h: allocation that aborts on out-of-memory, as libvirt does through GLib,
 * so that callers never carry OOM paths that can not be tested
 */
#pragma once

#include <stddef.h>

void *mpAlloc0(size_t size) __attribute__((malloc, returns_nonnull));
void *mpAllocN(size_t count, size_t size) __attribute__((malloc, returns_nonnull));
void *mpRealloc(void *ptr, size_t size) __attribute__((returns_nonnull));
/* Grows *ptr to hold at least want elements of size bytes; *alloc is the current capacity. */
void mpGrow(void *ptrptr, size_t *alloc, size_t want, size_t size);
char *mpStrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *mpStrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
/* printf into a new string */
char *mpAsprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), returns_nonnull));

/* Frees *ptr and sets it to NULL. */
#define MP_FREE(ptr) do { free(ptr); (ptr) = NULL; } while (0)
