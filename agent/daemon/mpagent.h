/*
 * mpagent.h: migpilot-agent: the monitor, the bus and the spool around one event loop
 */
#pragma once

#include "mpconfig.h"
#include "mppolicy.h"

typedef struct _mpAgent mpAgent;

/* Builds the [policy] configuration from the config file's [policy] pairs. */
int mpAgentPolicyFromConfig(const mpConfig *cfg, mpPolicyConfig *policy);

/* Validator for mpConfigLoad: each [policy] key is judged by the policy's own table. */
int mpAgentValidatePolicyKey(const char *key, const char *value, void *opaque);

/* Takes ownership of cfg. configPath is re-read on SIGHUP. */
mpAgent *mpAgentNew(mpConfig *cfg, const char *configPath);
void mpAgentFree(mpAgent *agent);

/* Runs until SIGTERM or SIGINT; 0 on a clean stop. */
int mpAgentRun(mpAgent *agent);
