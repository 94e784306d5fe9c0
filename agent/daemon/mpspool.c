/*
 * mpspool.c: metrics records waiting for the broker
 *
 * An entry is "<creation µs>-<message id>.rec": the routing key on the first line, the
 * AMQP body after it. Written to a temporary name, fsynced, then renamed into place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "mpalloc.h"
#include "mperror.h"
#include "mplog.h"
#include "mpspool.h"

#define MP_SPOOL_SUFFIX ".rec"
#define MP_SPOOL_MAX_BYTES (64 * 1024 * 1024)

struct _mpSpool {
    char *dir;
    unsigned long long lastStamp;
};

static int
mpSpoolMkdirs(const char *dir)
{
    char *path = mpStrdup(dir);
    char *p;
    int ret = -1;

    for (p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            mpReportError("cannot create %s: %s", path, strerror(errno));
            goto cleanup;
        }
        *p = '/';
    }
    if (mkdir(path, 0750) < 0 && errno != EEXIST) {
        mpReportError("cannot create %s: %s", path, strerror(errno));
        goto cleanup;
    }
    ret = 0;

 cleanup:
    free(path);
    return ret;
}

mpSpool *
mpSpoolNew(const char *dir)
{
    mpSpool *spool;

    if (mpSpoolMkdirs(dir) < 0)
        return NULL;
    spool = mpAlloc0(sizeof(*spool));
    spool->dir = mpAsprintf("%s/spool", dir);
    if (mkdir(spool->dir, 0750) < 0 && errno != EEXIST) {
        mpReportError("cannot create %s: %s", spool->dir, strerror(errno));
        mpSpoolFree(spool);
        return NULL;
    }
    return spool;
}

void
mpSpoolFree(mpSpool *spool)
{
    if (!spool)
        return;
    free(spool->dir);
    free(spool);
}

static int
mpSpoolWriteAll(int fd, const char *buf, size_t len)
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

int
mpSpoolPut(mpSpool *spool, const char *messageId, const char *routingKey,
           const char *body, char *name, size_t namelen)
{
    struct timeval tv;
    unsigned long long stamp;
    char *tmp = NULL;
    char *final = NULL;
    int fd = -1;
    int ret = -1;

    if (strchr(routingKey, '\n') || strchr(messageId, '/')) {
        mpReportError("spool: bad routing key or message id");
        return -1;
    }
    gettimeofday(&tv, NULL);
    stamp = (unsigned long long)tv.tv_sec * 1000000ULL + (unsigned long long)tv.tv_usec;
    /* strictly increasing, so entries keep their order within the same microsecond */
    if (stamp <= spool->lastStamp)
        stamp = spool->lastStamp + 1;
    spool->lastStamp = stamp;
    snprintf(name, namelen, "%016llu-%s" MP_SPOOL_SUFFIX, stamp, messageId);
    tmp = mpAsprintf("%s/.%s.tmp", spool->dir, name);
    final = mpAsprintf("%s/%s", spool->dir, name);

    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
        mpReportError("spool: cannot create %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (mpSpoolWriteAll(fd, routingKey, strlen(routingKey)) < 0 ||
        mpSpoolWriteAll(fd, "\n", 1) < 0 ||
        mpSpoolWriteAll(fd, body, strlen(body)) < 0 ||
        fsync(fd) < 0) {
        mpReportError("spool: cannot write %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (close(fd) < 0) {
        fd = -1;
        mpReportError("spool: cannot write %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, final) < 0) {
        mpReportError("spool: cannot rename %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    ret = 0;

 cleanup:
    if (fd >= 0)
        close(fd);
    if (ret < 0)
        unlink(tmp);
    free(tmp);
    free(final);
    return ret;
}

int
mpSpoolRemove(mpSpool *spool, const char *name)
{
    char *path = mpAsprintf("%s/%s", spool->dir, name);
    int ret = 0;

    if (unlink(path) < 0 && errno != ENOENT) {
        mpReportError("spool: cannot remove %s: %s", path, strerror(errno));
        ret = -1;
    }
    free(path);
    return ret;
}

static int
mpSpoolIsEntry(const struct dirent *ent)
{
    size_t len = strlen(ent->d_name);
    size_t slen = strlen(MP_SPOOL_SUFFIX);

    return ent->d_name[0] != '.' && len > slen &&
        strcmp(ent->d_name + len - slen, MP_SPOOL_SUFFIX) == 0;
}

/* Reads an entry; -1 if it cannot be read or is not "key\nbody". */
static int
mpSpoolRead(mpSpool *spool, const char *name, char **content)
{
    char *path = mpAsprintf("%s/%s", spool->dir, name);
    FILE *fp = NULL;
    char *buf = NULL;
    long size;
    int ret = -1;

    if (!(fp = fopen(path, "rb")) || fseek(fp, 0, SEEK_END) < 0 || (size = ftell(fp)) < 0 ||
        size > MP_SPOOL_MAX_BYTES || fseek(fp, 0, SEEK_SET) < 0)
        goto cleanup;
    buf = mpAlloc0((size_t)size + 1);
    if (fread(buf, 1, (size_t)size, fp) != (size_t)size || memchr(buf, '\0', (size_t)size) ||
        !strchr(buf, '\n'))
        goto cleanup;
    *content = buf;
    buf = NULL;
    ret = 0;

 cleanup:
    if (fp)
        fclose(fp);
    free(buf);
    free(path);
    return ret;
}

int
mpSpoolForEach(mpSpool *spool, mpSpoolVisitor visit, void *opaque)
{
    struct dirent **ents = NULL;
    int n;
    int i;
    int ret = 0;

    if ((n = scandir(spool->dir, &ents, mpSpoolIsEntry, alphasort)) < 0) {
        mpReportError("spool: cannot list %s: %s", spool->dir, strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        char *content = NULL;
        char *nl;

        if (ret < 0)
            continue;
        if (mpSpoolRead(spool, ents[i]->d_name, &content) < 0) {
            char *from = mpAsprintf("%s/%s", spool->dir, ents[i]->d_name);
            char *to = mpAsprintf("%s.bad", from);

            MP_ERROR(NULL, "spool: %s is unreadable or corrupt; moved aside to %s", from, to);
            if (rename(from, to) < 0)
                MP_ERROR(NULL, "spool: cannot move %s aside: %s", from, strerror(errno));
            free(from);
            free(to);
            continue;
        }
        nl = strchr(content, '\n');
        *nl = '\0';
        if (visit(ents[i]->d_name, content, nl + 1, opaque) < 0)
            ret = -1;
        free(content);
    }
    for (i = 0; i < n; i++)
        free(ents[i]);
    free(ents);
    return ret;
}

size_t
mpSpoolCount(mpSpool *spool)
{
    DIR *dir = opendir(spool->dir);
    struct dirent *ent;
    size_t n = 0;

    if (!dir)
        return 0;
    while ((ent = readdir(dir)))
        n += mpSpoolIsEntry(ent);
    closedir(dir);
    return n;
}
