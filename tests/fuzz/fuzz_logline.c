/*
 * fuzz_logline.c: the input is a log file fed in chunks to the line splitter and the
 * timeline; the first byte picks the chunk size and the line length limit.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mplogline.h"
#include "mptimeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
onEvent(const mpTimelineEvent *ev, void *opaque)
{
    size_t *n = opaque;

    /* touch what a consumer reads */
    *n += (size_t)ev->type + (ev->record->instanceUuid[0] != 0) + ev->line->message.len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mpTimeline *tl = mpTimelineNew(NULL, NULL);
    size_t chunk = 4096;
    size_t n = 0;
    size_t off;
    json_t *j;
    char *s;

    if (size > 0) {
        chunk = (size_t)(data[0] % 64) + 1;
        if (data[0] & 0x40)
            chunk = 4096;
        if (data[0] & 0x80)
            mpTimelineSetMaxLine(tl, 200);
        data++;
        size--;
    }
    mpTimelineSetEventCallback(tl, onEvent, &n);
    for (off = 0; off < size; off += chunk)
        mpTimelineFeedBytes(tl, (const char *)data + off, off + chunk > size ? size - off : chunk);
    mpTimelineEndOfFile(tl);
    /* a second "file" (rotation) of the same bytes */
    mpTimelineFeedBytes(tl, (const char *)data, size);
    mpTimelineEndOfFile(tl);
    {
        mpLogLine line;

        mpLogLineParse((const char *)data, size, &line);
    }
    j = mpTimelineToJSON(tl);
    s = json_dumps(j, 0);
    free(s);
    json_decref(j);
    mpTimelineFree(tl);
    return 0;
}
