/*
 * mpenum.h: enum names from one table per enum (libvirt's VIR_ENUM_DECL / VIR_ENUM_IMPL)
 *
 * In the header, next to the enum:    MP_ENUM_DECL(PolicyRule);
 * in the .c file, once:               MP_ENUM_IMPL(PolicyRule, MP_POLICY_RULE_LAST,
 *                                                  "none", "not-converging", ...);
 * give
 *     const char *mpPolicyRuleTypeToString(int value);   NULL when out of range
 *     int mpPolicyRuleTypeFromString(const char *str);   the value, -1 when unknown or NULL
 *
 * The strings are in the enum's order, one per value from 0 to last - 1, where last is the
 * enum's MP_..._LAST member (the number of values): a table of another length does not
 * compile. Matching is exact (case included). Neither function reports an error: the
 * caller knows what was being parsed and says so.
 */
#pragma once

#include <stddef.h>

const char *mpEnumToString(const char *const *names, size_t n, int value);
int mpEnumFromString(const char *const *names, size_t n, const char *str);

#define MP_ENUM_DECL(name) \
    const char *mp##name##TypeToString(int value); \
    int mp##name##TypeFromString(const char *str)

#define MP_ENUM_IMPL(name, last, ...) \
    static const char *const mp##name##TypeNames[] = { __VA_ARGS__ }; \
    _Static_assert(sizeof(mp##name##TypeNames) / sizeof(mp##name##TypeNames[0]) == \
                   (size_t)(last), \
                   "the names of mp" #name " do not match its enum (one per value)"); \
    const char *mp##name##TypeToString(int value) \
    { \
        return mpEnumToString(mp##name##TypeNames, (size_t)(last), value); \
    } \
    int mp##name##TypeFromString(const char *str) \
    { \
        return mpEnumFromString(mp##name##TypeNames, (size_t)(last), str); \
    }
