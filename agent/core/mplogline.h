/*
 * mplogline.h: one nova-compute log line (oslo.log's default format), and a chunked
 * line splitter so files of any size scan in bounded memory
 *
 * The parser is a hand-written scanner over (bytes, length): it never needs a NUL, never
 * assumes UTF-8, never allocates, and every field of the result is a slice into the input.
 * A line that matches nothing is MP_LOG_LINE_UNKNOWN; that is a result, never an error.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpcalendar.h"   /* mpDaysFromCivil: how localMs counts */

/* A view into the caller's buffer; p is NULL when len is 0 and the field is absent. */
typedef struct {
    const char *p;
    size_t len;
} mpSlice;

typedef enum {
    MP_LOG_LINE_UNKNOWN = 0,     /* no valid "<ts> <pid> <LEVEL> <logger> " prefix */
    MP_LOG_LINE_CONTEXT,         /* [<global|None> <req-id> <user identity...>] */
    MP_LOG_LINE_NO_CONTEXT,      /* [-] */
    MP_LOG_LINE_CONTINUATION,    /* logging_exception_prefix: no context bracket */
} mpLogLineKind;

typedef enum {
    MP_LOG_LEVEL_NONE = 0,
    MP_LOG_LEVEL_DEBUG,
    MP_LOG_LEVEL_INFO,
    MP_LOG_LEVEL_WARNING,
    MP_LOG_LEVEL_ERROR,
    MP_LOG_LEVEL_CRITICAL,
    MP_LOG_LEVEL_TRACE,
    MP_LOG_LEVEL_LAST
} mpLogLevel;

/* The live-migration messages of nova Zed that the timeline uses (see the reference, 3.2). */
typedef enum {
    MP_LOG_EVENT_NONE = 0,
    MP_LOG_EVENT_LIVE_MIGRATION_DATA,     /* "live_migration data is ..." (src, DEBUG, no instance) */
    MP_LOG_EVENT_PRE_LIVE_MIGRATION_DATA, /* "pre_live_migration data is ..." (dst, DEBUG) */
    MP_LOG_EVENT_START_MONITORING,        /* "Starting monitoring of live migration" */
    MP_LOG_EVENT_MONITOR,                 /* other messages of the source's monitor loop */
    MP_LOG_EVENT_INCREASING_DOWNTIME,     /* "Increasing downtime to N ms after S sec ..." */
    MP_LOG_EVENT_PROGRESS,                /* "Migration running for ..." (progress filled) */
    MP_LOG_EVENT_COMPLETION_TIMEOUT,      /* "Live migration not completed after N sec" */
    MP_LOG_EVENT_SWITCH_POSTCOPY,         /* "Switching to post-copy migration mode" */
    MP_LOG_EVENT_POSTCOPY_LIFECYCLE,      /* "VM Postcopy started (Lifecycle Event)" */
    MP_LOG_EVENT_LIVE_MIGRATION_FAILURE,  /* "Live Migration failure: ..." */
    MP_LOG_EVENT_OP_COMPLETED,            /* "Migration operation has completed" */
    MP_LOG_EVENT_OP_ABORTED,              /* "Migration operation has aborted" */
    MP_LOG_EVENT_OP_CANCELLED,            /* "Migration operation was cancelled" */
    MP_LOG_EVENT_POST_LIVE_MIGRATION,     /* "_post_live_migration() is started.." */
    MP_LOG_EVENT_MIGRATE_FINISHED,        /* "Migrating instance to X finished successfully." */
    MP_LOG_EVENT_POST_OPERATION_STARTED,  /* "Post operation of migration started" (dst) */
    MP_LOG_EVENT_INSTANCE_DESTROYED,      /* "Instance destroyed successfully." */
    MP_LOG_EVENT_SYNC_POWER_MOVED,        /* "... instance has moved from host X to host Y" */
    MP_LOG_EVENT_AUDIT_RESOURCES,         /* "Auditing locally available compute resources for X ..." */
} mpLogEvent;

/* "Migration running for %d secs, memory %d%% remaining (bytes processed=%d, remaining=%d,
 * total=%d); ..." A line whose numbers do not fit int64 is not a progress line. */
typedef struct {
    int64_t secs;
    int64_t memoryRemainingPct;
    int64_t processedBytes;
    int64_t remainingBytes;
    int64_t totalBytes;
} mpLogProgress;

/* The printed local time, validated (month 1-12, day within the month, 23:59:59 at most). */
typedef struct {
    int year, month, day, hour, minute, second, ms;
    int64_t localMs;   /* the wall clock read as if it were UTC: ordering and windows only */
} mpLogTime;

typedef struct {
    mpLogLineKind kind;
    mpLogLevel level;        /* set for every kind but UNKNOWN */
    bool hasTimestamp;       /* the line starts with a valid timestamp */
    mpLogTime time;          /* valid when hasTimestamp */
    mpSlice timestamp;       /* "YYYY-MM-DD HH:MM:SS.mmm" as printed */
    mpSlice pid;
    mpSlice levelName;
    mpSlice logger;
    mpSlice context;         /* inside the brackets ("-" for [-]) */
    mpSlice globalRequestId; /* empty when printed as None */
    mpSlice requestId;
    mpSlice userIdentity;    /* the rest of the bracket */
    mpSlice instance;        /* the UUID of "[instance: <uuid>] " */
    mpSlice message;         /* without the DEBUG suffix */
    mpSlice debugFunc;       /* DEBUG suffix " <funcName> <path>:<lineno>", when found */
    mpSlice debugPath;
    int64_t debugLineno;
    mpLogEvent event;
    mpLogProgress progress;  /* MP_LOG_EVENT_PROGRESS */
    int64_t number;          /* COMPLETION_TIMEOUT: N sec; INCREASING_DOWNTIME: elapsed sec */
    mpSlice host;            /* MIGRATE_FINISHED: X; SYNC_POWER_MOVED: to-host; AUDIT: X */
    mpSlice fromHost;        /* SYNC_POWER_MOVED: from-host */
} mpLogLine;

/* Parses one line (without its newline; a trailing '\r' is ignored). Fills *out and returns
 * its kind. Never fails and never reads outside [buf, buf + len). */
mpLogLineKind mpLogLineParse(const char *buf, size_t len, mpLogLine *out);

/* "DEBUG", "INFO", ... ("" for NONE). */
const char *mpLogLevelName(mpLogLevel level);

/*
 * mpLineSplitter: feed arbitrary chunks, get whole lines (without '\n'). Lines that lie
 * inside a chunk are passed as pointers into it (no copy); only a line that straddles two
 * chunks is copied into an internal buffer of at most maxLine bytes. A line longer than
 * maxLine is skipped and reported with tooLong = true (line NULL, len 0).
 */
typedef struct _mpLineSplitter mpLineSplitter;
typedef void (*mpLineFunc)(const char *line, size_t len, bool tooLong, void *opaque);

mpLineSplitter *mpLineSplitterNew(size_t maxLine, mpLineFunc fn, void *opaque);
void mpLineSplitterFeed(mpLineSplitter *sp, const char *buf, size_t len);
/* End of one input (file): a final line without a newline is delivered. */
void mpLineSplitterFinish(mpLineSplitter *sp);
void mpLineSplitterFree(mpLineSplitter *sp);
