/*
 * mpamqp.h: the agent's link to nova's bus (rabbitmq-c), driven by libvirt's event loop
 *
 * Two connections: one consumes nova's notifications from the agent's own queue, the other
 * publishes migpilot's notifications with publisher confirms, so a publish waits only for
 * its own acknowledgement. Either failing closes both and reconnects with backoff.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "mpconfig.h"

typedef struct _mpAmqp mpAmqp;

/* A message from the agent's queue; it is acked after the callback returns, whatever it is. */
typedef void (*mpAmqpMessageFunc)(const char *routingKey, const void *body, size_t len,
                                  void *opaque);
/* Called after every (re)connection, and when the link is lost. */
typedef void (*mpAmqpStateFunc)(bool connected, void *opaque);

/* cfg is borrowed and must outlive the object. Does not connect yet. */
mpAmqp *mpAmqpNew(const mpConfig *cfg, mpAmqpMessageFunc onMessage,
                  mpAmqpStateFunc onState, void *opaque);
void mpAmqpFree(mpAmqp *amqp);

/* Connects now (and keeps reconnecting on failure); needs libvirt's event loop. */
int mpAmqpStart(mpAmqp *amqp);

bool mpAmqpIsConnected(mpAmqp *amqp);

/*
 * Publishes body to the configured exchange with oslo's properties and waits (bounded) for
 * the broker's confirmation. -1 with an error if not connected, refused or unconfirmed;
 * the link is then reset and reconnects by itself.
 */
int mpAmqpPublish(mpAmqp *amqp, const char *routingKey, const char *body);
