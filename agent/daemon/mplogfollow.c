/*
 * mplogfollow.c: follows nova-compute's log across rotation (see mplogfollow.h)
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mpalloc.h"
#include "mperror.h"
#include "mplocalzone.h"
#include "mplogfollow.h"
#include "mptimeline.h"

#define FOLLOW_CHUNK (64 * 1024)
#define FOLLOW_RECENT 64            /* finished migrations remembered for lookups */

struct _mpLogFollow {
    char *path;
    char *dir;
    mpLocalZone *zone;              /* the log's local time */
    uint64_t tail;
    mpLogFollowFunc fn;
    void *opaque;

    int inotifyFd;
    int dirWatch;                   /* -1 while the directory does not exist */
    int fileWatch;
    int fd;                         /* the file being read, -1 none */
    dev_t dev;
    ino_t ino;
    off_t offset;
    bool started;                   /* a file was opened once: later files are read whole */

    mpTimeline *tl;
    mpNovaLogView recent[FOLLOW_RECENT];
    size_t nrecent, nextRecent;
    char problem[256];              /* the last problem reported, "" when none */
    uint64_t lines;
};

/* ---- problems, reported once ---- */

static int
problem(mpLogFollow *lf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
problem(mpLogFollow *lf, const char *fmt, ...)
{
    char msg[sizeof(lf->problem)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (strcmp(msg, lf->problem) == 0)
        return 0;
    memcpy(lf->problem, msg, sizeof(msg));
    mpReportError("%s", msg);
    return -1;
}

/* ---- timeline events ---- */

static int64_t
stampMs(const mpLogFollow *lf, const mpTimelineStamp *st)
{
    int64_t ms = mpTimelineStampEpochMs(lf->tl, st);

    return ms == INT64_MIN ? -1 : ms;
}

static void
onEvent(const mpTimelineEvent *ev, void *opaque)
{
    mpLogFollow *lf = opaque;
    const mpMigrationRecord *rec = ev->record;
    mpNovaLogView *v;
    int64_t d;

    if (ev->type != MP_TIMELINE_EVENT_FINISHED || rec->role != MP_MIGRATION_ROLE_SOURCE ||
        !rec->instanceUuid[0])
        return;
    v = &lf->recent[lf->nextRecent];
    lf->nextRecent = (lf->nextRecent + 1) % FOLLOW_RECENT;
    if (lf->nrecent < FOLLOW_RECENT)
        lf->nrecent++;
    memset(v, 0, sizeof(*v));
    memcpy(v->instanceUuid, rec->instanceUuid, sizeof(v->instanceUuid));
    memcpy(v->requestId, rec->requestId, sizeof(v->requestId));
    v->outcome = mpMigrationOutcomeName(rec->outcome);
    v->startedAtMs = stampMs(lf, mpTimelineRecordStart(rec));
    v->completedAtMs = stampMs(lf, &rec->completedAt);
    d = mpTimelineRecordDurationMs(lf->tl, rec);
    v->novaTimeMs = d == INT64_MIN ? -1 : d;
    v->switchAtMs = stampMs(lf, &rec->switchedToPostcopyAt);
    v->postcopyStartedAtMs = stampMs(lf, &rec->postcopyLifecycleAt);
    if (lf->fn)
        lf->fn(v, lf->opaque);
}

/* Final records are of no further use here: dropping them keeps memory flat. */
static void
onRecord(const mpMigrationRecord *rec, void *opaque)
{
    (void)rec;
    (void)opaque;
}

/* ---- the file ---- */

static void
closeFile(mpLogFollow *lf)
{
    if (lf->fd < 0)
        return;
    /* a last line without newline belongs to the file that ends here */
    mpTimelineEndOfFile(lf->tl);
    close(lf->fd);
    lf->fd = -1;
    if (lf->fileWatch >= 0)
        inotify_rm_watch(lf->inotifyFd, lf->fileWatch);
    lf->fileWatch = -1;
}

static void
addDirWatch(mpLogFollow *lf)
{
    if (lf->dirWatch >= 0)
        return;
    lf->dirWatch = inotify_add_watch(lf->inotifyFd, lf->dir,
                                     IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
}

static int readToEnd(mpLogFollow *lf);

/* Opens the file at lf->path when it is not the one being read. Returns 1 when a new file
 * was opened, 0 when nothing changed, -1 on a new problem. */
static int
openIfNew(mpLogFollow *lf)
{
    struct stat st;
    int fd;

    if (stat(lf->path, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;   /* not there (yet, or between rename and create): keep the old one */
        return problem(lf, "cannot read nova-compute's log %s: %s", lf->path,
                       strerror(errno));
    }
    if (lf->fd >= 0 && st.st_dev == lf->dev && st.st_ino == lf->ino)
        return 0;
    if ((fd = open(lf->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
        return problem(lf, "cannot open nova-compute's log %s: %s", lf->path,
                       strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return problem(lf, "nova-compute's log %s is not a regular file", lf->path);
    }
    /* what the writer added to the old file before it moved to the new one */
    if (lf->fd >= 0)
        readToEnd(lf);
    closeFile(lf);
    lf->fd = fd;
    lf->dev = st.st_dev;
    lf->ino = st.st_ino;
    lf->offset = 0;
    /* At start only the tail of the history matters; a file that appears later is new
     * (rotation) and read whole. */
    if (!lf->started && (uint64_t)st.st_size > lf->tail)
        lf->offset = st.st_size - (off_t)lf->tail;
    lf->started = true;
    lf->fileWatch = inotify_add_watch(lf->inotifyFd, lf->path, IN_MODIFY);
    lf->problem[0] = '\0';
    return 1;
}

/* Reads the open file from lf->offset to its end. */
static int
readToEnd(mpLogFollow *lf)
{
    char *buf = NULL;
    struct stat st;
    int ret = 0;

    if (lf->fd < 0)
        return 0;
    if (fstat(lf->fd, &st) == 0 && st.st_size < lf->offset) {
        /* copytruncate: the writer goes on at the start of the same file */
        mpTimelineEndOfFile(lf->tl);
        lf->offset = 0;
    }
    buf = mpAllocN(FOLLOW_CHUNK, 1);
    for (;;) {
        ssize_t got = pread(lf->fd, buf, FOLLOW_CHUNK, lf->offset);

        if (got < 0) {
            if (errno == EINTR)
                continue;
            ret = problem(lf, "cannot read nova-compute's log %s: %s", lf->path,
                          strerror(errno));
            break;
        }
        if (got == 0)
            break;
        lf->offset += got;
        mpTimelineFeedBytes(lf->tl, buf, (size_t)got);
    }
    free(buf);
    lf->lines = (uint64_t)mpTimelineGetCounters(lf->tl)->totalLines;
    return ret;
}

int
mpLogFollowProcess(mpLogFollow *lf)
{
    char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int ret = 0;

    /* the events only wake us: what changed is found from the file system itself */
    for (;;) {
        ssize_t got = read(lf->inotifyFd, events, sizeof(events));
        ssize_t off = 0;

        if (got <= 0)
            break;
        while (off < got) {
            const struct inotify_event *ev = (const void *)(events + off);

            if (ev->wd == lf->dirWatch && (ev->mask & (IN_IGNORED | IN_DELETE_SELF |
                                                       IN_MOVE_SELF))) {
                inotify_rm_watch(lf->inotifyFd, lf->dirWatch);
                lf->dirWatch = -1;
            }
            off += (ssize_t)sizeof(*ev) + ev->len;
        }
    }
    addDirWatch(lf);
    /* the rest of the file being read first (after a rename it is the rotated file) */
    if (readToEnd(lf) < 0)
        ret = -1;
    switch (openIfNew(lf)) {
    case 1:
        if (readToEnd(lf) < 0)
            ret = -1;
        break;
    case -1:
        ret = -1;
        break;
    default:
        break;
    }
    return ret;
}

mpLogFollow *
mpLogFollowNew(const char *path, const char *timezone, uint64_t tail,
               mpLogFollowFunc fn, void *opaque)
{
    mpLogFollow *lf = mpAlloc0(sizeof(*lf));
    mpLogFollow *ret = NULL;
    char *copy = mpStrdup(path);

    lf->path = mpStrdup(path);
    lf->dir = mpStrdup(dirname(copy));
    lf->tail = tail;
    lf->fn = fn;
    lf->opaque = opaque;
    lf->inotifyFd = -1;
    lf->dirWatch = -1;
    lf->fileWatch = -1;
    lf->fd = -1;
    if (!(lf->zone = mpLocalZoneNew(timezone)))
        goto cleanup;
    if ((lf->inotifyFd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
        mpReportError("inotify: %s", strerror(errno));
        goto cleanup;
    }
    lf->tl = mpTimelineNew(mpLocalZoneConvert, lf->zone);
    mpTimelineSetEventCallback(lf->tl, onEvent, lf);
    mpTimelineSetRecordCallback(lf->tl, onRecord, lf);
    ret = lf;
    lf = NULL;

 cleanup:
    free(copy);
    mpLogFollowFree(lf);
    return ret;
}

void
mpLogFollowFree(mpLogFollow *lf)
{
    if (!lf)
        return;
    if (lf->fd >= 0)
        close(lf->fd);
    if (lf->inotifyFd >= 0)
        close(lf->inotifyFd);
    mpTimelineFree(lf->tl);
    free(lf->path);
    free(lf->dir);
    mpLocalZoneFree(lf->zone);
    free(lf);
}

int
mpLogFollowFd(const mpLogFollow *lf)
{
    return lf->inotifyFd;
}

bool
mpLogFollowLookup(const mpLogFollow *lf, const char *uuid, int64_t notBeforeMs,
                  mpNovaLogView *view)
{
    const mpNovaLogView *best = NULL;
    size_t i;

    for (i = 0; i < lf->nrecent; i++) {
        const mpNovaLogView *v = &lf->recent[i];

        if (strcmp(v->instanceUuid, uuid) != 0 || v->completedAtMs < notBeforeMs)
            continue;
        if (!best || v->completedAtMs > best->completedAtMs)
            best = v;
    }
    if (!best)
        return false;
    *view = *best;
    return true;
}

uint64_t
mpLogFollowLineCount(const mpLogFollow *lf)
{
    return lf->lines;
}
