/*
 * test_logfollow.c: following a real nova-compute log file across appends, partial lines,
 * rotation by rename, copytruncate, deletion and re-creation, and a directory that appears
 * later
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mptest.h"
#include "mperror.h"
#include "mplogfollow.h"

#define UUID_A "1f0c3a52-5d0e-4b8e-9a51-0c7e2d7a6b01"
#define UUID_B "2b7d9e04-8c3f-4a61-b5d2-93e1f04c7a02"
#define REQ_A "req-0a1b2c3d-0000-4000-8000-00000000000a"
#define REQ_B "req-0a1b2c3d-0000-4000-8000-00000000000b"

/* epoch ms of 2026-11-21 10:00:00.000 UTC */
#define T0 1795255200000LL

typedef struct {
    mpNovaLogView views[8];
    int n;
} Seen;

static void
collect(const mpNovaLogView *v, void *opaque)
{
    Seen *seen = opaque;

    ck_assert_int_lt(seen->n, 8);
    seen->views[seen->n++] = *v;
}

static char dirPath[256];
static char logPath[400];

static void
makeDir(void)
{
    snprintf(dirPath, sizeof(dirPath), "/tmp/mp-test-logfollow.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dirPath));
    snprintf(logPath, sizeof(logPath), "%s/nova-compute.log", dirPath);
}

static void
removeDir(void)
{
    char cmd[400];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dirPath);
    ck_assert_int_eq(system(cmd), 0);
}

static void
appendTo(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* One line of nova's source host, at 10:MM:SS.mmm local (UTC here). */
static void
line(char *buf, size_t size, int min, int sec, int ms, const char *level, const char *req,
     const char *uuid, const char *msg)
{
    if (req)
        snprintf(buf, size, "2026-11-21 10:%02d:%02d.%03d 4242 %s nova.virt.libvirt.driver "
                 "[None %s 9f3b7a0c2e4d4c6f8a1b3d5e7f9a0b1c 8d1f5e6b9a0c4b2e8f3a7c6d5e4b3a21 "
                 "- - - -] [instance: %s] %s%s\n", min, sec, ms, level, req, uuid, msg,
                 strcmp(level, "DEBUG") == 0 ?
                 " _live_migration /usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:10580" :
                 "");
    else
        snprintf(buf, size, "2026-11-21 10:%02d:%02d.%03d 4242 %s nova.compute.manager [-] "
                 "[instance: %s] %s\n", min, sec, ms, level, uuid, msg);
}

/* A whole source migration: start at 10:m:00.100, switch at +20.250, lifecycle at +20.900,
 * completed at +31.600. */
static void
migration(char *buf, size_t size, int m, const char *req, const char *uuid)
{
    char l[4][512];

    line(l[0], sizeof(l[0]), m, 0, 100, "DEBUG", req, uuid,
         "Starting monitoring of live migration");
    line(l[1], sizeof(l[1]), m, 20, 250, "INFO", req, uuid,
         "Switching to post-copy migration mode");
    line(l[2], sizeof(l[2]), m, 20, 900, "INFO", NULL, uuid,
         "VM Postcopy started (Lifecycle Event)");
    line(l[3], sizeof(l[3]), m, 31, 600, "INFO", req, uuid,
         "Migration operation has completed");
    snprintf(buf, size, "%s%s%s%s", l[0], l[1], l[2], l[3]);
}

static void
assertView(const mpNovaLogView *v, const char *uuid, const char *req, int m)
{
    int64_t start = T0 + m * 60000LL + 100;

    ck_assert_str_eq(v->instanceUuid, uuid);
    ck_assert_str_eq(v->requestId, req);
    ck_assert_str_eq(v->outcome, "completed");
    ck_assert_int_eq(v->startedAtMs, start);
    ck_assert_int_eq(v->novaTimeMs, 31500);
    ck_assert_int_eq(v->completedAtMs, start + 31500);
    ck_assert_int_eq(v->switchAtMs, start + 20150);
    ck_assert_int_eq(v->postcopyStartedAtMs, start + 20800);
}

static mpLogFollow *
newFollower(Seen *seen)
{
    mpLogFollow *lf = mpLogFollowNew(logPath, "UTC", 1 << 20, collect, seen);

    ck_assert_msg(lf != NULL, "%s", mpGetLastErrorMessage());
    return lf;
}

START_TEST(test_append_and_partial_lines)
{
    Seen seen = { .n = 0 };
    mpLogFollow *lf;
    char text[4096];
    size_t half;
    struct pollfd pfd;
    mpNovaLogView v;

    makeDir();
    lf = newFollower(&seen);
    /* the file does not exist yet: not a problem */
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    appendTo(logPath, "");
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);

    migration(text, sizeof(text), 5, REQ_A, UUID_A);
    /* written in two pieces that cut the last line: nothing until its newline arrives */
    half = strlen(text) - 10;
    {
        char first[4096];

        memcpy(first, text, half);
        first[half] = '\0';
        appendTo(logPath, first);
    }
    pfd.fd = mpLogFollowFd(lf);
    pfd.events = POLLIN;
    ck_assert_int_eq(poll(&pfd, 1, 2000), 1);   /* inotify saw the append */
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(seen.n, 0);
    ck_assert_uint_eq(mpLogFollowLineCount(lf), 3);
    ck_assert(!mpLogFollowLookup(lf, UUID_A, 0, &v));
    appendTo(logPath, text + half);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(seen.n, 1);
    assertView(&seen.views[0], UUID_A, REQ_A, 5);
    ck_assert(mpLogFollowLookup(lf, UUID_A, T0, &v));
    assertView(&v, UUID_A, REQ_A, 5);
    /* a lookup for a migration that started after that one ended finds nothing */
    ck_assert(!mpLogFollowLookup(lf, UUID_A, v.completedAtMs + 1, &v));
    ck_assert(!mpLogFollowLookup(lf, UUID_B, 0, &v));
    mpLogFollowFree(lf);
    removeDir();
}
END_TEST

START_TEST(test_rotation_by_rename)
{
    Seen seen = { .n = 0 };
    mpLogFollow *lf;
    char a[4096], b[4096], rotated[420];
    char *cut;

    makeDir();
    snprintf(rotated, sizeof(rotated), "%s.1", logPath);
    lf = newFollower(&seen);
    migration(a, sizeof(a), 5, REQ_A, UUID_A);
    /* the first two lines, then the file is renamed; nova still writes the rest of the
     * migration to the renamed file before it opens a new one */
    cut = strchr(strchr(a, '\n') + 1, '\n') + 1;
    {
        char head[4096];

        memcpy(head, a, (size_t)(cut - a));
        head[cut - a] = '\0';
        appendTo(logPath, head);
    }
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(rename(logPath, rotated), 0);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    appendTo(rotated, cut);
    migration(b, sizeof(b), 7, REQ_B, UUID_B);
    appendTo(logPath, b);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(seen.n, 2);
    assertView(&seen.views[0], UUID_A, REQ_A, 5);
    assertView(&seen.views[1], UUID_B, REQ_B, 7);
    mpLogFollowFree(lf);
    removeDir();
}
END_TEST

START_TEST(test_copytruncate)
{
    Seen seen = { .n = 0 };
    mpLogFollow *lf;
    char a[4096], b[4096];

    makeDir();
    lf = newFollower(&seen);
    migration(a, sizeof(a), 5, REQ_A, UUID_A);
    appendTo(logPath, a);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(seen.n, 1);
    /* logrotate's copytruncate: same file, emptied; the writer goes on at its start */
    ck_assert_int_eq(truncate(logPath, 0), 0);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    migration(b, sizeof(b), 7, REQ_B, UUID_B);
    appendTo(logPath, b);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(seen.n, 2);
    assertView(&seen.views[1], UUID_B, REQ_B, 7);
    mpLogFollowFree(lf);
    removeDir();
}
END_TEST

START_TEST(test_delete_and_recreate)
{
    Seen seen = { .n = 0 };
    mpLogFollow *lf;
    char a[4096], b[4096];

    makeDir();
    lf = newFollower(&seen);
    migration(a, sizeof(a), 5, REQ_A, UUID_A);
    appendTo(logPath, a);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(unlink(logPath), 0);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    migration(b, sizeof(b), 7, REQ_B, UUID_B);
    appendTo(logPath, b);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(seen.n, 2);
    assertView(&seen.views[0], UUID_A, REQ_A, 5);
    assertView(&seen.views[1], UUID_B, REQ_B, 7);
    mpLogFollowFree(lf);
    removeDir();
}
END_TEST

START_TEST(test_directory_appears_later)
{
    Seen seen = { .n = 0 };
    mpLogFollow *lf;
    char a[4096], sub[280];
    struct pollfd pfd;

    makeDir();
    snprintf(sub, sizeof(sub), "%s/nova", dirPath);
    snprintf(logPath, sizeof(logPath), "%s/nova-compute.log", sub);
    lf = newFollower(&seen);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);   /* the periodic call finds the directory */
    migration(a, sizeof(a), 5, REQ_A, UUID_A);
    appendTo(logPath, a);
    pfd.fd = mpLogFollowFd(lf);
    pfd.events = POLLIN;
    ck_assert_int_eq(poll(&pfd, 1, 2000), 1);      /* the directory's watch saw the file */
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(seen.n, 1);
    assertView(&seen.views[0], UUID_A, REQ_A, 5);
    mpLogFollowFree(lf);
    removeDir();
}
END_TEST

START_TEST(test_existing_history_and_problems)
{
    Seen seen = { .n = 0 };
    mpLogFollow *lf;
    char a[4096], b[4096];

    makeDir();
    /* history before the agent started: only the tail is read */
    migration(a, sizeof(a), 5, REQ_A, UUID_A);
    appendTo(logPath, a);
    lf = mpLogFollowNew(logPath, NULL, 0, collect, &seen);
    ck_assert_ptr_nonnull(lf);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(seen.n, 0);
    migration(b, sizeof(b), 7, REQ_B, UUID_B);
    appendTo(logPath, b);
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    ck_assert_int_eq(seen.n, 1);
    ck_assert_str_eq(seen.views[0].instanceUuid, UUID_B);
    ck_assert_int_eq(seen.views[0].novaTimeMs, 31500);
    mpLogFollowFree(lf);

    /* an unreadable path is reported once, not at every call */
    ck_assert_int_eq(unlink(logPath), 0);
    ck_assert_int_eq(mkdir(logPath, 0755), 0);
    lf = mpLogFollowNew(logPath, "UTC", 0, collect, &seen);
    ck_assert_ptr_nonnull(lf);
    ck_assert_int_eq(mpLogFollowProcess(lf), -1);
    ck_assert_msg(strstr(mpGetLastErrorMessage(), "not a regular file") != NULL, "%s",
                  mpGetLastErrorMessage());
    ck_assert_int_eq(mpLogFollowProcess(lf), 0);
    mpLogFollowFree(lf);

    ck_assert_ptr_null(mpLogFollowNew(logPath, "No/Such_Zone", 0, collect, &seen));
    ck_assert_msg(strstr(mpGetLastErrorMessage(), "No/Such_Zone") != NULL, "%s",
                  mpGetLastErrorMessage());
    removeDir();
}
END_TEST

static Suite *
logfollowSuite(void)
{
    Suite *s = suite_create("logfollow");
    TCase *tc = tcase_create("daemon");

    tcase_add_test(tc, test_append_and_partial_lines);
    tcase_add_test(tc, test_rotation_by_rename);
    tcase_add_test(tc, test_copytruncate);
    tcase_add_test(tc, test_delete_and_recreate);
    tcase_add_test(tc, test_directory_appears_later);
    tcase_add_test(tc, test_existing_history_and_problems);
    suite_add_tcase(s, tc);
    return s;
}

MP_TEST_MAIN(logfollowSuite)
