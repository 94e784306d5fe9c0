/*
 * mposlo.c: oslo.messaging notification codec (see mposlo.h)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mposlo.h"
#include "mpalloc.h"
#include "mpcalendar.h"
#include "mperror.h"
#include "mptext.h"

struct _mpOsloMessage {
    json_t *root;       /* the inner message (the whole body for a bare 1.0 message) */
    mpOsloInfo info;    /* strings borrowed from root */
};

/* Bytes of input quoted in an error message: enough to recognise, bounded for logs. */
#define MP_OSLO_EXCERPT_BYTES 40
#define MP_OSLO_EXCERPT_BUFLEN MP_ESCAPE_BUFLEN(MP_OSLO_EXCERPT_BYTES)

/* uuid5(NAMESPACE_URL, "urn:migpilot:oslo-message-id") */
static const uint8_t mpOsloNamespace[16] = {
    0xf8, 0x76, 0xb2, 0x43, 0xbd, 0x5c, 0x50, 0x25,
    0xa2, 0x21, 0xad, 0xe6, 0x8b, 0x43, 0xb2, 0x1a,
};

/* ---- error excerpts ---------------------------------------------------------------- */

static void
mpOsloExcerpt(const char *s, size_t len, char *out, size_t outsz)
{
    mpEscapeBytes(s, len, MP_OSLO_EXCERPT_BYTES, out, outsz);
}

static const char *
mpOsloTypeName(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* ---- SHA-1 (for RFC 4122 version-5 uuids) ---------------------------------------------- */

typedef struct {
    uint32_t h[5];
    uint64_t total;
    uint8_t buf[64];
    size_t used;
} mpOsloSha1;

static uint32_t
mpOsloRol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void
mpOsloSha1Block(mpOsloSha1 *ctx, const uint8_t *p)
{
    uint32_t w[80];
    uint32_t a, b, c, d, e;
    int i;

    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[i * 4] << 24 | (uint32_t)p[i * 4 + 1] << 16 |
               (uint32_t)p[i * 4 + 2] << 8 | (uint32_t)p[i * 4 + 3];
    for (i = 16; i < 80; i++)
        w[i] = mpOsloRol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    a = ctx->h[0]; b = ctx->h[1]; c = ctx->h[2]; d = ctx->h[3]; e = ctx->h[4];
    for (i = 0; i < 80; i++) {
        uint32_t f, k, t;

        if (i < 20) {
            f = (b & c) | (~b & d); k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d; k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d; k = 0xca62c1d6;
        }
        t = mpOsloRol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = mpOsloRol(b, 30); b = a; a = t;
    }
    ctx->h[0] += a; ctx->h[1] += b; ctx->h[2] += c; ctx->h[3] += d; ctx->h[4] += e;
}

static void
mpOsloSha1Init(mpOsloSha1 *ctx)
{
    static const uint32_t init[5] = {
        0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0,
    };

    memcpy(ctx->h, init, sizeof(init));
    ctx->total = 0;
    ctx->used = 0;
}

static void
mpOsloSha1Update(mpOsloSha1 *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;

    ctx->total += len;
    while (len > 0) {
        size_t n = 64 - ctx->used;

        if (n > len)
            n = len;
        memcpy(ctx->buf + ctx->used, p, n);
        ctx->used += n;
        p += n;
        len -= n;
        if (ctx->used == 64) {
            mpOsloSha1Block(ctx, ctx->buf);
            ctx->used = 0;
        }
    }
}

static void
mpOsloSha1Final(mpOsloSha1 *ctx, uint8_t digest[20])
{
    uint64_t bits = ctx->total * 8;
    uint8_t pad = 0x80;
    uint8_t zero = 0;
    uint8_t lenbuf[8];
    int i;

    mpOsloSha1Update(ctx, &pad, 1);
    while (ctx->used != 56)
        mpOsloSha1Update(ctx, &zero, 1);
    for (i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t)(bits >> (56 - 8 * i));
    mpOsloSha1Update(ctx, lenbuf, 8);
    for (i = 0; i < 5; i++) {
        digest[i * 4] = (uint8_t)(ctx->h[i] >> 24);
        digest[i * 4 + 1] = (uint8_t)(ctx->h[i] >> 16);
        digest[i * 4 + 2] = (uint8_t)(ctx->h[i] >> 8);
        digest[i * 4 + 3] = (uint8_t)ctx->h[i];
    }
}

/* uuid5 in migpilot's namespace of prefix + name */
static void
mpOsloUuid5(const char *prefix, const void *name, size_t len, uint8_t out[16])
{
    mpOsloSha1 ctx;
    uint8_t digest[20];

    mpOsloSha1Init(&ctx);
    mpOsloSha1Update(&ctx, mpOsloNamespace, sizeof(mpOsloNamespace));
    mpOsloSha1Update(&ctx, prefix, strlen(prefix));
    mpOsloSha1Update(&ctx, name, len);
    mpOsloSha1Final(&ctx, digest);
    memcpy(out, digest, 16);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x50);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

void
mpOsloUuidFormat(const uint8_t value[16], char out[MP_OSLO_UUID_BUFLEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    int i;

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[value[i] >> 4];
        out[o++] = hex[value[i] & 0xf];
    }
    out[o] = '\0';
}

void
mpOsloMessageIdFromName(const void *name, size_t len, char out[MP_OSLO_UUID_BUFLEN])
{
    uint8_t v[16];

    mpOsloUuid5("", name ? name : "", name ? len : 0, v);
    mpOsloUuidFormat(v, out);
}

int
mpOsloIsUuid(const char *s)
{
    size_t i;

    if (!s)
        return 0;
    for (i = 0; i < 36; i++) {
        char c = s[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return s[36] == '\0';
}

/* ---- timestamps ------------------------------------------------------------------------ */

/* 0001-01-01 00:00:00 and 9999-12-31 23:59:59.999 in epoch ms */
#define MP_OSLO_MIN_MS INT64_C(-62135596800000)
#define MP_OSLO_MAX_MS INT64_C(253402300799999)

static int
mpOsloDigits(const char *s, int n, int *out)
{
    int v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Silent parser: the callers word the error. */
static int
mpOsloParseTimestampQuiet(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    int frac = 0;
    int fracDigits = 0;
    const char *p;

    if (!s || strlen(s) < 19)
        return -1;
    if (mpOsloDigits(s, 4, &y) < 0 || s[4] != '-' || mpOsloDigits(s + 5, 2, &mo) < 0 ||
        s[7] != '-' || mpOsloDigits(s + 8, 2, &d) < 0 || (s[10] != ' ' && s[10] != 'T') ||
        mpOsloDigits(s + 11, 2, &h) < 0 || s[13] != ':' ||
        mpOsloDigits(s + 14, 2, &mi) < 0 || s[16] != ':' ||
        mpOsloDigits(s + 17, 2, &sec) < 0)
        return -1;
    p = s + 19;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (++fracDigits > 6)
                return -1;
            frac = frac * 10 + (*p - '0');
            p++;
        }
        if (fracDigits == 0)
            return -1;
        for (; fracDigits < 6; fracDigits++)
            frac *= 10;
    }
    if (strcmp(p, "Z") == 0 || strcmp(p, "+00:00") == 0)
        p += strlen(p);
    if (*p != '\0')
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59)
        return -1;
    if (d < 1 || d > mpDaysInMonth(y, mo))
        return -1;
    *ms = mpDaysFromCivil(y, mo, d) * MP_MS_PER_DAY +
          (int64_t)h * 3600000 + (int64_t)mi * 60000 + (int64_t)sec * 1000 + frac / 1000;
    return 0;
}

int
mpOsloParseTimestamp(const char *s, int64_t *ms)
{
    char ex[MP_OSLO_EXCERPT_BUFLEN];

    if (mpOsloParseTimestampQuiet(s, ms) < 0) {
        mpOsloExcerpt(s ? s : "", s ? strlen(s) : 0, ex, sizeof(ex));
        mpReportError("timestamp \"%s\" is not a UTC \"YYYY-MM-DD HH:MM:SS[.ffffff]\"", ex);
        return -1;
    }
    return 0;
}

int
mpOsloFormatTimestamp(int64_t ms, char *buf, size_t buflen)
{
    int64_t days, rem, y;
    int m, d;

    if (ms < MP_OSLO_MIN_MS || ms > MP_OSLO_MAX_MS) {
        mpReportError("timestamp %lld ms is outside years 1..9999", (long long)ms);
        return -1;
    }
    if (!buf || buflen < 27) {
        mpReportError("timestamp buffer of %zu bytes is too small", buflen);
        return -1;
    }
    days = ms / MP_MS_PER_DAY;
    rem = ms % MP_MS_PER_DAY;
    if (rem < 0) {
        rem += MP_MS_PER_DAY;
        days--;
    }
    mpCivilFromDays(days, &y, &m, &d);
    snprintf(buf, buflen, "%04d-%02d-%02d %02d:%02d:%02d.%06d",
             (int)y, m, d, (int)(rem / 3600000), (int)(rem / 60000 % 60),
             (int)(rem / 1000 % 60), (int)(rem % 1000) * 1000);
    return 0;
}

/* ---- live-migration event types ---------------------------------------------------------- */

static const struct {
    const char *name;
    mpOsloLiveMigrationEvent ev;
} mpOsloEventTypes[] = {
    /* versioned (nova/objects/fields.py actions + phase) */
    { "instance.live_migration_pre.start", MP_OSLO_LM_PRE_START },
    { "instance.live_migration_pre.end", MP_OSLO_LM_PRE_END },
    { "instance.live_migration_post.start", MP_OSLO_LM_POST_START },
    { "instance.live_migration_post.end", MP_OSLO_LM_POST_END },
    { "instance.live_migration_post_dest.start", MP_OSLO_LM_POST_DEST_START },
    { "instance.live_migration_post_dest.end", MP_OSLO_LM_POST_DEST_END },
    { "instance.live_migration_rollback.start", MP_OSLO_LM_ROLLBACK_START },
    { "instance.live_migration_rollback.end", MP_OSLO_LM_ROLLBACK_END },
    { "instance.live_migration_rollback_dest.start", MP_OSLO_LM_ROLLBACK_DEST_START },
    { "instance.live_migration_rollback_dest.end", MP_OSLO_LM_ROLLBACK_DEST_END },
    { "instance.live_migration_abort.start", MP_OSLO_LM_ABORT_START },
    { "instance.live_migration_abort.end", MP_OSLO_LM_ABORT_END },
    { "instance.live_migration_force_complete.start", MP_OSLO_LM_FORCE_COMPLETE_START },
    { "instance.live_migration_force_complete.end", MP_OSLO_LM_FORCE_COMPLETE_END },
    /* legacy (nova/rpc.py allow-list; nova's own inconsistent dots and underscores) */
    { "compute.instance.live_migration.pre.start", MP_OSLO_LM_PRE_START },
    { "compute.instance.live_migration.pre.end", MP_OSLO_LM_PRE_END },
    { "compute.instance.live_migration._post.start", MP_OSLO_LM_POST_START },
    { "compute.instance.live_migration._post.end", MP_OSLO_LM_POST_END },
    { "compute.instance.live_migration.post.dest.start", MP_OSLO_LM_POST_DEST_START },
    { "compute.instance.live_migration.post.dest.end", MP_OSLO_LM_POST_DEST_END },
    { "compute.instance.live_migration._rollback.start", MP_OSLO_LM_ROLLBACK_START },
    { "compute.instance.live_migration._rollback.end", MP_OSLO_LM_ROLLBACK_END },
    { "compute.instance.live_migration.rollback.dest.start", MP_OSLO_LM_ROLLBACK_DEST_START },
    { "compute.instance.live_migration.rollback.dest.end", MP_OSLO_LM_ROLLBACK_DEST_END },
    { "compute.instance.live.migration.abort.start", MP_OSLO_LM_ABORT_START },
    { "compute.instance.live.migration.abort.end", MP_OSLO_LM_ABORT_END },
    { "compute.instance.live.migration.force.complete.start", MP_OSLO_LM_FORCE_COMPLETE_START },
    { "compute.instance.live.migration.force.complete.end", MP_OSLO_LM_FORCE_COMPLETE_END },
};

static const char *const mpOsloEventNames[MP_OSLO_LM_LAST] = {
    [MP_OSLO_LM_NONE] = NULL,
    [MP_OSLO_LM_PRE_START] = "pre.start",
    [MP_OSLO_LM_PRE_END] = "pre.end",
    [MP_OSLO_LM_POST_START] = "post.start",
    [MP_OSLO_LM_POST_END] = "post.end",
    [MP_OSLO_LM_POST_DEST_START] = "post_dest.start",
    [MP_OSLO_LM_POST_DEST_END] = "post_dest.end",
    [MP_OSLO_LM_ROLLBACK_START] = "rollback.start",
    [MP_OSLO_LM_ROLLBACK_END] = "rollback.end",
    [MP_OSLO_LM_ROLLBACK_DEST_START] = "rollback_dest.start",
    [MP_OSLO_LM_ROLLBACK_DEST_END] = "rollback_dest.end",
    [MP_OSLO_LM_ABORT_START] = "abort.start",
    [MP_OSLO_LM_ABORT_END] = "abort.end",
    [MP_OSLO_LM_FORCE_COMPLETE_START] = "force_complete.start",
    [MP_OSLO_LM_FORCE_COMPLETE_END] = "force_complete.end",
};

mpOsloLiveMigrationEvent
mpOsloClassifyEventType(const char *event_type)
{
    size_t i;

    if (!event_type)
        return MP_OSLO_LM_NONE;
    for (i = 0; i < sizeof(mpOsloEventTypes) / sizeof(mpOsloEventTypes[0]); i++) {
        if (strcmp(event_type, mpOsloEventTypes[i].name) == 0)
            return mpOsloEventTypes[i].ev;
    }
    return MP_OSLO_LM_NONE;
}

const char *
mpOsloLiveMigrationEventName(mpOsloLiveMigrationEvent ev)
{
    if ((int)ev <= MP_OSLO_LM_NONE || ev >= MP_OSLO_LM_LAST)
        return NULL;
    return mpOsloEventNames[ev];
}

MP_ENUM_IMPL(OsloFormat, MP_OSLO_FORMAT_LAST, "other", "versioned", "legacy");

/* ---- decoding ------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s[0..len), or 0 (no overlongs, surrogates, > U+10FFFF). */
static size_t
mpOsloUtf8Len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return n;
}

static int
mpOsloCheckUtf8(const char *text, size_t len, const char *what)
{
    const unsigned char *s = (const unsigned char *)text;
    char ex[MP_OSLO_EXCERPT_BUFLEN];
    size_t i = 0;
    size_t n;

    while (i < len) {
        if (!(n = mpOsloUtf8Len(s + i, len - i))) {
            mpEscapeBytes(text + i, len - i, 4, ex, sizeof(ex));
            mpReportError("%s is not valid UTF-8 at offset %zu (bytes %s)", what, i, ex);
            return -1;
        }
        i += n;
    }
    return 0;
}

/*
 * One linear pass before jansson sees the text: NUL bytes, \u0000 escapes, invalid UTF-8
 * and nesting deeper than maxDepth are refused here with their offset, so that jansson's
 * recursion stays shallow and the error says what is wrong.
 */
static int
mpOsloScan(const char *text, size_t len, int maxDepth, const char *what)
{
    const unsigned char *s = (const unsigned char *)text;
    char ex[MP_OSLO_EXCERPT_BUFLEN];
    bool inString = false;
    int depth = 0;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];

        if (c == 0) {
            mpReportError("%s contains a NUL byte at offset %zu", what, i);
            return -1;
        }
        if (c >= 0x80) {
            size_t n = mpOsloUtf8Len(s + i, len - i);

            if (n == 0) {
                mpEscapeBytes(text + i, len - i, 4, ex, sizeof(ex));
                mpReportError("%s is not valid UTF-8 at offset %zu (bytes %s)", what, i, ex);
                return -1;
            }
            i += n;
            continue;
        }
        if (inString) {
            if (c == '\\' && i + 1 < len && s[i + 1] < 0x80) {
                if (s[i + 1] == 'u' && len - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0) {
                    mpReportError("%s contains a NUL character (\\u0000) at offset %zu",
                                  what, i);
                    return -1;
                }
                i += 2;
                continue;
            }
            if (c == '"')
                inString = false;
        } else if (c == '"') {
            inString = true;
        } else if (c == '{' || c == '[') {
            if (++depth > maxDepth) {
                mpReportError("%s nests deeper than %d levels at offset %zu",
                              what, maxDepth, i);
                return -1;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
        i++;
    }
    return 0;
}

/* Parses one JSON document of any type; what names it in the error. */
static json_t *
mpOsloParse(const char *text, size_t len, const char *what)
{
    json_error_t err;
    json_t *v;
    char ex[MP_OSLO_EXCERPT_BUFLEN * 2];

    v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!v) {
        /* jansson quotes the offending token: keep it to one printable line */
        mpEscapeBytes(err.text, strnlen(err.text, sizeof(err.text)), 120, ex, sizeof(ex));
        mpReportError("%s is not valid JSON: %s (line %d, column %d, byte %d)",
                      what, ex, err.line, err.column, err.position);
    }
    return v;
}

/* Optional string member: absent or null gives NULL, another type is an error. */
static int
mpOsloGetString(json_t *obj, const char *key, const char *where, const char **out)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        mpReportError("%s%s is not a string (it is %s)", where, key, mpOsloTypeName(v));
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Informational member: a string or NULL, whatever else is there. */
static const char *
mpOsloPeekString(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool
mpOsloHasPrefix(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static int
mpOsloExtract(mpOsloMessage *msg)
{
    mpOsloInfo *info = &msg->info;
    json_t *root = msg->root;
    json_t *payload;
    json_t *data;
    json_t *fields;
    json_t *uuid;
    const char *uuidPath;
    const char *p;
    char ex[MP_OSLO_EXCERPT_BUFLEN];

    if (mpOsloGetString(root, "event_type", "", &info->event_type) < 0)
        return -1;
    if (!info->event_type) {
        mpReportError("notification has no event_type");
        return -1;
    }
    if (!info->event_type[0]) {
        mpReportError("event_type is empty");
        return -1;
    }
    if (mpOsloGetString(root, "priority", "", &info->priority) < 0 ||
        mpOsloGetString(root, "publisher_id", "", &info->publisher_id) < 0 ||
        mpOsloGetString(root, "message_id", "", &info->message_id) < 0 ||
        mpOsloGetString(root, "timestamp", "", &info->timestamp) < 0)
        return -1;
    if (info->timestamp) {
        if (mpOsloParseTimestamp(info->timestamp, &info->timestamp_ms) < 0)
            return -1;
        info->has_timestamp = 1;
    }

    payload = json_object_get(root, "payload");
    if (!payload) {
        mpOsloExcerpt(info->event_type, strlen(info->event_type), ex, sizeof(ex));
        mpReportError("notification %s has no payload", ex);
        return -1;
    }
    if (!json_is_object(payload)) {
        mpReportError("payload is not an object (it is %s)", mpOsloTypeName(payload));
        return -1;
    }

    data = json_object_get(payload, "nova_object.data");
    if (data || json_object_get(payload, "nova_object.name")) {
        if (!json_is_object(data)) {
            mpReportError("payload.\"nova_object.data\" is not an object (it is %s)",
                          data ? mpOsloTypeName(data) : "missing");
            return -1;
        }
        info->format = MP_OSLO_FORMAT_VERSIONED;
        fields = data;
        uuid = json_object_get(data, "uuid");
        uuidPath = "payload.\"nova_object.data\".uuid";
    } else {
        if (mpOsloHasPrefix(info->event_type, "compute.instance.") ||
            mpOsloHasPrefix(info->publisher_id, "compute."))
            info->format = MP_OSLO_FORMAT_LEGACY;
        else
            info->format = MP_OSLO_FORMAT_OTHER;
        fields = payload;
        uuid = json_object_get(payload, "instance_id");
        uuidPath = "payload.instance_id";
    }

    if (uuid && !json_is_null(uuid)) {
        if (!json_is_string(uuid)) {
            mpReportError("instance uuid %s is not a string (it is %s)",
                          uuidPath, mpOsloTypeName(uuid));
            return -1;
        }
        if (!mpOsloIsUuid(json_string_value(uuid))) {
            mpOsloExcerpt(json_string_value(uuid), json_string_length(uuid), ex, sizeof(ex));
            mpReportError("instance uuid %s \"%s\" is not a uuid", uuidPath, ex);
            return -1;
        }
        info->instance_uuid = json_string_value(uuid);
    }

    info->lm_event = mpOsloClassifyEventType(info->event_type);
    if (info->lm_event != MP_OSLO_LM_NONE && !info->instance_uuid) {
        mpReportError("live-migration notification %s has no instance uuid (%s)",
                      info->event_type, uuidPath);
        return -1;
    }

    if (info->publisher_id) {
        /* nova-compute:<host> (versioned), compute.<host> (legacy), migpilot.<host> */
        if ((p = strchr(info->publisher_id, ':')) || (p = strchr(info->publisher_id, '.')))
            info->publisher_host = p[1] ? p + 1 : NULL;
    }

    info->tenant_id = mpOsloPeekString(fields, "tenant_id");
    if (!info->tenant_id)
        info->tenant_id = mpOsloPeekString(fields, "project_id");
    if (!info->tenant_id)
        info->tenant_id = mpOsloPeekString(root, "_context_project_id");
    if (!info->tenant_id)
        info->tenant_id = mpOsloPeekString(root, "_context_tenant");
    info->user_id = mpOsloPeekString(fields, "user_id");
    if (!info->user_id)
        info->user_id = mpOsloPeekString(root, "_context_user_id");
    if (!info->user_id)
        info->user_id = mpOsloPeekString(root, "_context_user");
    info->request_id = mpOsloPeekString(root, "_context_request_id");
    if (!info->request_id)
        info->request_id = mpOsloPeekString(fields, "request_id");
    info->host = mpOsloPeekString(fields, "host");
    info->node = mpOsloPeekString(fields, "node");
    return 0;
}

mpOsloMessage *
mpOsloDecode(const void *body, size_t len, const mpOsloDecodeOptions *opts)
{
    size_t maxBytes = MP_OSLO_DEFAULT_MAX_BYTES;
    int maxDepth = MP_OSLO_DEFAULT_MAX_DEPTH;
    mpOsloMessage *msg = NULL;
    mpOsloMessage *ret = NULL;
    json_t *outer = NULL;
    json_t *inner = NULL;
    json_t *version;
    json_t *message;
    char ex[MP_OSLO_EXCERPT_BUFLEN];

    if (opts && opts->max_bytes > 0)
        maxBytes = opts->max_bytes;
    if (opts && opts->max_depth > 0)
        maxDepth = opts->max_depth;
    if (maxDepth > MP_OSLO_MAX_DEPTH_LIMIT)
        maxDepth = MP_OSLO_MAX_DEPTH_LIMIT;

    if (!body || len == 0) {
        mpReportError("AMQP body is empty");
        goto cleanup;
    }
    if (len > maxBytes) {
        mpReportError("AMQP body of %zu bytes is larger than the limit of %zu bytes",
                      len, maxBytes);
        goto cleanup;
    }
    if (mpOsloScan(body, len, maxDepth, "AMQP body") < 0 ||
        !(outer = mpOsloParse(body, len, "AMQP body")))
        goto cleanup;
    if (!json_is_object(outer)) {
        mpReportError("AMQP body is not a JSON object (it is %s)", mpOsloTypeName(outer));
        goto cleanup;
    }

    msg = mpAlloc0(sizeof(*msg));
    version = json_object_get(outer, "oslo.version");
    message = json_object_get(outer, "oslo.message");
    if (version && message) {
        /* envelope: oslo's deserialize_msg only looks inside when both keys are there */
        if (!json_is_string(version)) {
            mpReportError("oslo.version is not a string (it is %s)", mpOsloTypeName(version));
            goto cleanup;
        }
        if (strcmp(json_string_value(version), "2.0") != 0) {
            mpOsloExcerpt(json_string_value(version), json_string_length(version),
                          ex, sizeof(ex));
            mpReportError("unsupported oslo envelope version \"%s\" (2.0 expected)", ex);
            goto cleanup;
        }
        if (!json_is_string(message)) {
            mpReportError("oslo.message is not a string (it is %s)", mpOsloTypeName(message));
            goto cleanup;
        }
        if (mpOsloScan(json_string_value(message), json_string_length(message),
                       maxDepth, "oslo.message") < 0 ||
            !(inner = mpOsloParse(json_string_value(message), json_string_length(message),
                                  "oslo.message")))
            goto cleanup;
        if (!json_is_object(inner)) {
            mpReportError("oslo.message is not a JSON object (it is %s)",
                          mpOsloTypeName(inner));
            goto cleanup;
        }
        msg->root = inner;
        inner = NULL;
        msg->info.envelope_version = 2;
    } else {
        msg->root = outer;
        outer = NULL;
        msg->info.envelope_version = 1;
    }

    if (mpOsloExtract(msg) < 0)
        goto cleanup;
    ret = msg;
    msg = NULL;

 cleanup:
    mpOsloMessageFree(msg);
    json_decref(inner);
    json_decref(outer);
    return ret;
}

void
mpOsloMessageFree(mpOsloMessage *msg)
{
    if (!msg)
        return;
    json_decref(msg->root);
    free(msg);
}

const mpOsloInfo *
mpOsloMessageGetInfo(const mpOsloMessage *msg)
{
    return &msg->info;
}

json_t *
mpOsloMessageGetJSON(const mpOsloMessage *msg)
{
    return msg->root;
}

/* ---- encoding ------------------------------------------------------------------------------ */

/* Nesting depth of v (a scalar is 0); exact up to limit, some value above it beyond. */
static int
mpOsloDepth(json_t *v, int limit)
{
    int max = 0;
    int d;

    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (limit <= 0)
        return 1;
    if (json_is_object(v)) {
        const char *key;
        json_t *child;

        json_object_foreach(v, key, child) {
            if ((d = mpOsloDepth(child, limit - 1)) > max)
                max = d;
            if (max > limit - 1)
                break;
        }
    } else {
        size_t i;
        json_t *child;

        json_array_foreach(v, i, child) {
            if ((d = mpOsloDepth(child, limit - 1)) > max)
                max = d;
            if (max > limit - 1)
                break;
        }
    }
    return max + 1;
}

static int
mpOsloCheckName(const char *s, const char *what)
{
    if (!s || !*s) {
        mpReportError("%s is missing or empty", what);
        return -1;
    }
    return mpOsloCheckUtf8(s, strlen(s), what);
}

static const char *
mpOsloPriority(const char *priority)
{
    static const char *const known[] = {
        "AUDIT", "CRITICAL", "DEBUG", "ERROR", "INFO", "SAMPLE", "WARN",
    };
    size_t i;

    if (!priority)
        return "INFO";
    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcasecmp(priority, known[i]) == 0)
            return known[i];
    }
    return NULL;
}

char *
mpOsloEncode(const mpOsloEncodeParams *params, size_t *len)
{
    char *ret = NULL;
    char *innerText = NULL;
    char *body = NULL;
    char *key = NULL;
    json_t *inner = NULL;
    json_t *outer = NULL;
    mpOsloMessage *check = NULL;
    const char *priority;
    char ts[32];
    char ex[MP_OSLO_EXCERPT_BUFLEN];
    char evx[MP_OSLO_EXCERPT_BUFLEN];
    uint8_t uid[16];
    char uidText[MP_OSLO_UUID_BUFLEN];
    char uidHex[33];
    size_t i, o;

    if (!params) {
        mpReportError("no notification to encode");
        goto cleanup;
    }
    if (mpOsloCheckName(params->event_type, "event_type") < 0 ||
        mpOsloCheckName(params->publisher_id, "publisher_id") < 0)
        goto cleanup;
    mpOsloExcerpt(params->event_type, strlen(params->event_type), evx, sizeof(evx));
    if (!(priority = mpOsloPriority(params->priority))) {
        mpOsloExcerpt(params->priority, strlen(params->priority), ex, sizeof(ex));
        mpReportError("priority \"%s\" is not one of oslo's (AUDIT, CRITICAL, DEBUG, ERROR, "
                      "INFO, SAMPLE, WARN)", ex);
        goto cleanup;
    }
    if (!json_is_object(params->payload)) {
        mpReportError("payload is not an object (it is %s)",
                      params->payload ? mpOsloTypeName(params->payload) : "missing");
        goto cleanup;
    }
    /* the payload sits at depth 2 of the inner message */
    if (mpOsloDepth(params->payload, MP_OSLO_DEFAULT_MAX_DEPTH) >
        MP_OSLO_DEFAULT_MAX_DEPTH - 1) {
        mpReportError("payload nests deeper than %d levels", MP_OSLO_DEFAULT_MAX_DEPTH - 1);
        goto cleanup;
    }
    if (params->context && !json_is_object(params->context)) {
        mpReportError("context is not an object (it is %s)",
                      mpOsloTypeName(params->context));
        goto cleanup;
    }
    if (params->context && mpOsloDepth(params->context, MP_OSLO_DEFAULT_MAX_DEPTH) >
        MP_OSLO_DEFAULT_MAX_DEPTH) {
        mpReportError("context nests deeper than %d levels", MP_OSLO_DEFAULT_MAX_DEPTH);
        goto cleanup;
    }
    if (!mpOsloIsUuid(params->message_id)) {
        mpOsloExcerpt(params->message_id ? params->message_id : "",
                      params->message_id ? strlen(params->message_id) : 0, ex, sizeof(ex));
        mpReportError("message_id \"%s\" is not a uuid", ex);
        goto cleanup;
    }
    if (mpOsloFormatTimestamp(params->timestamp_ms, ts, sizeof(ts)) < 0)
        goto cleanup;

    /* _unique_id: hex of uuid5("unique:" + message_id), stable across re-sends */
    mpOsloUuid5("unique:", params->message_id, strlen(params->message_id), uid);
    mpOsloUuidFormat(uid, uidText);
    for (i = 0, o = 0; uidText[i]; i++) {
        if (uidText[i] != '-')
            uidHex[o++] = uidText[i];
    }
    uidHex[o] = '\0';

    /* jansson keeps insertion order: the order oslo's Notifier and driver build the dict */
    inner = json_object();
    if (json_object_set_new(inner, "message_id", json_string(params->message_id)) < 0 ||
        json_object_set_new(inner, "publisher_id", json_string(params->publisher_id)) < 0 ||
        json_object_set_new(inner, "event_type", json_string(params->event_type)) < 0 ||
        json_object_set_new(inner, "priority", json_string(priority)) < 0 ||
        json_object_set(inner, "payload", params->payload) < 0 ||
        json_object_set_new(inner, "timestamp", json_string(ts)) < 0 ||
        json_object_set_new(inner, "_unique_id", json_string(uidHex)) < 0) {
        mpReportError("cannot build the notification for %s", evx);
        goto cleanup;
    }
    if (params->context) {
        const char *ckey;
        json_t *cval;

        json_object_foreach(params->context, ckey, cval) {
            free(key);
            key = mpAsprintf("_context_%s", ckey);
            if (json_object_set(inner, key, cval) < 0) {
                mpOsloExcerpt(key, strlen(key), ex, sizeof(ex));
                mpReportError("cannot add context key %s", ex);
                goto cleanup;
            }
        }
    }

    /* ", " and ": " separators and \uXXXX escapes, as Python's json.dumps writes */
    if (!(innerText = json_dumps(inner, JSON_ENSURE_ASCII | JSON_REAL_PRECISION(17)))) {
        mpReportError("cannot serialise the notification %s (circular payload?)", evx);
        goto cleanup;
    }
    outer = json_object();
    if (json_object_set_new(outer, "oslo.version", json_string("2.0")) < 0 ||
        json_object_set_new(outer, "oslo.message", json_string(innerText)) < 0 ||
        !(body = json_dumps(outer, JSON_ENSURE_ASCII))) {
        mpReportError("cannot build the envelope of %s", evx);
        goto cleanup;
    }

    /* what migpilot sends, migpilot must read back: the decoder's error says why not */
    if (!(check = mpOsloDecode(body, strlen(body), NULL)))
        goto cleanup;

    if (len)
        *len = strlen(body);
    ret = body;
    body = NULL;

 cleanup:
    mpOsloMessageFree(check);
    free(key);
    free(body);
    free(innerText);
    json_decref(outer);
    json_decref(inner);
    return ret;
}
