/*
 * mptext.c: booleans and escaped excerpts (see mptext.h)
 */
#include <strings.h>

#include "mptext.h"

int
mpParseBool(const char *value, bool *out)
{
    static const char *const truths[] = { "true", "yes", "on", "1" };
    static const char *const lies[] = { "false", "no", "off", "0" };
    size_t i;

    if (!value)
        return -1;
    for (i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
        if (strcasecmp(value, truths[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(value, lies[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

char *
mpEscapeBytes(const char *s, size_t len, size_t maxIn, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t i;

    if (outsz == 0)
        return out;
    for (i = 0; i < len && i < maxIn; i++) {
        unsigned char c = (unsigned char)s[i];

        if (o + 8 >= outsz)
            break;
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    if (i < len && o + 4 <= outsz) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
    return out;
}
