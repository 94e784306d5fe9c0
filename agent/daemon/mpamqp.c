/*
 * mpamqp.c: the agent's link to nova's bus
 */
#include <libvirt/libvirt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct _mpAmqp {
    const mpConfig *cfg;
    mpTransportUrl *url;
    char *passwordOverride;
    mpAmqpMessageFunc onMessage;
    mpAmqpStateFunc onState;
    void *opaque;

    amqp_connection_state_t consumer;
    amqp_connection_state_t publisher;
    int consumerWatch;       /* libvirt event handle of the consumer's socket, or -1 */
    int reconnectTimer;      /* -1 when none */
    int heartbeatTimer;
    unsigned backoffMs;
    size_t nextHost;
    uint64_t deliveryTag;    /* of the publisher channel's last publish */
    bool connected;
    bool loggedDown;
};

static void mpAmqpScheduleReconnect(mpAmqp *amqp);

static void
mpAmqpDestroyConnection(amqp_connection_state_t *conn)
{
    if (!*conn)
        return;
    /* the link may be dead already: no orderly close, just release it */
    amqp_destroy_connection(*conn);
    *conn = NULL;
}

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
    mpAmqpDestroyConnection(&amqp->consumer);
    mpAmqpDestroyConnection(&amqp->publisher);
    amqp->connected = false;
    if (wasConnected && amqp->onState)
        amqp->onState(false, amqp->opaque);
}

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
        /* the callback may have reset the link (a failed publish): nothing left to ack on;
         * the broker redelivers what was not acknowledged, and reading again is harmless */
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
mpAmqpLinkFailed(mpAmqp *amqp)
{
    MP_ERROR(NULL, "%s; reconnecting", mpGetLastErrorMessage());
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
        mpAmqpLinkFailed(amqp);
        return;
    }
    if (mpAmqpDrain(amqp) < 0)
        mpAmqpLinkFailed(amqp);
}

/* Keeps both links alive: lets rabbitmq-c read the broker's heartbeats and send ours. */
static void
mpAmqpHeartbeat(int timer, void *opaque)
{
    mpAmqp *amqp = opaque;
    struct timeval zero = { 0, 0 };
    amqp_frame_t frame;
    int rc;

    (void)timer;
    if (!amqp->connected)
        return;
    if (mpAmqpDrain(amqp) < 0) {
        mpAmqpLinkFailed(amqp);
        return;
    }
    while ((rc = amqp_simple_wait_frame_noblock(amqp->publisher, &frame, &zero)) ==
           AMQP_STATUS_OK) {
        if (frame.frame_type == AMQP_FRAME_METHOD &&
            (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
             frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
            mpReportError("amqp: publisher: the broker closed the link");
            mpAmqpLinkFailed(amqp);
            return;
        }
    }
    if (rc != AMQP_STATUS_TIMEOUT) {
        mpReportError("amqp: publisher: %s", amqp_error_string2(rc));
        mpAmqpLinkFailed(amqp);
    }
}

static int
mpAmqpConnect(mpAmqp *amqp)
{
    const mpUrlHost *host = &amqp->url->hosts[amqp->nextHost % amqp->url->nhosts];
    amqp_connection_state_t consumer = NULL;
    amqp_connection_state_t publisher = NULL;
    int ret = -1;

    if (!(consumer = mpAmqpOpen(amqp, host)) || mpAmqpSetupConsumer(amqp, consumer) < 0)
        goto cleanup;
    if (!(publisher = mpAmqpOpen(amqp, host)))
        goto cleanup;
    amqp_confirm_select(publisher, MP_AMQP_CHANNEL);
    if (mpAmqpConnCheckReply(amqp_get_rpc_reply(publisher), "amqp: confirm.select") < 0)
        goto cleanup;

    amqp->consumer = consumer;
    amqp->publisher = publisher;
    consumer = publisher = NULL;
    amqp->deliveryTag = 0;
    if ((amqp->consumerWatch = virEventAddHandle(amqp_get_sockfd(amqp->consumer),
                                                 VIR_EVENT_HANDLE_READABLE,
                                                 mpAmqpConsumerReadable, amqp, NULL)) < 0) {
        mpReportError("amqp: cannot watch the consumer socket");
        mpAmqpDisconnect(amqp);
        goto cleanup;
    }
    if (amqp->cfg->heartbeatS > 0) {
        int period = (int)(amqp->cfg->heartbeatS * 1000 / 3);

        if ((amqp->heartbeatTimer = virEventAddTimeout(period, mpAmqpHeartbeat, amqp,
                                                       NULL)) < 0) {
            mpReportError("amqp: cannot add the heartbeat timer to the event loop");
            mpAmqpDisconnect(amqp);
            goto cleanup;
        }
    }
    amqp->connected = true;
    amqp->backoffMs = 0;
    ret = 0;
    MP_INFO(NULL, "amqp: connected to %s:%d, consuming queue %s", host->host, host->port,
            amqp->cfg->queue);

 cleanup:
    if (ret < 0)
        amqp->nextHost++;
    if (consumer)
        amqp_destroy_connection(consumer);
    if (publisher)
        amqp_destroy_connection(publisher);
    return ret;
}

static void
mpAmqpReconnectTimer(int timer, void *opaque)
{
    mpAmqp *amqp = opaque;

    (void)timer;
    virEventRemoveTimeout(amqp->reconnectTimer);
    amqp->reconnectTimer = -1;
    if (mpAmqpConnect(amqp) < 0) {
        /* one line per outage, then quiet retries at debug level */
        if (!amqp->loggedDown)
            MP_ERROR(NULL, "%s; retrying with backoff", mpGetLastErrorMessage());
        else
            MP_DEBUG(NULL, "%s", mpGetLastErrorMessage());
        amqp->loggedDown = true;
        mpAmqpScheduleReconnect(amqp);
        return;
    }
    amqp->loggedDown = false;
    /* the callback may publish (spooled records) */
    if (amqp->onState)
        amqp->onState(true, amqp->opaque);
}

static void
mpAmqpScheduleReconnect(mpAmqp *amqp)
{
    const mpConfig *cfg = amqp->cfg;

    if (amqp->reconnectTimer >= 0)
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

    amqp->cfg = cfg;
    amqp->onMessage = onMessage;
    amqp->onState = onState;
    amqp->opaque = opaque;
    amqp->consumerWatch = -1;
    amqp->reconnectTimer = -1;
    amqp->heartbeatTimer = -1;
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

void
mpAmqpFree(mpAmqp *amqp)
{
    if (!amqp)
        return;
    amqp->onState = NULL;
    mpAmqpDisconnect(amqp);
    if (amqp->reconnectTimer >= 0)
        virEventRemoveTimeout(amqp->reconnectTimer);
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
    if (mpAmqpConnect(amqp) < 0) {
        MP_ERROR(NULL, "%s; retrying with backoff", mpGetLastErrorMessage());
        amqp->loggedDown = true;
        mpAmqpScheduleReconnect(amqp);
        return 0;
    }
    if (amqp->onState)
        amqp->onState(true, amqp->opaque);
    return 0;
}

bool
mpAmqpIsConnected(mpAmqp *amqp)
{
    return amqp->connected;
}

/* Waits for the broker's ack of the last publish; other frames are heartbeats. */
static int
mpAmqpWaitConfirm(mpAmqp *amqp)
{
    struct timeval timeout = { MP_AMQP_CONFIRM_TIMEOUT_S, 0 };
    amqp_frame_t frame;
    int rc;

    while (1) {
        rc = amqp_simple_wait_frame_noblock(amqp->publisher, &frame, &timeout);
        if (rc == AMQP_STATUS_TIMEOUT) {
            mpReportError("amqp: the broker did not confirm a publish within %d s",
                          MP_AMQP_CONFIRM_TIMEOUT_S);
            return -1;
        }
        if (rc != AMQP_STATUS_OK) {
            mpReportError("amqp: publish: %s", amqp_error_string2(rc));
            return -1;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;

            if (ack->delivery_tag == amqp->deliveryTag ||
                (ack->multiple && ack->delivery_tag >= amqp->deliveryTag))
                return 0;
            continue;
        }
        case AMQP_BASIC_NACK_METHOD:
            mpReportError("amqp: the broker refused a publish (nack)");
            return -1;
        case AMQP_BASIC_RETURN_METHOD:
            continue;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            mpReportError("amqp: the broker closed the publishing link");
            return -1;
        default:
            continue;
        }
    }
}

int
mpAmqpPublish(mpAmqp *amqp, const char *routingKey, const char *body)
{
    amqp_basic_properties_t props;
    int rc;

    if (!amqp->connected) {
        mpReportError("amqp: not connected to the broker");
        return -1;
    }
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
                            amqp_cstring_bytes(routingKey), 0, 0, &props,
                            amqp_cstring_bytes(body));
    if (rc != AMQP_STATUS_OK) {
        mpReportError("amqp: publish: %s", amqp_error_string2(rc));
        goto error;
    }
    amqp->deliveryTag++;
    if (mpAmqpWaitConfirm(amqp) < 0)
        goto error;
    return 0;

 error:
    /* the caller logs the error, once, with what it was publishing */
    MP_DEBUG(NULL, "%s; resetting the broker link", mpGetLastErrorMessage());
    mpAmqpDisconnect(amqp);
    mpAmqpScheduleReconnect(amqp);
    return -1;
}
