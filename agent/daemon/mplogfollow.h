/*
 * mplogfollow.h: follows nova-compute's log file, for nova's own view of each migration
 *
 * inotify on the file and on its directory wakes the follower; appended bytes are fed to
 * the core's streaming timeline (mptimeline), which keeps only migrations in flight. The
 * follower survives rotation by rename + create (the old file is read to its end first),
 * copytruncate, deletion and re-creation, a file or directory that does not exist yet, and
 * partial last lines. It is independent of any event loop: the owner polls
 * mpLogFollowFd() for reading and also calls mpLogFollowProcess() every second or so (a
 * directory that appears later, a truncation inotify can not tell apart from a write).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct _mpLogFollow mpLogFollow;

/* nova's view of one finished outgoing migration, from its log. */
typedef struct {
    char instanceUuid[37];
    char requestId[128];
    const char *outcome;            /* "completed", "failed", "cancelled" (static) */
    int64_t startedAtMs;            /* "Starting monitoring of live migration", epoch ms; -1 */
    int64_t completedAtMs;          /* "Migration operation has completed|...", epoch ms */
    int64_t novaTimeMs;             /* nova's duration: started to completed; -1 unknown */
    int64_t switchAtMs;             /* "Switching to post-copy migration mode"; -1 none */
    int64_t postcopyStartedAtMs;    /* "VM Postcopy started (Lifecycle Event)"; -1 none */
} mpNovaLogView;

/* Called for each source migration nova's log shows as finished, during
 * mpLogFollowProcess. */
typedef void (*mpLogFollowFunc)(const mpNovaLogView *view, void *opaque);

/*
 * path: nova-compute's log. timezone: IANA name of the log's local time, NULL for the
 * host's. tail: bytes of an existing file read at start (the beginning of migrations in
 * flight); the rest of the history is skipped. NULL on error (inotify, unknown zone).
 */
mpLogFollow *mpLogFollowNew(const char *path, const char *timezone, uint64_t tail,
                            mpLogFollowFunc fn, void *opaque);
void mpLogFollowFree(mpLogFollow *lf);

/* The inotify descriptor: readable when the file or its directory changed. */
int mpLogFollowFd(const mpLogFollow *lf);

/* Drains inotify, (re)opens the file as needed and feeds every complete line appended
 * since the last call. Never blocks. Returns -1 (reported with mpReportError) when a new
 * problem shows up (the file can not be read, ...); the same problem is not reported again
 * until it is gone, and everything is retried at the next call. */
int mpLogFollowProcess(mpLogFollow *lf);

/* The latest finished migration of uuid whose end is not before notBeforeMs (epoch ms);
 * false when the log has shown none (yet). */
bool mpLogFollowLookup(const mpLogFollow *lf, const char *uuid, int64_t notBeforeMs,
                       mpNovaLogView *view);

/* Whole lines fed so far (tests, the agent's log). */
uint64_t mpLogFollowLineCount(const mpLogFollow *lf);
