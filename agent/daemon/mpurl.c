/*
 * mpurl.c: oslo.messaging transport URLs
 */
#include <stdlib.h>
#include <string.h>

#include "mpalloc.h"
#include "mperror.h"
#include "mptext.h"
#include "mpurl.h"

static int
mpUrlHexDigit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+len); NULL on a bad escape or an encoded NUL. */
static char *
mpUrlDecode(const char *s, size_t len)
{
    char *out = mpAlloc0(len + 1);
    size_t i;
    size_t j = 0;

    for (i = 0; i < len; i++) {
        int hi;
        int lo;

        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        if (len - i < 3 ||
            (hi = mpUrlHexDigit(s[i + 1])) < 0 ||
            (lo = mpUrlHexDigit(s[i + 2])) < 0 ||
            (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    return out;
}

static int
mpUrlParseHost(const char *s, size_t len, mpUrlHost *host)
{
    const char *at = memrchr(s, '@', len);
    const char *hp = at ? at + 1 : s;
    size_t hplen = len - (size_t)(hp - s);
    const char *colon;
    char *end = NULL;

    if (at) {
        const char *sep = memchr(s, ':', (size_t)(at - s));
        size_t ulen = sep ? (size_t)(sep - s) : (size_t)(at - s);

        if (!(host->user = mpUrlDecode(s, ulen))) {
            mpReportError("bad %%-escape in the user name");
            return -1;
        }
        if (sep && !(host->password = mpUrlDecode(sep + 1, (size_t)(at - sep - 1)))) {
            mpReportError("bad %%-escape in the password");
            return -1;
        }
    }
    if (hplen && hp[0] == '[') {
        const char *close = memchr(hp, ']', hplen);

        if (!close) {
            mpReportError("unterminated [IPv6] host");
            return -1;
        }
        host->host = mpStrndup(hp + 1, (size_t)(close - hp - 1));
        colon = close + 1 < hp + hplen && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(hp, ':', hplen);
        host->host = mpStrndup(hp, colon ? (size_t)(colon - hp) : hplen);
    }
    if (!*host->host) {
        mpReportError("a host is empty");
        return -1;
    }
    host->port = 5672;
    if (colon) {
        char portbuf[8];
        size_t plen = hplen - (size_t)(colon + 1 - hp);
        long port;

        if (plen == 0 || plen >= sizeof(portbuf)) {
            mpReportError("bad port for host '%s'", host->host);
            return -1;
        }
        memcpy(portbuf, colon + 1, plen);
        portbuf[plen] = '\0';
        port = strtol(portbuf, &end, 10);
        if (*end || port < 1 || port > 65535) {
            mpReportError("bad port '%s' for host '%s'", portbuf, host->host);
            return -1;
        }
        host->port = (int)port;
    }
    if (!host->user)
        host->user = mpStrdup("guest");
    if (!host->password)
        host->password = mpStrdup("guest");
    return 0;
}

/* ssl=<boolean> among the query's key=value pairs (oslo.config's spellings, mptext). */
static bool
mpUrlQuerySsl(const char *query)
{
    bool ssl = false;

    while (*query) {
        size_t n = strcspn(query, "&");

        if (n > 4 && strncmp(query, "ssl=", 4) == 0) {
            char *value = mpStrndup(query + 4, n - 4);
            bool b;

            if (mpParseBool(value, &b) == 0)
                ssl = b;
            free(value);
        }
        query += n;
        if (*query == '&')
            query++;
    }
    return ssl;
}

mpTransportUrl *
mpTransportUrlParse(const char *url)
{
    mpTransportUrl *ret = NULL;
    mpTransportUrl *tu = mpAlloc0(sizeof(*tu));
    const char *rest;
    const char *slash;
    const char *query;
    const char *p;
    size_t alloc = 0;

    if (strncmp(url, "rabbit://", 9) == 0 || strncmp(url, "amqp://", 7) == 0) {
        rest = strstr(url, "://") + 3;
    } else if (strncmp(url, "amqps://", 8) == 0) {
        rest = url + 8;
        tu->ssl = true;
    } else {
        const char *sep = strstr(url, "://");

        mpReportError("unsupported scheme '%.*s' (expected rabbit://)",
                      sep ? (int)(sep - url) > 16 ? 16 : (int)(sep - url) : 0, url);
        goto cleanup;
    }
    query = strchr(rest, '?');
    slash = strchr(rest, '/');
    if (slash && query && slash > query)
        slash = NULL;
    p = rest;
    while (1) {
        const char *hostEnd = slash ? slash : query ? query : rest + strlen(rest);
        const char *comma = memchr(p, ',', (size_t)(hostEnd - p));
        const char *end = comma ? comma : hostEnd;

        mpGrow(&tu->hosts, &alloc, tu->nhosts + 1, sizeof(mpUrlHost));
        tu->nhosts++;
        if (mpUrlParseHost(p, (size_t)(end - p), &tu->hosts[tu->nhosts - 1]) < 0)
            goto cleanup;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (slash) {
        size_t vlen = query ? (size_t)(query - slash - 1) : strlen(slash + 1);

        if (!(tu->vhost = mpUrlDecode(slash + 1, vlen))) {
            mpReportError("bad %%-escape in the virtual host");
            goto cleanup;
        }
    }
    if (!tu->vhost || !*tu->vhost) {
        free(tu->vhost);
        tu->vhost = mpStrdup("/");
    }
    if (query && mpUrlQuerySsl(query + 1))
        tu->ssl = true;

    ret = tu;
    tu = NULL;

 cleanup:
    mpTransportUrlFree(tu);
    return ret;
}

void
mpTransportUrlFree(mpTransportUrl *url)
{
    size_t i;

    if (!url)
        return;
    for (i = 0; i < url->nhosts; i++) {
        free(url->hosts[i].user);
        free(url->hosts[i].password);
        free(url->hosts[i].host);
    }
    free(url->hosts);
    free(url->vhost);
    free(url);
}

mpTransportOrigin
mpTransportUrlResolve(const char *agentUrl, const char *novaNotificationsUrl,
                      const char *novaDefaultUrl, const char **url)
{
    const char *const candidates[] = { agentUrl, novaNotificationsUrl, novaDefaultUrl };
    static const mpTransportOrigin origins[] = {
        MP_TRANSPORT_FROM_AGENT, MP_TRANSPORT_FROM_NOVA_NOTIFICATIONS,
        MP_TRANSPORT_FROM_NOVA_DEFAULT,
    };
    size_t i;

    for (i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
        if (candidates[i] && *candidates[i]) {
            *url = candidates[i];
            return origins[i];
        }
    }
    *url = NULL;
    return MP_TRANSPORT_FROM_NONE;
}

const char *
mpTransportOriginSection(mpTransportOrigin origin)
{
    switch (origin) {
    case MP_TRANSPORT_FROM_AGENT:
        return "[amqp]";
    case MP_TRANSPORT_FROM_NOVA_NOTIFICATIONS:
        return "[oslo_messaging_notifications]";
    case MP_TRANSPORT_FROM_NOVA_DEFAULT:
        return "[DEFAULT]";
    case MP_TRANSPORT_FROM_NONE:
    default:
        return NULL;
    }
}
