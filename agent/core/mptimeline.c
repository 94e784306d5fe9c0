/*
 * mptimeline.c: per-migration timelines from nova-compute log lines (rules: mptimeline.h)
 */
#include <stdlib.h>
#include <string.h>

#include "mpalloc.h"
#include "mpcalendar.h"
#include "mptimeline.h"

#define PENDING_LIMIT_MS (10 * 60 * 1000)   /* a start line whose instance never shows */
#define SWEEP_EVERY_MS 1000

struct _mpTimeline {
    mpTimeConvertFunc conv;
    void *convOpaque;
    mpTimelineEventFunc evFn;
    void *evOpaque;
    size_t maxLine;
    mpLineSplitter *splitter;
    mpMigrationRecord **recs;       /* in order of first line; [0, head) already passed on */
    size_t head, nrecs, allocRecs;
    mpTimelineRecordFunc recFn;     /* streaming: final records are passed on and freed */
    void *recOpaque;
    mpMigrationRecord **active;     /* records lines can still be attributed to */
    size_t nactive, allocActive;
    size_t npending;                /* active records whose instance is not known yet */
    mpTimelineCounters c;
    bool sawDebug;
    char host[MP_TIMELINE_HOST_MAX];  /* this host, from the resource audit line */
    int64_t nextSweepMs;
};

int64_t
mpTimeUTCToEpochMs(const struct tm *tm, int ms, void *opaque)
{
    (void)opaque;
    if (tm->tm_mon < 0 || tm->tm_mon > 11)
        return INT64_MIN;
    return ((mpDaysFromCivil((int64_t)tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday) * 24 +
             tm->tm_hour) * 60 + tm->tm_min) * 60000 + (int64_t)tm->tm_sec * 1000 + ms;
}

int64_t
mpTimeFixedOffsetToEpochMs(const struct tm *tm, int ms, void *opaque)
{
    int64_t utc = mpTimeUTCToEpochMs(tm, ms, NULL);
    int64_t offset = opaque ? *(const int64_t *)opaque : 0;

    if (utc == INT64_MIN)
        return INT64_MIN;
    return utc - offset * 1000;
}

const char *
mpMigrationOutcomeName(mpMigrationOutcome outcome)
{
    switch (outcome) {
    case MP_MIGRATION_OUTCOME_COMPLETED:
        return "completed";
    case MP_MIGRATION_OUTCOME_FAILED:
        return "failed";
    case MP_MIGRATION_OUTCOME_CANCELLED:
        return "cancelled";
    case MP_MIGRATION_OUTCOME_UNKNOWN:
    default:
        return NULL;
    }
}

const char *
mpMigrationRoleName(mpMigrationRole role)
{
    return role == MP_MIGRATION_ROLE_DESTINATION ? "destination" : "source";
}

mpTimeline *
mpTimelineNew(mpTimeConvertFunc conv, void *convOpaque)
{
    mpTimeline *tl = mpAlloc0(sizeof(*tl));

    mpTimelineSetConverter(tl, conv, convOpaque);
    tl->maxLine = MP_TIMELINE_MAX_LINE_DEFAULT;
    tl->nextSweepMs = INT64_MIN;
    return tl;
}

void
mpTimelineFree(mpTimeline *tl)
{
    size_t i;

    if (!tl)
        return;
    for (i = tl->head; i < tl->nrecs; i++)
        free(tl->recs[i]);
    free(tl->recs);
    free(tl->active);
    mpLineSplitterFree(tl->splitter);
    free(tl);
}

void
mpTimelineSetConverter(mpTimeline *tl, mpTimeConvertFunc conv, void *convOpaque)
{
    tl->conv = conv ? conv : mpTimeUTCToEpochMs;
    tl->convOpaque = conv ? convOpaque : NULL;
}

void
mpTimelineSetEventCallback(mpTimeline *tl, mpTimelineEventFunc fn, void *opaque)
{
    tl->evFn = fn;
    tl->evOpaque = opaque;
}

void
mpTimelineSetMaxLine(mpTimeline *tl, size_t maxLine)
{
    /* Takes effect for the splitter created at the next mpTimelineFeedBytes. */
    if (tl->splitter && tl->maxLine != maxLine) {
        mpLineSplitterFree(tl->splitter);
        tl->splitter = NULL;
    }
    tl->maxLine = maxLine ? maxLine : MP_TIMELINE_MAX_LINE_DEFAULT;
}

static int64_t
convertTime(const mpTimeline *tl, const mpLogTime *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = t->year - 1900;
    tm.tm_mon = t->month - 1;
    tm.tm_mday = t->day;
    tm.tm_hour = t->hour;
    tm.tm_min = t->minute;
    tm.tm_sec = t->second;
    tm.tm_isdst = -1;
    return tl->conv(&tm, t->ms, tl->convOpaque);
}

static void
copySlice(char *dst, size_t size, mpSlice s)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;

    if (n)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static inline void
setStamp(mpTimelineStamp *st, const mpLogLine *line)
{
    st->set = true;
    memcpy(st->text, line->timestamp.p, 23);
    st->text[23] = '\0';
    st->time = line->time;
}

static void
emit(mpTimeline *tl, mpTimelineEventType type, const mpMigrationRecord *rec,
     const mpLogLine *line)
{
    mpTimelineEvent ev;

    if (!tl->evFn)
        return;
    ev.type = type;
    ev.record = rec;
    ev.line = line;
    ev.epochMs = convertTime(tl, &line->time);
    tl->evFn(&ev, tl->evOpaque);
}

static void
detachAt(mpTimeline *tl, size_t i)
{
    tl->active[i]->final = true;
    if (!tl->active[i]->instanceUuid[0])
        tl->npending--;
    memmove(tl->active + i, tl->active + i + 1, (tl->nactive - i - 1) * sizeof(*tl->active));
    tl->nactive--;
}

static void
detachInstance(mpTimeline *tl, const mpSlice *uuid, const mpMigrationRecord *keep)
{
    size_t i = tl->nactive;

    while (i-- > 0) {
        mpMigrationRecord *r = tl->active[i];

        if (r != keep && memcmp(r->instanceUuid, uuid->p, 36) == 0 && r->instanceUuid[36] == 0)
            detachAt(tl, i);
    }
}

static void
sweep(mpTimeline *tl, int64_t now)
{
    size_t i = tl->nactive;

    while (i-- > 0) {
        mpMigrationRecord *r = tl->active[i];

        if ((r->ended && now - r->endLocalMs > MP_TIMELINE_GRACE_MS) ||
            (!r->instanceUuid[0] && now - r->firstSeenAt.time.localMs > PENDING_LIMIT_MS))
            detachAt(tl, i);
    }
}

static mpMigrationRecord *
newRecord(mpTimeline *tl, mpMigrationRole role, const mpLogLine *line)
{
    mpMigrationRecord *rec = mpAlloc0(sizeof(*rec));

    rec->role = role;
    copySlice(rec->requestId, sizeof(rec->requestId), line->requestId);
    copySlice(rec->globalRequestId, sizeof(rec->globalRequestId), line->globalRequestId);
    if (line->instance.len == 36)
        copySlice(rec->instanceUuid, sizeof(rec->instanceUuid), line->instance);
    else
        tl->npending++;
    setStamp(&rec->firstSeenAt, line);
    mpGrow(&tl->recs, &tl->allocRecs, tl->nrecs + 1, sizeof(*tl->recs));
    tl->recs[tl->nrecs++] = rec;
    mpGrow(&tl->active, &tl->allocActive, tl->nactive + 1, sizeof(*tl->active));
    tl->active[tl->nactive++] = rec;
    return rec;
}

static void
noteMonitor(mpMigrationRecord *rec, const mpLogLine *line, bool isStart)
{
    if (rec->firstMonitorAt.set)
        return;
    setStamp(&rec->firstMonitorAt, line);
    rec->firstMonitorIsStart = isStart;
}

static void
endRecord(mpTimeline *tl, mpMigrationRecord *rec, mpMigrationOutcome outcome,
          const mpLogLine *line)
{
    rec->outcome = outcome;
    rec->ended = true;
    rec->endLocalMs = line->time.localMs;
    emit(tl, MP_TIMELINE_EVENT_FINISHED, rec, line);
}

static void
applySource(mpTimeline *tl, mpMigrationRecord *rec, const mpLogLine *line)
{
    switch (line->event) {
    case MP_LOG_EVENT_START_MONITORING:
        if (!rec->startedAt.set)
            setStamp(&rec->startedAt, line);
        noteMonitor(rec, line, true);
        break;
    case MP_LOG_EVENT_MONITOR:
        noteMonitor(rec, line, false);
        break;
    case MP_LOG_EVENT_INCREASING_DOWNTIME:
        noteMonitor(rec, line, line->number == 0);
        break;
    case MP_LOG_EVENT_PROGRESS:
        noteMonitor(rec, line, line->progress.secs == 0);
        rec->hasProgress = true;
        setStamp(&rec->lastProgressAt, line);
        rec->lastProgressLevel = line->level;
        rec->lastProgress = line->progress;
        rec->progressTotal++;
        if (line->level == MP_LOG_LEVEL_INFO)
            rec->progressInfo++;
        else if (line->level == MP_LOG_LEVEL_DEBUG)
            rec->progressDebug++;
        emit(tl, MP_TIMELINE_EVENT_PROGRESS, rec, line);
        break;
    case MP_LOG_EVENT_COMPLETION_TIMEOUT:
        noteMonitor(rec, line, false);
        if (!rec->completionTimeoutAt.set) {
            setStamp(&rec->completionTimeoutAt, line);
            rec->completionTimeoutSecs = line->number;
        }
        break;
    case MP_LOG_EVENT_SWITCH_POSTCOPY:
        noteMonitor(rec, line, false);
        if (!rec->switchedToPostcopyAt.set) {
            setStamp(&rec->switchedToPostcopyAt, line);
            emit(tl, MP_TIMELINE_EVENT_POSTCOPY, rec, line);
        }
        break;
    case MP_LOG_EVENT_POSTCOPY_LIFECYCLE:
        if (!rec->postcopyLifecycleAt.set)
            setStamp(&rec->postcopyLifecycleAt, line);
        break;
    case MP_LOG_EVENT_LIVE_MIGRATION_FAILURE:
        if (!rec->failureAt.set)
            setStamp(&rec->failureAt, line);
        break;
    case MP_LOG_EVENT_OP_COMPLETED:
    case MP_LOG_EVENT_OP_ABORTED:
    case MP_LOG_EVENT_OP_CANCELLED:
        if (rec->ended)
            break;
        setStamp(&rec->completedAt, line);
        rec->completedEvent = line->event;
        endRecord(tl, rec,
                  line->event == MP_LOG_EVENT_OP_COMPLETED ? MP_MIGRATION_OUTCOME_COMPLETED :
                  line->event == MP_LOG_EVENT_OP_ABORTED ? MP_MIGRATION_OUTCOME_FAILED :
                  MP_MIGRATION_OUTCOME_CANCELLED, line);
        break;
    case MP_LOG_EVENT_MIGRATE_FINISHED:
        if (!rec->destHost[0])
            copySlice(rec->destHost, sizeof(rec->destHost), line->host);
        break;
    default:
        break;
    }
}

static void
applyDestination(mpTimeline *tl, mpMigrationRecord *rec, const mpLogLine *line)
{
    switch (line->event) {
    case MP_LOG_EVENT_POST_OPERATION_STARTED:
        if (rec->ended)
            break;
        setStamp(&rec->postOperationStartedAt, line);
        endRecord(tl, rec, MP_MIGRATION_OUTCOME_COMPLETED, line);
        break;
    case MP_LOG_EVENT_INSTANCE_DESTROYED:
        if (rec->ended)
            break;
        setStamp(&rec->rolledBackAt, line);
        endRecord(tl, rec, MP_MIGRATION_OUTCOME_FAILED, line);
        break;
    case MP_LOG_EVENT_SYNC_POWER_MOVED:
        if (!rec->sourceHost[0])
            copySlice(rec->sourceHost, sizeof(rec->sourceHost), line->fromHost);
        if (!rec->destHost[0])
            copySlice(rec->destHost, sizeof(rec->destHost), line->host);
        break;
    default:
        break;
    }
}

static void
apply(mpTimeline *tl, mpMigrationRecord *rec, const mpLogLine *line)
{
    setStamp(&rec->lastSeenAt, line);
    rec->debugLogged = tl->sawDebug;
    if (rec->role == MP_MIGRATION_ROLE_SOURCE)
        applySource(tl, rec, line);
    else
        applyDestination(tl, rec, line);
}

/* Messages written only while a source migration runs: they open a source record. */
static bool
opensSource(mpLogEvent ev)
{
    switch (ev) {
    case MP_LOG_EVENT_START_MONITORING:
    case MP_LOG_EVENT_MONITOR:
    case MP_LOG_EVENT_INCREASING_DOWNTIME:
    case MP_LOG_EVENT_PROGRESS:
    case MP_LOG_EVENT_COMPLETION_TIMEOUT:
    case MP_LOG_EVENT_SWITCH_POSTCOPY:
    case MP_LOG_EVENT_LIVE_MIGRATION_FAILURE:
    case MP_LOG_EVENT_OP_COMPLETED:
    case MP_LOG_EVENT_OP_ABORTED:
    case MP_LOG_EVENT_OP_CANCELLED:
    case MP_LOG_EVENT_POST_LIVE_MIGRATION:
        return true;
    default:
        return false;
    }
}

/* ... and of those, the ones that can only belong to a running one (not to the tail of an
 * ended one), so they open a new record even when the instance's last one just ended. */
static bool
opensAfterEnd(mpLogEvent ev)
{
    return ev == MP_LOG_EVENT_START_MONITORING || ev == MP_LOG_EVENT_INCREASING_DOWNTIME ||
        ev == MP_LOG_EVENT_PROGRESS || ev == MP_LOG_EVENT_COMPLETION_TIMEOUT ||
        ev == MP_LOG_EVENT_SWITCH_POSTCOPY;
}

static mpMigrationRecord *
findPendingByRequest(mpTimeline *tl, const mpSlice *req)
{
    size_t i;

    if (!tl->npending || !req->len || req->len >= MP_TIMELINE_ID_MAX)
        return NULL;
    for (i = tl->nactive; i-- > 0;) {
        mpMigrationRecord *r = tl->active[i];

        if (!r->instanceUuid[0] && strlen(r->requestId) == req->len &&
            memcmp(r->requestId, req->p, req->len) == 0)
            return r;
    }
    return NULL;
}

static mpMigrationRecord *
findActive(mpTimeline *tl, const mpSlice *uuid)
{
    size_t i;

    for (i = tl->nactive; i-- > 0;) {
        mpMigrationRecord *r = tl->active[i];

        if (r->instanceUuid[0] && memcmp(r->instanceUuid, uuid->p, 36) == 0)
            return r;
    }
    return NULL;
}

static void
feedInstanceLine(mpTimeline *tl, const mpLogLine *line)
{
    mpMigrationRecord *rec = findPendingByRequest(tl, &line->requestId);

    if (rec) {
        /* The migration's request now names its instance. */
        detachInstance(tl, &line->instance, rec);
        copySlice(rec->instanceUuid, sizeof(rec->instanceUuid), line->instance);
        tl->npending--;
    } else {
        rec = findActive(tl, &line->instance);
        if (rec && rec->ended &&
            (line->time.localMs - rec->endLocalMs > MP_TIMELINE_GRACE_MS ||
             (rec->role == MP_MIGRATION_ROLE_SOURCE && opensAfterEnd(line->event)) ||
             line->event == MP_LOG_EVENT_POST_OPERATION_STARTED)) {
            detachInstance(tl, &line->instance, NULL);
            rec = NULL;
        }
    }
    if (!rec) {
        mpMigrationRole role;

        if (opensSource(line->event))
            role = MP_MIGRATION_ROLE_SOURCE;
        else if (line->event == MP_LOG_EVENT_POST_OPERATION_STARTED)
            role = MP_MIGRATION_ROLE_DESTINATION;
        else
            return;
        detachInstance(tl, &line->instance, NULL);
        rec = newRecord(tl, role, line);
        emit(tl, MP_TIMELINE_EVENT_STARTED, rec, line);
    }
    apply(tl, rec, line);
}

/* Rendering a destination record without its own destination host uses this host's name. */
static bool
waitsForHost(const mpTimeline *tl, const mpMigrationRecord *rec)
{
    return rec->role == MP_MIGRATION_ROLE_DESTINATION && !rec->destHost[0] && !tl->host[0];
}

/* Passes on final records in order of first line (all of them at the end of input). */
static void
passOn(mpTimeline *tl, bool all)
{
    while (tl->head < tl->nrecs) {
        mpMigrationRecord *rec = tl->recs[tl->head];

        if (!all && (!rec->final ||
                     (waitsForHost(tl, rec) && tl->nrecs - tl->head < MP_TIMELINE_HOLD_MAX)))
            break;
        tl->recFn(rec, tl->recOpaque);
        free(rec);
        tl->recs[tl->head++] = NULL;
    }
    if (tl->head == tl->nrecs) {
        tl->head = tl->nrecs = 0;
    } else if (tl->head >= 64 && tl->head * 2 >= tl->nrecs) {
        memmove(tl->recs, tl->recs + tl->head, (tl->nrecs - tl->head) * sizeof(*tl->recs));
        tl->nrecs -= tl->head;
        tl->head = 0;
    }
}

void
mpTimelineSetRecordCallback(mpTimeline *tl, mpTimelineRecordFunc fn, void *opaque)
{
    tl->recFn = fn;
    tl->recOpaque = opaque;
}

void
mpTimelineFinish(mpTimeline *tl)
{
    size_t i;

    for (i = tl->head; i < tl->nrecs; i++)
        tl->recs[i]->final = true;
    tl->nactive = 0;
    tl->npending = 0;
    if (tl->recFn)
        passOn(tl, true);
}

void
mpTimelineFeedLine(mpTimeline *tl, const mpLogLine *line)
{
    mpTimelineCounters *c = &tl->c;

    c->totalLines++;
    if (!line->hasTimestamp) {
        c->withoutPrefix++;
        return;
    }
    if (!c->firstLineAt.set)
        setStamp(&c->firstLineAt, line);
    setStamp(&c->lastLineAt, line);
    if (line->kind == MP_LOG_LINE_UNKNOWN) {
        c->unknown++;
        return;
    }
    c->byLevel[line->level]++;
    if (line->level == MP_LOG_LEVEL_DEBUG)
        tl->sawDebug = true;
    if (tl->nactive && line->time.localMs >= tl->nextSweepMs) {
        sweep(tl, line->time.localMs);
        tl->nextSweepMs = line->time.localMs + SWEEP_EVERY_MS;
    }
    if (line->kind == MP_LOG_LINE_CONTINUATION) {
        mpMigrationRecord *rec;

        c->continuation++;
        if (line->instance.len == 36 && (rec = findActive(tl, &line->instance))) {
            setStamp(&rec->lastSeenAt, line);
            rec->debugLogged = tl->sawDebug;
        }
        goto done;
    }
    if (line->instance.len == 36) {
        feedInstanceLine(tl, line);
        goto done;
    }
    switch (line->event) {
    case MP_LOG_EVENT_LIVE_MIGRATION_DATA:
    case MP_LOG_EVENT_PRE_LIVE_MIGRATION_DATA: {
        mpMigrationRecord *rec;

        if (!line->requestId.len || findPendingByRequest(tl, &line->requestId))
            break;
        rec = newRecord(tl, line->event == MP_LOG_EVENT_LIVE_MIGRATION_DATA ?
                        MP_MIGRATION_ROLE_SOURCE : MP_MIGRATION_ROLE_DESTINATION, line);
        if (rec->role == MP_MIGRATION_ROLE_DESTINATION)
            setStamp(&rec->preLiveMigrationAt, line);
        setStamp(&rec->lastSeenAt, line);
        rec->debugLogged = tl->sawDebug;
        emit(tl, MP_TIMELINE_EVENT_STARTED, rec, line);
        break;
    }
    case MP_LOG_EVENT_AUDIT_RESOURCES:
        copySlice(tl->host, sizeof(tl->host), line->host);
        break;
    default:
        break;
    }

 done:
    if (tl->recFn && tl->head < tl->nrecs && tl->recs[tl->head]->final)
        passOn(tl, false);
}

void
mpTimelineFeedRawLine(mpTimeline *tl, const char *buf, size_t len)
{
    mpLogLine line;

    mpLogLineParse(buf, len, &line);
    mpTimelineFeedLine(tl, &line);
}

static void
onSplitLine(const char *buf, size_t len, bool tooLong, void *opaque)
{
    mpTimeline *tl = opaque;

    if (tooLong) {
        tl->c.totalLines++;
        tl->c.tooLong++;
        tl->c.unknown++;
        return;
    }
    mpTimelineFeedRawLine(tl, buf, len);
}

void
mpTimelineFeedBytes(mpTimeline *tl, const char *buf, size_t len)
{
    if (!tl->splitter)
        tl->splitter = mpLineSplitterNew(tl->maxLine, onSplitLine, tl);
    mpLineSplitterFeed(tl->splitter, buf, len);
}

void
mpTimelineEndOfFile(mpTimeline *tl)
{
    if (tl->splitter)
        mpLineSplitterFinish(tl->splitter);
}

size_t
mpTimelineRecordCount(const mpTimeline *tl)
{
    return tl->nrecs - tl->head;
}

const mpMigrationRecord *
mpTimelineRecord(const mpTimeline *tl, size_t i)
{
    return i < tl->nrecs - tl->head ? tl->recs[tl->head + i] : NULL;
}

const mpTimelineCounters *
mpTimelineGetCounters(const mpTimeline *tl)
{
    return &tl->c;
}

void
mpTimelineCorrelateRecord(mpMigrationRecord *d, const mpTimeline *peer)
{
    size_t j;

    if (d->role != MP_MIGRATION_ROLE_DESTINATION || !d->rolledBackAt.set || !d->requestId[0])
        return;
    for (j = peer->head; j < peer->nrecs; j++) {
        const mpMigrationRecord *s = peer->recs[j];

        if (s->role == MP_MIGRATION_ROLE_SOURCE && s->ended &&
            strcmp(s->requestId, d->requestId) == 0 &&
            strcmp(s->instanceUuid, d->instanceUuid) == 0) {
            d->outcome = s->outcome;
            return;
        }
    }
}

void
mpTimelineCorrelate(mpTimeline *tl, const mpTimeline *peer)
{
    size_t i;

    for (i = tl->head; i < tl->nrecs; i++)
        mpTimelineCorrelateRecord(tl->recs[i], peer);
}

/* ---- JSON ---- */

int64_t
mpTimelineStampEpochMs(const mpTimeline *tl, const mpTimelineStamp *st)
{
    return st && st->set ? convertTime(tl, &st->time) : INT64_MIN;
}

const mpTimelineStamp *
mpTimelineRecordStart(const mpMigrationRecord *rec)
{
    if (rec->role != MP_MIGRATION_ROLE_SOURCE)
        return NULL;
    if (rec->startedAt.set)
        return &rec->startedAt;
    if (!rec->debugLogged && rec->firstMonitorAt.set && rec->firstMonitorIsStart)
        return &rec->firstMonitorAt;
    return NULL;
}

int64_t
mpTimelineRecordDurationMs(const mpTimeline *tl, const mpMigrationRecord *rec)
{
    int64_t a = mpTimelineStampEpochMs(tl, mpTimelineRecordStart(rec));
    int64_t b = mpTimelineStampEpochMs(tl, &rec->completedAt);

    return a != INT64_MIN && b != INT64_MIN ? b - a : INT64_MIN;
}

json_t *
mpTimelineStampToJSON(const mpTimeline *tl, const mpTimelineStamp *st)
{
    int64_t ms;

    if (!st || !st->set)
        return json_null();
    ms = convertTime(tl, &st->time);
    return json_pack("{s:s, s:o}", "local", st->text,
                     "epoch_ms", ms == INT64_MIN ? json_null() : json_integer(ms));
}

static json_t *
strOrNull(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static void
setNew(json_t *obj, const char *key, json_t *val)
{
    json_object_set_new(obj, key, val ? val : json_null());
}

static json_t *
outcomeJSON(mpMigrationOutcome o)
{
    const char *name = mpMigrationOutcomeName(o);

    return name ? json_string(name) : json_null();
}

static const char *
completedMessage(mpLogEvent ev)
{
    switch (ev) {
    case MP_LOG_EVENT_OP_COMPLETED:
        return "Migration operation has completed";
    case MP_LOG_EVENT_OP_ABORTED:
        return "Migration operation has aborted";
    case MP_LOG_EVENT_OP_CANCELLED:
        return "Migration operation was cancelled";
    default:
        return NULL;
    }
}

json_t *
mpTimelineRecordToJSON(const mpTimeline *tl, const mpMigrationRecord *rec)
{
    json_t *o = json_object();
    bool src = rec->role == MP_MIGRATION_ROLE_SOURCE;
    const mpTimelineStamp *started = mpTimelineRecordStart(rec);
    bool startKnown;
    json_t *lp = json_null();

    startKnown = src ? started != NULL : rec->preLiveMigrationAt.set;

    setNew(o, "instance_uuid", strOrNull(rec->instanceUuid));
    setNew(o, "request_id", strOrNull(rec->requestId));
    setNew(o, "global_request_id", strOrNull(rec->globalRequestId));
    setNew(o, "role", json_string(mpMigrationRoleName(rec->role)));
    setNew(o, "outcome", outcomeJSON(rec->outcome));
    if (!src)
        setNew(o, "source_host", strOrNull(rec->sourceHost));
    setNew(o, "started_at", mpTimelineStampToJSON(tl, started));
    setNew(o, "switched_to_postcopy_at", mpTimelineStampToJSON(tl, &rec->switchedToPostcopyAt));
    if (src) {
        setNew(o, "postcopy_lifecycle_event_at",
               mpTimelineStampToJSON(tl, &rec->postcopyLifecycleAt));
        setNew(o, "completion_timeout_warning_at",
               mpTimelineStampToJSON(tl, &rec->completionTimeoutAt));
        setNew(o, "completion_timeout_s", rec->completionTimeoutAt.set ?
               json_integer(rec->completionTimeoutSecs) : json_null());
    }
    setNew(o, "completed_at", mpTimelineStampToJSON(tl, &rec->completedAt));
    if (src)
        setNew(o, "completed_message", strOrNull(completedMessage(rec->completedEvent)));
    {
        int64_t d = mpTimelineRecordDurationMs(tl, rec);

        setNew(o, "duration_ms", d != INT64_MIN ? json_integer(d) : json_null());
    }
    setNew(o, "dest_host", strOrNull(src ? rec->destHost :
                                     rec->destHost[0] ? rec->destHost : tl->host));
    if (!src) {
        setNew(o, "pre_live_migration_at", mpTimelineStampToJSON(tl, &rec->preLiveMigrationAt));
        setNew(o, "post_operation_started_at",
               mpTimelineStampToJSON(tl, &rec->postOperationStartedAt));
        setNew(o, "rolled_back_at", mpTimelineStampToJSON(tl, &rec->rolledBackAt));
    }
    if (rec->hasProgress) {
        const mpLogProgress *p = &rec->lastProgress;

        lp = json_pack("{s:o, s:s, s:I, s:I, s:I, s:I, s:I}",
                       "at", mpTimelineStampToJSON(tl, &rec->lastProgressAt),
                       "level", mpLogLevelName(rec->lastProgressLevel),
                       "secs", (json_int_t)p->secs,
                       "memory_remaining_pct", (json_int_t)p->memoryRemainingPct,
                       "processed_bytes", (json_int_t)p->processedBytes,
                       "remaining_bytes", (json_int_t)p->remainingBytes,
                       "total_bytes", (json_int_t)p->totalBytes);
    }
    setNew(o, "last_progress", lp);
    setNew(o, "progress_lines", json_pack("{s:I, s:I, s:I}",
                                          "total", (json_int_t)rec->progressTotal,
                                          "info", (json_int_t)rec->progressInfo,
                                          "debug", (json_int_t)rec->progressDebug));
    if (src) {
        int64_t total = rec->lastProgress.totalBytes;

        int64_t mib = total >> 20;
        int64_t rounded = mib / 64 * 64;

        setNew(o, "memory_mb", rec->hasProgress && total > 0 ?
               json_integer(rounded ? rounded : mib) : json_null());
    }
    setNew(o, "complete_in_file", json_boolean(startKnown && rec->ended));
    setNew(o, "first_seen_at", mpTimelineStampToJSON(tl, &rec->firstSeenAt));
    setNew(o, "last_seen_at", mpTimelineStampToJSON(tl, &rec->lastSeenAt));
    setNew(o, "true_outcome", outcomeJSON(rec->outcome));
    setNew(o, "state_at_end_of_file", json_string(rec->ended ? "ended" : "in_progress"));
    return o;
}

json_t *
mpTimelineToJSON(const mpTimeline *tl)
{
    json_t *o = json_object();
    json_t *migs = json_array();
    json_t *levels = json_object();
    size_t i;

    for (i = tl->head; i < tl->nrecs; i++)
        json_array_append_new(migs, mpTimelineRecordToJSON(tl, tl->recs[i]));
    for (i = 1; i < MP_LOG_LEVEL_LAST; i++) {
        if (tl->c.byLevel[i])
            json_object_set_new(levels, mpLogLevelName(i), json_integer(tl->c.byLevel[i]));
    }
    json_object_set_new(o, "live_migrations", migs);
    json_object_set_new(o, "total_lines", json_integer(tl->c.totalLines));
    json_object_set_new(o, "line_counts_by_level", levels);
    json_object_set_new(o, "lines_without_log_prefix", json_integer(tl->c.withoutPrefix));
    json_object_set_new(o, "traceback_continuation_lines", json_integer(tl->c.continuation));
    json_object_set_new(o, "first_line_at", mpTimelineStampToJSON(tl, &tl->c.firstLineAt));
    json_object_set_new(o, "last_line_at", mpTimelineStampToJSON(tl, &tl->c.lastLineAt));
    json_object_set_new(o, "unknown_lines", json_integer(tl->c.unknown));
    json_object_set_new(o, "long_lines_skipped", json_integer(tl->c.tooLong));
    return o;
}
