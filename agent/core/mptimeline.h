/*
 * mptimeline.h: per-migration timelines built from nova-compute log lines, streaming
 *
 * Feed lines in order (any number of files in order, e.g. nova-compute.log.1 then
 * nova-compute.log); the builder tracks overlapping migrations of different instances on a
 * source or destination host, calls an optional callback as things happen (started,
 * progress, switched to post-copy, finished) and keeps one record per migration, which
 * mpTimelineToJSON renders in the shape of the fixtures' truth files
 * (tests/data/fixtures/nova-compute/README.md).
 *
 * Rules (why: see the fixtures and the reference, section 3):
 * - A source migration starts at "live_migration data is ..." (DEBUG, request id only, no
 *   instance: the instance is bound by the next line of that request id that names one), a
 *   destination migration at "pre_live_migration data is ...". Without those (debug off, or
 *   a file that begins mid-migration) the first message of the source's migration monitor
 *   (progress, "Increasing downtime", switch, end messages...) opens a source record, and
 *   "Post operation of migration started" opens (and ends) a destination record.
 * - started_at is the "Starting monitoring of live migration" line. In a log without any
 *   DEBUG line (debug = False) that line is never written: started_at is then the first
 *   monitor line, but only when that line shows the very beginning (a progress line at 0 secs
 *   or "Increasing downtime ... after 0 sec"); otherwise null. "Without any DEBUG line"
 *   means none up to the migration's last line, so that a record never depends on lines
 *   after it (streaming) and a debug setting changed later does not rewrite it.
 * - Every line naming the instance belongs to its current migration, from its first line
 *   until the next migration of that instance or 60 s (of log time) after the migration's
 *   end (lifecycle and power-state lines follow the end by 10-20 s).
 * - Outcome: source "Migration operation has completed|has aborted|was cancelled" gives
 *   completed|failed|cancelled; destination "Post operation of migration started" gives
 *   completed and "Instance destroyed successfully." during the migration (rollback) gives
 *   failed: a destination log can not tell an operator's abort from a failure, unless the
 *   source's records are given to mpTimelineCorrelate. true_outcome equals outcome (a log
 *   can not know more than what it contains).
 * - memory_mb (source): the progress lines' total bytes in MiB rounded down to 64 MiB
 *   (QEMU adds a few MiB of device RAM to the flavor's RAM); null without progress.
 *
 * Time: the core never reads a clock or a zone. Lines carry host-local time; converting it
 * to epoch ms goes through the caller's converter (mpTimeUTCToEpochMs and
 * mpTimeFixedOffsetToEpochMs are provided). Conversion happens only when a record is
 * rendered or an event is emitted, never per line.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "mplogline.h"

/* Local wall-clock time (tm_year + 1900 etc., tm_isdst = -1) + ms to epoch ms;
 * INT64_MIN when it can not be converted (then epoch_ms is null). */
typedef int64_t (*mpTimeConvertFunc)(const struct tm *tm, int ms, void *opaque);

/* UTC (opaque unused): pure arithmetic. */
int64_t mpTimeUTCToEpochMs(const struct tm *tm, int ms, void *opaque);
/* Fixed offset east of UTC: opaque points to an int64_t holding the offset in seconds. */
int64_t mpTimeFixedOffsetToEpochMs(const struct tm *tm, int ms, void *opaque);

#define MP_TIMELINE_MAX_LINE_DEFAULT (64 * 1024)
#define MP_TIMELINE_GRACE_MS 60000

typedef struct {
    bool set;
    char text[24];       /* as printed */
    mpLogTime time;
} mpTimelineStamp;

typedef enum {
    MP_MIGRATION_ROLE_SOURCE = 0,
    MP_MIGRATION_ROLE_DESTINATION,
} mpMigrationRole;

typedef enum {
    MP_MIGRATION_OUTCOME_UNKNOWN = 0,   /* not ended in the input: null in JSON */
    MP_MIGRATION_OUTCOME_COMPLETED,
    MP_MIGRATION_OUTCOME_FAILED,
    MP_MIGRATION_OUTCOME_CANCELLED,
} mpMigrationOutcome;

#define MP_TIMELINE_ID_MAX 128
#define MP_TIMELINE_HOST_MAX 256

/* One migration. Strings are NUL-terminated copies (truncated to their buffers). */
typedef struct {
    char instanceUuid[37];              /* "" until known */
    char requestId[MP_TIMELINE_ID_MAX];
    char globalRequestId[MP_TIMELINE_ID_MAX]; /* "" when None */
    mpMigrationRole role;
    mpMigrationOutcome outcome;
    bool ended;
    mpTimelineStamp startedAt;          /* "Starting monitoring" */
    mpTimelineStamp firstMonitorAt;     /* first line of the source's monitor */
    bool firstMonitorIsStart;           /* ... and it shows the beginning (0 s) */
    mpTimelineStamp switchedToPostcopyAt;
    mpTimelineStamp postcopyLifecycleAt;
    mpTimelineStamp completionTimeoutAt;
    int64_t completionTimeoutSecs;
    mpTimelineStamp completedAt;
    mpLogEvent completedEvent;          /* OP_COMPLETED / OP_ABORTED / OP_CANCELLED */
    mpTimelineStamp failureAt;          /* "Live Migration failure" */
    char destHost[MP_TIMELINE_HOST_MAX];
    char sourceHost[MP_TIMELINE_HOST_MAX];
    mpTimelineStamp preLiveMigrationAt;
    mpTimelineStamp postOperationStartedAt;
    mpTimelineStamp rolledBackAt;
    bool hasProgress;
    mpTimelineStamp lastProgressAt;
    mpLogLevel lastProgressLevel;
    mpLogProgress lastProgress;
    int64_t progressTotal, progressInfo, progressDebug;
    mpTimelineStamp firstSeenAt;
    mpTimelineStamp lastSeenAt;
    int64_t endLocalMs;                 /* local ms of the end line */
    bool debugLogged;                   /* DEBUG lines had been seen at its last line */
    bool final;                         /* no later line can change it */
} mpMigrationRecord;

/* Whole-input counters. */
typedef struct {
    int64_t totalLines;
    int64_t byLevel[MP_LOG_LEVEL_LAST];
    int64_t withoutPrefix;              /* lines that do not start with a valid timestamp */
    int64_t continuation;               /* traceback continuation lines */
    int64_t unknown;                    /* lines with a timestamp that match nothing else */
    int64_t tooLong;                    /* lines over the length limit (skipped) */
    mpTimelineStamp firstLineAt, lastLineAt;
} mpTimelineCounters;

typedef enum {
    MP_TIMELINE_EVENT_STARTED,      /* a record opened */
    MP_TIMELINE_EVENT_PROGRESS,     /* a "Migration running for ..." line */
    MP_TIMELINE_EVENT_POSTCOPY,     /* "Switching to post-copy migration mode" */
    MP_TIMELINE_EVENT_FINISHED,     /* the end: record->outcome is set */
} mpTimelineEventType;

typedef struct {
    mpTimelineEventType type;
    const mpMigrationRecord *record;  /* valid during the callback only */
    const mpLogLine *line;            /* the line that caused it */
    int64_t epochMs;                  /* of that line, INT64_MIN if not convertible */
} mpTimelineEvent;

typedef void (*mpTimelineEventFunc)(const mpTimelineEvent *event, void *opaque);

/* A final record (see mpTimelineSetRecordCallback), valid during the call only. */
typedef void (*mpTimelineRecordFunc)(const mpMigrationRecord *rec, void *opaque);

typedef struct _mpTimeline mpTimeline;

/* conv NULL means UTC. */
mpTimeline *mpTimelineNew(mpTimeConvertFunc conv, void *convOpaque);
void mpTimelineFree(mpTimeline *tl);
void mpTimelineSetConverter(mpTimeline *tl, mpTimeConvertFunc conv, void *convOpaque);
void mpTimelineSetEventCallback(mpTimeline *tl, mpTimelineEventFunc fn, void *opaque);
/*
 * Streaming of records, so memory does not grow with the input: once set, each record is
 * passed to fn when it is final (no later line can change it: 60 s of log time after its
 * end, a new migration of its instance, or mpTimelineFinish), in order of first line, and
 * freed after the call; mpTimelineRecordCount and mpTimelineRecord then only see records not
 * passed yet. A destination record without a destination host waits (at most
 * MP_TIMELINE_HOLD_MAX records) for this host's name from a resource audit line, which
 * rendering uses, so the output equals that of a whole-input scan.
 */
#define MP_TIMELINE_HOLD_MAX 1024
void mpTimelineSetRecordCallback(mpTimeline *tl, mpTimelineRecordFunc fn, void *opaque);
/* End of the whole input: every record becomes final (and is passed on when streaming). */
void mpTimelineFinish(mpTimeline *tl);

/* Lines longer than this are counted (total_lines, tooLong) and skipped; default 64 KiB. */
void mpTimelineSetMaxLine(mpTimeline *tl, size_t maxLine);

/* One parsed line. */
void mpTimelineFeedLine(mpTimeline *tl, const mpLogLine *line);
/* Raw bytes of one line (no newline): parsed then fed. */
void mpTimelineFeedRawLine(mpTimeline *tl, const char *buf, size_t len);
/* Arbitrary chunks of a file (streaming); mpTimelineEndOfFile after each file's last chunk
 * delivers a final line without newline. */
void mpTimelineFeedBytes(mpTimeline *tl, const char *buf, size_t len);
void mpTimelineEndOfFile(mpTimeline *tl);

size_t mpTimelineRecordCount(const mpTimeline *tl);
const mpMigrationRecord *mpTimelineRecord(const mpTimeline *tl, size_t i);
const mpTimelineCounters *mpTimelineGetCounters(const mpTimeline *tl);

/* Destination records that ended in a rollback take the outcome of the source record of the
 * same request id in peer (e.g. cancelled), when peer has one that ended. */
void mpTimelineCorrelate(mpTimeline *tl, const mpTimeline *peer);
/* The same for one record (e.g. a streamed copy). */
void mpTimelineCorrelateRecord(mpMigrationRecord *rec, const mpTimeline *peer);

/* Epoch ms of a stamp with the timeline's converter; INT64_MIN when unset or not convertible. */
int64_t mpTimelineStampEpochMs(const mpTimeline *tl, const mpTimelineStamp *st);
/* The stamp that started_at renders (NULL when unknown), and duration_ms: nova's own time of
 * the migration, from started_at to completed_at; INT64_MIN when either is unknown. */
const mpTimelineStamp *mpTimelineRecordStart(const mpMigrationRecord *rec);
int64_t mpTimelineRecordDurationMs(const mpTimeline *tl, const mpMigrationRecord *rec);

/* Renders with the timeline's converter. New references; never NULL. */
json_t *mpTimelineStampToJSON(const mpTimeline *tl, const mpTimelineStamp *st);
json_t *mpTimelineRecordToJSON(const mpTimeline *tl, const mpMigrationRecord *rec);
/* {"live_migrations": [...], "total_lines", "line_counts_by_level",
 *  "lines_without_log_prefix", "traceback_continuation_lines", "first_line_at",
 *  "last_line_at", "unknown_lines", "long_lines_skipped"} */
json_t *mpTimelineToJSON(const mpTimeline *tl);

const char *mpMigrationOutcomeName(mpMigrationOutcome outcome); /* NULL for UNKNOWN */
const char *mpMigrationRoleName(mpMigrationRole role);
