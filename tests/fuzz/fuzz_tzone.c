/*
 * fuzz_tzone.c: zones from arbitrary TZif bytes and POSIX rules (mptzone), and the
 * local-to-epoch solver over them (mpcalendar)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpcalendar.h"
#include "mperror.h"
#include "mptzone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
mpFuzzZone(mpTimeZone *tz)
{
    static const int64_t probes[] = {
        INT64_C(-62135596800), INT64_C(-2208988800), -1, 0, INT64_C(1774747800),
        INT64_C(1792888200), INT64_C(2215063800), INT64_C(253402300799),
    };
    size_t i;

    for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        int64_t off = mpTimeZoneOffset(tz, probes[i]);
        int64_t e;

        /* TZif offsets are 32-bit; rules are within +-25 h */
        if (off < INT32_MIN || off > INT32_MAX)
            abort();
        if (mpLocalToEpoch(probes[i], mpTimeZoneOffsetFunc, tz, &e) < 0)
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mpTimeZone *tz = mpTimeZoneNewTZif("fuzz", data, size);
    char *rule;

    if (tz)
        mpFuzzZone(tz);
    else if (!mpHasError() || strchr(mpGetLastErrorMessage(), '\n'))
        abort();
    mpTimeZoneFree(tz);
    mpResetLastError();

    if (!(rule = malloc(size + 1)))
        return 0;
    memcpy(rule, data, size);
    rule[size] = '\0';
    if ((tz = mpTimeZoneNewPosix(rule)))
        mpFuzzZone(tz);
    else if (!mpHasError())
        abort();
    mpTimeZoneFree(tz);
    mpResetLastError();
    free(rule);
    return 0;
}
