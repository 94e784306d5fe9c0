/*
 * mplocalzone.h: the zone a log's local timestamps are in, for mpTimeline's converter
 *
 * One conversion for the agent and the extension, safe in any thread: a named zone is
 * read from the zone database ($TZDIR or /usr/share/zoneinfo) into an mpTimeZone; the
 * host's zone is asked through localtime_r(). Neither touches TZ (no setenv/tzset).
 * Ambiguous and skipped local times follow Python's fold = 0 rule (mpcalendar.h).
 */
#pragma once

#include <time.h>
#include <stdint.h>

typedef struct _mpLocalZone mpLocalZone;

/* name: an IANA zone name, or NULL (or "") for the host's zone. NULL on error (reported:
 * "unknown time zone 'X' ..."). */
mpLocalZone *mpLocalZoneNew(const char *name);
void mpLocalZoneFree(mpLocalZone *zone);

/* An mpTimeConvertFunc (mptimeline.h), opaque = the zone: local time to epoch ms,
 * INT64_MIN outside years 1..9999 (the range of Python's datetime). */
int64_t mpLocalZoneConvert(const struct tm *tm, int ms, void *opaque);
