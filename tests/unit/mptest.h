/*
 * mptest.h: shared harness of the libcheck unit tests
 *
 * Each tests/unit/test_<module>.c ends with MP_TEST_MAIN(<suite function>). The runner
 * writes libcheck's XML log to $MP_TEST_XML when set, which `make check` sums up.
 */
#pragma once

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef MP_TEST_DATA_DIR
# error "MP_TEST_DATA_DIR must be defined by the build"
#endif

/* Absolute path of a file under tests/data (static buffer, valid until the next call). */
static inline const char *
mpTestDataPath(const char *rel)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s/%s", MP_TEST_DATA_DIR, rel);
    return path;
}

/* Reads a whole file into a NUL-terminated buffer (test helper: fails the test on error). */
static inline char *
mpTestReadFile(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long size;

    ck_assert_msg(fp != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
    size = ftell(fp);
    ck_assert_int_ge(size, 0);
    rewind(fp);
    buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, fp), (size_t)size);
    buf[size] = '\0';
    fclose(fp);
    if (len)
        *len = (size_t)size;
    return buf;
}

#define MP_TEST_MAIN(suitefn) \
    int main(void) \
    { \
        SRunner *sr = srunner_create(suitefn()); \
        const char *xml = getenv("MP_TEST_XML"); \
        int failed; \
        if (xml && *xml) \
            srunner_set_xml(sr, xml); \
        srunner_run_all(sr, CK_NORMAL); \
        failed = srunner_ntests_failed(sr); \
        srunner_free(sr); \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE; \
    }
