/*
 * fuzz_config.c: the agent's configuration loader on arbitrary text
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpagent.h"
#include "mpconfig.h"
#include "mperror.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    mpConfig *cfg;
    mpPolicyConfig policy;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cfg = mpConfigLoadString("fuzz.conf", text, mpAgentValidatePolicyKey, NULL);
    if (cfg) {
        /* what the agent does next with an accepted file */
        if (mpAgentPolicyFromConfig(cfg, &policy) < 0 && !mpHasError())
            abort();
        mpConfigFree(cfg);
    } else if (!mpHasError() || strchr(mpGetLastErrorMessage(), '\n')) {
        /* every rejection is reported, on one line */
        abort();
    }
    mpResetLastError();
    free(text);
    return 0;
}
