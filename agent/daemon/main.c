/*
 * main.c: migpilot-agent entry point
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mpagent.h"
#include "mpconfig.h"
#include "mperror.h"
#include "mplog.h"

#define MP_DEFAULT_CONFIG MP_SYSCONFDIR "/migpilot/migpilot.conf"
#define MP_EXIT_USAGE 64 /* EX_USAGE */

static void
mpUsage(FILE *out)
{
    fprintf(out,
            "Usage: migpilot-agent [OPTION]...\n"
            "Watch live migrations on this host, switch stalled ones to post-copy and\n"
            "publish what each migration cost on nova's bus.\n\n"
            "  -c, --config FILE   configuration file (default %s)\n"
            "  -f, --foreground    stay in the foreground (systemd runs it so)\n"
            "      --check-config  validate the configuration and exit (78 if invalid)\n"
            "      --describe      print every option with its default and help\n"
            "  -V, --version       print the version and exit\n"
            "  -h, --help          print this help and exit\n",
            MP_DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "foreground", no_argument, NULL, 'f' },
        { "check-config", no_argument, NULL, 'C' },
        { "describe", no_argument, NULL, 'D' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *configPath = MP_DEFAULT_CONFIG;
    bool foreground = false;
    bool checkOnly = false;
    mpConfig *cfg = NULL;
    mpAgent *agent = NULL;
    mpPolicyConfig policy;
    int ret = EXIT_FAILURE;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:fVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            configPath = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 'C':
            checkOnly = true;
            break;
        case 'D': {
            char *doc = mpConfigDescribe();

            fputs(doc, stdout);
            free(doc);
            return EXIT_SUCCESS;
        }
        case 'V':
            printf("migpilot-agent %s\n", MP_VERSION);
            return EXIT_SUCCESS;
        case 'h':
            mpUsage(stdout);
            return EXIT_SUCCESS;
        default:
            mpUsage(stderr);
            return MP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "migpilot-agent: unexpected argument '%s'\n", argv[optind]);
        return MP_EXIT_USAGE;
    }

    /* never start half-configured: the whole file, policy and bus URL are checked first */
    if (!(cfg = mpConfigLoad(configPath, mpAgentValidatePolicyKey, NULL)) ||
        mpAgentPolicyFromConfig(cfg, &policy) < 0 ||
        mpConfigResolveTransport(cfg) < 0) {
        fprintf(stderr, "migpilot-agent: %s\n", mpGetLastErrorMessage());
        ret = MP_EXIT_CONFIG;
        goto cleanup;
    }
    if (checkOnly) {
        printf("migpilot-agent: %s: configuration OK (host %s, policy %s)\n", configPath,
               cfg->host, mpPolicyModeToString(policy.mode));
        ret = EXIT_SUCCESS;
        goto cleanup;
    }
    mpLogInit((mpLogLevel)cfg->logLevel, cfg->useSyslog || !foreground);
    if (!foreground && daemon(0, 0) < 0) {
        fprintf(stderr, "migpilot-agent: cannot detach: %m\n");
        goto cleanup;
    }
    if (!(agent = mpAgentNew(cfg, configPath))) {
        cfg = NULL;
        MP_ERROR(NULL, "cannot start: %s", mpGetLastErrorMessage());
        goto cleanup;
    }
    cfg = NULL;
    if (mpAgentRun(agent) < 0) {
        MP_ERROR(NULL, "%s", mpGetLastErrorMessage());
        goto cleanup;
    }
    ret = EXIT_SUCCESS;

 cleanup:
    mpAgentFree(agent);
    mpConfigFree(cfg);
    return ret;
}
