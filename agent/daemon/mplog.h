/*
 * mplog.h: the agent's log, greppable: "<time> <pid> <LEVEL> [instance: <uuid>] <message>"
 */
#pragma once

typedef enum {
    MP_LOG_DEBUG,
    MP_LOG_INFO,
    MP_LOG_WARNING,
    MP_LOG_ERROR,
} mpLogLevel;

/* Parses "debug", "info", "warning", "error"; -1 if unknown. */
int mpLogLevelFromString(const char *str);

/* Where log lines go: stderr (default) or syslog (daemon facility). */
void mpLogInit(mpLogLevel level, int useSyslog);
void mpLogSetLevel(mpLogLevel level);

/* instance may be NULL when a line concerns no instance. */
void mpLog(mpLogLevel level, const char *instance, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MP_DEBUG(inst, ...) mpLog(MP_LOG_DEBUG, inst, __VA_ARGS__)
#define MP_INFO(inst, ...) mpLog(MP_LOG_INFO, inst, __VA_ARGS__)
#define MP_WARN(inst, ...) mpLog(MP_LOG_WARNING, inst, __VA_ARGS__)
#define MP_ERROR(inst, ...) mpLog(MP_LOG_ERROR, inst, __VA_ARGS__)
