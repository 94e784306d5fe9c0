/*
 * mpurl.h: oslo.messaging transport URLs (rabbit://user:pass@host:port,host2/vhost?opts)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *user;
    char *password;
    char *host;
    int port;
} mpUrlHost;

typedef struct _mpTransportUrl mpTransportUrl;
struct _mpTransportUrl {
    mpUrlHost *hosts;   /* tried in order; oslo fails over the same way */
    size_t nhosts;
    char *vhost;
    bool ssl;           /* amqps://, or ?ssl=1 */
};

/* NULL with an error naming the problem; passwords never appear in errors. */
mpTransportUrl *mpTransportUrlParse(const char *url);
void mpTransportUrlFree(mpTransportUrl *url);
