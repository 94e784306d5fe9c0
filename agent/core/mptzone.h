/*
 * mptzone.h: a time zone from its TZif bytes (RFC 8536) or a POSIX TZ rule
 *
 * Pure and thread-safe: the caller reads the file (agent/daemon/mplocalzone.c); the zone
 * answers UTC offsets without the C library's global TZ state (setenv + tzset + mktime,
 * which no other thread may race). Leap-second ("right/") data is ignored.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct _mpTimeZone mpTimeZone;

/* name: for error messages. NULL on error (reported): not TZif, truncated, bad footer. */
mpTimeZone *mpTimeZoneNewTZif(const char *name, const void *buf, size_t len);
/* A POSIX TZ rule such as "CET-1CEST,M3.5.0,M10.5.0/3" or "UTC0"; NULL on error. */
mpTimeZone *mpTimeZoneNewPosix(const char *rule);
void mpTimeZoneFree(mpTimeZone *tz);

/* The UTC offset (seconds, local - UTC) at epoch second t. */
int64_t mpTimeZoneOffset(const mpTimeZone *tz, int64_t t);

/* An mpUTCOffsetFunc (mpcalendar.h) over a zone (opaque); never fails. */
int mpTimeZoneOffsetFunc(int64_t t, int64_t *offset, void *opaque);
