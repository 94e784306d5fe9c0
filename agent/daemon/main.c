/*
 * main.c: migpilot-agent entry point
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#define MP_DEFAULT_CONFIG MP_SYSCONFDIR "/migpilot/migpilot.conf"

static void
mpUsage(FILE *out)
{
    fprintf(out,
            "Usage: migpilot-agent [OPTION]...\n"
            "Watch live migrations on this host, switch stalled ones to post-copy and\n"
            "publish what each migration cost on nova's bus.\n\n"
            "  -c, --config FILE   configuration file (default %s)\n"
            "  -f, --foreground    stay in the foreground, log to stderr\n"
            "      --check-config  validate the configuration and exit\n"
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
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = MP_DEFAULT_CONFIG;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:fVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'f':
        case 'C':
            break;
        case 'V':
            printf("migpilot-agent %s\n", MP_VERSION);
            return EXIT_SUCCESS;
        case 'h':
            mpUsage(stdout);
            return EXIT_SUCCESS;
        default:
            mpUsage(stderr);
            return 64; /* EX_USAGE */
        }
    }
    if (optind < argc) {
        fprintf(stderr, "migpilot-agent: unexpected argument '%s'\n", argv[optind]);
        return 64;
    }
    fprintf(stderr, "migpilot-agent: config %s\n", config);
    return EXIT_SUCCESS;
}
