/*
 * fuzz_oslo.c: mposlo on arbitrary AMQP bodies
 *
 * Decodes; when that succeeds, the extracted fields must be consistent, and re-encoding
 * the notification must give a body that decodes to the same event type and payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mperror.h"
#include "mposlo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mpOsloDecodeOptions opts = { .max_bytes = 1 << 20, .max_depth = 32 };
    mpOsloMessage *msg;
    mpOsloMessage *back = NULL;
    const mpOsloInfo *info;
    mpOsloEncodeParams params = { 0 };
    json_t *context = NULL;
    const char *key;
    json_t *value;
    char *body = NULL;
    char id[MP_OSLO_UUID_BUFLEN];

    mpResetLastError();
    msg = mpOsloDecode(data, size, &opts);
    if (!msg) {
        /* a rejection always says why, on one line */
        if (!mpHasError() || strchr(mpGetLastErrorMessage(), '\n'))
            abort();
        return 0;
    }
    info = mpOsloMessageGetInfo(msg);
    if (!info->event_type || !info->event_type[0] ||
        (info->lm_event != MP_OSLO_LM_NONE && !mpOsloIsUuid(info->instance_uuid)) ||
        (info->instance_uuid && !mpOsloIsUuid(info->instance_uuid)) ||
        (info->envelope_version != 1 && info->envelope_version != 2))
        abort();

    context = json_object();
    json_object_foreach(mpOsloMessageGetJSON(msg), key, value) {
        if (strncmp(key, "_context_", 9) == 0 && key[9])
            json_object_set(context, key + 9, value);
    }
    mpOsloMessageIdFromName(data, size, id);
    params.event_type = info->event_type;
    params.publisher_id = info->publisher_id && info->publisher_id[0] ?
        info->publisher_id : "fuzz.host";
    params.priority = info->priority;
    params.payload = json_object_get(mpOsloMessageGetJSON(msg), "payload");
    params.message_id = mpOsloIsUuid(info->message_id) ? info->message_id : id;
    params.timestamp_ms = info->has_timestamp ? info->timestamp_ms : 0;
    params.context = context;
    body = mpOsloEncode(&params, NULL);
    if (!body) {
        /* only an unknown priority or too deep a payload may stop a re-encode */
        if (!mpHasError())
            abort();
        goto cleanup;
    }
    back = mpOsloDecode(body, strlen(body), NULL);
    if (!back ||
        strcmp(mpOsloMessageGetInfo(back)->event_type, info->event_type) != 0 ||
        mpOsloMessageGetInfo(back)->lm_event != info->lm_event ||
        !json_equal(json_object_get(mpOsloMessageGetJSON(back), "payload"), params.payload) ||
        (info->has_timestamp && mpOsloMessageGetInfo(back)->timestamp_ms != info->timestamp_ms))
        abort();

 cleanup:
    mpOsloMessageFree(back);
    free(body);
    json_decref(context);
    mpOsloMessageFree(msg);
    return 0;
}
