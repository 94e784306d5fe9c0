/*
 * mpfeatures.h: what this host's libvirt and QEMU offer beyond the oldest supported stack
 *
 * Decided at every libvirt (re)connection from the versions the daemon reports, from one
 * table (as collectd's virt plugin does against library versions): libvirtd or QEMU may be
 * upgraded while the agent runs, and the agent may run against another host's libvirtd.
 */
#pragma once

#include <stdbool.h>

#include <libvirt/libvirt.h>

typedef enum {
    MP_FEATURE_DOWNTIME_NET,        /* completed job: downtime_net */
    MP_FEATURE_POSTCOPY_REQUESTS,   /* completed job: memory_postcopy_requests */
    MP_FEATURE_POSTCOPY_PREEMPT,    /* libvirt enables QEMU's postcopy-preempt itself */
    MP_FEATURE_POSTCOPY_RESUME,     /* the agent may resume a broken post-copy migration */
    MP_FEATURE_LAST
} mpFeature;

/* Versions as libvirt encodes them: major * 1000000 + minor * 1000 + micro; 0 unknown. */
typedef struct _mpFeatureSet mpFeatureSet;
struct _mpFeatureSet {
    unsigned long long libvirtVersion;
    unsigned long long qemuVersion;
    bool on[MP_FEATURE_LAST];
};

/* The table's verdict for these versions. Pure. */
void mpFeaturesDecide(unsigned long long libvirtVersion, unsigned long long qemuVersion,
                      mpFeatureSet *set);

/* "downtime_net", ...; NULL for a value out of range. */
const char *mpFeatureName(mpFeature feature);

/* Why feature is off for set (static text), NULL when it is on. */
const char *mpFeatureWhyOff(const mpFeatureSet *set, mpFeature feature);

/* One line: the versions and every feature on/off with why. The caller frees it. */
char *mpFeaturesSummary(const mpFeatureSet *set);

/* Reads the versions of conn's daemon and hypervisor, decides and logs the summary.
 * -1 (error reported) when libvirt's version cannot be read; an unknown QEMU version
 * only turns off what needs QEMU. */
int mpFeaturesProbe(virConnectPtr conn, mpFeatureSet *set);
