/*
 * mptext.h: small text conversions every face shares: booleans as oslo.config spells
 * them, and bytes shown safely in one-line error messages
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* "true", "yes", "on", "1" and "false", "no", "off", "0", in any case: 0 and *out, or -1
 * (nothing reported: the caller words the error) for anything else, NULL included. */
int mpParseBool(const char *value, bool *out);

/* Room for an escaped excerpt of maxIn input bytes: 4 output bytes each, "..." and NUL. */
#define MP_ESCAPE_BUFLEN(maxIn) ((maxIn) * 4 + 8)

/*
 * Copies at most maxIn bytes of s[0..len) into out (outsz bytes, always NUL-terminated)
 * as printable ASCII, anything else and the backslash as \xNN, with "..." when cut, so an
 * error message stays one short line whatever the input holds. Returns out.
 */
char *mpEscapeBytes(const char *s, size_t len, size_t maxIn, char *out, size_t outsz);
