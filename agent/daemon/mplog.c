/*
 * mplog.c: the agent's log
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mplog.h"

static mpLogLevel mpLogThreshold = MP_LOG_INFO;
static int mpLogToSyslog;

static const char *const mpLogLevelNames[] = { "DEBUG", "INFO", "WARNING", "ERROR" };

int
mpLogLevelFromString(const char *str)
{
    size_t i;

    for (i = 0; i < sizeof(mpLogLevelNames) / sizeof(mpLogLevelNames[0]); i++) {
        if (strcasecmp(str, mpLogLevelNames[i]) == 0)
            return (int)i;
    }
    return -1;
}

void
mpLogInit(mpLogLevel level, int useSyslog)
{
    mpLogThreshold = level;
    mpLogToSyslog = useSyslog;
    if (useSyslog)
        openlog("migpilot-agent", LOG_PID, LOG_DAEMON);
}

void
mpLogSetLevel(mpLogLevel level)
{
    mpLogThreshold = level;
}

void
mpLog(mpLogLevel level, const char *instance, const char *fmt, ...)
{
    static const int syslogPriorities[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
    char msg[2048];
    char prefix[64] = "";
    va_list ap;

    if (level < mpLogThreshold)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (instance)
        snprintf(prefix, sizeof(prefix), "[instance: %.36s] ", instance);

    if (mpLogToSyslog) {
        syslog(syslogPriorities[level], "%s %s%s", mpLogLevelNames[level], prefix, msg);
    } else {
        struct timeval tv;
        struct tm tm;
        char when[32];

        gettimeofday(&tv, NULL);
        localtime_r(&tv.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %d %s %s%s\n", when, (long)(tv.tv_usec / 1000),
                (int)getpid(), mpLogLevelNames[level], prefix, msg);
    }
}
