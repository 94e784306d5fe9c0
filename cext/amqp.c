/*
 * amqp.c: _migpilot.Listener, a private queue on nova's bus that yields decoded notifications
 *
 * The listener declares its own exclusive, auto-deleted queue bound to the given topics, so
 * it sees a copy of every matching message and never takes one from the queues Ceilometer,
 * the agent or anyone else consume. The connection steps are the agent's (mpamqpconn.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "mppy.h"
#include "mppyjson.h"
#include "mpalloc.h"
#include "mpamqpconn.h"
#include "mperror.h"
#include "mposlo.h"
#include "mpurl.h"

#define MP_PY_LISTEN_CONNECT_TIMEOUT_S 5
#define MP_PY_LISTEN_PREFETCH 100
/* a forgotten listener must not pile up messages on the broker */
#define MP_PY_LISTEN_MAX_LENGTH 10000
/* how often a blocked get() comes back to look for signals (Ctrl-C) */
#define MP_PY_LISTEN_SLICE_US 200000

typedef struct {
    PyObject_HEAD
    amqp_connection_state_t conn;
    char *queue;
    mpOsloDecodeOptions opts;
    int busy;               /* a thread is inside get() or close() with the GIL released */
} mpPyListener;

static int64_t
mpPyNowUs(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* "migpilot-listen.<12 hex digits>" */
static char *
mpPyListenerQueueName(void)
{
    unsigned char rnd[6];
    char *name = NULL;
    size_t i;

    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        /* no entropy yet: still unique enough for a private queue on one broker */
        uint64_t v = (uint64_t)mpPyNowUs() ^ ((uint64_t)getpid() << 32);

        for (i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)(v >> (8 * i));
    }
    if (asprintf(&name, "migpilot-listen.%02x%02x%02x%02x%02x%02x",
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]) < 0)
        abort();    /* out of memory, as mpalloc does */
    return name;
}

static void
mpPyListenerDisconnect(mpPyListener *self, bool orderly)
{
    amqp_connection_state_t conn = self->conn;

    self->conn = NULL;
    if (!conn)
        return;
    if (!orderly) {
        amqp_destroy_connection(conn);
        return;
    }
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    mpAmqpConnClose(conn);
    Py_END_ALLOW_THREADS
    self->busy = 0;
}

static int
mpPyListenerCheckIdle(mpPyListener *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the Listener is in use by another thread");
        return -1;
    }
    return 0;
}

static int
mpPyListenerCheckOpen(mpPyListener *self)
{
    if (mpPyListenerCheckIdle(self) < 0)
        return -1;
    if (!self->conn) {
        PyErr_SetString(PyExc_ValueError, "the Listener is closed");
        return -1;
    }
    return 0;
}

/* A copy of the UTF-8 of each str of keys (nkeys of them), owned by the caller
 * (mpPyListenerKeysFree): the GIL is released while they are used, and a list could
 * change meanwhile. */
static char **
mpPyListenerKeys(PyObject *keys, size_t *nkeys)
{
    char **ret = NULL;
    Py_ssize_t i, n;

    n = PySequence_Fast_GET_SIZE(keys);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "binding_keys must not be empty");
        return NULL;
    }
    ret = mpAllocN((size_t)n, sizeof(*ret));
    for (i = 0; i < n; i++) {
        PyObject *k = PySequence_Fast_GET_ITEM(keys, i);
        const char *utf8;

        if (!PyUnicode_Check(k)) {
            PyErr_Format(PyExc_TypeError, "binding key %R is not a str", k);
            goto error;
        }
        if (!(utf8 = PyUnicode_AsUTF8(k)))
            goto error;
        ret[i] = mpStrdup(utf8);
    }
    *nkeys = (size_t)n;
    return ret;

 error:
    while (i-- > 0)
        free(ret[i]);
    free(ret);
    return NULL;
}

static void
mpPyListenerKeysFree(char **keys, size_t nkeys)
{
    size_t i;

    for (i = 0; keys && i < nkeys; i++)
        free(keys[i]);
    free(keys);
}

static int
mpPyListenerInit(mpPyListener *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = { "url", "exchange", "binding_keys", "queue", "max_bytes",
                              "max_depth", "durable", "ssl", "ssl_ca_file", "ssl_cert_file",
                              "ssl_key_file", "ssl_verify", NULL };
    const char *url = NULL;
    const char *exchange = "nova";
    const char *queue = NULL;
    PyObject *keysArg = NULL;
    PyObject *keys = NULL;
    char **bindKeys = NULL;
    size_t nbindKeys = 0;
    Py_ssize_t maxBytes = MP_OSLO_DEFAULT_MAX_BYTES;
    int maxDepth = MP_OSLO_DEFAULT_MAX_DEPTH;
    int durable = 0;
    int ssl = 0;                /* TLS even for amqp:// (the agent's [amqp] ssl) */
    const char *sslCaFile = NULL;
    const char *sslCertFile = NULL;
    const char *sslKeyFile = NULL;
    int sslVerify = 1;
    mpTransportUrl *turl = NULL;
    amqp_connection_state_t conn = NULL;
    char *queueName = NULL;
    int ret = -1;
    size_t i;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|sOznip$pzzzp", kwlist, &url, &exchange,
                                     &keysArg, &queue, &maxBytes, &maxDepth, &durable, &ssl,
                                     &sslCaFile, &sslCertFile, &sslKeyFile, &sslVerify))
        return -1;
    if (mpPyListenerCheckIdle(self) < 0)
        return -1;
    mpPyListenerDisconnect(self, true);   /* __init__ called again */
    if (maxBytes <= 0 || maxDepth <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_bytes and max_depth must be positive");
        return -1;
    }
    if ((sslCertFile && *sslCertFile) != (sslKeyFile && *sslKeyFile)) {
        PyErr_SetString(PyExc_ValueError, "ssl_cert_file and ssl_key_file go together");
        return -1;
    }
    if (!*exchange || (queue && !*queue)) {
        PyErr_SetString(PyExc_ValueError, "exchange and queue must not be empty");
        return -1;
    }
    if (keysArg && (PyUnicode_Check(keysArg) || PyBytes_Check(keysArg))) {
        PyErr_SetString(PyExc_TypeError, "binding_keys must be a sequence of str, not a str");
        return -1;
    }
    if (keysArg)
        keys = PySequence_Fast(keysArg, "binding_keys must be a sequence of str");
    else
        keys = Py_BuildValue("(ss)", "versioned_notifications.info", "notifications.info");
    if (!keys || !(bindKeys = mpPyListenerKeys(keys, &nbindKeys)))
        goto cleanup;
    if (!(turl = mpTransportUrlParse(url))) {
        PyErr_SetString(mpPyError, mpGetLastErrorMessage());
        goto cleanup;
    }
    queueName = queue ? mpStrdup(queue) : mpPyListenerQueueName();

    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    /* oslo's failover: the hosts in order, the first that takes us wins */
    for (i = 0; i < turl->nhosts && !conn; i++) {
        const mpUrlHost *host = &turl->hosts[i];
        mpAmqpConnParams params = {
            .host = host->host,
            .port = host->port,
            .vhost = turl->vhost,
            .user = host->user,
            .password = host->password,
            .ssl = ssl || turl->ssl,
            .sslCaFile = sslCaFile,
            .sslCertFile = sslCertFile,
            .sslKeyFile = sslKeyFile,
            .sslVerify = sslVerify,
            .heartbeatS = 0,    /* nothing reads the socket between get() calls */
            .connectTimeoutS = MP_PY_LISTEN_CONNECT_TIMEOUT_S,
            .exchange = exchange,
            .durable = durable,
        };
        mpAmqpConsumerParams consumer = {
            .queue = queueName,
            .exchange = exchange,
            .bindKeys = (const char **)bindKeys,
            .nbindKeys = nbindKeys,
            .durable = false,
            .exclusive = true,
            .autoDelete = true,
            .maxLength = MP_PY_LISTEN_MAX_LENGTH,
            .prefetch = MP_PY_LISTEN_PREFETCH,
        };

        if ((conn = mpAmqpConnOpen(&params)) &&
            mpAmqpConnSetupConsumer(conn, &consumer) < 0) {
            amqp_destroy_connection(conn);
            conn = NULL;
        }
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (!conn) {
        PyErr_SetString(PyExc_ConnectionError, mpGetLastErrorMessage());
        goto cleanup;
    }
    self->conn = conn;
    free(self->queue);
    self->queue = queueName;
    queueName = NULL;
    self->opts.max_bytes = (size_t)maxBytes;
    self->opts.max_depth = maxDepth;
    ret = 0;

 cleanup:
    free(queueName);
    mpTransportUrlFree(turl);
    mpPyListenerKeysFree(bindKeys, nbindKeys);
    Py_XDECREF(keys);
    return ret;
}

static void
mpPyListenerDealloc(mpPyListener *self)
{
    mpPyListenerDisconnect(self, true);
    free(self->queue);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The error text as one line (the codec's messages quote parts of the body). */
static PyObject *
mpPyOneLine(const char *text)
{
    char *copy = mpStrdup(text);
    PyObject *ret;
    char *p;

    for (p = copy; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    ret = PyUnicode_DecodeUTF8(copy, (Py_ssize_t)strlen(copy), "replace");
    free(copy);
    return ret;
}

/* {"routing_key", "info", "message"} or {"routing_key", "error", "size"} */
static PyObject *
mpPyListenerEntry(const amqp_envelope_t *env, mpOsloMessage *msg, const char *error)
{
    PyObject *d = PyDict_New();

    if (!d)
        return NULL;
    if (mpPyDictSteal(d, "routing_key",
                       PyUnicode_DecodeUTF8(env->routing_key.bytes,
                                            (Py_ssize_t)env->routing_key.len,
                                            "replace")) < 0)
        goto error;
    if (msg) {
        if (mpPyDictSteal(d, "info", mpPyOsloInfoToDict(mpOsloMessageGetInfo(msg))) < 0 ||
            mpPyDictSteal(d, "message", mpPyFromJSON(mpOsloMessageGetJSON(msg))) < 0)
            goto error;
    } else {
        if (mpPyDictSteal(d, "error", mpPyOneLine(error)) < 0 ||
            mpPyDictSteal(d, "size",
                           PyLong_FromSize_t(env->message.body.len)) < 0)
            goto error;
    }
    return d;

 error:
    Py_DECREF(d);
    return NULL;
}

/* get()'s body; timeoutArg is None or a number of seconds. */
static PyObject *
mpPyListenerReceive(mpPyListener *self, PyObject *timeoutArg)
{
    bool forever = true;
    int64_t deadline = 0;
    amqp_envelope_t env;
    mpOsloMessage *msg = NULL;
    char *decodeError = NULL;
    PyObject *ret = NULL;
    bool gotEnvelope = false;
    int rc;

    if (mpPyListenerCheckOpen(self) < 0)
        return NULL;
    if (timeoutArg != Py_None) {
        double t = PyFloat_AsDouble(timeoutArg);

        if (t == -1.0 && PyErr_Occurred())
            return NULL;
        if (!isfinite(t) || t < 0) {
            PyErr_SetString(PyExc_ValueError, "timeout must be None or a number >= 0");
            return NULL;
        }
        forever = false;
        deadline = mpPyNowUs() + (int64_t)(t * 1e6);
    }

    while (1) {
        int64_t slice = MP_PY_LISTEN_SLICE_US;
        struct timeval tv;

        if (!forever) {
            int64_t left = deadline - mpPyNowUs();

            if (left < slice)
                slice = left > 0 ? left : 0;
        }
        tv.tv_sec = (time_t)(slice / 1000000);
        tv.tv_usec = (suseconds_t)(slice % 1000000);
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        rc = mpAmqpConnWaitMessage(self->conn, &env, &tv);
        if (rc == 1) {
            gotEnvelope = true;
            /* decode and ack while the GIL is free; the entry is built after */
            if (!(msg = mpOsloDecode(env.message.body.bytes, env.message.body.len,
                                     &self->opts)))
                decodeError = mpStrdup(mpGetLastErrorMessage());
            if (mpAmqpConnAck(self->conn, env.delivery_tag, false) < 0)
                rc = -1;
        }
        Py_END_ALLOW_THREADS
        self->busy = 0;
        if (rc != 0)
            break;
        if (PyErr_CheckSignals() < 0)
            return NULL;
        if (!forever && mpPyNowUs() >= deadline)
            Py_RETURN_NONE;
    }
    if (rc < 0) {
        /* the link is gone: the broker dropped the exclusive queue with it */
        PyErr_SetString(PyExc_ConnectionError, mpGetLastErrorMessage());
        mpPyListenerDisconnect(self, false);
    } else {
        ret = mpPyListenerEntry(&env, msg, decodeError);
    }
    if (gotEnvelope)
        amqp_destroy_envelope(&env);
    mpOsloMessageFree(msg);
    free(decodeError);
    return ret;
}

static PyObject *
mpPyListenerGet(mpPyListener *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = { "timeout", NULL };
    PyObject *timeoutArg = Py_None;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O", kwlist, &timeoutArg))
        return NULL;
    return mpPyListenerReceive(self, timeoutArg);
}

static PyObject *
mpPyListenerClose(mpPyListener *self, PyObject *unused)
{
    (void)unused;
    if (mpPyListenerCheckIdle(self) < 0)
        return NULL;
    mpPyListenerDisconnect(self, true);
    Py_RETURN_NONE;
}

static PyObject *
mpPyListenerEnter(mpPyListener *self, PyObject *unused)
{
    (void)unused;
    if (mpPyListenerCheckOpen(self) < 0)
        return NULL;
    return Py_NewRef((PyObject *)self);
}

static PyObject *
mpPyListenerExit(mpPyListener *self, PyObject *args)
{
    (void)args;
    if (mpPyListenerCheckIdle(self) < 0)
        return NULL;
    mpPyListenerDisconnect(self, true);
    Py_RETURN_FALSE;
}

static PyObject *
mpPyListenerIter(PyObject *self)
{
    return Py_NewRef(self);
}

/* Blocks for the next message; a closed listener ends the iteration. */
static PyObject *
mpPyListenerNext(mpPyListener *self)
{
    if (!self->conn && !self->busy)
        return NULL;
    return mpPyListenerReceive(self, Py_None);
}

static PyObject *
mpPyListenerGetQueue(mpPyListener *self, void *closure)
{
    (void)closure;
    if (!self->queue)
        Py_RETURN_NONE;
    return PyUnicode_FromString(self->queue);
}

static PyObject *
mpPyListenerGetClosed(mpPyListener *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->conn == NULL);
}

static PyMethodDef mpPyListenerMethods[] = {
    { "get", (PyCFunction)(void (*)(void))mpPyListenerGet, METH_VARARGS | METH_KEYWORDS,
      "get(timeout=None) -> dict | None\n\nWaits (None: for ever) for the next message and"
      " returns {'routing_key', 'info' (as notification_info()), 'message' (the inner oslo"
      " message)}, or for a body the codec rejects {'routing_key', 'error', 'size'}; None"
      " on timeout. Raises ConnectionError when the link to the broker fails." },
    { "close", (PyCFunction)mpPyListenerClose, METH_NOARGS,
      "close()\n\nCloses the connection; the broker deletes the listener's queue." },
    { "__enter__", (PyCFunction)mpPyListenerEnter, METH_NOARGS, NULL },
    { "__exit__", (PyCFunction)mpPyListenerExit, METH_VARARGS, NULL },
    { NULL, NULL, 0, NULL },
};

static PyGetSetDef mpPyListenerGetSet[] = {
    { "queue", (getter)mpPyListenerGetQueue, NULL, "The name of the listener's queue.", NULL },
    { "closed", (getter)mpPyListenerGetClosed, NULL, "True once closed (or the link failed).",
      NULL },
    { NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject mpPyListenerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_migpilot.Listener",
    .tp_basicsize = sizeof(mpPyListener),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Listener(url, exchange='nova', binding_keys=('versioned_notifications.info',"
              " 'notifications.info'), queue=None, max_bytes=DEFAULT_MAX_BYTES,"
              " max_depth=DEFAULT_MAX_DEPTH, durable=False, *, ssl=False, ssl_ca_file=None,"
              " ssl_cert_file=None, ssl_key_file=None, ssl_verify=True)\n\n"
              "Connects to the broker of an oslo transport URL and declares its own exclusive,"
              " auto-deleted queue (migpilot-listen.<random> unless named) bound to"
              " binding_keys on exchange, so it sees a copy of each message and takes none"
              " from other consumers. durable must match the exchange's flag (oslo's"
              " amqp_durable_queues or rabbit_quorum_queue). TLS is used for amqps:// URLs or ssl=True, as the"
              " agent's [amqp] ssl* options: ssl_verify checks the broker's certificate"
              " (against ssl_ca_file, else the system's CAs) and host name. Raises _migpilot.Error for a bad URL and ConnectionError"
              " when no broker host takes the connection. Iterating yields get() results.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)mpPyListenerInit,
    .tp_dealloc = (destructor)mpPyListenerDealloc,
    .tp_iter = mpPyListenerIter,
    .tp_iternext = (iternextfunc)mpPyListenerNext,
    .tp_methods = mpPyListenerMethods,
    .tp_getset = mpPyListenerGetSet,
};

static PyObject *
mpPyResolveTransportUrl(PyObject *self, PyObject *args)
{
    const char *agentUrl = NULL, *notificationsUrl = NULL, *defaultUrl = NULL;
    const char *url;
    mpTransportOrigin origin;

    (void)self;
    if (!PyArg_ParseTuple(args, "zzz:resolve_transport_url", &agentUrl, &notificationsUrl,
                          &defaultUrl))
        return NULL;
    origin = mpTransportUrlResolve(agentUrl, notificationsUrl, defaultUrl, &url);
    if (origin == MP_TRANSPORT_FROM_NONE)
        return Py_BuildValue("(OO)", Py_None, Py_None);
    return Py_BuildValue("(ss)", url, mpTransportOriginSection(origin));
}

static PyMethodDef mpPyAmqpFunctions[] = {
    { "resolve_transport_url", (PyCFunction)mpPyResolveTransportUrl, METH_VARARGS,
      "resolve_transport_url(agent_url, notifications_url, default_url) -> (url, section)\n\n"
      "The bus URL as the agent picks it from the settings as written (None or '' when\n"
      "unset): migpilot.conf [amqp] transport_url, else nova.conf's\n"
      "[oslo_messaging_notifications] one, else its [DEFAULT] one. section is '[amqp]',\n"
      "'[oslo_messaging_notifications]' or '[DEFAULT]'; (None, None) when none is set." },
    { NULL, NULL, 0, NULL },
};

int
mpPyAmqpRegister(PyObject *module)
{
    if (PyType_Ready(&mpPyListenerType) < 0 ||
        PyModule_AddFunctions(module, mpPyAmqpFunctions) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Listener", (PyObject *)&mpPyListenerType);
}
