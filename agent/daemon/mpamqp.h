/*
 * mpamqp.h: the agent's link to nova's bus (rabbitmq-c), driven by libvirt's event loop
 *
 * Two connections: one consumes nova's notifications from the agent's own queue, the other
 * publishes migpilot's notifications with publisher confirms. rabbitmq-c's connect, login,
 * RPCs and confirm waits block, so they run in a thread of this module (the link thread):
 * nothing the broker does or fails to do can hold the event loop, where the post-copy
 * switch is decided. The consumer's socket, once set up by the link thread, is read by the
 * event loop (zero timeouts). Either connection failing closes both and reconnects with
 * backoff.
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
/*
 * The end of one publish, in the event loop: confirmed by the broker, or not (error says
 * why: refused, unconfirmed within the deadline, the link lost or reset, the agent
 * stopping). Not confirmed means it may or may not have reached the broker.
 */
typedef void (*mpAmqpDoneFunc)(bool confirmed, const char *error, void *data);

/* cfg is borrowed and must outlive the object. Does not connect yet. */
mpAmqp *mpAmqpNew(const mpConfig *cfg, mpAmqpMessageFunc onMessage,
                  mpAmqpStateFunc onState, void *opaque);
/* Calls done (not confirmed) for every publish still waiting. */
void mpAmqpFree(mpAmqp *amqp);

/* Starts the link thread and its first connection (and keeps reconnecting on failure);
 * needs libvirt's event loop. Returns at once. */
int mpAmqpStart(mpAmqp *amqp);

bool mpAmqpIsConnected(mpAmqp *amqp);

/*
 * Queues body for the configured exchange with oslo's properties; never waits. The link
 * thread publishes queued messages in order, each with one confirm deadline; a message
 * unconfirmed by then resets the link, which reconnects by itself. 0: queued, and done
 * is called exactly once later (never from within this call); -1 with an error when not
 * connected (done is not called).
 */
int mpAmqpPublish(mpAmqp *amqp, const char *routingKey, const char *body,
                  mpAmqpDoneFunc done, void *data);
