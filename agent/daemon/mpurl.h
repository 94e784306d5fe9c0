/*
 * mpurl.h: oslo.messaging transport URLs (rabbit://user:pass@host:port,host2/vhost?opts)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *user;
    char *password;
    char *host;
    int port;
} mpUrlHost;

typedef struct _mpTransportUrl mpTransportUrl;
struct _mpTransportUrl {
    mpUrlHost *hosts;   /* tried in order; oslo fails over the same way */
    size_t nhosts;
    char *vhost;
    bool ssl;           /* amqps://, or ?ssl=1 */
};

/* NULL with an error naming the problem; passwords never appear in errors. */
mpTransportUrl *mpTransportUrlParse(const char *url);
void mpTransportUrlFree(mpTransportUrl *url);

/* Where the bus URL comes from, in the order the agent (and oslo.messaging) looks. */
typedef enum {
    MP_TRANSPORT_FROM_NONE = 0,
    MP_TRANSPORT_FROM_AGENT,                /* migpilot.conf [amqp] transport_url */
    MP_TRANSPORT_FROM_NOVA_NOTIFICATIONS,   /* nova.conf [oslo_messaging_notifications] */
    MP_TRANSPORT_FROM_NOVA_DEFAULT,         /* nova.conf [DEFAULT] */
} mpTransportOrigin;

/*
 * The notification bus's transport_url from the settings as written (NULL or "" when
 * unset): the agent's own, else nova.conf's [oslo_messaging_notifications] one, else its
 * [DEFAULT] one, as oslo.messaging picks the notification transport. *url is one of the
 * arguments (NULL with MP_TRANSPORT_FROM_NONE). The files are the caller's to read.
 */
mpTransportOrigin mpTransportUrlResolve(const char *agentUrl, const char *novaNotificationsUrl,
                                        const char *novaDefaultUrl, const char **url);

/* "[amqp]", "[oslo_messaging_notifications]", "[DEFAULT]" (the section it is read from),
 * NULL for NONE. */
const char *mpTransportOriginSection(mpTransportOrigin origin);
