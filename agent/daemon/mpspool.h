/*
 * mpspool.h: metrics records waiting for the broker, one file each under state_dir
 *
 * A record is written (and fsynced) before it is published and removed only once the
 * broker confirmed it, so a record survives broker outages and the agent's own crash.
 * Re-sending after a crash may duplicate a record; its message_id stays the same.
 */
#pragma once

#include <stddef.h>

typedef struct _mpSpool mpSpool;

/* Creates dir (0750) if needed. */
mpSpool *mpSpoolNew(const char *dir);
void mpSpoolFree(mpSpool *spool);

/* Stores a record; name receives the entry's name (for mpSpoolRemove). */
int mpSpoolPut(mpSpool *spool, const char *messageId, const char *routingKey,
               const char *body, char *name, size_t namelen);

/* Removes an entry once published. */
int mpSpoolRemove(mpSpool *spool, const char *name);

typedef int (*mpSpoolVisitor)(const char *name, const char *routingKey, const char *body,
                              void *opaque);
/*
 * Calls visit for each entry, oldest first; stops at the first visit returning -1 and
 * returns -1. Unreadable or corrupt entries are moved aside (*.bad) and logged by name.
 */
int mpSpoolForEach(mpSpool *spool, mpSpoolVisitor visit, void *opaque);

/* Number of entries waiting. */
size_t mpSpoolCount(mpSpool *spool);
