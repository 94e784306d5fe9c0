/*
 * dirtier: the lab guest's workload (runs as the guest's only program, static).
 *
 *   dirtier MIB RATE
 *
 * Allocates MIB MiB, touches every page, then dirties one byte per 4 KiB page at RATE MiB/s
 * in 10 ms slices, walking the buffer round-robin (RATE < 0: flat out, RATE == 0: idle, still
 * waking every slice so that stalls show).
 * Every second it prints on stdout (the serial console):
 *
 *   HB <seq> up=<s> dirtied=<MiB in the last second> maxgap_ms=<largest loop stall in it>
 *
 * maxgap_ms is the longest time between two consecutive loop iterations beyond the
 * expected 10 ms slice, so it shows guest-visible pauses (migration downtime, post-copy
 * page faults).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define SLICE_NS 10000000LL

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
sleep_until(int64_t t)
{
    struct timespec ts;

    ts.tv_sec = t / 1000000000LL;
    ts.tv_nsec = t % 1000000000LL;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

int
main(int argc, char **argv)
{
    long mib;
    double rate;
    size_t size, npages, pos = 0;
    volatile unsigned char *buf;
    int64_t start, next_hb, last_iter, maxgap = 0, slice_start;
    uint64_t dirtied = 0, seq = 0;
    double credit = 0.0;

    if (argc != 3) {
        fprintf(stderr, "usage: dirtier MIB RATE\n");
        return 2;
    }
    mib = strtol(argv[1], NULL, 10);
    rate = strtod(argv[2], NULL);
    if (mib < 1)
        mib = 1;
    size = (size_t)mib << 20;
    npages = size / PAGE;

    setvbuf(stdout, NULL, _IOLBF, 0);
    buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
               -1, 0);
    if (buf == MAP_FAILED) {
        perror("dirtier: mmap");
        return 1;
    }
    for (size_t i = 0; i < npages; i++)
        buf[i * PAGE] = (unsigned char)i;

    printf("DIRTIER start mib=%ld rate=%g\n", mib, rate);

    start = now_ns();
    next_hb = start + 1000000000LL;
    last_iter = start;
    slice_start = start;

    for (;;) {
        int64_t t = now_ns();
        int64_t gap = t - last_iter;
        uint64_t todo;

        /* a normal iteration is one slice apart; anything beyond is a stall */
        if (rate >= 0)
            gap = gap > SLICE_NS ? gap - SLICE_NS : 0;
        if (gap > maxgap)
            maxgap = gap;
        last_iter = t;

        if (t >= next_hb) {
            seq++;
            printf("HB %llu up=%lld dirtied=%llu maxgap_ms=%lld\n",
                   (unsigned long long)seq, (long long)((t - start) / 1000000000LL),
                   (unsigned long long)((dirtied * PAGE) >> 20),
                   (long long)(maxgap / 1000000LL));
            dirtied = 0;
            maxgap = 0;
            next_hb += 1000000000LL;
            if (next_hb <= t)   /* after a long stall, do not print a burst */
                next_hb = t + 1000000000LL;
        }

        if (rate == 0) {
            todo = 0;
        } else if (rate < 0) {
            todo = npages / 100 + 1;   /* flat out: keep slices short for heartbeats */
        } else {
            credit += rate * (double)(1 << 20) / PAGE * (SLICE_NS / 1e9);
            if (credit > (double)npages)
                credit = (double)npages;
            todo = (uint64_t)credit;
            credit -= (double)todo;
        }
        for (uint64_t i = 0; i < todo; i++) {
            buf[pos * PAGE]++;
            if (++pos == npages)
                pos = 0;
        }
        dirtied += todo;

        if (rate >= 0) {
            slice_start += SLICE_NS;
            if (slice_start < t - 10 * SLICE_NS)   /* fell far behind: do not catch up */
                slice_start = t;
            sleep_until(slice_start);
        }
    }
    return 0;
}
