/*
 * mpfeatures.c: optional libvirt/QEMU features, decided from their versions at run time
 */
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpalloc.h"
#include "mperror.h"
#include "mpfeatures.h"
#include "mplog.h"

#define MP_VERSION_NUMBER(major, minor, micro) \
    ((major) * 1000000ULL + (minor) * 1000ULL + (micro))

/*
 * The table. A minimum of 0 means "any version". Sources: the "Since:" of each name in
 * libvirt-domain.h, QEMU's qapi/migration.json.
 */
static const struct {
    const char *name;
    unsigned long long minLibvirt;
    unsigned long long minQemu;
    const char *changes;
    /* libvirt releases known to misbehave, [brokenFrom, brokenUntil): off there */
    unsigned long long brokenFrom;
    unsigned long long brokenUntil;
    const char *broken;
} mpFeatureTable[MP_FEATURE_LAST] = {
    [MP_FEATURE_DOWNTIME_NET] = {
        "downtime_net", MP_VERSION_NUMBER(1, 2, 15), 0,
        "metrics: downtime_net_ms",
    },
    [MP_FEATURE_POSTCOPY_REQUESTS] = {
        /* QEMU's postcopy-requests since 2.7 */
        "postcopy_requests", MP_VERSION_NUMBER(5, 0, 0), MP_VERSION_NUMBER(2, 7, 0),
        "metrics: postcopy_requests",
    },
    [MP_FEATURE_POSTCOPY_PREEMPT] = {
        /* QEMU's postcopy-preempt capability (x-postcopy-preempt before 8.0). No libvirt
         * release up to 12.9 has a flag for it: libvirt turns it on by itself with
         * VIR_MIGRATE_POSTCOPY when both QEMUs have it. Seen on the lab with libvirt
         * 11.3 (not with 9.0, whose QEMU 7.2 lacks it); earlier releases that may do so
         * too are not counted. A resume needs nothing more: QEMU keeps the capability. */
        "postcopy_preempt", MP_VERSION_NUMBER(11, 3, 0), MP_VERSION_NUMBER(8, 0, 0),
        "post-copy page requests preempt the background copy",
    },
    [MP_FEATURE_POSTCOPY_RESUME] = {
        /* VIR_MIGRATE_POSTCOPY_RESUME since 8.5.0. On the lab, libvirt 11.3.0 (Debian 13)
         * kills the destination's libvirtd (SIGSEGV in the qemu driver, prepare-resume
         * phase) at every resume of a post-copy migration whose link broke; 9.0.0 and
         * 12.9.0 resume. Releases between 11.3 and 12.9 were not tried, so only 11.3.x is
         * held off: retrying there would crash the destination every retry interval. */
        "postcopy_resume", MP_VERSION_NUMBER(8, 5, 0), 0,
        "[recovery] resumes broken post-copy migrations",
        MP_VERSION_NUMBER(11, 3, 0), MP_VERSION_NUMBER(11, 4, 0),
        "libvirt 11.3 crashes the destination's libvirtd on a resume; 12.9 resumes",
    },
};

static bool
mpFeatureBroken(size_t i, unsigned long long libvirtVersion)
{
    return mpFeatureTable[i].broken && libvirtVersion >= mpFeatureTable[i].brokenFrom &&
        libvirtVersion < mpFeatureTable[i].brokenUntil;
}

const char *
mpFeatureWhyOff(const mpFeatureSet *set, mpFeature feature)
{
    if ((int)feature < 0 || feature >= MP_FEATURE_LAST || set->on[feature])
        return NULL;
    if (mpFeatureBroken(feature, set->libvirtVersion))
        return mpFeatureTable[feature].broken;
    if (set->libvirtVersion < mpFeatureTable[feature].minLibvirt)
        return "this libvirt is too old";
    return "this QEMU is too old";
}

void
mpFeaturesDecide(unsigned long long libvirtVersion, unsigned long long qemuVersion,
                 mpFeatureSet *set)
{
    size_t i;

    memset(set, 0, sizeof(*set));
    set->libvirtVersion = libvirtVersion;
    set->qemuVersion = qemuVersion;
    for (i = 0; i < MP_FEATURE_LAST; i++) {
        unsigned long long minLv = mpFeatureTable[i].minLibvirt;
        unsigned long long minQemu = mpFeatureTable[i].minQemu;

        set->on[i] = libvirtVersion >= minLv &&
            (minQemu == 0 || (qemuVersion != 0 && qemuVersion >= minQemu)) &&
            !mpFeatureBroken(i, libvirtVersion);
    }
}

const char *
mpFeatureName(mpFeature feature)
{
    if ((int)feature < 0 || feature >= MP_FEATURE_LAST)
        return NULL;
    return mpFeatureTable[feature].name;
}

static void
mpFeaturesFormatVersion(char *buf, size_t len, unsigned long long v)
{
    if (v == 0)
        snprintf(buf, len, "unknown");
    else
        snprintf(buf, len, "%llu.%llu.%llu", v / 1000000, v / 1000 % 1000, v % 1000);
}

char *
mpFeaturesSummary(const mpFeatureSet *set)
{
    char lv[32];
    char qemu[32];
    char *line;
    size_t i;

    mpFeaturesFormatVersion(lv, sizeof(lv), set->libvirtVersion);
    mpFeaturesFormatVersion(qemu, sizeof(qemu), set->qemuVersion);
    line = mpAsprintf("libvirt %s, QEMU %s; features:", lv, qemu);
    for (i = 0; i < MP_FEATURE_LAST; i++) {
        char why[96];
        char *next;

        if (set->on[i]) {
            snprintf(why, sizeof(why), "%s", mpFeatureTable[i].changes);
        } else if (mpFeatureBroken(i, set->libvirtVersion)) {
            snprintf(why, sizeof(why), "%s", mpFeatureTable[i].broken);
        } else if (set->libvirtVersion < mpFeatureTable[i].minLibvirt) {
            mpFeaturesFormatVersion(lv, sizeof(lv), mpFeatureTable[i].minLibvirt);
            snprintf(why, sizeof(why), "needs libvirt >= %s", lv);
        } else {
            mpFeaturesFormatVersion(qemu, sizeof(qemu), mpFeatureTable[i].minQemu);
            snprintf(why, sizeof(why), "needs QEMU >= %s", qemu);
        }
        next = mpAsprintf("%s%s %s %s (%s)", line, i ? "," : "", mpFeatureTable[i].name,
                          set->on[i] ? "on" : "off", why);
        free(line);
        line = next;
    }
    return line;
}

int
mpFeaturesProbe(virConnectPtr conn, mpFeatureSet *set)
{
    unsigned long lv = 0;
    unsigned long hv = 0;
    char *line;

    if (virConnectGetLibVersion(conn, &lv) < 0) {
        virErrorPtr err = virGetLastError();

        mpReportError("libvirt: cannot read the daemon's version: %s",
                      err && err->message ? err->message : "unknown libvirt error");
        return -1;
    }
    /* the hypervisor's version; 0 from a driver that has none */
    if (virConnectGetVersion(conn, &hv) < 0)
        hv = 0;
    mpFeaturesDecide(lv, hv, set);
    line = mpFeaturesSummary(set);
    MP_INFO(NULL, "%s", line);
    free(line);
    return 0;
}
