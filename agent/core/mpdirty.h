/*
 * mpdirty.h: a guest's measured memory dirtying, the policy's view of the guest
 *
 * QEMU's calc-dirty-rate (libvirt: virDomainStartDirtyRateCalc, results in
 * virDomainListGetStats(VIR_DOMAIN_STATS_DIRTYRATE)) reports, for one measurement window,
 * the pages written during the window divided by its length. A working set that the
 * guest rewrites faster than one window saturates: the same pages count once however
 * often they are written, so the reported rate of a long window is capped by
 * working set / window. Two windows of different length therefore give both the rate
 * (short window) and the size of the working set (pages dirtied in the long one).
 *
 * Plain data: filled by the daemon (or a test, or the model), read by the policy and the
 * forecast. No I/O here.
 */
#pragma once

#include <stddef.h>

#define MP_DIRTY_MAX_WINDOWS 4

/* One calc-dirty-rate window. */
typedef struct _mpDirtyWindow {
    unsigned long long window_ms;   /* the window's length (QEMU's calc-time) */
    unsigned long long rate_mibs;   /* QEMU's dirty rate over that window, MiB/s */
} mpDirtyWindow;

/* One measurement of a guest: its windows, shortest first. */
typedef struct _mpDirtyMeasurement {
    size_t nwindows;                            /* 0 = no measurement */
    mpDirtyWindow windows[MP_DIRTY_MAX_WINDOWS];
    unsigned long long memory_bytes;            /* the guest's RAM when measured */
    unsigned long long age_ms;                  /* how old the measurement is when fed */
} mpDirtyMeasurement;
