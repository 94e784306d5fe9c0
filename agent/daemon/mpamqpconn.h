/*
 * mpamqpconn.h: synchronous rabbitmq-c connection steps, shared by the agent and the
 * Python listener (no event loop, no libvirt)
 *
 * Open = socket (TCP or TLS) + login + channel MP_AMQP_CONN_CHANNEL + exchange.declare as
 * oslo declares it. Each function that can fail reports one error and returns -1 (or NULL).
 */
#pragma once

#include "mprabbitmq.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#define MP_AMQP_CONN_CHANNEL 1

typedef struct _mpAmqpConnParams mpAmqpConnParams;
struct _mpAmqpConnParams {
    const char *host;
    int port;
    const char *vhost;
    const char *user;
    const char *password;
    bool ssl;
    const char *sslCaFile;      /* NULL or "": none */
    const char *sslCertFile;
    const char *sslKeyFile;
    bool sslVerify;
    int heartbeatS;             /* 0: no heartbeats */
    int connectTimeoutS;
    const char *exchange;       /* declared as a topic exchange */
    bool durable;               /* must match the site's (oslo's amqp_durable_queues) */
};

typedef struct _mpAmqpConsumerParams mpAmqpConsumerParams;
struct _mpAmqpConsumerParams {
    const char *queue;
    const char *exchange;
    const char *const *bindKeys;
    size_t nbindKeys;
    bool durable;
    bool exclusive;
    bool autoDelete;
    const char *queueType;      /* x-queue-type ("quorum"); NULL: the broker's default */
    int32_t expiresMs;          /* x-expires; 0: none */
    int32_t maxLength;          /* x-max-length; 0: none */
    uint16_t prefetch;          /* basic.qos prefetch count; 0: unlimited */
};

/* Turns an RPC reply into one error line prefixed by what; 0 if it was normal. */
int mpAmqpConnCheckReply(amqp_rpc_reply_t reply, const char *what);

/* Connects and logs in to one broker host; NULL with an error. */
amqp_connection_state_t mpAmqpConnOpen(const mpAmqpConnParams *params);

/* Declares and binds the queue, sets qos and starts consuming it (acks required). */
int mpAmqpConnSetupConsumer(amqp_connection_state_t conn, const mpAmqpConsumerParams *params);

/*
 * Waits up to timeout (NULL: for ever; {0,0}: only what is buffered or readable now) for
 * one delivery. Returns 1 with *env filled (the caller acks it and calls
 * amqp_destroy_envelope), 0 on timeout, -1 with an error when the link failed or the
 * broker closed it.
 */
int mpAmqpConnWaitMessage(amqp_connection_state_t conn, amqp_envelope_t *env,
                          const struct timeval *timeout);

/* Acknowledges deliveryTag, and with multiple every earlier unacknowledged delivery. */
int mpAmqpConnAck(amqp_connection_state_t conn, uint64_t deliveryTag, bool multiple);

/* Closes the channel and the connection in order (best effort), then frees it. */
void mpAmqpConnClose(amqp_connection_state_t conn);
