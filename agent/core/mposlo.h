/*
 * mposlo.h: oslo.messaging notification codec (envelope 2.0 and bare 1.0 messages)
 *
 * Decodes the AMQP body of a nova notification into its inner message and the fields the
 * agent needs, and encodes migpilot's own notifications as oslo.messaging sends them:
 *   {"oslo.version": "2.0", "oslo.message": "<inner JSON as a string>"}
 * Pure: no I/O, no clock, no randomness; callers pass message ids and timestamps.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mpenum.h"

#define MP_OSLO_DEFAULT_MAX_BYTES (1024 * 1024)
#define MP_OSLO_DEFAULT_MAX_DEPTH 64
/* jansson refuses deeper documents itself; larger max_depth values are clamped to it. */
#define MP_OSLO_MAX_DEPTH_LIMIT JSON_PARSER_MAX_DEPTH
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" plus NUL */
#define MP_OSLO_UUID_BUFLEN 37

typedef struct _mpOsloDecodeOptions mpOsloDecodeOptions;
struct _mpOsloDecodeOptions {
    size_t max_bytes;   /* bodies longer than this are rejected; 0 = default */
    int max_depth;      /* deepest array/object nesting of either JSON document; 0 = default */
};

typedef enum {
    MP_OSLO_FORMAT_OTHER = 0,   /* neither of nova's instance notification kinds */
    MP_OSLO_FORMAT_VERSIONED,   /* payload is a nova_object (versioned_notifications) */
    MP_OSLO_FORMAT_LEGACY,      /* nova's unversioned compute.instance.* (notifications) */
    MP_OSLO_FORMAT_LAST
} mpOsloFormat;
MP_ENUM_DECL(OsloFormat);           /* "other", "versioned", "legacy" */

/* nova's live-migration notifications, whatever their naming (legacy or versioned). */
typedef enum {
    MP_OSLO_LM_NONE = 0,        /* not a live-migration event */
    MP_OSLO_LM_PRE_START,
    MP_OSLO_LM_PRE_END,
    MP_OSLO_LM_POST_START,
    MP_OSLO_LM_POST_END,
    MP_OSLO_LM_POST_DEST_START,
    MP_OSLO_LM_POST_DEST_END,
    MP_OSLO_LM_ROLLBACK_START,
    MP_OSLO_LM_ROLLBACK_END,
    MP_OSLO_LM_ROLLBACK_DEST_START,
    MP_OSLO_LM_ROLLBACK_DEST_END,
    MP_OSLO_LM_ABORT_START,
    MP_OSLO_LM_ABORT_END,
    MP_OSLO_LM_FORCE_COMPLETE_START,
    MP_OSLO_LM_FORCE_COMPLETE_END,
    MP_OSLO_LM_LAST
} mpOsloLiveMigrationEvent;

/*
 * What the agent needs from a notification. Every string is borrowed from the message it
 * was extracted from (valid until mpOsloMessageFree) and NULL when absent (or, for the
 * informational payload fields tenant_id..node, when not a string).
 */
typedef struct _mpOsloInfo mpOsloInfo;
struct _mpOsloInfo {
    int envelope_version;       /* 2 (oslo envelope 2.0) or 1 (bare message) */
    mpOsloFormat format;
    mpOsloLiveMigrationEvent lm_event;
    const char *event_type;     /* never NULL */
    const char *priority;
    const char *publisher_id;
    const char *publisher_host; /* after "nova-compute:" / "compute." / "<service>." */
    const char *message_id;
    const char *timestamp;      /* as sent */
    int64_t timestamp_ms;       /* UTC epoch ms; valid when has_timestamp */
    int has_timestamp;
    const char *instance_uuid;  /* versioned: payload."nova_object.data".uuid,
                                 * otherwise payload.instance_id */
    const char *tenant_id;      /* payload tenant_id / project_id, else _context_project_id */
    const char *user_id;        /* payload user_id, else _context_user_id / _context_user */
    const char *request_id;     /* _context_request_id, else payload request_id */
    const char *host;           /* payload host (instance.host) */
    const char *node;           /* payload node */
};

typedef struct _mpOsloMessage mpOsloMessage;

/*
 * Decodes an AMQP body (any bytes) into a notification; opts may be NULL for the defaults.
 * Returns NULL with one error reported if the body is not a well-formed notification.
 */
mpOsloMessage *mpOsloDecode(const void *body, size_t len, const mpOsloDecodeOptions *opts);
void mpOsloMessageFree(mpOsloMessage *msg);

/* Borrowed; valid until mpOsloMessageFree. */
const mpOsloInfo *mpOsloMessageGetInfo(const mpOsloMessage *msg);
/* The whole inner message (borrowed; json_incref to keep it longer). */
json_t *mpOsloMessageGetJSON(const mpOsloMessage *msg);

/* "pre.start", "post_dest.end", ...; NULL for MP_OSLO_LM_NONE or out of range. */
const char *mpOsloLiveMigrationEventName(mpOsloLiveMigrationEvent ev);
/* Classifies an event type string (legacy or versioned name). */
mpOsloLiveMigrationEvent mpOsloClassifyEventType(const char *event_type);

/* "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC; also 'T' and a trailing Z/+00:00) to epoch ms. */
int mpOsloParseTimestamp(const char *s, int64_t *ms);
/* Epoch ms to "YYYY-MM-DD HH:MM:SS.ffffff" (years 1..9999); buf of at least 27 bytes. */
int mpOsloFormatTimestamp(int64_t ms, char *buf, size_t buflen);

/* 1 if s is a canonical 8-4-4-4-12 hex uuid (either case). */
int mpOsloIsUuid(const char *s);

/* Formats 16 bytes as a lower-case uuid string into out[MP_OSLO_UUID_BUFLEN]. */
void mpOsloUuidFormat(const uint8_t value[16], char out[MP_OSLO_UUID_BUFLEN]);
/*
 * Deterministic message id: RFC 4122 version-5 uuid of name in migpilot's namespace
 * f876b243-bd5c-5025-a221-ade68b43b21a (= uuid5(NAMESPACE_URL, "urn:migpilot:oslo-message-id")),
 * so Python's uuid.uuid5 gives the same. E.g. name = "<instance uuid>/<start ms>/<event type>".
 */
void mpOsloMessageIdFromName(const void *name, size_t len, char out[MP_OSLO_UUID_BUFLEN]);

typedef struct _mpOsloEncodeParams mpOsloEncodeParams;
struct _mpOsloEncodeParams {
    const char *event_type;     /* required, e.g. "compute.live_migration.metrics" */
    const char *publisher_id;   /* required, e.g. "migpilot.cmp-a01" */
    const char *priority;       /* NULL = "INFO"; one of oslo's, any case, sent upper-case */
    json_t *payload;            /* required JSON object (borrowed) */
    const char *message_id;     /* required uuid */
    int64_t timestamp_ms;       /* UTC epoch ms */
    json_t *context;            /* optional object: each key k is sent as "_context_k" */
};

/*
 * Builds the AMQP body (envelope 2.0) of a notification. The inner keys are, in order,
 * message_id, publisher_id, event_type, priority, payload, timestamp, _unique_id and the
 * _context_* keys; _unique_id is the hex of uuid5(namespace, "unique:" + message_id), so a
 * re-sent record carries the same one. Returns a NUL-terminated string the caller frees
 * with free() (length in *len if len), or NULL with one error reported.
 */
char *mpOsloEncode(const mpOsloEncodeParams *params, size_t *len);
