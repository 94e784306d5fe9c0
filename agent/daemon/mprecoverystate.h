/*
 * mprecoverystate.h: what post-copy recovery needs, kept across agent restarts
 *
 * libvirt does not tell where a migration goes; nova's notifications do, once, before the
 * migration starts. So the destination of each outgoing migration is written to
 * state_dir/recovery/<instance uuid>.dest when it is learned (temporary name, fsync,
 * rename, fsync of the directory) and removed when the migration ends. An agent restarted
 * while a post-copy migration is paused reads it back and can resume without nova.
 *
 * A file is a few "key=value" lines:
 *
 *   format=1
 *   uuid=<instance uuid>
 *   destination_host=<nova host name>
 *   destination_address=<address it was resolved to when saved>
 *   saved_at_ms=<epoch ms>
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MP_RECOVERY_UUID_BUFLEN 37
#define MP_RECOVERY_HOST_BUFLEN 254     /* a DNS name's 253 characters */

typedef struct _mpRecoveryRecord mpRecoveryRecord;
struct _mpRecoveryRecord {
    char uuid[MP_RECOVERY_UUID_BUFLEN];
    char host[MP_RECOVERY_HOST_BUFLEN];
    char address[MP_RECOVERY_HOST_BUFLEN];
    int64_t savedAtMs;
};

/* true for a canonical (8-4-4-4-12 hex) UUID string: the only names used in paths. */
bool mpRecoveryUuidValid(const char *uuid);
/* true for a plain host name (letters, digits, ".-_", 1 to 253 characters). */
bool mpRecoveryHostValid(const char *host);

/* Parses a file's text (NUL-terminated); -1 with an error naming the problem. */
int mpRecoveryRecordParse(const char *text, mpRecoveryRecord *rec);
/* The text of a record; the caller frees it. */
char *mpRecoveryRecordFormat(const mpRecoveryRecord *rec);

typedef struct _mpRecoveryState mpRecoveryState;

/* Uses (and creates, 0750) stateDir/recovery; NULL with an error. Nothing is read yet. */
mpRecoveryState *mpRecoveryStateNew(const char *stateDir);
void mpRecoveryStateFree(mpRecoveryState *st);

/*
 * Reads every record of the directory. A file that cannot be read or parsed, or whose
 * name is not its uuid, is logged in one line and moved aside (*.bad); one saved more than
 * maxAgeMs before nowMs is logged and removed; leftover temporary files are removed.
 * Returns the number of records kept, or -1 with an error if the directory cannot be listed.
 */
int mpRecoveryStateLoad(mpRecoveryState *st, int64_t nowMs, int64_t maxAgeMs);

/* The record of uuid, or NULL; valid until the next Put or Remove. */
const mpRecoveryRecord *mpRecoveryStateGet(mpRecoveryState *st, const char *uuid);

/* Writes (atomically) and keeps rec, replacing uuid's previous record; -1 with an error,
 * in which case nothing changed on disk or in memory. */
int mpRecoveryStatePut(mpRecoveryState *st, const mpRecoveryRecord *rec);

/* Forgets uuid's record and removes its file: 1 if there was one, 0 if not, -1 with an
 * error if the file could not be removed (it is forgotten all the same). */
int mpRecoveryStateRemove(mpRecoveryState *st, const char *uuid);

/* The records kept, for walking them: index < mpRecoveryStateCount. */
size_t mpRecoveryStateCount(mpRecoveryState *st);
const mpRecoveryRecord *mpRecoveryStateAt(mpRecoveryState *st, size_t index);
