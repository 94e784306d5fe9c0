/*
 * mplogline.c: hand-written scanner of oslo.log's default line format (see mplogline.h)
 *
 * Fixed-width fields are checked at fixed offsets and everything else is found with memchr,
 * so a line costs a few hundred nanoseconds; no regex, no allocation, no NUL needed.
 */
#include <stdlib.h>
#include <string.h>

#include "mpalloc.h"
#include "mpcalendar.h"
#include "mplogline.h"

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)
#define LIT(s) (s), (sizeof(s) - 1)

static const char *const levelNames[MP_LOG_LEVEL_LAST] = {
    "", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "TRACE",
};

const char *
mpLogLevelName(mpLogLevel level)
{
    if ((unsigned)level >= MP_LOG_LEVEL_LAST)
        return "";
    return levelNames[level];
}

static inline int
dig2(const char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

static inline uint64_t
load64(const char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* Byte-lane tests on 8 bytes at once. Masks are built by loading byte strings the same way
 * as the input, so lane i is byte i whatever the byte order. */
static inline uint64_t
mask8(const char *bytes)
{
    return load64(bytes);
}

#define LANES(b) (0x0101010101010101ULL * (uint64_t)(b))

/* 0x80 in every lane whose byte is >= k (bytes < 0x80, 0 < k <= 0x80). */
static inline uint64_t
lanesGE(uint64_t x, unsigned k)
{
    return (x + LANES(0x80 - k)) & LANES(0x80);
}

/* 0x80 in every lane holding an ASCII decimal digit. */
static inline uint64_t
lanesDigit(uint64_t x)
{
    return lanesGE(x, '0') & ~lanesGE(x, '9' + 1) & ~x;
}

/* Digits where digits has 0xff lanes, the bytes of fixed elsewhere. */
static inline bool
matchShape8(const char *p, uint64_t digits, uint64_t fixed)
{
    uint64_t x = load64(p);

    if (x & LANES(0x80))
        return false;
    return (lanesDigit(x) & digits) == (LANES(0x80) & digits) && (x & ~digits) == fixed;
}

/* Hex digits where hex has 0xff lanes, the bytes of fixed elsewhere. */
static inline bool
matchHex8(const char *p, uint64_t hex, uint64_t fixed)
{
    uint64_t x = load64(p);
    uint64_t lower = x | LANES(0x20);
    uint64_t ok;

    if (x & LANES(0x80))
        return false;
    ok = lanesDigit(x) | (lanesGE(lower, 'a') & ~lanesGE(lower, 'f' + 1));
    return (ok & hex) == (LANES(0x80) & hex) && (x & ~hex) == fixed;
}

/* "YYYY-MM-DD HH:MM:SS.mmm " (23 bytes and a space: 24 readable bytes), validated. */
static bool
parseTimestamp(const char *p, mpLogTime *t)
{
    /* three 8-byte windows, the third ending with the space after the stamp */
    if (!matchShape8(p, mask8("\xff\xff\xff\xff\0\xff\xff\0"), mask8("\0\0\0\0-\0\0-")) ||
        !matchShape8(p + 8, mask8("\xff\xff\0\xff\xff\0\xff\xff"), mask8("\0\0 \0\0:\0\0")) ||
        !matchShape8(p + 16, mask8("\0\xff\xff\0\xff\xff\xff\0"), mask8(":\0\0.\0\0\0 ")))
        return false;
    t->year = dig2(p) * 100 + dig2(p + 2);
    t->month = dig2(p + 5);
    t->day = dig2(p + 8);
    t->hour = dig2(p + 11);
    t->minute = dig2(p + 14);
    t->second = dig2(p + 17);
    t->ms = (p[20] - '0') * 100 + dig2(p + 21);
    if (t->month < 1 || t->month > 12 || t->day < 1 ||
        t->day > mpDaysInMonth(t->year, t->month) ||
        t->hour > 23 || t->minute > 59 || t->second > 59)
        return false;
    t->localMs = ((mpDaysFromCivil(t->year, t->month, t->day) * 24 + t->hour) * 60 +
                  t->minute) * 60000 + t->second * 1000 + t->ms;
    return true;
}

/* Parses [-]digits at p (bounded by end) into *val; returns the byte after, or NULL on
 * no digits or int64 overflow. */
static const char *
parseInt64(const char *p, const char *end, int64_t *val)
{
    bool neg = false;
    uint64_t v = 0;
    const char *start;

    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    start = p;
    while (p < end && IS_DIGIT(*p)) {
        unsigned d = (unsigned)(*p - '0');

        if (v > (UINT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
        p++;
    }
    if (p == start || p - start > 19)
        return NULL;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return NULL;
        *val = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return NULL;
        *val = (int64_t)v;
    }
    return p;
}

/* If [p, end) starts with lit, returns the byte after it, else NULL. */
static inline const char *
expect(const char *p, const char *end, const char *lit, size_t n)
{
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

static inline bool
sliceIs(const char *p, size_t len, const char *lit, size_t n)
{
    return len == n && memcmp(p, lit, n) == 0;
}

static inline bool
sliceStarts(const char *p, size_t len, const char *lit, size_t n)
{
    return len >= n && memcmp(p, lit, n) == 0;
}

/* The level name at p followed by a space; sets *len to the name's length. */
static mpLogLevel
parseLevel(const char *p, const char *end, size_t *len)
{
    static const struct {
        const char *name;
        size_t len;
        mpLogLevel level;
    } names[] = {
        { "DEBUG ", 6, MP_LOG_LEVEL_DEBUG },
        { "INFO ", 5, MP_LOG_LEVEL_INFO },
        { "WARNING ", 8, MP_LOG_LEVEL_WARNING },
        { "ERROR ", 6, MP_LOG_LEVEL_ERROR },
        { "CRITICAL ", 9, MP_LOG_LEVEL_CRITICAL },
        { "TRACE ", 6, MP_LOG_LEVEL_TRACE },
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (p < end && *p == names[i].name[0] && expect(p, end, names[i].name, names[i].len)) {
            *len = names[i].len - 1;
            return names[i].level;
        }
    }
    return MP_LOG_LEVEL_NONE;
}

/* "[instance: <36 chars>] " at p: returns the byte after it and sets *uuid, else NULL. */
static const char *
parseInstance(const char *p, const char *end, mpSlice *uuid)
{
    const uint64_t all = LANES(0xff);
    const char *q = expect(p, end, LIT("[instance: "));

    /* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx] : five 8-byte windows, the last two overlap */
    if (!q || end - q < 38 || q[36] != ']' || q[37] != ' ' ||
        !matchHex8(q, all, 0) ||
        !matchHex8(q + 8, mask8("\0\xff\xff\xff\xff\0\xff\xff"), mask8("-\0\0\0\0-\0\0")) ||
        !matchHex8(q + 16, mask8("\xff\xff\0\xff\xff\xff\xff\0"), mask8("\0\0-\0\0\0\0-")) ||
        !matchHex8(q + 24, all, 0) || !matchHex8(q + 28, all, 0))
        return NULL;
    uuid->p = q;
    uuid->len = 36;
    return q + 38;
}

/* Strips a DEBUG line's " <funcName> <path>:<lineno>" suffix off the message. */
static void
stripDebugSuffix(mpLogLine *out)
{
    const char *m = out->message.p;
    const char *end = m + out->message.len;
    const char *colon = end;
    const char *sp1, *sp2, *q;
    int64_t lineno = 0;

    while (colon > m && IS_DIGIT(colon[-1]))
        colon--;
    if (colon == end || colon == m || colon[-1] != ':')
        return;
    if (!parseInt64(colon, end, &lineno))
        return;
    colon--;
    /* the path and funcName hold no space: scan back with memrchr, not byte by byte */
    sp1 = memrchr(m, ' ', (size_t)(colon - m));
    if (!sp1 || sp1 + 1 == colon)
        return;
    /* sp1 is the space before the path */
    sp2 = memrchr(m, ' ', (size_t)(sp1 - m));
    sp2 = sp2 ? sp2 + 1 : m;
    if (sp2 == sp1)
        return;                 /* empty funcName */
    q = sp2 == m ? m : sp2 - 1; /* a message can be empty: suffix right after the prefix */
    out->debugFunc.p = sp2;
    out->debugFunc.len = (size_t)(sp1 - sp2);
    out->debugPath.p = sp1 + 1;
    out->debugPath.len = (size_t)(colon - (sp1 + 1));
    out->debugLineno = lineno;
    out->message.len = (size_t)(q - m);
    if (out->message.len == 0)
        out->message.p = m;
}

static void
setHost(mpSlice *s, const char *p, const char *e)
{
    s->p = p;
    s->len = (size_t)(e - p);
}

/* Recognises nova Zed's live-migration messages (exact texts: reference section 3.2). */
static void
classify(mpLogLine *out)
{
    const char *m = out->message.p;
    size_t n = out->message.len;
    const char *end = m + n;
    const char *q;

    if (n == 0)
        return;
    switch (m[0]) {
    case 'l':
        if (sliceStarts(m, n, LIT("live_migration data is ")))
            out->event = MP_LOG_EVENT_LIVE_MIGRATION_DATA;
        return;
    case 'p':
        if (sliceStarts(m, n, LIT("pre_live_migration data is ")))
            out->event = MP_LOG_EVENT_PRE_LIVE_MIGRATION_DATA;
        return;
    case 'S':
        if (sliceIs(m, n, LIT("Starting monitoring of live migration")))
            out->event = MP_LOG_EVENT_START_MONITORING;
        else if (sliceIs(m, n, LIT("Switching to post-copy migration mode")))
            out->event = MP_LOG_EVENT_SWITCH_POSTCOPY;
        return;
    case 'M':
        if ((q = expect(m, end, LIT("Migration running for ")))) {
            mpLogProgress *pr = &out->progress;

            if ((q = parseInt64(q, end, &pr->secs)) &&
                (q = expect(q, end, LIT(" secs, memory "))) &&
                (q = parseInt64(q, end, &pr->memoryRemainingPct)) &&
                (q = expect(q, end, LIT("% remaining (bytes processed="))) &&
                (q = parseInt64(q, end, &pr->processedBytes)) &&
                (q = expect(q, end, LIT(", remaining="))) &&
                (q = parseInt64(q, end, &pr->remainingBytes)) &&
                (q = expect(q, end, LIT(", total="))) &&
                (q = parseInt64(q, end, &pr->totalBytes)) &&
                expect(q, end, LIT(")")))
                out->event = MP_LOG_EVENT_PROGRESS;
            else
                memset(pr, 0, sizeof(*pr));
        } else if (sliceIs(m, n, LIT("Migration operation has completed"))) {
            out->event = MP_LOG_EVENT_OP_COMPLETED;
        } else if (sliceIs(m, n, LIT("Migration operation has aborted"))) {
            out->event = MP_LOG_EVENT_OP_ABORTED;
        } else if (sliceIs(m, n, LIT("Migration operation was cancelled"))) {
            out->event = MP_LOG_EVENT_OP_CANCELLED;
        } else if ((q = expect(m, end, LIT("Migrating instance to ")))) {
            static const char tail[] = " finished successfully.";
            size_t tl = sizeof(tail) - 1;

            if (end - q > (ptrdiff_t)tl && memcmp(end - tl, tail, tl) == 0) {
                out->event = MP_LOG_EVENT_MIGRATE_FINISHED;
                setHost(&out->host, q, end - tl);
            }
        } else if (sliceIs(m, n, LIT("Migration not running yet")) ||
                   sliceIs(m, n, LIT("Migrate API has completed")) ||
                   sliceIs(m, n, LIT("Migration operation thread has finished")) ||
                   sliceIs(m, n, LIT("Migration operation thread notification"))) {
            out->event = MP_LOG_EVENT_MONITOR;
        }
        return;
    case 'L':
        if ((q = expect(m, end, LIT("Live migration not completed after ")))) {
            if ((q = parseInt64(q, end, &out->number)) && expect(q, end, LIT(" sec")) &&
                end - q == 4)
                out->event = MP_LOG_EVENT_COMPLETION_TIMEOUT;
            else
                out->number = 0;
        } else if (sliceStarts(m, n, LIT("Live Migration failure: "))) {
            out->event = MP_LOG_EVENT_LIVE_MIGRATION_FAILURE;
        } else if (sliceIs(m, n, LIT("Live migration monitoring is all done"))) {
            out->event = MP_LOG_EVENT_MONITOR;
        }
        return;
    case 'V':
        if (sliceIs(m, n, LIT("VM Postcopy started (Lifecycle Event)")))
            out->event = MP_LOG_EVENT_POSTCOPY_LIFECYCLE;
        return;
    case 'I':
        if ((q = expect(m, end, LIT("Increasing downtime to ")))) {
            int64_t ms;

            if ((q = parseInt64(q, end, &ms)) && (q = expect(q, end, LIT(" ms after "))) &&
                (q = parseInt64(q, end, &out->number)) &&
                expect(q, end, LIT(" sec elapsed time")))
                out->event = MP_LOG_EVENT_INCREASING_DOWNTIME;
            else
                out->number = 0;
        } else if (sliceIs(m, n, LIT("Instance destroyed successfully."))) {
            out->event = MP_LOG_EVENT_INSTANCE_DESTROYED;
        }
        return;
    case '_':
        if (sliceIs(m, n, LIT("_post_live_migration() is started..")))
            out->event = MP_LOG_EVENT_POST_LIVE_MIGRATION;
        return;
    case 'P':
        if (sliceIs(m, n, LIT("Post operation of migration started")))
            out->event = MP_LOG_EVENT_POST_OPERATION_STARTED;
        return;
    case 'D':
        if ((q = expect(m, end,
                        LIT("During the sync_power process the instance has moved from host ")))) {
            const char *sp = memchr(q, ' ', (size_t)(end - q));
            const char *to;

            if (sp && sp > q && (to = expect(sp, end, LIT(" to host "))) && to < end &&
                !memchr(to, ' ', (size_t)(end - to))) {
                out->event = MP_LOG_EVENT_SYNC_POWER_MOVED;
                setHost(&out->fromHost, q, sp);
                setHost(&out->host, to, end);
            }
        } else if (sliceIs(m, n, LIT("Downtime does not need to change"))) {
            out->event = MP_LOG_EVENT_MONITOR;
        }
        return;
    case 'A':
        if ((q = expect(m, end, LIT("Auditing locally available compute resources for ")))) {
            const char *sp = memchr(q, ' ', (size_t)(end - q));

            if (sp && sp > q) {
                out->event = MP_LOG_EVENT_AUDIT_RESOURCES;
                setHost(&out->host, q, sp);
            }
        } else if (sliceIs(m, n, LIT("About to invoke the migrate API"))) {
            out->event = MP_LOG_EVENT_MONITOR;
        }
        return;
    case 'O':
        if (sliceIs(m, n, LIT("Operation thread is still running")))
            out->event = MP_LOG_EVENT_MONITOR;
        return;
    case 'C':
        if (sliceStarts(m, n, LIT("Current ")) && memmem(m, n, " elapsed ", 9))
            out->event = MP_LOG_EVENT_MONITOR;
        return;
    case 'N':
        if (sliceIs(m, n, LIT("No current step")))
            out->event = MP_LOG_EVENT_MONITOR;
        return;
    default:
        return;
    }
}

/* Splits "<global> <req> <identity...>" (the bracket's content). */
static void
splitContext(mpLogLine *out)
{
    const char *p = out->context.p;
    const char *end = p + out->context.len;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    const char *sp2;

    if (!sp)
        return;
    if (!sliceIs(p, (size_t)(sp - p), LIT("None"))) {
        out->globalRequestId.p = p;
        out->globalRequestId.len = (size_t)(sp - p);
    }
    p = sp + 1;
    sp2 = memchr(p, ' ', (size_t)(end - p));
    if (!sp2)
        sp2 = end;
    out->requestId.p = p;
    out->requestId.len = (size_t)(sp2 - p);
    if (sp2 < end) {
        out->userIdentity.p = sp2 + 1;
        out->userIdentity.len = (size_t)(end - sp2 - 1);
    }
}

/* memset of the whole record costs as much as the rest of a typical line (a "rep stos" of
 * 300+ bytes); field stores become a few vector stores. Keep in step with mpLogLine. */
static inline void
clearLine(mpLogLine *out)
{
    static const mpSlice none = { NULL, 0 };
    static const mpLogTime noTime = { 0, 0, 0, 0, 0, 0, 0, 0 };
    static const mpLogProgress noProgress = { 0, 0, 0, 0, 0 };

    out->kind = MP_LOG_LINE_UNKNOWN;
    out->level = MP_LOG_LEVEL_NONE;
    out->hasTimestamp = false;
    out->time = noTime;
    out->timestamp = none;
    out->pid = none;
    out->levelName = none;
    out->logger = none;
    out->context = none;
    out->globalRequestId = none;
    out->requestId = none;
    out->userIdentity = none;
    out->instance = none;
    out->message = none;
    out->debugFunc = none;
    out->debugPath = none;
    out->debugLineno = 0;
    out->event = MP_LOG_EVENT_NONE;
    out->progress = noProgress;
    out->number = 0;
    out->host = none;
    out->fromHost = none;
}
/* A field added to mpLogLine changes its size: then add it to clearLine too (checked where
 * the size is known, LP64). */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(mpLogLine) == 344, "clearLine must set every field of mpLogLine");
#endif

mpLogLineKind
mpLogLineParse(const char *buf, size_t len, mpLogLine *out)
{
    const char *p = buf;
    const char *end = buf + len;
    const char *sp;
    const char *q;

    clearLine(out);
    if (len > 0 && end[-1] == '\r')
        end--;
    if (end - p < 24 || !parseTimestamp(p, &out->time))
        return MP_LOG_LINE_UNKNOWN;
    out->hasTimestamp = true;
    out->timestamp.p = p;
    out->timestamp.len = 23;
    p += 24;

    /* pid */
    q = p;
    while (q < end && IS_DIGIT(*q))
        q++;
    if (q == p || q - p > 10 || q >= end || *q != ' ')
        return MP_LOG_LINE_UNKNOWN;
    out->pid.p = p;
    out->pid.len = (size_t)(q - p);
    p = q + 1;

    /* level */
    if ((out->level = parseLevel(p, end, &out->levelName.len)) == MP_LOG_LEVEL_NONE)
        return MP_LOG_LINE_UNKNOWN;
    out->levelName.p = p;
    p += out->levelName.len + 1;

    /* logger: a continuation line of an empty traceback text may end right after it */
    sp = memchr(p, ' ', (size_t)(end - p));
    if ((sp ? sp : end) == p) {
        out->level = MP_LOG_LEVEL_NONE;
        return MP_LOG_LINE_UNKNOWN;
    }
    out->logger.p = p;
    out->logger.len = (size_t)((sp ? sp : end) - p);
    if (!sp) {
        out->message.p = end;
        return out->kind = MP_LOG_LINE_CONTINUATION;
    }
    p = sp + 1;

    if ((q = expect(p, end, LIT("[-] ")))) {
        out->kind = MP_LOG_LINE_NO_CONTEXT;
        out->context.p = p + 1;
        out->context.len = 1;
        p = q;
    } else if (p < end && *p == '[' && !expect(p, end, LIT("[instance: ")) &&
               (q = memchr(p, ']', (size_t)(end - p))) && q + 1 < end && q[1] == ' ') {
        out->kind = MP_LOG_LINE_CONTEXT;
        out->context.p = p + 1;
        out->context.len = (size_t)(q - p - 1);
        splitContext(out);
        p = q + 2;
    } else {
        /* logging_exception_prefix: "<ts> <pid> ERROR <logger> [instance: <uuid>] text" */
        if ((q = parseInstance(p, end, &out->instance)))
            p = q;
        out->message.p = p;
        out->message.len = (size_t)(end - p);
        return out->kind = MP_LOG_LINE_CONTINUATION;
    }

    if ((q = parseInstance(p, end, &out->instance)))
        p = q;
    out->message.p = p;
    out->message.len = (size_t)(end - p);
    if (out->level == MP_LOG_LEVEL_DEBUG)
        stripDebugSuffix(out);
    classify(out);
    return out->kind;
}

/* ---- chunked line splitter ---- */

struct _mpLineSplitter {
    size_t maxLine;
    mpLineFunc fn;
    void *opaque;
    char *buf;       /* carried partial line, at most maxLine bytes */
    size_t len;
    bool partial;    /* a line has started and not ended */
    bool skipping;   /* the carried line went over maxLine */
};

mpLineSplitter *
mpLineSplitterNew(size_t maxLine, mpLineFunc fn, void *opaque)
{
    mpLineSplitter *sp = mpAlloc0(sizeof(*sp));

    sp->maxLine = maxLine ? maxLine : 1;
    sp->fn = fn;
    sp->opaque = opaque;
    return sp;
}

static void
carry(mpLineSplitter *sp, const char *p, size_t n)
{
    sp->partial = true;
    if (sp->skipping)
        return;
    if (n > sp->maxLine - sp->len) {
        sp->skipping = true;
        sp->len = 0;
        return;
    }
    if (!sp->buf)
        sp->buf = mpAllocN(sp->maxLine, 1);
    memcpy(sp->buf + sp->len, p, n);
    sp->len += n;
}

static void
emitCarried(mpLineSplitter *sp)
{
    if (sp->skipping)
        sp->fn(NULL, 0, true, sp->opaque);
    else
        sp->fn(sp->buf ? sp->buf : "", sp->len, false, sp->opaque);
    sp->len = 0;
    sp->partial = false;
    sp->skipping = false;
}

void
mpLineSplitterFeed(mpLineSplitter *sp, const char *buf, size_t len)
{
    const char *p = buf;
    const char *end = buf + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));

        if (!nl) {
            carry(sp, p, (size_t)(end - p));
            return;
        }
        if (sp->partial) {
            carry(sp, p, (size_t)(nl - p));
            emitCarried(sp);
        } else if ((size_t)(nl - p) > sp->maxLine) {
            sp->fn(NULL, 0, true, sp->opaque);
        } else {
            sp->fn(p, (size_t)(nl - p), false, sp->opaque);
        }
        p = nl + 1;
    }
}

void
mpLineSplitterFinish(mpLineSplitter *sp)
{
    if (sp->partial)
        emitCarried(sp);
}

void
mpLineSplitterFree(mpLineSplitter *sp)
{
    if (!sp)
        return;
    free(sp->buf);
    free(sp);
}
