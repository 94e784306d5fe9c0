/*
 * mpamqp.c: the agent's link to nova's bus
 *
 * Two sides, one mutex between them:
 *   the event loop    owns the consumer connection once it is set up (its socket is
 *                     watched, read with zero timeouts), the reconnect and heartbeat
 *                     timers, and the callbacks;
 *   the link thread   owns the publisher connection and runs everything of rabbitmq-c
 *                     that blocks: connect + login + declarations of both connections,
 *                     publish + confirm, the publisher's heartbeats.
 * The loop hands the thread jobs (connect, publish) in one FIFO; the thread hands each job
 * back as a result, in the same order, through a second list and an eventfd the loop
 * watches. Every publish of a link thus has its result before the next connection's, so a
 * record the loop spools and publishes is either confirmed (and removed) or failed (and
 * kept for the spool flush) before that flush runs.
 *
 * gen numbers links: each connect request takes a new one and a reset by the loop another,
 * so the thread drops a publisher the loop no longer wants and fails at once the publishes
 * queued for it instead of waiting out their deadlines one by one.
 */
#include <errno.h>
#include <libvirt/libvirt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mpalloc.h"
#include "mpamqp.h"
#include "mpamqpconn.h"
#include "mperror.h"
#include "mplog.h"
#include "mprabbitmq.h"
#include "mpurl.h"

#define MP_AMQP_CHANNEL MP_AMQP_CONN_CHANNEL
#define MP_AMQP_CONNECT_TIMEOUT_S 3
#define MP_AMQP_CONFIRM_TIMEOUT_S 5
/* messages in flight to the consumer, and how many are acknowledged at once (half of them,
 * so the broker's window never runs dry while a batch is being read) */
#define MP_AMQP_PREFETCH 400
#define MP_AMQP_ACK_BATCH (MP_AMQP_PREFETCH / 2)
/* Bound the agent's own queue, classic or quorum: it is not auto-deleted, so that messages
 * survive a short restart, but a host whose agent is gone for good must not grow it
 * forever, nor keep it (x-expires counts from the last consumer). */
#define MP_AMQP_QUEUE_EXPIRES_MS 3600000
#define MP_AMQP_QUEUE_MAX_LENGTH 10000
#define MP_AMQP_ERROR_MAX 1024

typedef enum {
    MP_AMQP_JOB_CONNECT,
    MP_AMQP_JOB_PUBLISH,
    MP_AMQP_JOB_LINK_LOST,      /* made by the thread: its publisher failed while idle */
} mpAmqpJobKind;

typedef struct _mpAmqpJob mpAmqpJob;
struct _mpAmqpJob {
    mpAmqpJob *next;
    mpAmqpJobKind kind;
    uint64_t gen;
    /* connect: the host; its result: the consumer, set up, for the loop */
    size_t host;
    amqp_connection_state_t consumer;
    /* publish */
    char *routingKey;
    char *body;
    mpAmqpDoneFunc done;
    void *data;
    /* the result */
    int status;                 /* 0 done, -1 failed (error) */
    bool resetLink;             /* failed on the link itself: the loop resets it */
    char error[MP_AMQP_ERROR_MAX];
};

typedef struct {
    mpAmqpJob *head;
    mpAmqpJob *tail;
} mpAmqpJobList;

struct _mpAmqp {
    const mpConfig *cfg;
    mpTransportUrl *url;
    char *passwordOverride;
    mpAmqpMessageFunc onMessage;
    mpAmqpStateFunc onState;
    void *opaque;

    /* the event loop's */
    amqp_connection_state_t consumer;
    int consumerWatch;       /* libvirt event handle of the consumer's socket, or -1 */
    int reconnectTimer;      /* -1 when none */
    int heartbeatTimer;
    int resultWatch;         /* of resultFd */
    unsigned backoffMs;
    size_t nextHost;
    bool connecting;         /* a connect job is out */
    bool connected;
    bool loggedDown;

    /* the link thread's */
    amqp_connection_state_t publisher;
    uint64_t publisherGen;
    uint64_t deliveryTag;    /* of the publisher channel's last publish */

    /* shared, under lock */
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* the thread: a job, a new gen, quit */
    bool threadStarted;
    pthread_t thread;
    mpAmqpJobList jobs;
    mpAmqpJobList results;
    uint64_t gen;
    bool quit;
    int busyFd[2];           /* sockets the thread may block on: shut down to stop it */
    int resultFd;            /* eventfd: results are waiting */
};

/* ---- both sides ---- */

static int64_t
mpAmqpNowUs(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
mpAmqpJobListPush(mpAmqpJobList *list, mpAmqpJob *job)
{
    job->next = NULL;
    if (list->tail)
        list->tail->next = job;
    else
        list->head = job;
    list->tail = job;
}

static mpAmqpJob *
mpAmqpJobListPop(mpAmqpJobList *list)
{
    mpAmqpJob *job = list->head;

    if (job && !(list->head = job->next))
        list->tail = NULL;
    return job;
}

static void
mpAmqpJobFree(mpAmqpJob *job)
{
    if (!job)
        return;
    free(job->routingKey);
    free(job->body);
    free(job);
}

/* Releases a connection without an orderly close (the link may be dead) and without
 * lingering: frames still unsent, an unconfirmed publish among them, must not reach the
 * broker later from the kernel's buffers after the record was republished. */
static void
mpAmqpAbort(amqp_connection_state_t conn)
{
    struct linger now = { 1, 0 };
    int fd;

    if (!conn)
        return;
    /* best effort: without it the socket is only closed normally */
    if ((fd = amqp_get_sockfd(conn)) >= 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
    amqp_destroy_connection(conn);
}

/* ---- the link thread ---- */

/* Logs in to one broker host; the caller declares what it needs on channel 1. */
static amqp_connection_state_t
mpAmqpOpen(mpAmqp *amqp, const mpUrlHost *host)
{
    const mpConfig *cfg = amqp->cfg;
    mpAmqpConnParams params = {
        .host = host->host,
        .port = host->port,
        .vhost = amqp->url->vhost,
        .user = host->user,
        .password = amqp->passwordOverride ? amqp->passwordOverride : host->password,
        .ssl = cfg->ssl || amqp->url->ssl,
        .sslCaFile = cfg->sslCaFile,
        .sslCertFile = cfg->sslCertFile,
        .sslKeyFile = cfg->sslKeyFile,
        .sslVerify = cfg->sslVerify,
        .heartbeatS = (int)cfg->heartbeatS,
        .connectTimeoutS = MP_AMQP_CONNECT_TIMEOUT_S,
        .exchange = cfg->exchange,
        .durable = cfg->durable,
    };

    return mpAmqpConnOpen(&params);
}

static int
mpAmqpSetupConsumer(mpAmqp *amqp, amqp_connection_state_t conn)
{
    const mpConfig *cfg = amqp->cfg;
    mpAmqpConsumerParams params = {
        .queue = cfg->queue,
        .exchange = cfg->exchange,
        .bindKeys = (const char *const *)cfg->bindKeys,
        .nbindKeys = cfg->nbindKeys,
        /* a quorum queue is durable, never exclusive nor auto-deleted */
        .durable = cfg->durable || cfg->quorum,
        .exclusive = false,
        .autoDelete = false,
        .queueType = cfg->quorum ? "quorum" : NULL,
        .expiresMs = MP_AMQP_QUEUE_EXPIRES_MS,
        .maxLength = MP_AMQP_QUEUE_MAX_LENGTH,
        .prefetch = MP_AMQP_PREFETCH,
    };

    return mpAmqpConnSetupConsumer(conn, &params);
}

/* Marks (fd >= 0) or clears the socket slot the thread may block on, for mpAmqpFree. */
static void
mpAmqpThreadBusy(mpAmqp *amqp, int slot, amqp_connection_state_t conn)
{
    pthread_mutex_lock(&amqp->lock);
    amqp->busyFd[slot] = conn ? amqp_get_sockfd(conn) : -1;
    /* stopping already: do not start blocking on it */
    if (amqp->quit && amqp->busyFd[slot] >= 0)
        shutdown(amqp->busyFd[slot], SHUT_RDWR);
    pthread_mutex_unlock(&amqp->lock);
}

static void
mpAmqpThreadDropPublisher(mpAmqp *amqp)
{
    if (!amqp->publisher)
        return;
    mpAmqpThreadBusy(amqp, 1, NULL);
    mpAmqpAbort(amqp->publisher);
    amqp->publisher = NULL;
    amqp->publisherGen = 0;
}

/* Both connections to the job's host: the consumer goes back to the loop in the job.
 * mpAmqpFree can cut short every step but the TCP connects themselves (bounded by
 * MP_AMQP_CONNECT_TIMEOUT_S): their sockets are not known before they are open. */
static int
mpAmqpThreadConnect(mpAmqp *amqp, mpAmqpJob *job)
{
    const mpUrlHost *host = &amqp->url->hosts[job->host % amqp->url->nhosts];
    amqp_connection_state_t consumer = NULL;
    amqp_connection_state_t publisher = NULL;
    int ret = -1;

    mpAmqpThreadDropPublisher(amqp);
    if (!(consumer = mpAmqpOpen(amqp, host)))
        goto cleanup;
    mpAmqpThreadBusy(amqp, 0, consumer);
    if (mpAmqpSetupConsumer(amqp, consumer) < 0)
        goto cleanup;
    if (!(publisher = mpAmqpOpen(amqp, host)))
        goto cleanup;
    mpAmqpThreadBusy(amqp, 1, publisher);
    amqp_confirm_select(publisher, MP_AMQP_CHANNEL);
    if (mpAmqpConnCheckReply(amqp_get_rpc_reply(publisher), "amqp: confirm.select") < 0)
        goto cleanup;

    amqp->publisher = publisher;
    amqp->publisherGen = job->gen;
    amqp->deliveryTag = 0;
    job->consumer = consumer;
    consumer = publisher = NULL;
    ret = 0;

 cleanup:
    mpAmqpThreadBusy(amqp, 0, NULL);
    if (publisher) {
        mpAmqpThreadBusy(amqp, 1, NULL);
        mpAmqpAbort(publisher);
    }
    mpAmqpAbort(consumer);
    return ret;
}

/* Handles the frames the publisher has now (heartbeats, a close); lets rabbitmq-c send
 * ours. -1 with an error when the link failed. */
static int
mpAmqpThreadService(mpAmqp *amqp)
{
    struct timeval zero = { 0, 0 };
    amqp_frame_t frame;
    int rc;

    while ((rc = amqp_simple_wait_frame_noblock(amqp->publisher, &frame, &zero)) ==
           AMQP_STATUS_OK) {
        if (frame.frame_type == AMQP_FRAME_METHOD &&
            (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
             frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
            mpReportError("amqp: publisher: the broker closed the link");
            return -1;
        }
    }
    amqp_maybe_release_buffers(amqp->publisher);
    if (rc != AMQP_STATUS_TIMEOUT) {
        mpReportError("amqp: publisher: %s", amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

/* Waits for the broker's ack of the last publish until one deadline, set once: other
 * frames (heartbeats) do not extend it. */
static int
mpAmqpThreadWaitConfirm(mpAmqp *amqp)
{
    int64_t deadline = mpAmqpNowUs() + (int64_t)MP_AMQP_CONFIRM_TIMEOUT_S * 1000000;
    amqp_frame_t frame;
    int ret = -1;
    int rc;

    while (1) {
        int64_t us = deadline - mpAmqpNowUs();
        struct timeval left;

        if (us <= 0) {
            mpReportError("amqp: the broker did not confirm a publish within %d s",
                          MP_AMQP_CONFIRM_TIMEOUT_S);
            goto cleanup;
        }
        left.tv_sec = (time_t)(us / 1000000);
        left.tv_usec = (suseconds_t)(us % 1000000);
        rc = amqp_simple_wait_frame_noblock(amqp->publisher, &frame, &left);
        if (rc == AMQP_STATUS_TIMEOUT)
            continue;
        if (rc != AMQP_STATUS_OK) {
            mpReportError("amqp: publish: %s", amqp_error_string2(rc));
            goto cleanup;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;

            if (ack->delivery_tag == amqp->deliveryTag ||
                (ack->multiple && ack->delivery_tag >= amqp->deliveryTag)) {
                ret = 0;
                goto cleanup;
            }
            continue;
        }
        case AMQP_BASIC_NACK_METHOD:
            mpReportError("amqp: the broker refused a publish (nack)");
            goto cleanup;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            mpReportError("amqp: the broker closed the publishing link");
            goto cleanup;
        default:
            /* basic.return and others: not the confirm */
            continue;
        }
    }

 cleanup:
    amqp_maybe_release_buffers(amqp->publisher);
    return ret;
}

static int
mpAmqpThreadPublish(mpAmqp *amqp, mpAmqpJob *job)
{
    amqp_basic_properties_t props;
    int rc;

    /* the properties oslo.messaging (kombu) sends */
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
        AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_PRIORITY_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.content_encoding = amqp_cstring_bytes("utf-8");
    props.delivery_mode = 2;
    props.priority = 0;
    rc = amqp_basic_publish(amqp->publisher, MP_AMQP_CHANNEL,
                            amqp_cstring_bytes(amqp->cfg->exchange),
                            amqp_cstring_bytes(job->routingKey), 0, 0, &props,
                            amqp_cstring_bytes(job->body));
    if (rc != AMQP_STATUS_OK) {
        mpReportError("amqp: publish: %s", amqp_error_string2(rc));
        return -1;
    }
    amqp->deliveryTag++;
    return mpAmqpThreadWaitConfirm(amqp);
}

static void
mpAmqpThreadFail(mpAmqpJob *job, bool resetLink)
{
    job->status = -1;
    job->resetLink = resetLink;
    snprintf(job->error, sizeof(job->error), "%s", mpGetLastErrorMessage());
}

/* Runs one job without the lock; gen is the loop's current link at its start. */
static void
mpAmqpThreadRun(mpAmqp *amqp, mpAmqpJob *job, uint64_t gen)
{
    job->status = 0;
    switch (job->kind) {
    case MP_AMQP_JOB_CONNECT:
        if (job->gen != gen) {
            mpReportError("amqp: connection abandoned");
            mpAmqpThreadFail(job, false);
        } else if (mpAmqpThreadConnect(amqp, job) < 0) {
            mpAmqpThreadFail(job, false);
        }
        break;
    case MP_AMQP_JOB_PUBLISH:
        if (!amqp->publisher || job->gen != amqp->publisherGen || job->gen != gen) {
            /* queued for a link that failed or was reset meanwhile: not tried */
            mpReportError("amqp: not published: the broker link was reset");
            mpAmqpThreadFail(job, false);
        } else if (mpAmqpThreadPublish(amqp, job) < 0) {
            /* no later publish waits on this link: they fail at once until the next */
            mpAmqpThreadFail(job, true);
            mpAmqpThreadDropPublisher(amqp);
        }
        break;
    case MP_AMQP_JOB_LINK_LOST:
        break;
    }
}

/* With the lock held: hands job back to the loop. */
static void
mpAmqpThreadPost(mpAmqp *amqp, mpAmqpJob *job)
{
    uint64_t one = 1;
    ssize_t n;

    mpAmqpJobListPush(&amqp->results, job);
    /* cannot fail short of a counter overflow; the loop drains the whole list anyway */
    n = write(amqp->resultFd, &one, sizeof(one));
    (void)n;
}

static void *
mpAmqpThread(void *opaque)
{
    mpAmqp *amqp = opaque;
    int64_t periodUs = amqp->cfg->heartbeatS > 0 ?
        (int64_t)amqp->cfg->heartbeatS * 1000000 / 3 : 0;
    int64_t nextService = 0;

    pthread_mutex_lock(&amqp->lock);
    while (!amqp->quit) {
        mpAmqpJob *job;

        if (amqp->publisher && amqp->publisherGen != amqp->gen) {
            /* the loop reset the link (the consumer failed) or asked for a new one */
            pthread_mutex_unlock(&amqp->lock);
            mpAmqpThreadDropPublisher(amqp);
            pthread_mutex_lock(&amqp->lock);
            continue;
        }
        if ((job = mpAmqpJobListPop(&amqp->jobs))) {
            uint64_t gen = amqp->gen;

            pthread_mutex_unlock(&amqp->lock);
            mpAmqpThreadRun(amqp, job, gen);
            nextService = mpAmqpNowUs() + periodUs;
            pthread_mutex_lock(&amqp->lock);
            mpAmqpThreadPost(amqp, job);
            continue;
        }
        if (amqp->publisher && periodUs > 0) {
            int64_t now = mpAmqpNowUs();

            if (now >= nextService) {
                uint64_t gen = amqp->publisherGen;

                pthread_mutex_unlock(&amqp->lock);
                if (mpAmqpThreadService(amqp) < 0) {
                    job = mpAlloc0(sizeof(*job));
                    job->kind = MP_AMQP_JOB_LINK_LOST;
                    job->gen = gen;
                    mpAmqpThreadFail(job, true);
                    mpAmqpThreadDropPublisher(amqp);
                }
                nextService = mpAmqpNowUs() + periodUs;
                pthread_mutex_lock(&amqp->lock);
                if (job)
                    mpAmqpThreadPost(amqp, job);
            } else {
                /* the condition variable's clock is CLOCK_MONOTONIC, as mpAmqpNowUs */
                struct timespec until = { (time_t)(nextService / 1000000),
                                          (long)(nextService % 1000000) * 1000 };

                pthread_cond_timedwait(&amqp->wake, &amqp->lock, &until);
            }
            continue;
        }
        pthread_cond_wait(&amqp->wake, &amqp->lock);
    }
    pthread_mutex_unlock(&amqp->lock);
    mpAmqpThreadDropPublisher(amqp);
    return NULL;
}

/* ---- the event loop ---- */

static void mpAmqpScheduleReconnect(mpAmqp *amqp);

/* Hands a job to the thread; the caller holds no lock. */
static void
mpAmqpSubmit(mpAmqp *amqp, mpAmqpJob *job, bool newGen)
{
    pthread_mutex_lock(&amqp->lock);
    if (newGen)
        amqp->gen++;
    job->gen = amqp->gen;
    mpAmqpJobListPush(&amqp->jobs, job);
    pthread_cond_signal(&amqp->wake);
    pthread_mutex_unlock(&amqp->lock);
}

/* Makes the thread drop its publisher and fail what was queued for it. */
static void
mpAmqpResetPublisher(mpAmqp *amqp)
{
    pthread_mutex_lock(&amqp->lock);
    amqp->gen++;
    pthread_cond_signal(&amqp->wake);
    pthread_mutex_unlock(&amqp->lock);
}

/* Drops the consumer and makes the thread drop the publisher (at once, or after the
 * publish it is waiting on, whose result still comes back). */
static void
mpAmqpDisconnect(mpAmqp *amqp)
{
    bool wasConnected = amqp->connected;

    if (amqp->consumerWatch >= 0) {
        virEventRemoveHandle(amqp->consumerWatch);
        amqp->consumerWatch = -1;
    }
    if (amqp->heartbeatTimer >= 0) {
        virEventRemoveTimeout(amqp->heartbeatTimer);
        amqp->heartbeatTimer = -1;
    }
    mpAmqpAbort(amqp->consumer);
    amqp->consumer = NULL;
    if (wasConnected)
        mpAmqpResetPublisher(amqp);
    amqp->connected = false;
    if (wasConnected && amqp->onState)
        amqp->onState(false, amqp->opaque);
}

/* Drains every complete message the consumer has buffered or can read now. Messages are
 * acknowledged in batches (one frame for many): a busy nova exchange sends thousands a
 * second, nearly all of them unrelated, and a frame per message would dominate. */
static int
mpAmqpDrain(mpAmqp *amqp)
{
    int budget = 1000; /* yield to the rest of the loop now and then */
    uint64_t unacked = 0;
    int pending = 0;

    while (amqp->consumer && budget-- > 0) {
        struct timeval zero = { 0, 0 };
        amqp_envelope_t env;
        char key[256];
        int rc = mpAmqpConnWaitMessage(amqp->consumer, &env, &zero);

        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        snprintf(key, sizeof(key), "%.*s", (int)env.routing_key.len,
                 (char *)env.routing_key.bytes);
        if (amqp->onMessage)
            amqp->onMessage(key, env.message.body.bytes, env.message.body.len, amqp->opaque);
        unacked = env.delivery_tag;
        pending++;
        amqp_destroy_envelope(&env);
        /* the callback may have reset the link: nothing left to ack on; the broker
         * redelivers what was not acknowledged, and reading again is harmless */
        if (!amqp->consumer)
            return 0;
        if (pending >= MP_AMQP_ACK_BATCH) {
            if (mpAmqpConnAck(amqp->consumer, unacked, true) < 0)
                return -1;
            pending = 0;
        }
    }
    if (pending && amqp->consumer && mpAmqpConnAck(amqp->consumer, unacked, true) < 0)
        return -1;
    return 0;
}

static void
mpAmqpLinkFailed(mpAmqp *amqp, const char *error)
{
    MP_ERROR(NULL, "%s; reconnecting", error);
    mpAmqpDisconnect(amqp);
    mpAmqpScheduleReconnect(amqp);
}

static void
mpAmqpConsumerReadable(int watch, int fd, int events, void *opaque)
{
    mpAmqp *amqp = opaque;

    (void)watch;
    (void)fd;
    if (events & (VIR_EVENT_HANDLE_ERROR | VIR_EVENT_HANDLE_HANGUP) &&
        !(events & VIR_EVENT_HANDLE_READABLE)) {
        mpReportError("amqp: consumer: connection lost");
        mpAmqpLinkFailed(amqp, mpGetLastErrorMessage());
        return;
    }
    if (mpAmqpDrain(amqp) < 0)
        mpAmqpLinkFailed(amqp, mpGetLastErrorMessage());
}

/* Keeps the consumer alive: lets rabbitmq-c read the broker's heartbeats and send ours
 * (the link thread does the same for the publisher). */
static void
mpAmqpHeartbeat(int timer, void *opaque)
{
    mpAmqp *amqp = opaque;

    (void)timer;
    if (amqp->connected && mpAmqpDrain(amqp) < 0)
        mpAmqpLinkFailed(amqp, mpGetLastErrorMessage());
}

/* The thread connected both: the loop takes the consumer. */
static int
mpAmqpConnected(mpAmqp *amqp, mpAmqpJob *job)
{
    const mpUrlHost *host = &amqp->url->hosts[job->host % amqp->url->nhosts];

    amqp->consumer = job->consumer;
    job->consumer = NULL;
    if ((amqp->consumerWatch = virEventAddHandle(amqp_get_sockfd(amqp->consumer),
                                                 VIR_EVENT_HANDLE_READABLE,
                                                 mpAmqpConsumerReadable, amqp, NULL)) < 0) {
        mpReportError("amqp: cannot watch the consumer socket");
        return -1;
    }
    if (amqp->cfg->heartbeatS > 0) {
        int period = (int)(amqp->cfg->heartbeatS * 1000 / 3);

        if ((amqp->heartbeatTimer = virEventAddTimeout(period, mpAmqpHeartbeat, amqp,
                                                       NULL)) < 0) {
            mpReportError("amqp: cannot add the heartbeat timer to the event loop");
            return -1;
        }
    }
    amqp->connected = true;
    amqp->backoffMs = 0;
    amqp->loggedDown = false;
    MP_INFO(NULL, "amqp: connected to %s:%d, consuming queue %s", host->host, host->port,
            amqp->cfg->queue);
    return 0;
}

static void
mpAmqpConnectDone(mpAmqp *amqp, mpAmqpJob *job)
{
    amqp->connecting = false;
    if (job->status == 0) {
        if (mpAmqpConnected(amqp, job) == 0) {
            /* the callback may publish (spooled records) */
            if (amqp->onState)
                amqp->onState(true, amqp->opaque);
            return;
        }
        /* the loop could not take the link; nothing was announced (not connected yet) */
        snprintf(job->error, sizeof(job->error), "%s", mpGetLastErrorMessage());
        mpAmqpDisconnect(amqp);
        mpAmqpResetPublisher(amqp);
    }
    amqp->nextHost++;
    /* one line per outage, then quiet retries at debug level */
    if (!amqp->loggedDown)
        MP_ERROR(NULL, "%s; retrying with backoff", job->error);
    else
        MP_DEBUG(NULL, "%s", job->error);
    amqp->loggedDown = true;
    mpAmqpScheduleReconnect(amqp);
}

static void
mpAmqpResult(mpAmqp *amqp, mpAmqpJob *job)
{
    switch (job->kind) {
    case MP_AMQP_JOB_CONNECT:
        mpAmqpConnectDone(amqp, job);
        break;
    case MP_AMQP_JOB_PUBLISH:
        /* the caller logs a failure, once, with what it was publishing */
        if (job->status < 0 && job->resetLink && job->gen == amqp->gen && amqp->connected) {
            size_t len = strlen(job->error);

            snprintf(job->error + len, sizeof(job->error) - len,
                     "; resetting the broker link");
            mpAmqpDisconnect(amqp);
            mpAmqpScheduleReconnect(amqp);
        }
        job->done(job->status == 0, job->status == 0 ? NULL : job->error, job->data);
        break;
    case MP_AMQP_JOB_LINK_LOST:
        if (job->gen == amqp->gen && amqp->connected)
            mpAmqpLinkFailed(amqp, job->error);
        break;
    }
}

static void
mpAmqpResultsReadable(int watch, int fd, int events, void *opaque)
{
    mpAmqp *amqp = opaque;
    mpAmqpJobList results;
    mpAmqpJob *job;
    uint64_t count;
    ssize_t n;

    (void)watch;
    (void)events;
    /* EAGAIN: a wakeup already consumed; the list is what counts */
    n = read(fd, &count, sizeof(count));
    (void)n;
    pthread_mutex_lock(&amqp->lock);
    results = amqp->results;
    amqp->results.head = amqp->results.tail = NULL;
    pthread_mutex_unlock(&amqp->lock);
    while ((job = mpAmqpJobListPop(&results))) {
        mpAmqpResult(amqp, job);
        mpAmqpJobFree(job);
    }
}

static void
mpAmqpReconnectTimer(int timer, void *opaque)
{
    mpAmqp *amqp = opaque;
    mpAmqpJob *job = mpAlloc0(sizeof(*job));

    (void)timer;
    virEventRemoveTimeout(amqp->reconnectTimer);
    amqp->reconnectTimer = -1;
    job->kind = MP_AMQP_JOB_CONNECT;
    job->host = amqp->nextHost;
    amqp->connecting = true;
    mpAmqpSubmit(amqp, job, true);
}

static void
mpAmqpScheduleReconnect(mpAmqp *amqp)
{
    const mpConfig *cfg = amqp->cfg;

    if (amqp->reconnectTimer >= 0 || amqp->connecting)
        return;
    amqp->backoffMs = amqp->backoffMs ? amqp->backoffMs * 2 : cfg->reconnectMinMs;
    if (amqp->backoffMs > cfg->reconnectMaxMs)
        amqp->backoffMs = cfg->reconnectMaxMs;
    amqp->reconnectTimer = virEventAddTimeout((int)amqp->backoffMs, mpAmqpReconnectTimer,
                                              amqp, NULL);
}

mpAmqp *
mpAmqpNew(const mpConfig *cfg, mpAmqpMessageFunc onMessage, mpAmqpStateFunc onState,
          void *opaque)
{
    mpAmqp *amqp = mpAlloc0(sizeof(*amqp));
    mpAmqp *ret = NULL;
    pthread_condattr_t attr;

    amqp->cfg = cfg;
    amqp->onMessage = onMessage;
    amqp->onState = onState;
    amqp->opaque = opaque;
    amqp->consumerWatch = -1;
    amqp->reconnectTimer = -1;
    amqp->heartbeatTimer = -1;
    amqp->resultWatch = -1;
    amqp->busyFd[0] = amqp->busyFd[1] = -1;
    pthread_mutex_init(&amqp->lock, NULL);
    /* the thread's timed waits are monotonic, like every deadline here */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&amqp->wake, &attr);
    pthread_condattr_destroy(&attr);
    if ((amqp->resultFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        mpReportError("amqp: eventfd: %s", strerror(errno));
        goto cleanup;
    }
    if (!cfg->transportUrl) {
        mpReportError("[amqp] transport_url: not set");
        goto cleanup;
    }
    if (!(amqp->url = mpTransportUrlParse(cfg->transportUrl)))
        goto cleanup;
    if (cfg->passwordFile && *cfg->passwordFile &&
        !(amqp->passwordOverride = mpConfigReadPassword(cfg)))
        goto cleanup;
    ret = amqp;
    amqp = NULL;

 cleanup:
    mpAmqpFree(amqp);
    return ret;
}

/* After the thread ended: every job still here ends (a publish with its result). */
static void
mpAmqpFreeJobs(mpAmqpJobList *list)
{
    mpAmqpJob *job;

    while ((job = mpAmqpJobListPop(list))) {
        if (job->kind == MP_AMQP_JOB_PUBLISH)
            job->done(job->status == 0, job->status == 0 ? NULL : job->error, job->data);
        mpAmqpAbort(job->consumer);
        mpAmqpJobFree(job);
    }
}

void
mpAmqpFree(mpAmqp *amqp)
{
    mpAmqpJob *job;

    if (!amqp)
        return;
    amqp->onState = NULL;
    mpAmqpDisconnect(amqp);
    if (amqp->reconnectTimer >= 0)
        virEventRemoveTimeout(amqp->reconnectTimer);
    if (amqp->threadStarted) {
        int i;

        pthread_mutex_lock(&amqp->lock);
        amqp->quit = true;
        /* a connect, an RPC or a confirm wait in progress returns now */
        for (i = 0; i < 2; i++) {
            if (amqp->busyFd[i] >= 0)
                shutdown(amqp->busyFd[i], SHUT_RDWR);
        }
        pthread_cond_signal(&amqp->wake);
        pthread_mutex_unlock(&amqp->lock);
        pthread_join(amqp->thread, NULL);
    }
    /* results first: they are older than the jobs never started */
    mpAmqpFreeJobs(&amqp->results);
    for (job = amqp->jobs.head; job; job = job->next) {
        job->status = -1;
        snprintf(job->error, sizeof(job->error), "amqp: not published: the agent is stopping");
    }
    mpAmqpFreeJobs(&amqp->jobs);
    if (amqp->resultWatch >= 0)
        virEventRemoveHandle(amqp->resultWatch);
    if (amqp->resultFd >= 0)
        close(amqp->resultFd);
    pthread_cond_destroy(&amqp->wake);
    pthread_mutex_destroy(&amqp->lock);
    mpTransportUrlFree(amqp->url);
    if (amqp->passwordOverride) {
        explicit_bzero(amqp->passwordOverride, strlen(amqp->passwordOverride));
        free(amqp->passwordOverride);
    }
    free(amqp);
}

int
mpAmqpStart(mpAmqp *amqp)
{
    mpAmqpJob *job;
    int rc;

    if ((amqp->resultWatch = virEventAddHandle(amqp->resultFd, VIR_EVENT_HANDLE_READABLE,
                                               mpAmqpResultsReadable, amqp, NULL)) < 0) {
        mpReportError("amqp: cannot watch the link thread's results");
        return -1;
    }
    if ((rc = pthread_create(&amqp->thread, NULL, mpAmqpThread, amqp)) != 0) {
        mpReportError("amqp: cannot start the link thread: %s", strerror(rc));
        return -1;
    }
    amqp->threadStarted = true;
    job = mpAlloc0(sizeof(*job));
    job->kind = MP_AMQP_JOB_CONNECT;
    job->host = amqp->nextHost;
    amqp->connecting = true;
    mpAmqpSubmit(amqp, job, true);
    return 0;
}

bool
mpAmqpIsConnected(mpAmqp *amqp)
{
    return amqp->connected;
}

int
mpAmqpPublish(mpAmqp *amqp, const char *routingKey, const char *body,
              mpAmqpDoneFunc done, void *data)
{
    mpAmqpJob *job;

    if (!amqp->connected) {
        mpReportError("amqp: not connected to the broker");
        return -1;
    }
    job = mpAlloc0(sizeof(*job));
    job->kind = MP_AMQP_JOB_PUBLISH;
    job->routingKey = mpStrdup(routingKey);
    job->body = mpStrdup(body);
    job->done = done;
    job->data = data;
    mpAmqpSubmit(amqp, job, false);
    return 0;
}
