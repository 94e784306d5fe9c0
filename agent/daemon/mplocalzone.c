/*
 * mplocalzone.c: a log's zone, from the zone database or the host (see mplocalzone.h)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpalloc.h"
#include "mpcalendar.h"
#include "mperror.h"
#include "mplocalzone.h"
#include "mptimeline.h"
#include "mptzone.h"

#define MP_ZONE_FILE_MAX (1 << 20)

struct _mpLocalZone {
    mpTimeZone *tz;          /* NULL: the host's zone */
};

/* Reads a whole regular file of at most MP_ZONE_FILE_MAX bytes; -1 with errno set. */
static int
mpLocalZoneRead(const char *path, char **buf, size_t *len)
{
    struct stat st;
    size_t got = 0;
    int fd, saved, ret = -1;

    *buf = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    if (fstat(fd, &st) < 0)
        goto cleanup;
    if (!S_ISREG(st.st_mode) || st.st_size > MP_ZONE_FILE_MAX) {
        errno = S_ISREG(st.st_mode) ? EFBIG : EISDIR;
        goto cleanup;
    }
    *buf = mpAlloc0((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            goto cleanup;
        }
        got += (size_t)n;
    }
    *len = got;
    ret = 0;

 cleanup:
    saved = errno;
    close(fd);
    if (ret < 0)
        MP_FREE(*buf);
    errno = saved;
    return ret;
}

mpLocalZone *
mpLocalZoneNew(const char *name)
{
    mpLocalZone *zone = mpAlloc0(sizeof(*zone));
    const char *dir = getenv("TZDIR");
    char *path = NULL, *buf = NULL;
    size_t len = 0;

    if (!name || !name[0]) {
        /* localtime_r() reads TZ only once per process, tzset() again: the zone of now */
        tzset();
        return zone;
    }
    /* a key, as Python's ZoneInfo takes it: never a path out of the database */
    if (name[0] == '/' || strstr(name, "..")) {
        mpReportError("unknown time zone '%s': not an IANA zone name", name);
        goto error;
    }
    path = mpAsprintf("%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", name);
    if (mpLocalZoneRead(path, &buf, &len) < 0) {
        mpReportError("unknown time zone '%s' (%s: %s)", name, path, strerror(errno));
        goto error;
    }
    if (!(zone->tz = mpTimeZoneNewTZif(name, buf, len)))
        goto error;
    free(path);
    free(buf);
    return zone;

 error:
    free(path);
    free(buf);
    mpLocalZoneFree(zone);
    return NULL;
}

void
mpLocalZoneFree(mpLocalZone *zone)
{
    if (!zone)
        return;
    mpTimeZoneFree(zone->tz);
    free(zone);
}

/* The host's offset: localtime_r reads TZ and /etc/localtime but never changes them. */
static int
mpLocalZoneHostOffset(int64_t t, int64_t *offset, void *opaque)
{
    time_t tt = (time_t)t;
    struct tm tm;

    (void)opaque;
    if (!localtime_r(&tt, &tm)) {
        mpReportError("localtime_r(%lld): %s", (long long)t, strerror(errno));
        return -1;
    }
    *offset = tm.tm_gmtoff;
    return 0;
}

int64_t
mpLocalZoneConvert(const struct tm *tm, int ms, void *opaque)
{
    const mpLocalZone *zone = opaque;
    int64_t local, epoch;

    if (tm->tm_year + 1900 < 1 || tm->tm_year + 1900 > 9999)
        return INT64_MIN;
    if ((local = mpTimeUTCToEpochMs(tm, 0, NULL)) == INT64_MIN)
        return INT64_MIN;
    if (zone->tz ? mpLocalToEpoch(local / 1000, mpTimeZoneOffsetFunc, zone->tz, &epoch) :
        mpLocalToEpoch(local / 1000, mpLocalZoneHostOffset, NULL, &epoch))
        return INT64_MIN;
    return epoch * 1000 + ms;
}
