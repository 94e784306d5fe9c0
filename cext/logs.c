/*
 * logs.c: _migpilot.scan_logs and _migpilot.parse_log_line over mplogline + mptimeline
 *
 * Files are read here, in C, with large read()s and the GIL released; the core only sees
 * bytes. Time zones: the core converts local time through a callback, the agent's own
 * (mplocalzone.c: the zone database read into the core's mptzone, or localtime_r() for
 * the host's zone), which never touches TZ and follows Python's rule for ambiguous and
 * missing local times (fold = 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mppy.h"
#include "mpalloc.h"
#include "mperror.h"
#include "mplocalzone.h"
#include "mplogline.h"
#include "mptimeline.h"

#define READ_CHUNK (256 << 10)  /* well inside L2: the bytes are parsed while still in cache */

/* ---- json_t to Python ---- */

static PyObject *
jsonToPy(json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        PyObject *d = PyDict_New();
        const char *key;
        json_t *val;

        if (!d)
            return NULL;
        json_object_foreach(j, key, val) {
            PyObject *v = jsonToPy(val);

            if (!v || PyDict_SetItemString(d, key, v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(d);
                return NULL;
            }
            Py_DECREF(v);
        }
        return d;
    }
    case JSON_ARRAY: {
        size_t i, n = json_array_size(j);
        PyObject *l = PyList_New((Py_ssize_t)n);

        if (!l)
            return NULL;
        for (i = 0; i < n; i++) {
            PyObject *v = jsonToPy(json_array_get(j, i));

            if (!v) {
                Py_DECREF(l);
                return NULL;
            }
            PyList_SET_ITEM(l, (Py_ssize_t)i, v);
        }
        return l;
    }
    case JSON_STRING:
        return PyUnicode_DecodeUTF8(json_string_value(j), (Py_ssize_t)json_string_length(j),
                                    "replace");
    case JSON_INTEGER:
        return PyLong_FromLongLong(json_integer_value(j));
    case JSON_REAL:
        return PyFloat_FromDouble(json_real_value(j));
    case JSON_TRUE:
        Py_RETURN_TRUE;
    case JSON_FALSE:
        Py_RETURN_FALSE;
    case JSON_NULL:
    default:
        Py_RETURN_NONE;
    }
}

/* ---- file scanning (GIL released) ---- */

/*
 * Streaming (on_record given): the timeline passes each record on when it is final; the
 * record is copied to a small queue (GIL released), and after each chunk read the queue is
 * rendered and handed to the Python callable with the GIL held. Memory then stays bounded
 * by the migrations in flight, whatever the size of the input.
 */
typedef struct {
    mpTimeline *tl;
    const mpTimeline *peer;       /* source host's records, for destination rollbacks */
    PyObject *onRecord;           /* NULL: the records stay in tl (whole-input mode) */
    mpMigrationRecord *queue;
    size_t nqueue, allocQueue;
    PyThreadState *save;          /* non-NULL while the GIL is released */
    bool failed;                  /* a Python exception is pending */
} scanCtx;

static void
queueRecord(const mpMigrationRecord *rec, void *opaque)
{
    scanCtx *ctx = opaque;

    mpGrow(&ctx->queue, &ctx->allocQueue, ctx->nqueue + 1, sizeof(*ctx->queue));
    ctx->queue[ctx->nqueue++] = *rec;
}

/* Renders and hands over the queued records; called with the GIL released. */
static void
deliverQueued(scanCtx *ctx)
{
    size_t i;

    if (!ctx->nqueue)
        return;
    PyEval_RestoreThread(ctx->save);
    for (i = 0; i < ctx->nqueue && !ctx->failed; i++) {
        mpMigrationRecord *rec = &ctx->queue[i];
        json_t *j;
        PyObject *d, *r;

        if (ctx->peer)
            mpTimelineCorrelateRecord(rec, ctx->peer);
        j = mpTimelineRecordToJSON(ctx->tl, rec);
        d = jsonToPy(j);
        json_decref(j);
        r = d ? PyObject_CallOneArg(ctx->onRecord, d) : NULL;
        Py_XDECREF(d);
        if (!r)
            ctx->failed = true;
        Py_XDECREF(r);
    }
    ctx->nqueue = 0;
    ctx->save = PyEval_SaveThread();
}

/* Feeds each open file to ctx->tl, GIL released. On a read error returns the index of the
 * file and sets *err; -1 otherwise (ctx->failed tells about a callback's exception). */
static Py_ssize_t
scanFiles(scanCtx *ctx, const int *fds, Py_ssize_t n, int *err)
{
    char *buf = mpAllocN(READ_CHUNK, 1);
    Py_ssize_t i;
    Py_ssize_t failed = -1;

    ctx->save = PyEval_SaveThread();
    for (i = 0; i < n && failed < 0 && !ctx->failed; i++) {
        ssize_t got;

        while ((got = read(fds[i], buf, READ_CHUNK)) != 0 && !ctx->failed) {
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                *err = errno;
                failed = i;
                break;
            }
            mpTimelineFeedBytes(ctx->tl, buf, (size_t)got);
            deliverQueued(ctx);
        }
        mpTimelineEndOfFile(ctx->tl);
    }
    if (failed < 0 && !ctx->failed) {
        mpTimelineFinish(ctx->tl);
        deliverQueued(ctx);
    }
    PyEval_RestoreThread(ctx->save);
    ctx->save = NULL;
    free(buf);
    return failed;
}

/* list of str/bytes/PathLike to a NULL-terminated array of file system paths. */
static char **
convertPaths(PyObject *list, Py_ssize_t *n, PyObject **keep)
{
    PyObject *seq = PySequence_Fast(list, "paths must be a list of file names");
    char **paths = NULL;
    Py_ssize_t i;

    *keep = NULL;
    if (!seq)
        return NULL;
    *n = PySequence_Fast_GET_SIZE(seq);
    *keep = PyList_New(*n);
    if (!*keep)
        goto error;
    paths = mpAllocN((size_t)*n + 1, sizeof(*paths));
    for (i = 0; i < *n; i++) {
        PyObject *b = NULL;

        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(seq, i), &b))
            goto error;
        PyList_SET_ITEM(*keep, i, b);
        paths[i] = PyBytes_AS_STRING(b);
    }
    Py_DECREF(seq);
    return paths;

 error:
    Py_DECREF(seq);
    Py_CLEAR(*keep);
    free(paths);
    return NULL;
}

/* A set of files, all opened before anything is read, so that an unreadable file fails
 * the call before any record was handed over. */
typedef struct {
    PyObject *keep;
    char **paths;
    int *fds;
    Py_ssize_t n;
} fileSet;

static void
fileSetClose(fileSet *fs)
{
    Py_ssize_t i;

    for (i = 0; fs->fds && i < fs->n; i++) {
        if (fs->fds[i] >= 0)
            close(fs->fds[i]);
    }
    free(fs->fds);
    free(fs->paths);
    Py_CLEAR(fs->keep);
    memset(fs, 0, sizeof(*fs));
}

static int
fileSetOpen(fileSet *fs, PyObject *list)
{
    Py_ssize_t i;

    memset(fs, 0, sizeof(*fs));
    if (!(fs->paths = convertPaths(list, &fs->n, &fs->keep)))
        return -1;
    fs->fds = mpAllocN((size_t)fs->n + 1, sizeof(*fs->fds));
    for (i = 0; i < fs->n; i++)
        fs->fds[i] = -1;
    for (i = 0; i < fs->n; i++) {
        int fd;

        Py_BEGIN_ALLOW_THREADS
        fd = open(fs->paths[i], O_RDONLY | O_CLOEXEC);
        Py_END_ALLOW_THREADS
        if (fd < 0) {
            PyErr_SetFromErrnoWithFilename(PyExc_OSError, fs->paths[i]);
            fileSetClose(fs);
            return -1;
        }
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        fs->fds[i] = fd;
    }
    return 0;
}

static int
scanInto(scanCtx *ctx, fileSet *fs)
{
    int err = 0;
    Py_ssize_t failed = scanFiles(ctx, fs->fds, fs->n, &err);

    if (failed >= 0) {
        errno = err;
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, fs->paths[failed]);
        return -1;
    }
    return ctx->failed ? -1 : 0;
}

PyDoc_STRVAR(scanLogsDoc,
"scan_logs(paths, tz=None, peers=None, on_record=None) -> dict\n\n"
"Scans nova-compute log files in order (rotated files oldest first) and returns\n"
"{'live_migrations': [...], 'total_lines': n, 'line_counts_by_level': {...}, ...} in the\n"
"shape of the fixtures' truth. tz: IANA zone of the log's local time (None: this host's).\n"
"peers: log files of the peer (source) host; destination rollbacks take its outcome.\n"
"on_record: a callable given each migration (a dict) as soon as no later line can change\n"
"it, in order of first line; 'live_migrations' is then empty and memory does not grow\n"
"with the input. Every file is opened before any is read.\n"
"Raises OSError naming an unreadable file, _migpilot.Error for an unknown zone, and what\n"
"on_record raises.");

static PyObject *
pyScanLogs(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = { "paths", "tz", "peers", "on_record", NULL };
    PyObject *list = NULL, *peerList = Py_None, *onRecord = Py_None;
    const char *tz = NULL;
    mpTimeline *tl = NULL, *peer = NULL;
    fileSet files = { 0 }, peerFiles = { 0 };
    scanCtx ctx = { 0 };
    mpLocalZone *zone = NULL;
    json_t *j = NULL;
    PyObject *ret = NULL;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|zOO:scan_logs", kwlist, &list, &tz,
                                     &peerList, &onRecord))
        return NULL;
    if (PyUnicode_Check(list) || PyBytes_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "paths must be a list of file names");
        return NULL;
    }
    if (onRecord != Py_None && !PyCallable_Check(onRecord)) {
        PyErr_SetString(PyExc_TypeError, "on_record must be callable");
        return NULL;
    }
    if (!(zone = mpLocalZoneNew(tz))) {
        PyErr_SetString(mpPyError, mpGetLastErrorMessage());
        goto cleanup;
    }
    if (fileSetOpen(&files, list) < 0 ||
        (peerList != Py_None && fileSetOpen(&peerFiles, peerList) < 0))
        goto cleanup;
    if (peerList != Py_None) {
        scanCtx peerCtx = { 0 };

        peer = mpTimelineNew(NULL, NULL);
        peerCtx.tl = peer;
        if (scanInto(&peerCtx, &peerFiles) < 0)
            goto cleanup;
    }
    tl = mpTimelineNew(mpLocalZoneConvert, zone);
    ctx.tl = tl;
    ctx.peer = peer;
    if (onRecord != Py_None) {
        ctx.onRecord = onRecord;
        mpTimelineSetRecordCallback(tl, queueRecord, &ctx);
    }
    if (scanInto(&ctx, &files) < 0)
        goto cleanup;
    if (peer)
        mpTimelineCorrelate(tl, peer);
    j = mpTimelineToJSON(tl);
    ret = jsonToPy(j);

 cleanup:
    json_decref(j);
    mpTimelineFree(tl);
    mpTimelineFree(peer);
    free(ctx.queue);
    fileSetClose(&files);
    fileSetClose(&peerFiles);
    mpLocalZoneFree(zone);
    return ret;
}

/* ---- one line ---- */

static const char *
eventName(mpLogEvent ev)
{
    static const char *const names[] = {
        [MP_LOG_EVENT_NONE] = NULL,
        [MP_LOG_EVENT_LIVE_MIGRATION_DATA] = "live_migration_data",
        [MP_LOG_EVENT_PRE_LIVE_MIGRATION_DATA] = "pre_live_migration_data",
        [MP_LOG_EVENT_START_MONITORING] = "start_monitoring",
        [MP_LOG_EVENT_MONITOR] = "monitor",
        [MP_LOG_EVENT_INCREASING_DOWNTIME] = "increasing_downtime",
        [MP_LOG_EVENT_PROGRESS] = "progress",
        [MP_LOG_EVENT_COMPLETION_TIMEOUT] = "completion_timeout",
        [MP_LOG_EVENT_SWITCH_POSTCOPY] = "switch_postcopy",
        [MP_LOG_EVENT_POSTCOPY_LIFECYCLE] = "postcopy_lifecycle",
        [MP_LOG_EVENT_LIVE_MIGRATION_FAILURE] = "live_migration_failure",
        [MP_LOG_EVENT_OP_COMPLETED] = "operation_completed",
        [MP_LOG_EVENT_OP_ABORTED] = "operation_aborted",
        [MP_LOG_EVENT_OP_CANCELLED] = "operation_cancelled",
        [MP_LOG_EVENT_POST_LIVE_MIGRATION] = "post_live_migration",
        [MP_LOG_EVENT_MIGRATE_FINISHED] = "migrate_finished",
        [MP_LOG_EVENT_POST_OPERATION_STARTED] = "post_operation_started",
        [MP_LOG_EVENT_INSTANCE_DESTROYED] = "instance_destroyed",
        [MP_LOG_EVENT_SYNC_POWER_MOVED] = "sync_power_moved",
        [MP_LOG_EVENT_AUDIT_RESOURCES] = "audit_resources",
    };

    if ((size_t)ev >= sizeof(names) / sizeof(names[0]))
        return NULL;
    return names[ev];
}

static int
setSlice(PyObject *d, const char *key, mpSlice s, bool nullIfEmpty)
{
    PyObject *v;
    int rc;

    if (nullIfEmpty && s.len == 0) {
        v = Py_NewRef(Py_None);
    } else {
        v = PyUnicode_DecodeUTF8(s.p ? s.p : "", (Py_ssize_t)s.len, "replace");
        if (!v)
            return -1;
    }
    rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

static int
setInt(PyObject *d, const char *key, int64_t val)
{
    PyObject *v = PyLong_FromLongLong(val);
    int rc;

    if (!v)
        return -1;
    rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

static int
setStr(PyObject *d, const char *key, const char *s)
{
    PyObject *v = s ? PyUnicode_FromString(s) : Py_NewRef(Py_None);
    int rc;

    if (!v)
        return -1;
    rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

static int64_t
sliceToInt(mpSlice s)
{
    int64_t v = 0;
    size_t i;

    for (i = 0; i < s.len; i++)     /* at most 10 digits: checked by the parser */
        v = v * 10 + (s.p[i] - '0');
    return v;
}

PyDoc_STRVAR(parseLogLineDoc,
"parse_log_line(line) -> dict | None\n\n"
"Parses one nova-compute log line (bytes or str, without or with its newline). None when\n"
"the line does not start with oslo.log's prefix.");

static PyObject *
pyParseLogLine(PyObject *self, PyObject *arg)
{
    static const char *const kinds[] = { NULL, "context", "no_context", "continuation" };
    const char *buf;
    Py_ssize_t len;
    mpLogLine l;
    PyObject *d = NULL;

    (void)self;
    if (PyBytes_Check(arg)) {
        buf = PyBytes_AS_STRING(arg);
        len = PyBytes_GET_SIZE(arg);
    } else if (PyUnicode_Check(arg)) {
        if (!(buf = PyUnicode_AsUTF8AndSize(arg, &len)))
            return NULL;
    } else {
        PyErr_SetString(PyExc_TypeError, "line must be bytes or str");
        return NULL;
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (mpLogLineParse(buf, (size_t)len, &l) == MP_LOG_LINE_UNKNOWN)
        Py_RETURN_NONE;
    if (!(d = PyDict_New()))
        return NULL;
    if (setStr(d, "kind", kinds[l.kind]) < 0 ||
        setSlice(d, "timestamp", l.timestamp, false) < 0 ||
        setInt(d, "pid", sliceToInt(l.pid)) < 0 ||
        setStr(d, "level", mpLogLevelName(l.level)) < 0 ||
        setSlice(d, "logger", l.logger, false) < 0 ||
        setSlice(d, "global_request_id", l.globalRequestId, true) < 0 ||
        setSlice(d, "request_id", l.requestId, true) < 0 ||
        setSlice(d, "user_identity", l.userIdentity, true) < 0 ||
        setSlice(d, "instance_uuid", l.instance, true) < 0 ||
        setSlice(d, "message", l.message, false) < 0 ||
        setSlice(d, "debug_func", l.debugFunc, true) < 0 ||
        setSlice(d, "debug_path", l.debugPath, true) < 0 ||
        setStr(d, "event", eventName(l.event)) < 0)
        goto error;
    if (l.debugFunc.len && setInt(d, "debug_lineno", l.debugLineno) < 0)
        goto error;
    if (l.event == MP_LOG_EVENT_PROGRESS) {
        PyObject *p = Py_BuildValue("{s:L, s:L, s:L, s:L, s:L}",
                                    "secs", (long long)l.progress.secs,
                                    "memory_remaining_pct", (long long)l.progress.memoryRemainingPct,
                                    "processed_bytes", (long long)l.progress.processedBytes,
                                    "remaining_bytes", (long long)l.progress.remainingBytes,
                                    "total_bytes", (long long)l.progress.totalBytes);
        int rc;

        if (!p)
            goto error;
        rc = PyDict_SetItemString(d, "progress", p);
        Py_DECREF(p);
        if (rc < 0)
            goto error;
    }
    if ((l.event == MP_LOG_EVENT_COMPLETION_TIMEOUT ||
         l.event == MP_LOG_EVENT_INCREASING_DOWNTIME) && setInt(d, "secs", l.number) < 0)
        goto error;
    if (l.host.len && setSlice(d, "host", l.host, false) < 0)
        goto error;
    if (l.fromHost.len && setSlice(d, "from_host", l.fromHost, false) < 0)
        goto error;
    return d;

 error:
    Py_DECREF(d);
    return NULL;
}

static PyMethodDef logsMethods[] = {
    { "scan_logs", (PyCFunction)(void (*)(void))pyScanLogs, METH_VARARGS | METH_KEYWORDS,
      scanLogsDoc },
    { "parse_log_line", pyParseLogLine, METH_O, parseLogLineDoc },
    { NULL, NULL, 0, NULL },
};

int
mpPyLogsRegister(PyObject *module)
{
    return PyModule_AddFunctions(module, logsMethods);
}
