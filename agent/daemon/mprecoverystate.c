/*
 * mprecoverystate.c: what post-copy recovery needs, kept across agent restarts
 *
 * One small file per migration, written like a spool entry: a temporary name, fsync,
 * rename, then an fsync of the directory so that the rename itself survives a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpalloc.h"
#include "mperror.h"
#include "mplog.h"
#include "mprecoverystate.h"

#define MP_RECOVERY_SUFFIX ".dest"
#define MP_RECOVERY_TMP_SUFFIX ".tmp"
#define MP_RECOVERY_FORMAT "1"
/* a record is about 200 bytes: anything much larger is not one */
#define MP_RECOVERY_MAX_BYTES 4096

struct _mpRecoveryState {
    char *dir;
    mpRecoveryRecord *records;
    size_t nrecords;
    size_t arecords;
};

bool
mpRecoveryUuidValid(const char *uuid)
{
    size_t i;

    for (i = 0; i < MP_RECOVERY_UUID_BUFLEN - 1; i++) {
        char c = uuid[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return uuid[i] == '\0';
}

/* libvirt's spelling, which file names use */
static void
mpRecoveryUuidLower(char *uuid)
{
    for (; *uuid; uuid++) {
        if (*uuid >= 'A' && *uuid <= 'F')
            *uuid = (char)(*uuid - 'A' + 'a');
    }
}

bool
mpRecoveryHostValid(const char *host)
{
    size_t len = strlen(host);

    return len > 0 && len < MP_RECOVERY_HOST_BUFLEN &&
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789.-_") == len;
}

/* What [recovery] destination_addresses accepts as an address (mpconfig.c), printable. */
static bool
mpRecoveryAddressValid(const char *addr)
{
    size_t len = strlen(addr);
    size_t i;

    if (!len || len >= MP_RECOVERY_HOST_BUFLEN || strpbrk(addr, "/@%="))
        return false;
    for (i = 0; i < len; i++) {
        if ((unsigned char)addr[i] <= 0x20 || (unsigned char)addr[i] >= 0x7f)
            return false;
    }
    return true;
}

/* The keys of a record, each exactly once. */
typedef enum {
    MP_RECOVERY_KEY_FORMAT,
    MP_RECOVERY_KEY_UUID,
    MP_RECOVERY_KEY_HOST,
    MP_RECOVERY_KEY_ADDRESS,
    MP_RECOVERY_KEY_SAVED_AT,
    MP_RECOVERY_KEY_LAST
} mpRecoveryKey;

static const char *const mpRecoveryKeyNames[MP_RECOVERY_KEY_LAST] = {
    [MP_RECOVERY_KEY_FORMAT] = "format",
    [MP_RECOVERY_KEY_UUID] = "uuid",
    [MP_RECOVERY_KEY_HOST] = "destination_host",
    [MP_RECOVERY_KEY_ADDRESS] = "destination_address",
    [MP_RECOVERY_KEY_SAVED_AT] = "saved_at_ms",
};

static int
mpRecoveryRecordSet(mpRecoveryRecord *rec, mpRecoveryKey key, const char *value)
{
    char *end = NULL;
    long long ms;

    switch (key) {
    case MP_RECOVERY_KEY_FORMAT:
        if (strcmp(value, MP_RECOVERY_FORMAT) != 0) {
            mpReportError("format '%.16s' is not " MP_RECOVERY_FORMAT, value);
            return -1;
        }
        return 0;
    case MP_RECOVERY_KEY_UUID:
        if (!mpRecoveryUuidValid(value)) {
            mpReportError("uuid '%.40s' is not a UUID", value);
            return -1;
        }
        snprintf(rec->uuid, sizeof(rec->uuid), "%s", value);
        mpRecoveryUuidLower(rec->uuid);
        return 0;
    case MP_RECOVERY_KEY_HOST:
        if (!mpRecoveryHostValid(value)) {
            mpReportError("destination_host '%.64s' is not a plain host name", value);
            return -1;
        }
        snprintf(rec->host, sizeof(rec->host), "%s", value);
        return 0;
    case MP_RECOVERY_KEY_ADDRESS:
        if (!mpRecoveryAddressValid(value)) {
            mpReportError("destination_address '%.64s' is not an address", value);
            return -1;
        }
        snprintf(rec->address, sizeof(rec->address), "%s", value);
        return 0;
    case MP_RECOVERY_KEY_SAVED_AT:
        errno = 0;
        ms = strtoll(value, &end, 10);
        if (value[0] < '0' || value[0] > '9' || *end || errno || ms < 0) {
            mpReportError("saved_at_ms '%.32s' is not a time in ms", value);
            return -1;
        }
        rec->savedAtMs = ms;
        return 0;
    case MP_RECOVERY_KEY_LAST:
        break;
    }
    mpReportError("internal error: recovery key %d", (int)key);
    return -1;
}

int
mpRecoveryRecordParse(const char *text, mpRecoveryRecord *rec)
{
    bool seen[MP_RECOVERY_KEY_LAST] = { false };
    char *copy = mpStrdup(text);
    char *line = copy;
    unsigned lineno = 0;
    int ret = -1;
    size_t k;

    memset(rec, 0, sizeof(*rec));
    while (line && *line) {
        char *next = strchr(line, '\n');
        char *eq;

        lineno++;
        if (next)
            *next++ = '\0';
        if (!(eq = strchr(line, '='))) {
            mpReportError("line %u: expected key=value, got '%.40s'", lineno, line);
            goto cleanup;
        }
        *eq = '\0';
        for (k = 0; k < MP_RECOVERY_KEY_LAST; k++) {
            if (strcmp(line, mpRecoveryKeyNames[k]) == 0)
                break;
        }
        if (k == MP_RECOVERY_KEY_LAST) {
            mpReportError("line %u: unknown key '%.40s'", lineno, line);
            goto cleanup;
        }
        if (seen[k]) {
            mpReportError("line %u: %s given twice", lineno, line);
            goto cleanup;
        }
        seen[k] = true;
        if (mpRecoveryRecordSet(rec, (mpRecoveryKey)k, eq + 1) < 0)
            goto cleanup;
        line = next;
    }
    for (k = 0; k < MP_RECOVERY_KEY_LAST; k++) {
        if (!seen[k]) {
            mpReportError("%s missing", mpRecoveryKeyNames[k]);
            goto cleanup;
        }
    }
    ret = 0;

 cleanup:
    if (ret < 0)
        memset(rec, 0, sizeof(*rec));
    free(copy);
    return ret;
}

char *
mpRecoveryRecordFormat(const mpRecoveryRecord *rec)
{
    return mpAsprintf("format=" MP_RECOVERY_FORMAT "\nuuid=%s\ndestination_host=%s\n"
                      "destination_address=%s\nsaved_at_ms=%" PRId64 "\n",
                      rec->uuid, rec->host, rec->address, rec->savedAtMs);
}

mpRecoveryState *
mpRecoveryStateNew(const char *stateDir)
{
    mpRecoveryState *st = mpAlloc0(sizeof(*st));

    st->dir = mpAsprintf("%s/recovery", stateDir);
    if (mkdir(st->dir, 0750) < 0 && errno != EEXIST) {
        mpReportError("recovery state: cannot create %s: %s", st->dir, strerror(errno));
        mpRecoveryStateFree(st);
        return NULL;
    }
    return st;
}

void
mpRecoveryStateFree(mpRecoveryState *st)
{
    if (!st)
        return;
    free(st->dir);
    free(st->records);
    free(st);
}

static mpRecoveryRecord *
mpRecoveryStateFind(mpRecoveryState *st, const char *uuid)
{
    size_t i;

    for (i = 0; i < st->nrecords; i++) {
        if (strcasecmp(st->records[i].uuid, uuid) == 0)
            return &st->records[i];
    }
    return NULL;
}

static void
mpRecoveryStateKeep(mpRecoveryState *st, const mpRecoveryRecord *rec)
{
    mpRecoveryRecord *old = mpRecoveryStateFind(st, rec->uuid);

    if (old) {
        *old = *rec;
        return;
    }
    mpGrow(&st->records, &st->arecords, st->nrecords + 1, sizeof(*rec));
    st->records[st->nrecords++] = *rec;
}

static int
mpRecoveryWriteAll(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The rename is durable only once the directory is on disk too. */
static int
mpRecoverySyncDir(mpRecoveryState *st)
{
    int fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ret = 0;

    if (fd < 0 || fsync(fd) < 0) {
        mpReportError("recovery state: cannot sync %s: %s", st->dir, strerror(errno));
        ret = -1;
    }
    if (fd >= 0)
        close(fd);
    return ret;
}

int
mpRecoveryStatePut(mpRecoveryState *st, const mpRecoveryRecord *given)
{
    mpRecoveryRecord copy = *given;
    const mpRecoveryRecord *rec = &copy;
    char *text = NULL;
    char *tmp = NULL;
    char *final = NULL;
    int fd = -1;
    int ret = -1;

    if (!mpRecoveryUuidValid(rec->uuid) || !mpRecoveryHostValid(rec->host) ||
        !mpRecoveryAddressValid(rec->address) || rec->savedAtMs < 0) {
        mpReportError("recovery state: not saving a bad record (uuid '%.40s', host "
                      "'%.64s', address '%.64s')", rec->uuid, rec->host, rec->address);
        return -1;
    }
    mpRecoveryUuidLower(copy.uuid);
    text = mpRecoveryRecordFormat(rec);
    tmp = mpAsprintf("%s/.%s" MP_RECOVERY_SUFFIX MP_RECOVERY_TMP_SUFFIX, st->dir, rec->uuid);
    final = mpAsprintf("%s/%s" MP_RECOVERY_SUFFIX, st->dir, rec->uuid);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
        mpReportError("recovery state: cannot create %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (mpRecoveryWriteAll(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
        mpReportError("recovery state: cannot write %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (close(fd) < 0) {
        fd = -1;
        mpReportError("recovery state: cannot write %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, final) < 0) {
        mpReportError("recovery state: cannot rename %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    /* in place now: a failed directory sync is reported, the record kept */
    mpRecoveryStateKeep(st, rec);
    if (mpRecoverySyncDir(st) < 0)
        goto cleanup;
    ret = 0;

 cleanup:
    if (fd >= 0)
        close(fd);
    if (ret < 0)
        unlink(tmp);
    free(text);
    free(tmp);
    free(final);
    return ret;
}

int
mpRecoveryStateRemove(mpRecoveryState *st, const char *uuid)
{
    mpRecoveryRecord *rec = mpRecoveryStateFind(st, uuid);
    char *path;
    int ret = 1;

    if (!rec)
        return 0;
    path = mpAsprintf("%s/%s" MP_RECOVERY_SUFFIX, st->dir, rec->uuid);
    *rec = st->records[--st->nrecords];
    if (unlink(path) < 0 && errno != ENOENT) {
        mpReportError("recovery state: cannot remove %s: %s", path, strerror(errno));
        ret = -1;
    }
    free(path);
    return ret;
}

const mpRecoveryRecord *
mpRecoveryStateGet(mpRecoveryState *st, const char *uuid)
{
    return mpRecoveryStateFind(st, uuid);
}

size_t
mpRecoveryStateCount(mpRecoveryState *st)
{
    return st->nrecords;
}

const mpRecoveryRecord *
mpRecoveryStateAt(mpRecoveryState *st, size_t index)
{
    return index < st->nrecords ? &st->records[index] : NULL;
}

/* Reads one file's text; -1 with an error. */
static int
mpRecoveryReadFile(const char *path, char **text)
{
    char *buf = NULL;
    ssize_t n;
    size_t len = 0;
    int fd;
    int ret = -1;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        mpReportError("cannot open: %s", strerror(errno));
        return -1;
    }
    buf = mpAlloc0(MP_RECOVERY_MAX_BYTES + 1);
    while ((n = read(fd, buf + len, MP_RECOVERY_MAX_BYTES + 1 - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            mpReportError("cannot read: %s", strerror(errno));
            goto cleanup;
        }
        len += (size_t)n;
        if (len > MP_RECOVERY_MAX_BYTES) {
            mpReportError("larger than %d bytes", MP_RECOVERY_MAX_BYTES);
            goto cleanup;
        }
    }
    if (memchr(buf, '\0', len)) {
        mpReportError("contains a NUL byte");
        goto cleanup;
    }
    buf[len] = '\0';
    *text = buf;
    buf = NULL;
    ret = 0;

 cleanup:
    close(fd);
    free(buf);
    return ret;
}

static int
mpRecoveryIsEntry(const struct dirent *ent)
{
    return ent->d_name[0] != '\0' && strcmp(ent->d_name, ".") != 0 &&
        strcmp(ent->d_name, "..") != 0;
}

static bool
mpRecoveryHasSuffix(const char *name, const char *suffix)
{
    size_t len = strlen(name);
    size_t slen = strlen(suffix);

    return len > slen && strcmp(name + len - slen, suffix) == 0;
}

/* One file of the directory: kept, moved aside, removed or left alone (not ours). */
static void
mpRecoveryLoadOne(mpRecoveryState *st, const char *name, int64_t nowMs, int64_t maxAgeMs)
{
    char *path = mpAsprintf("%s/%s", st->dir, name);
    char *text = NULL;
    char *bad = NULL;
    mpRecoveryRecord rec;
    size_t nlen = strlen(name);

    if (name[0] == '.' && mpRecoveryHasSuffix(name, MP_RECOVERY_TMP_SUFFIX)) {
        /* a write the agent did not finish: the record before it, if any, is in place */
        MP_DEBUG(NULL, "recovery state: removing the unfinished write %s", path);
        if (unlink(path) < 0)
            MP_WARN(NULL, "recovery state: cannot remove %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (name[0] == '.' || !mpRecoveryHasSuffix(name, MP_RECOVERY_SUFFIX))
        goto cleanup;   /* *.bad, an operator's notes: not records */
    if (mpRecoveryReadFile(path, &text) < 0 || mpRecoveryRecordParse(text, &rec) < 0) {
        bad = mpAsprintf("%s.bad", path);
        MP_ERROR(NULL, "recovery state: %s ignored: %s; moved aside to %s", path,
                 mpGetLastErrorMessage(), bad);
        if (rename(path, bad) < 0)
            MP_ERROR(NULL, "recovery state: cannot move %s aside: %s", path,
                     strerror(errno));
        goto cleanup;
    }
    if (nlen != strlen(rec.uuid) + strlen(MP_RECOVERY_SUFFIX) ||
        strncmp(name, rec.uuid, strlen(rec.uuid)) != 0) {
        bad = mpAsprintf("%s.bad", path);
        MP_ERROR(NULL, "recovery state: %s ignored: it is the record of %s; moved aside "
                 "to %s", path, rec.uuid, bad);
        if (rename(path, bad) < 0)
            MP_ERROR(NULL, "recovery state: cannot move %s aside: %s", path,
                     strerror(errno));
        goto cleanup;
    }
    if (nowMs - rec.savedAtMs > maxAgeMs) {
        MP_WARN(rec.uuid, "recovery state: %s ignored and removed: saved %lld s ago, no "
                "migration runs that long", path,
                (long long)((nowMs - rec.savedAtMs) / 1000));
        if (unlink(path) < 0)
            MP_WARN(rec.uuid, "recovery state: cannot remove %s: %s", path,
                    strerror(errno));
        goto cleanup;
    }
    mpRecoveryStateKeep(st, &rec);

 cleanup:
    free(path);
    free(text);
    free(bad);
}

int
mpRecoveryStateLoad(mpRecoveryState *st, int64_t nowMs, int64_t maxAgeMs)
{
    struct dirent **ents = NULL;
    int n;
    int i;

    if ((n = scandir(st->dir, &ents, mpRecoveryIsEntry, alphasort)) < 0) {
        mpReportError("recovery state: cannot list %s: %s", st->dir, strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        mpRecoveryLoadOne(st, ents[i]->d_name, nowMs, maxAgeMs);
        free(ents[i]);
    }
    free(ents);
    return (int)st->nrecords;
}
