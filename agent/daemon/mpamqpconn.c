/*
 * mpamqpconn.c: synchronous rabbitmq-c connection steps (see mpamqpconn.h)
 */
#include <time.h>

#include "mpamqpconn.h"
#include "mperror.h"

#define MP_AMQP_CONN_CLOSE_TIMEOUT_S 2

int
mpAmqpConnCheckReply(amqp_rpc_reply_t reply, const char *what)
{
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        mpReportError("%s: no reply from the broker", what);
        return -1;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        mpReportError("%s: %s", what, amqp_error_string2(reply.library_error));
        return -1;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = reply.reply.decoded;

            mpReportError("%s: broker closed the connection: %u %.*s", what, m->reply_code,
                          (int)m->reply_text.len, (char *)m->reply_text.bytes);
        } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = reply.reply.decoded;

            mpReportError("%s: broker closed the channel: %u %.*s", what, m->reply_code,
                          (int)m->reply_text.len, (char *)m->reply_text.bytes);
        } else {
            mpReportError("%s: broker error (method 0x%08x)", what, reply.reply.id);
        }
        return -1;
    }
    mpReportError("%s: unexpected reply", what);
    return -1;
}

amqp_connection_state_t
mpAmqpConnOpen(const mpAmqpConnParams *p)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_connection_state_t ret = NULL;
    struct timeval timeout = { p->connectTimeoutS, 0 };
    amqp_socket_t *sock;
    int rc;

    if (p->ssl) {
        if (!(sock = amqp_ssl_socket_new(conn))) {
            mpReportError("amqp: cannot create a TLS socket");
            goto cleanup;
        }
        if (p->sslCaFile && *p->sslCaFile &&
            (rc = amqp_ssl_socket_set_cacert(sock, p->sslCaFile)) != AMQP_STATUS_OK) {
            mpReportError("amqp: [amqp] ssl_ca_file %s: %s", p->sslCaFile,
                          amqp_error_string2(rc));
            goto cleanup;
        }
        if (p->sslCertFile && *p->sslCertFile &&
            (rc = amqp_ssl_socket_set_key(sock, p->sslCertFile, p->sslKeyFile)) !=
            AMQP_STATUS_OK) {
            mpReportError("amqp: [amqp] ssl_cert_file/ssl_key_file: %s",
                          amqp_error_string2(rc));
            goto cleanup;
        }
        amqp_ssl_socket_set_verify_peer(sock, p->sslVerify);
        amqp_ssl_socket_set_verify_hostname(sock, p->sslVerify);
    } else if (!(sock = amqp_tcp_socket_new(conn))) {
        mpReportError("amqp: cannot create a socket");
        goto cleanup;
    }
    if ((rc = amqp_socket_open_noblock(sock, p->host, p->port, &timeout)) != AMQP_STATUS_OK) {
        mpReportError("amqp: cannot connect to %s:%d: %s", p->host, p->port,
                      amqp_error_string2(rc));
        goto cleanup;
    }
    if (mpAmqpConnCheckReply(amqp_login(conn, p->vhost, 0, 131072, p->heartbeatS,
                                        AMQP_SASL_METHOD_PLAIN, p->user, p->password),
                             "amqp: login") < 0)
        goto cleanup;
    amqp_channel_open(conn, MP_AMQP_CONN_CHANNEL);
    if (mpAmqpConnCheckReply(amqp_get_rpc_reply(conn), "amqp: channel.open") < 0)
        goto cleanup;
    /* as oslo declares it: a different durable flag would close the channel (406) */
    amqp_exchange_declare(conn, MP_AMQP_CONN_CHANNEL, amqp_cstring_bytes(p->exchange),
                          amqp_cstring_bytes("topic"), 0, p->durable, 0, 0,
                          amqp_empty_table);
    if (mpAmqpConnCheckReply(amqp_get_rpc_reply(conn), "amqp: exchange.declare") < 0)
        goto cleanup;
    ret = conn;
    conn = NULL;

 cleanup:
    if (conn)
        amqp_destroy_connection(conn);
    return ret;
}

int
mpAmqpConnSetupConsumer(amqp_connection_state_t conn, const mpAmqpConsumerParams *p)
{
    amqp_table_entry_t args[3];
    amqp_table_t table = { 0, args };
    size_t i;

    if (p->queueType) {
        args[table.num_entries].key = amqp_cstring_bytes("x-queue-type");
        args[table.num_entries].value.kind = AMQP_FIELD_KIND_UTF8;
        args[table.num_entries].value.value.bytes = amqp_cstring_bytes(p->queueType);
        table.num_entries++;
    }
    if (p->expiresMs > 0) {
        args[table.num_entries].key = amqp_cstring_bytes("x-expires");
        args[table.num_entries].value.kind = AMQP_FIELD_KIND_I32;
        args[table.num_entries].value.value.i32 = p->expiresMs;
        table.num_entries++;
    }
    if (p->maxLength > 0) {
        args[table.num_entries].key = amqp_cstring_bytes("x-max-length");
        args[table.num_entries].value.kind = AMQP_FIELD_KIND_I32;
        args[table.num_entries].value.value.i32 = p->maxLength;
        table.num_entries++;
    }
    if (!table.num_entries)
        table = amqp_empty_table;

    amqp_queue_declare(conn, MP_AMQP_CONN_CHANNEL, amqp_cstring_bytes(p->queue), 0,
                       p->durable, p->exclusive, p->autoDelete, table);
    if (mpAmqpConnCheckReply(amqp_get_rpc_reply(conn), "amqp: queue.declare") < 0)
        return -1;
    for (i = 0; i < p->nbindKeys; i++) {
        amqp_queue_bind(conn, MP_AMQP_CONN_CHANNEL, amqp_cstring_bytes(p->queue),
                        amqp_cstring_bytes(p->exchange), amqp_cstring_bytes(p->bindKeys[i]),
                        amqp_empty_table);
        if (mpAmqpConnCheckReply(amqp_get_rpc_reply(conn), "amqp: queue.bind") < 0)
            return -1;
    }
    amqp_basic_qos(conn, MP_AMQP_CONN_CHANNEL, 0, p->prefetch, 0);
    if (mpAmqpConnCheckReply(amqp_get_rpc_reply(conn), "amqp: basic.qos") < 0)
        return -1;
    amqp_basic_consume(conn, MP_AMQP_CONN_CHANNEL, amqp_cstring_bytes(p->queue),
                       amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (mpAmqpConnCheckReply(amqp_get_rpc_reply(conn), "amqp: basic.consume") < 0)
        return -1;
    return 0;
}

/* Handles one out-of-band frame on a consumer (channel or connection close). */
static int
mpAmqpConnOtherFrame(amqp_connection_state_t conn)
{
    struct timeval zero = { 0, 0 };
    amqp_frame_t frame;
    int rc = amqp_simple_wait_frame_noblock(conn, &frame, &zero);

    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    if (rc != AMQP_STATUS_OK) {
        mpReportError("amqp: consumer: %s", amqp_error_string2(rc));
        return -1;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        mpReportError("amqp: consumer: the broker closed the link");
        return -1;
    default:
        return 0;
    }
}

static int64_t
mpAmqpConnNowUs(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
mpAmqpConnWaitMessage(amqp_connection_state_t conn, amqp_envelope_t *env,
                      const struct timeval *timeout)
{
    int64_t deadline = 0;

    if (timeout)
        deadline = mpAmqpConnNowUs() + (int64_t)timeout->tv_sec * 1000000 + timeout->tv_usec;
    while (1) {
        struct timeval left = { 0, 0 };
        amqp_rpc_reply_t res;

        if (timeout) {
            /* other frames (heartbeats, ...) must not extend the wait */
            int64_t us = deadline - mpAmqpConnNowUs();

            if (us > 0) {
                left.tv_sec = (time_t)(us / 1000000);
                left.tv_usec = (suseconds_t)(us % 1000000);
            }
        }
        amqp_maybe_release_buffers(conn);
        res = amqp_consume_message(conn, env, timeout ? &left : NULL, 0);
        if (res.reply_type == AMQP_RESPONSE_NORMAL)
            return 1;
        if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            res.library_error == AMQP_STATUS_TIMEOUT)
            return 0;
        if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            res.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (mpAmqpConnOtherFrame(conn) < 0)
                return -1;
            continue;
        }
        mpAmqpConnCheckReply(res, "amqp: consume");
        return -1;
    }
}

int
mpAmqpConnAck(amqp_connection_state_t conn, uint64_t deliveryTag, bool multiple)
{
    if (amqp_basic_ack(conn, MP_AMQP_CONN_CHANNEL, deliveryTag, multiple) != 0) {
        mpReportError("amqp: cannot acknowledge a message");
        return -1;
    }
    return 0;
}

void
mpAmqpConnClose(amqp_connection_state_t conn)
{
    struct timeval timeout = { MP_AMQP_CONN_CLOSE_TIMEOUT_S, 0 };

    if (!conn)
        return;
    /* best effort: a dead or stuck broker must not hold the caller */
    amqp_set_rpc_timeout(conn, &timeout);
    amqp_channel_close(conn, MP_AMQP_CONN_CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}
