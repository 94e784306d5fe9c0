/*
 * test_oslo.c: mposlo, the oslo.messaging notification codec
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mptest.h"
#include "mpalloc.h"
#include "mperror.h"
#include "mposlo.h"

#define FIXTURES "fixtures/nova-notifications/"
/* a day and a bit, so that the round trip meets every time of day */
#define MP_OSLO_MS_PER_DAY_TEST (INT64_C(86400000) + 12345)

static const char *const scenarios[] = { "success", "force_complete", "rollback", "abort" };

/* Both the versioned and the legacy name of each step, for the classification check. */
static mpOsloLiveMigrationEvent
expectedEvent(const char *eventType)
{
    static const struct { const char *suffix; mpOsloLiveMigrationEvent ev; } map[] = {
        { "_pre.start", MP_OSLO_LM_PRE_START }, { ".pre.start", MP_OSLO_LM_PRE_START },
        { "_pre.end", MP_OSLO_LM_PRE_END }, { ".pre.end", MP_OSLO_LM_PRE_END },
        { "_post.start", MP_OSLO_LM_POST_START }, { "._post.start", MP_OSLO_LM_POST_START },
        { "_post.end", MP_OSLO_LM_POST_END }, { "._post.end", MP_OSLO_LM_POST_END },
        { "_post_dest.start", MP_OSLO_LM_POST_DEST_START },
        { ".post.dest.start", MP_OSLO_LM_POST_DEST_START },
        { "_post_dest.end", MP_OSLO_LM_POST_DEST_END },
        { ".post.dest.end", MP_OSLO_LM_POST_DEST_END },
        { "_rollback.start", MP_OSLO_LM_ROLLBACK_START },
        { "_rollback.end", MP_OSLO_LM_ROLLBACK_END },
        { "_rollback_dest.start", MP_OSLO_LM_ROLLBACK_DEST_START },
        { ".rollback.dest.start", MP_OSLO_LM_ROLLBACK_DEST_START },
        { "_rollback_dest.end", MP_OSLO_LM_ROLLBACK_DEST_END },
        { ".rollback.dest.end", MP_OSLO_LM_ROLLBACK_DEST_END },
        { "abort.start", MP_OSLO_LM_ABORT_START }, { "abort.end", MP_OSLO_LM_ABORT_END },
        { "force_complete.start", MP_OSLO_LM_FORCE_COMPLETE_START },
        { "force.complete.start", MP_OSLO_LM_FORCE_COMPLETE_START },
        { "force_complete.end", MP_OSLO_LM_FORCE_COMPLETE_END },
        { "force.complete.end", MP_OSLO_LM_FORCE_COMPLETE_END },
    };
    size_t n = strlen(eventType);
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t k = strlen(map[i].suffix);

        if (n >= k && strcmp(eventType + n - k, map[i].suffix) == 0)
            return map[i].ev;
    }
    return MP_OSLO_LM_NONE;
}

static void
assertStrEqOrNull(const char *got, json_t *want, const char *what)
{
    if (json_is_null(want) || !want) {
        ck_assert_msg(got == NULL, "%s: expected null, got %s", what, got);
        return;
    }
    ck_assert_msg(got != NULL, "%s: expected %s, got NULL", what, json_string_value(want));
    ck_assert_str_eq(got, json_string_value(want));
}

START_TEST(test_sequences_decode_to_truth)
{
    char rel[512];
    json_error_t err;
    json_t *seq;
    json_t *messages;
    json_t *truth;
    size_t i;

    snprintf(rel, sizeof(rel), FIXTURES "sequences/%s/sequence.json", scenarios[_i]);
    seq = json_load_file(mpTestDataPath(rel), 0, &err);
    ck_assert_msg(seq != NULL, "%s: %s", rel, err.text);
    messages = json_object_get(seq, "messages");
    ck_assert_uint_ge(json_array_size(messages), 12);

    json_array_foreach(messages, i, truth) {
        const char *file = json_string_value(json_object_get(truth, "file"));
        const char *format = json_string_value(json_object_get(truth, "format"));
        const char *publisher = json_string_value(json_object_get(truth, "publisher_id"));
        const char *eventType = json_string_value(json_object_get(truth, "event_type"));
        mpOsloMessage *msg;
        const mpOsloInfo *info;
        int64_t ms;
        char *body;
        size_t len;

        snprintf(rel, sizeof(rel), FIXTURES "sequences/%s/%s", scenarios[_i], file);
        body = mpTestReadFile(mpTestDataPath(rel), &len);
        ck_assert_int_eq((json_int_t)len, json_integer_value(json_object_get(truth, "body_bytes")));
        mpResetLastError();
        msg = mpOsloDecode(body, len, NULL);
        ck_assert_msg(msg != NULL, "%s: %s", rel, mpGetLastErrorMessage());
        ck_assert_int_eq(mpHasError(), 0);
        info = mpOsloMessageGetInfo(msg);

        ck_assert_int_eq(info->envelope_version, 2);
        ck_assert_str_eq(mpOsloFormatTypeToString(info->format), format);
        ck_assert_str_eq(info->event_type, eventType);
        ck_assert_str_eq(info->publisher_id, publisher);
        ck_assert_str_eq(info->publisher_host, strpbrk(publisher, ":.") + 1);
        assertStrEqOrNull(info->priority, json_object_get(truth, "priority"), "priority");
        assertStrEqOrNull(info->instance_uuid, json_object_get(truth, "instance_uuid"), "uuid");
        assertStrEqOrNull(info->message_id, json_object_get(truth, "message_id"), "message_id");
        assertStrEqOrNull(info->timestamp, json_object_get(truth, "timestamp"), "timestamp");
        assertStrEqOrNull(info->request_id, json_object_get(truth, "request_id"), "request_id");
        ck_assert_int_eq(info->has_timestamp, 1);
        ck_assert_int_eq(mpOsloParseTimestamp(json_string_value(json_object_get(truth,
                                                                  "timestamp")), &ms), 0);
        ck_assert_int_eq(info->timestamp_ms, ms);
        ck_assert_int_eq(info->lm_event, expectedEvent(eventType));
        ck_assert_int_ne(info->lm_event, MP_OSLO_LM_NONE);
        ck_assert_ptr_nonnull(info->tenant_id);
        ck_assert_ptr_nonnull(info->user_id);
        ck_assert_ptr_nonnull(info->host);
        ck_assert_ptr_nonnull(info->node);
        ck_assert(json_is_object(json_object_get(mpOsloMessageGetJSON(msg), "payload")));

        mpOsloMessageFree(msg);
        free(body);
    }
    json_decref(seq);
}
END_TEST

/* The three captures of the design: the wire body and the inner message (a bare 1.0 body). */
START_TEST(test_design_captures)
{
    static const struct {
        const char *name;
        const char *uuid;
        const char *publisher;
        mpOsloFormat format;
        mpOsloLiveMigrationEvent ev;
        int64_t ms;
    } cases[] = {
        { "instance.live_migration_pre.start", "178b0921-8f85-4257-88b6-2e743b5a975c",
          "nova-compute:cmp-b07", MP_OSLO_FORMAT_VERSIONED, MP_OSLO_LM_PRE_START, 0 },
        { "instance.live_migration_post.start", "178b0921-8f85-4257-88b6-2e743b5a975c",
          NULL, MP_OSLO_FORMAT_VERSIONED, MP_OSLO_LM_POST_START, 0 },
        { "compute.instance.live_migration._post.start", "178b0921-8f85-4257-88b6-2e743b5a975c",
          "compute.cmp-a01", MP_OSLO_FORMAT_LEGACY, MP_OSLO_LM_POST_START, 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char rel[256];
        char *wire, *inner;
        size_t wlen, ilen;
        mpOsloMessage *w, *b;
        json_t *want;
        json_error_t err;

        snprintf(rel, sizeof(rel), FIXTURES "%s.wire.json", cases[i].name);
        wire = mpTestReadFile(mpTestDataPath(rel), &wlen);
        snprintf(rel, sizeof(rel), FIXTURES "%s.inner.json", cases[i].name);
        inner = mpTestReadFile(mpTestDataPath(rel), &ilen);

        w = mpOsloDecode(wire, wlen, NULL);
        ck_assert_msg(w != NULL, "%s: %s", cases[i].name, mpGetLastErrorMessage());
        b = mpOsloDecode(inner, ilen, NULL);
        ck_assert_msg(b != NULL, "%s inner: %s", cases[i].name, mpGetLastErrorMessage());
        ck_assert_int_eq(mpOsloMessageGetInfo(w)->envelope_version, 2);
        ck_assert_int_eq(mpOsloMessageGetInfo(b)->envelope_version, 1);
        ck_assert_str_eq(mpOsloMessageGetInfo(w)->event_type, cases[i].name);
        ck_assert_str_eq(mpOsloMessageGetInfo(w)->instance_uuid, cases[i].uuid);
        ck_assert_int_eq(mpOsloMessageGetInfo(w)->format, cases[i].format);
        ck_assert_int_eq(mpOsloMessageGetInfo(b)->format, cases[i].format);
        ck_assert_int_eq(mpOsloMessageGetInfo(w)->lm_event, cases[i].ev);
        if (cases[i].publisher)
            ck_assert_str_eq(mpOsloMessageGetInfo(w)->publisher_id, cases[i].publisher);
        /* the envelope's string is exactly the inner document */
        want = json_loadb(inner, ilen, 0, &err);
        ck_assert_ptr_nonnull(want);
        ck_assert(json_equal(want, mpOsloMessageGetJSON(w)));
        ck_assert(json_equal(want, mpOsloMessageGetJSON(b)));
        json_decref(want);
        mpOsloMessageFree(w);
        mpOsloMessageFree(b);
        free(wire);
        free(inner);
    }
}
END_TEST

START_TEST(test_timestamps)
{
    static const struct { const char *s; int64_t ms; } good[] = {
        { "2026-11-21 09:12:40.118000", INT64_C(1795252360118) },
        { "2026-11-21 09:12:40.118999", INT64_C(1795252360118) },
        { "2026-11-21T09:12:40.118", INT64_C(1795252360118) },
        { "2026-11-21 09:12:40.118Z", INT64_C(1795252360118) },
        { "2026-11-21 09:12:40.118000+00:00", INT64_C(1795252360118) },
        { "2024-02-29 23:59:59", INT64_C(1709251199000) },
        { "1970-01-01 00:00:00", 0 },
        { "1969-12-31 23:59:59.999", -1 },
        { "0001-01-01 00:00:00", INT64_C(-62135596800000) },
        { "9999-12-31 23:59:59.999999", INT64_C(253402300799999) },
    };
    static const char *const bad[] = {
        "", "2026-11-21", "2026-11-21 09:12", "2026-11-21 09:12:40.", "2026-11-21 09:12:40.1234567",
        "2026-13-01 00:00:00", "2023-02-29 00:00:00", "2026-11-31 00:00:00", "2026-11-21 24:00:00",
        "2026-11-21 09:60:00", "2026-11-21 09:12:60", "0000-01-01 00:00:00",
        "2026-11-21 09:12:40+01:00", "2026-11-21 09:12:40 ", "2026/11/21 09:12:40",
        "2026-11-21 09:12:4x", "-026-11-21 09:12:40",
    };
    char buf[32];
    int64_t ms;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_msg(mpOsloParseTimestamp(good[i].s, &ms) == 0, "%s", good[i].s);
        ck_assert_int_eq(ms, good[i].ms);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mpResetLastError();
        ck_assert_msg(mpOsloParseTimestamp(bad[i], &ms) == -1, "%s accepted", bad[i]);
        ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "is not a UTC"));
    }
    ck_assert_int_eq(mpOsloFormatTimestamp(INT64_C(1795252360118), buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "2026-11-21 09:12:40.118000");
    ck_assert_int_eq(mpOsloFormatTimestamp(-1, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "1969-12-31 23:59:59.999000");
    ck_assert_int_eq(mpOsloFormatTimestamp(0, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "1970-01-01 00:00:00.000000");
    ck_assert_int_eq(mpOsloFormatTimestamp(INT64_C(1709251199000), buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "2024-02-29 23:59:59.000000");
    ck_assert_int_eq(mpOsloFormatTimestamp(INT64_C(253402300799999), buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "9999-12-31 23:59:59.999000");
    ck_assert_int_eq(mpOsloFormatTimestamp(INT64_C(-62135596800000), buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "0001-01-01 00:00:00.000000");
    ck_assert_int_eq(mpOsloFormatTimestamp(INT64_C(253402300800000), buf, sizeof(buf)), -1);
    ck_assert_int_eq(mpOsloFormatTimestamp(INT64_MIN, buf, sizeof(buf)), -1);
    ck_assert_int_eq(mpOsloFormatTimestamp(INT64_MAX, buf, sizeof(buf)), -1);
    ck_assert_int_eq(mpOsloFormatTimestamp(0, buf, 10), -1);
    /* every day over 800 years survives a format/parse round trip */
    for (ms = INT64_C(-5000000000000); ms < INT64_C(20000000000000);
         ms += MP_OSLO_MS_PER_DAY_TEST) {
        ck_assert_int_eq(mpOsloFormatTimestamp(ms, buf, sizeof(buf)), 0);
        {
            int64_t back;

            ck_assert_int_eq(mpOsloParseTimestamp(buf, &back), 0);
            ck_assert_int_eq(back, ms);
        }
    }
}
END_TEST

START_TEST(test_classify)
{
    ck_assert_int_eq(mpOsloClassifyEventType("instance.live_migration_post_dest.end"),
                     MP_OSLO_LM_POST_DEST_END);
    ck_assert_int_eq(mpOsloClassifyEventType("compute.instance.live.migration.force.complete.end"),
                     MP_OSLO_LM_FORCE_COMPLETE_END);
    ck_assert_int_eq(mpOsloClassifyEventType("compute.instance.live_migration._pre.start"),
                     MP_OSLO_LM_NONE);
    ck_assert_int_eq(mpOsloClassifyEventType("compute.live_migration.metrics"), MP_OSLO_LM_NONE);
    ck_assert_int_eq(mpOsloClassifyEventType("instance.live_migration_pre.start.x"),
                     MP_OSLO_LM_NONE);
    ck_assert_int_eq(mpOsloClassifyEventType(NULL), MP_OSLO_LM_NONE);
    ck_assert_str_eq(mpOsloLiveMigrationEventName(MP_OSLO_LM_ROLLBACK_DEST_START),
                     "rollback_dest.start");
    ck_assert_ptr_null(mpOsloLiveMigrationEventName(MP_OSLO_LM_NONE));
    ck_assert_ptr_null(mpOsloLiveMigrationEventName(MP_OSLO_LM_LAST));
    ck_assert_ptr_null(mpOsloLiveMigrationEventName((mpOsloLiveMigrationEvent)-3));
    ck_assert_str_eq(mpOsloFormatTypeToString(MP_OSLO_FORMAT_OTHER), "other");
}
END_TEST

START_TEST(test_uuid_helpers)
{
    char out[MP_OSLO_UUID_BUFLEN];
    static const uint8_t v[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                   0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
    char longName[1000];

    /* values from Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL,
     * "urn:migpilot:oslo-message-id"), name) */
    mpOsloMessageIdFromName("abc", 3, out);
    ck_assert_str_eq(out, "b54255d7-8419-502a-991b-9d4453785e88");
    mpOsloMessageIdFromName("", 0, out);
    ck_assert_str_eq(out, "4b051c95-b382-5fb8-85d0-a1fe1f303270");
    mpOsloMessageIdFromName(NULL, 5, out);
    ck_assert_str_eq(out, "4b051c95-b382-5fb8-85d0-a1fe1f303270");
    memset(longName, 'x', sizeof(longName));
    mpOsloMessageIdFromName(longName, sizeof(longName), out);
    ck_assert_str_eq(out, "5f5ade17-be06-50e1-beaa-32351a7826a5");
    ck_assert(mpOsloIsUuid(out));
    mpOsloUuidFormat(v, out);
    ck_assert_str_eq(out, "00112233-4455-6677-8899-aabbccddeeff");
    ck_assert(mpOsloIsUuid("0E6D3B2A-5F4C-4A1E-9B8D-7C6F5E4D3A21"));
    ck_assert(!mpOsloIsUuid("0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a2"));
    ck_assert(!mpOsloIsUuid("0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a211"));
    ck_assert(!mpOsloIsUuid("0e6d3b2a5f4c-4a1e-9b8d-7c6f5e4d3a21-"));
    ck_assert(!mpOsloIsUuid("0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a2g"));
    ck_assert(!mpOsloIsUuid(""));
    ck_assert(!mpOsloIsUuid(NULL));
}
END_TEST

static json_t *
metricsPayload(void)
{
    json_error_t err;
    json_t *p = json_loads(
        "{\"instance_id\": \"178b0921-8f85-4257-88b6-2e743b5a975c\","
        " \"project_id\": \"6f70656e737461636b20342065766572\","
        " \"user_id\": \"9f3b7a0c2e4d4c6f8a1b3d5e7f9a0b1c\","
        " \"source_host\": \"cmp-a01\", \"dest_host\": \"cmp-b07\","
        " \"mode\": \"post-copy\", \"migration_time_ms\": 41873, \"downtime_ms\": 187,"
        " \"bytes_transferred\": 9126805504, \"memory_total_bytes\": 1099511627776,"
        " \"big\": 9223372036854775807, \"neg\": -9223372036854775808,"
        " \"ratio\": 0.1, \"name\": \"caf\\u00e9 \\u2603 \\ud83d\\ude00\","
        " \"nested\": {\"a\": [1, 2.5, null, true, false, \"x\"]}}", 0, &err);

    ck_assert_msg(p != NULL, "%s", err.text);
    return p;
}

START_TEST(test_encode_round_trip)
{
    mpOsloEncodeParams params = { 0 };
    json_t *payload = metricsPayload();
    json_t *ctx = json_pack("{s:s, s:n, s:b}", "request_id", "req-1", "user_id",
                            "is_admin", 1);
    mpOsloMessage *msg;
    const mpOsloInfo *info;
    json_t *root;
    char *body, *body2;
    size_t len;
    const char *order[] = { "\\\"message_id\\\"", "\\\"publisher_id\\\"",
                            "\\\"event_type\\\"", "\\\"priority\\\"", "\\\"payload\\\"",
                            "\\\"timestamp\\\"", "\\\"_unique_id\\\"",
                            "\\\"_context_request_id\\\"" };
    const char *prev;
    size_t i;

    params.event_type = "compute.live_migration.metrics";
    params.publisher_id = "migpilot.cmp-a01";
    params.payload = payload;
    params.message_id = "4f3d0e1a-7d1b-4a53-9e0b-2f4c8b5e1a77";
    params.timestamp_ms = INT64_C(1795252360118);
    params.context = ctx;

    body = mpOsloEncode(&params, &len);
    ck_assert_msg(body != NULL, "%s", mpGetLastErrorMessage());
    ck_assert_uint_eq(len, strlen(body));
    ck_assert_msg(strncmp(body, "{\"oslo.version\": \"2.0\", \"oslo.message\": \"{\\\"message_id\\\": "
                          "\\\"4f3d0e1a-7d1b-4a53-9e0b-2f4c8b5e1a77\\\", ", 100) == 0,
                  "%s", body);
    for (i = 0; i < len; i++)
        ck_assert_msg((unsigned char)body[i] < 0x80, "non-ASCII byte at %zu", i);
    prev = body;
    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *at = strstr(body, order[i]);

        ck_assert_msg(at != NULL && at > prev, "%s out of order in %s", order[i], body);
        prev = at;
    }

    msg = mpOsloDecode(body, len, NULL);
    ck_assert_msg(msg != NULL, "%s", mpGetLastErrorMessage());
    info = mpOsloMessageGetInfo(msg);
    root = mpOsloMessageGetJSON(msg);
    ck_assert_int_eq(info->envelope_version, 2);
    ck_assert_int_eq(info->format, MP_OSLO_FORMAT_OTHER);
    ck_assert_int_eq(info->lm_event, MP_OSLO_LM_NONE);
    ck_assert_str_eq(info->event_type, "compute.live_migration.metrics");
    ck_assert_str_eq(info->publisher_id, "migpilot.cmp-a01");
    ck_assert_str_eq(info->publisher_host, "cmp-a01");
    ck_assert_str_eq(info->priority, "INFO");
    ck_assert_str_eq(info->message_id, "4f3d0e1a-7d1b-4a53-9e0b-2f4c8b5e1a77");
    ck_assert_str_eq(info->timestamp, "2026-11-21 09:12:40.118000");
    ck_assert_int_eq(info->timestamp_ms, INT64_C(1795252360118));
    ck_assert_str_eq(info->instance_uuid, "178b0921-8f85-4257-88b6-2e743b5a975c");
    ck_assert_str_eq(info->tenant_id, "6f70656e737461636b20342065766572");
    ck_assert_str_eq(info->user_id, "9f3b7a0c2e4d4c6f8a1b3d5e7f9a0b1c");
    ck_assert_str_eq(info->request_id, "req-1");
    ck_assert(json_equal(json_object_get(root, "payload"), payload));
    /* byte counts beyond 2^31 and the int64 extremes are integers, not reals */
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(root, "payload"),
                                                        "bytes_transferred")),
                     INT64_C(9126805504));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(root, "payload"),
                                                        "memory_total_bytes")),
                     INT64_C(1099511627776));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(root, "payload"),
                                                        "big")), INT64_MAX);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(root, "payload"),
                                                        "neg")), INT64_MIN);
    ck_assert(json_is_null(json_object_get(root, "_context_user_id")));
    ck_assert(json_is_true(json_object_get(root, "_context_is_admin")));
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(root, "_unique_id"))), 32);

    /* deterministic: a re-send of the same record is byte-identical */
    body2 = mpOsloEncode(&params, NULL);
    ck_assert_ptr_nonnull(body2);
    ck_assert_str_eq(body, body2);

    mpOsloMessageFree(msg);
    free(body);
    free(body2);
    json_decref(payload);
    json_decref(ctx);
}
END_TEST

START_TEST(test_encode_unique_id)
{
    mpOsloEncodeParams params = { 0 };
    json_t *payload = json_object();
    mpOsloMessage *msg;
    char *body;

    params.event_type = "compute.live_migration.progress";
    params.publisher_id = "migpilot.cmp-a01";
    params.priority = "info";
    params.payload = payload;
    params.message_id = "5c7b46a4-85e8-4f73-8cc4-4b2729303815";
    params.timestamp_ms = 0;
    body = mpOsloEncode(&params, NULL);
    ck_assert_msg(body != NULL, "%s", mpGetLastErrorMessage());
    msg = mpOsloDecode(body, strlen(body), NULL);
    ck_assert_ptr_nonnull(msg);
    /* Python: uuid.uuid5(NS, "unique:5c7b46a4-85e8-4f73-8cc4-4b2729303815").hex */
    ck_assert_str_eq(json_string_value(json_object_get(mpOsloMessageGetJSON(msg), "_unique_id")),
                     "627a6add171955159a376db16ddd56c9");
    ck_assert_str_eq(mpOsloMessageGetInfo(msg)->priority, "INFO");
    ck_assert_str_eq(mpOsloMessageGetInfo(msg)->timestamp, "1970-01-01 00:00:00.000000");
    ck_assert_ptr_null(mpOsloMessageGetInfo(msg)->instance_uuid);
    ck_assert_ptr_null(json_object_get(mpOsloMessageGetJSON(msg), "_context_request_id"));
    mpOsloMessageFree(msg);
    free(body);
    json_decref(payload);
}
END_TEST

START_TEST(test_encode_rejects)
{
    json_t *payload = json_object();
    json_t *array = json_array();
    json_t *deep = json_object();
    json_t *cur = deep;
    json_t *badUuid = json_pack("{s:s}", "instance_id", "not-a-uuid");
    static const char *const badUtf8 = "compute.\xff";
    mpOsloEncodeParams ok = { 0 };
    mpOsloEncodeParams p;
    int i;

    for (i = 0; i < 70; i++) {
        json_t *next = json_object();

        json_object_set_new(cur, "d", next);
        cur = next;
    }
    ok.event_type = "compute.live_migration.switch";
    ok.publisher_id = "migpilot.cmp-a01";
    ok.payload = payload;
    ok.message_id = "5c7b46a4-85e8-4f73-8cc4-4b2729303815";
    ok.timestamp_ms = 1;

#define REJECT(field, value, substr) \
    do { \
        char *out; \
        p = ok; \
        p.field = value; \
        mpResetLastError(); \
        out = mpOsloEncode(&p, NULL); \
        ck_assert_msg(out == NULL, "accepted " #field); \
        ck_assert_msg(strstr(mpGetLastErrorMessage(), substr) != NULL, \
                      "%s: %s", #field, mpGetLastErrorMessage()); \
    } while (0)

    REJECT(event_type, NULL, "event_type is missing or empty");
    REJECT(event_type, "", "event_type is missing or empty");
    REJECT(event_type, badUtf8, "event_type is not valid UTF-8 at offset 8");
    REJECT(publisher_id, NULL, "publisher_id is missing or empty");
    REJECT(priority, "LOUD", "priority \"LOUD\" is not one of oslo's");
    REJECT(payload, NULL, "payload is not an object (it is missing)");
    REJECT(payload, array, "payload is not an object (it is an array)");
    REJECT(payload, deep, "payload nests deeper than 63 levels");
    REJECT(payload, badUuid, "instance uuid payload.instance_id \"not-a-uuid\" is not a uuid");
    REJECT(context, array, "context is not an object");
    REJECT(message_id, NULL, "message_id \"\" is not a uuid");
    REJECT(message_id, "msg-1", "message_id \"msg-1\" is not a uuid");
    REJECT(timestamp_ms, INT64_MAX, "outside years 1..9999");
    REJECT(event_type, "instance.live_migration_pre.start",
           "live-migration notification instance.live_migration_pre.start has no instance uuid");
#undef REJECT
    mpResetLastError();
    ck_assert_ptr_null(mpOsloEncode(NULL, NULL));
    ck_assert_int_eq(mpHasError(), 1);

    json_decref(payload);
    json_decref(array);
    json_decref(deep);
    json_decref(badUuid);
}
END_TEST

/* Wraps an inner document into an envelope 2.0 body, as oslo does. */
static char *
envelope(const char *inner)
{
    json_t *o = json_pack("{s:s, s:s}", "oslo.version", "2.0", "oslo.message", inner);
    char *s;

    ck_assert_ptr_nonnull(o);
    s = json_dumps(o, 0);
    json_decref(o);
    return s;
}

#define GOOD_PAYLOAD "{\"nova_object.name\": \"InstanceActionPayload\", " \
    "\"nova_object.data\": {\"uuid\": \"0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a21\"}}"

static const struct {
    const char *name;
    const char *body;       /* raw AMQP body, or NULL to wrap inner */
    const char *inner;
    const char *error;      /* expected substring of the one error message */
} rejects[] = {
    { "empty", "", NULL, "AMQP body is empty" },
    { "garbage", "hello", NULL, "AMQP body is not valid JSON: invalid token near 'hello'" },
    { "truncated outer", "{\"oslo.version\": \"2.0\", \"oslo.message\": \"{\\\"event_", NULL,
      "AMQP body is not valid JSON: premature end of input" },
    { "trailing garbage", "{\"event_type\": \"x\", \"payload\": {}} x", NULL,
      "AMQP body is not valid JSON: end of file expected" },
    { "outer array", "[1, 2]", NULL, "AMQP body is not a JSON object (it is an array)" },
    { "outer string", "\"x\"", NULL, "AMQP body is not a JSON object (it is a string)" },
    { "duplicate key", "{\"event_type\": \"a\", \"event_type\": \"b\", \"payload\": {}}", NULL,
      "duplicate object key" },
    { "message not string", "{\"oslo.version\": \"2.0\", \"oslo.message\": {\"event_type\": \"x\"}}",
      NULL, "oslo.message is not a string (it is an object)" },
    { "version 3", "{\"oslo.version\": \"3.0\", \"oslo.message\": \"{}\"}", NULL,
      "unsupported oslo envelope version \"3.0\" (2.0 expected)" },
    { "version number", "{\"oslo.version\": 2.0, \"oslo.message\": \"{}\"}", NULL,
      "oslo.version is not a string (it is a real)" },
    { "version hostile", "{\"oslo.version\": \"\\n\\u001b[31mred 0123456789012345678901234567890123456789\", "
      "\"oslo.message\": \"{}\"}", NULL,
      "unsupported oslo envelope version \"\\x0a\\x1b[31mred 012345678901234567890123456789...\" (2.0 expected)" },
    { "inner truncated", NULL, "{\"event_type\": \"x\", \"payl",
      "oslo.message is not valid JSON: " },
    { "inner array", NULL, "[]", "oslo.message is not a JSON object (it is an array)" },
    { "no event_type", NULL, "{\"payload\": {}}", "notification has no event_type" },
    { "event_type number", NULL, "{\"event_type\": 42, \"payload\": {}}",
      "event_type is not a string (it is an integer)" },
    { "event_type empty", NULL, "{\"event_type\": \"\", \"payload\": {}}", "event_type is empty" },
    { "no payload", NULL, "{\"event_type\": \"x.y\"}", "notification x.y has no payload" },
    { "payload string", NULL, "{\"event_type\": \"x\", \"payload\": \"{}\"}",
      "payload is not an object (it is a string)" },
    { "payload null", NULL, "{\"event_type\": \"x\", \"payload\": null}",
      "payload is not an object (it is null)" },
    { "data list", NULL, "{\"event_type\": \"x\", \"payload\": {\"nova_object.data\": []}}",
      "payload.\"nova_object.data\" is not an object (it is an array)" },
    { "data missing", NULL, "{\"event_type\": \"x\", \"payload\": {\"nova_object.name\": \"P\"}}",
      "payload.\"nova_object.data\" is not an object (it is missing)" },
    { "uuid number", NULL, "{\"event_type\": \"x\", \"payload\": {\"nova_object.data\": "
      "{\"uuid\": 12}}}", "instance uuid payload.\"nova_object.data\".uuid is not a string "
      "(it is an integer)" },
    { "uuid bad", NULL, "{\"event_type\": \"x\", \"payload\": {\"nova_object.data\": "
      "{\"uuid\": \"0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a2z\"}}}",
      "instance uuid payload.\"nova_object.data\".uuid \"0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a2z\" "
      "is not a uuid" },
    { "legacy uuid list", NULL, "{\"event_type\": \"compute.instance.live_migration.pre.start\", "
      "\"payload\": {\"instance_id\": [1]}}",
      "instance uuid payload.instance_id is not a string (it is an array)" },
    { "lm without uuid", NULL, "{\"event_type\": \"compute.instance.live_migration._post.end\", "
      "\"payload\": {\"host\": \"h\"}}",
      "live-migration notification compute.instance.live_migration._post.end has no instance "
      "uuid (payload.instance_id)" },
    { "publisher number", NULL, "{\"event_type\": \"x\", \"publisher_id\": 7, \"payload\": {}}",
      "publisher_id is not a string (it is an integer)" },
    { "message_id list", NULL, "{\"event_type\": \"x\", \"message_id\": [], \"payload\": {}}",
      "message_id is not a string (it is an array)" },
    { "timestamp bad", NULL, "{\"event_type\": \"x\", \"timestamp\": \"yesterday\", \"payload\": {}}",
      "timestamp \"yesterday\" is not a UTC \"YYYY-MM-DD HH:MM:SS[.ffffff]\"" },
    { "timestamp number", NULL, "{\"event_type\": \"x\", \"timestamp\": 1700000000, \"payload\": {}}",
      "timestamp is not a string (it is an integer)" },
    { "escaped NUL outer", "{\"event_type\": \"a\\u0000b\", \"payload\": {}}", NULL,
      "AMQP body contains a NUL character (\\u0000) at offset 17" },
    { "escaped NUL inner", NULL, "{\"event_type\": \"a\\u0000b\", \"payload\": {}}",
      "oslo.message contains a NUL character (\\u0000) at offset 17" },
    { "invalid UTF-8", "{\"event_type\": \"caf\xc3\x28\", \"payload\": {}}", NULL,
      "AMQP body is not valid UTF-8 at offset 19 (bytes \\xc3(\",...)" },
    { "overlong UTF-8", "{\"event_type\": \"\xc0\xaf\", \"payload\": {}}", NULL,
      "AMQP body is not valid UTF-8 at offset 16" },
    { "surrogate UTF-8", "{\"event_type\": \"\xed\xa0\x80\", \"payload\": {}}", NULL,
      "AMQP body is not valid UTF-8 at offset 16" },
    { "truncated UTF-8", "{\"event_type\": \"\xe2\x82", NULL,
      "AMQP body is not valid UTF-8 at offset 16" },
    { "lone surrogate escape", NULL, "{\"event_type\": \"\\ud800\", \"payload\": {}}",
      "oslo.message is not valid JSON: invalid Unicode" },
    { "too big integer", NULL, "{\"event_type\": \"x\", \"payload\": {\"n\": 9223372036854775808}}",
      "oslo.message is not valid JSON: too big integer" },
    { "real overflow", NULL, "{\"event_type\": \"x\", \"payload\": {\"n\": 1e999}}",
      "oslo.message is not valid JSON: real number overflow" },
};

START_TEST(test_decode_rejects)
{
    char *body = NULL;
    const char *b = rejects[_i].body;
    mpOsloMessage *msg;

    if (!b)
        b = body = envelope(rejects[_i].inner);
    mpResetLastError();
    msg = mpOsloDecode(b, strlen(b), NULL);
    ck_assert_msg(msg == NULL, "%s: accepted", rejects[_i].name);
    ck_assert_int_eq(mpHasError(), 1);
    ck_assert_msg(strstr(mpGetLastErrorMessage(), rejects[_i].error) != NULL,
                  "%s: got \"%s\", want \"%s\"", rejects[_i].name, mpGetLastErrorMessage(),
                  rejects[_i].error);
    ck_assert_ptr_null(strchr(mpGetLastErrorMessage(), '\n'));
    ck_assert_uint_lt(strlen(mpGetLastErrorMessage()), 400);
    free(body);
}
END_TEST

START_TEST(test_decode_raw_nul)
{
    static const char body[] = "{\"event_type\": \"x\", \"payload\": {}}\0trailing";

    mpResetLastError();
    ck_assert_ptr_null(mpOsloDecode(body, sizeof(body) - 1, NULL));
    ck_assert_str_eq(mpGetLastErrorMessage(), "AMQP body contains a NUL byte at offset 34");
    ck_assert_ptr_null(mpOsloDecode(NULL, 0, NULL));
    ck_assert_str_eq(mpGetLastErrorMessage(), "AMQP body is empty");
}
END_TEST

/* A notification whose payload holds depth nested arrays, bare or in an envelope. */
static char *
nested(size_t depth, int envelope2)
{
    const char *head = envelope2 ?
        "{\"oslo.version\": \"2.0\", \"oslo.message\": "
        "\"{\\\"event_type\\\": \\\"x\\\", \\\"payload\\\": {\\\"d\\\": " :
        "{\"event_type\": \"x\", \"payload\": {\"d\": ";
    const char *tail = envelope2 ? "}}\"}" : "}}";
    size_t cap = strlen(head) + 2 * depth + strlen(tail) + 1;
    char *s = mpAlloc0(cap);
    size_t o = strlen(head);

    memcpy(s, head, o);
    memset(s + o, '[', depth);
    memset(s + o + depth, ']', depth);
    strcpy(s + o + 2 * depth, tail);
    return s;
}

START_TEST(test_decode_limits)
{
    mpOsloDecodeOptions opts = { 0 };
    mpOsloMessage *msg;
    char *s;
    char *big;
    size_t i;

    /* inner depth: message 1 + payload 2 + n arrays */
    s = nested(62, 1);
    msg = mpOsloDecode(s, strlen(s), NULL);
    ck_assert_msg(msg != NULL, "%s", mpGetLastErrorMessage());
    mpOsloMessageFree(msg);
    free(s);
    s = nested(63, 1);
    ck_assert_ptr_null(mpOsloDecode(s, strlen(s), NULL));
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "oslo.message nests deeper than 64 levels at offset 99");
    free(s);
    s = nested(10000, 0);
    ck_assert_ptr_null(mpOsloDecode(s, strlen(s), NULL));
    ck_assert_str_eq(mpGetLastErrorMessage(), "AMQP body nests deeper than 64 levels at offset 99");
    /* deeper than jansson's own limit: refused by jansson, clamped, never recursed into */
    opts.max_depth = 100000;
    opts.max_bytes = 1 << 20;
    ck_assert_ptr_null(mpOsloDecode(s, strlen(s), &opts));
    ck_assert_ptr_nonnull(strstr(mpGetLastErrorMessage(), "nests deeper than 2048 levels"));
    free(s);
    s = nested(8, 0);
    opts.max_depth = 10;
    msg = mpOsloDecode(s, strlen(s), &opts);
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_eq(mpOsloMessageGetInfo(msg)->envelope_version, 1);
    mpOsloMessageFree(msg);
    opts.max_depth = 9;
    ck_assert_ptr_null(mpOsloDecode(s, strlen(s), &opts));
    free(s);

    /* size limit: checked before anything is parsed */
    big = mpAlloc0(5 * 1024 * 1024 + 1);
    for (i = 0; i < 5 * 1024 * 1024; i++)
        big[i] = (char)('!' + i % 90);
    ck_assert_ptr_null(mpOsloDecode(big, 5 * 1024 * 1024, NULL));
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "AMQP body of 5242880 bytes is larger than the limit of 1048576 bytes");
    opts.max_bytes = 10;
    opts.max_depth = 0;
    ck_assert_ptr_null(mpOsloDecode("{\"event_type\": \"x\", \"payload\": {}}", 34, &opts));
    ck_assert_str_eq(mpGetLastErrorMessage(),
                     "AMQP body of 34 bytes is larger than the limit of 10 bytes");
    opts.max_bytes = 34;
    msg = mpOsloDecode("{\"event_type\": \"x\", \"payload\": {}}", 34, &opts);
    ck_assert_ptr_nonnull(msg);
    mpOsloMessageFree(msg);
    free(big);
}
END_TEST

START_TEST(test_decode_bare_and_lenient)
{
    /* one envelope key alone: oslo treats the body as a bare 1.0 message */
    static const char only[] = "{\"oslo.version\": \"2.0\", \"event_type\": \"compute.metrics.update\","
        " \"publisher_id\": \"compute\", \"payload\": {\"instance_id\": null, \"host\": 5,"
        " \"tenant_id\": null, \"project_id\": \"p\"}, \"_context_user\": \"u\","
        " \"priority\": null}";
    mpOsloMessage *msg = mpOsloDecode(only, strlen(only), NULL);
    const mpOsloInfo *info;

    ck_assert_msg(msg != NULL, "%s", mpGetLastErrorMessage());
    info = mpOsloMessageGetInfo(msg);
    ck_assert_int_eq(info->envelope_version, 1);
    ck_assert_int_eq(info->format, MP_OSLO_FORMAT_OTHER);
    ck_assert_ptr_null(info->instance_uuid);
    ck_assert_ptr_null(info->publisher_host);
    ck_assert_ptr_null(info->host);
    ck_assert_ptr_null(info->priority);
    ck_assert_ptr_null(info->message_id);
    ck_assert_int_eq(info->has_timestamp, 0);
    ck_assert_str_eq(info->tenant_id, "p");
    ck_assert_str_eq(info->user_id, "u");
    mpOsloMessageFree(msg);
}
END_TEST

/*
 * The request's identity under both context serializations. oslo.messaging up to 14.x
 * (Debian 12) packs whatever context the caller passed as _context_* keys. 16.x (Debian 13)
 * sanitizes it first (oslo_messaging/notify/notifier.py, _sanitize_context): a
 * RequestContext, which nova always passes, goes out as its redacted copy (same keys,
 * auth_token null); a plain dict is dropped, so the message has no _context_* key at all and
 * only nova's versioned payload still names the request (InstancePayload 1.6+ request_id).
 * tests/data/fixtures/oslo16/ holds oslo.messaging 16.1's own output (its README).
 */
START_TEST(test_context_forms)
{
    static const struct {
        const char *file;
        const char *requestId;      /* NULL: none on the wire */
        int hasContext;
    } cases[] = {
        /* 14.x, a nova RequestContext: context and payload */
        { "instance.live_migration_pre.start.wire.json",
          "req-5b6c791d-5709-4f36-8fbe-c3e02869e35d", 1 },
        /* 14.x legacy: the context alone names the request */
        { "compute.instance.live_migration._post.start.wire.json",
          "req-5b6c791d-5709-4f36-8fbe-c3e02869e35d", 1 },
        /* 16.1, a RequestContext: its redacted copy */
        { "../oslo16/instance.live_migration_pre.start-context.wire.json",
          "req-0c5d2b8e-7a41-4f3e-9d6b-2e8f1a7c4b90", 1 },
        /* 16.1, a dict context: dropped; the versioned payload still has the id */
        { "../oslo16/instance.live_migration_pre.start-dict.wire.json",
          "req-0c5d2b8e-7a41-4f3e-9d6b-2e8f1a7c4b90", 0 },
        /* 16.1, a dict context on a legacy notification: nothing names the request */
        { "../oslo16/compute.instance.live_migration.pre.start-dict.wire.json", NULL, 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char rel[256];
        size_t len;
        char *wire;
        mpOsloMessage *msg;
        const mpOsloInfo *info;

        snprintf(rel, sizeof(rel), FIXTURES "%s", cases[i].file);
        wire = mpTestReadFile(mpTestDataPath(rel), &len);
        msg = mpOsloDecode(wire, len, NULL);
        ck_assert_msg(msg != NULL, "%s: %s", cases[i].file, mpGetLastErrorMessage());
        info = mpOsloMessageGetInfo(msg);
        ck_assert_int_eq(info->envelope_version, 2);
        ck_assert_int_eq(!!json_object_get(mpOsloMessageGetJSON(msg), "_context_request_id"),
                         cases[i].hasContext);
        if (cases[i].requestId)
            ck_assert_msg(info->request_id && strcmp(info->request_id, cases[i].requestId) == 0,
                          "%s: request_id %s", cases[i].file, info->request_id);
        else
            ck_assert_msg(info->request_id == NULL, "%s: request_id %s", cases[i].file,
                          info->request_id);
        /* the tenant and user are the payload's in every form */
        ck_assert_str_eq(info->tenant_id, "6f70656e737461636b20342065766572");
        ck_assert_str_eq(info->user_id, "9f3b7a0c2e4d4c6f8a1b3d5e7f9a0b1c");
        ck_assert_str_eq(info->instance_uuid, "178b0921-8f85-4257-88b6-2e743b5a975c");
        ck_assert_int_ne(info->lm_event, MP_OSLO_LM_NONE);
        mpOsloMessageFree(msg);
        free(wire);
    }
}
END_TEST

/* Where both name a request, the context's wins; the payload's fills in when it is absent
 * or not a string. */
START_TEST(test_request_id_precedence)
{
    static const struct { const char *body; const char *want; } cases[] = {
        { "{\"event_type\": \"x\", \"_context_request_id\": \"req-c\","
          " \"payload\": {\"request_id\": \"req-p\"}}", "req-c" },
        { "{\"event_type\": \"x\", \"_context_request_id\": null,"
          " \"payload\": {\"request_id\": \"req-p\"}}", "req-p" },
        { "{\"event_type\": \"x\", \"payload\": {\"request_id\": \"req-p\"}}", "req-p" },
        { "{\"event_type\": \"x\", \"payload\": {\"request_id\": 7}}", NULL },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mpOsloMessage *msg = mpOsloDecode(cases[i].body, strlen(cases[i].body), NULL);
        const char *got;

        ck_assert_msg(msg != NULL, "%s", mpGetLastErrorMessage());
        got = mpOsloMessageGetInfo(msg)->request_id;
        if (cases[i].want)
            ck_assert_msg(got && strcmp(got, cases[i].want) == 0, "case %zu: %s", i, got);
        else
            ck_assert_msg(got == NULL, "case %zu: %s", i, got);
        mpOsloMessageFree(msg);
    }
}
END_TEST

static Suite *
osloSuite(void)
{
    Suite *s = suite_create("oslo");
    TCase *tc = tcase_create("oslo");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_sequences_decode_to_truth, 0,
                        (int)(sizeof(scenarios) / sizeof(scenarios[0])));
    tcase_add_test(tc, test_design_captures);
    tcase_add_test(tc, test_timestamps);
    tcase_add_test(tc, test_classify);
    tcase_add_test(tc, test_uuid_helpers);
    tcase_add_test(tc, test_encode_round_trip);
    tcase_add_test(tc, test_encode_unique_id);
    tcase_add_test(tc, test_encode_rejects);
    tcase_add_loop_test(tc, test_decode_rejects, 0, (int)(sizeof(rejects) / sizeof(rejects[0])));
    tcase_add_test(tc, test_decode_raw_nul);
    tcase_add_test(tc, test_decode_limits);
    tcase_add_test(tc, test_decode_bare_and_lenient);
    tcase_add_test(tc, test_context_forms);
    tcase_add_test(tc, test_request_id_precedence);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(osloSuite)
