/*
 * Tests for jmerge: the handed cases in merge/merge-cases.json, then our
 * own table of outputs in and exact text out, then the cases a table
 * cannot hold (unterminated buffers, sizes, depth, the error buffer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "jmerge.h"

#define CASES_FILE ASTER_CASES "/merge/merge-cases.json"

/* The handed file had this many cases; it may grow, never shrink. */
#define HANDED_CASES_MIN 11

#define MAX_OUTPUTS 4

/* Reads a whole file; fails the test rather than returning NULL. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long size;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size >= 0);
    rewind(f);

    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    fclose(f);
    *len = (size_t)size;
    return buf;
}

/* Checks one handed case; returns after a failed assertion never. */
static void run_handed_case(const cJSON *c)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(c, "outputs");
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(c, "expect");
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(c, "expect_raw");
    const cJSON *mentions =
        cJSON_GetObjectItemCaseSensitive(c, "error_mentions");
    const cJSON *blame =
        cJSON_GetObjectItemCaseSensitive(c, "error_names_predecessor");
    jmerge_part parts[MAX_OUTPUTS];
    size_t n = 0, out_len, bad;
    const cJSON *o;
    char err[256];
    char *out;
    int rc;

    assert_true(cJSON_IsString(name));
    if (!cJSON_IsArray(outputs) || cJSON_GetArraySize(outputs) > MAX_OUTPUTS)
        fail_msg("case '%s': outputs missing or too many", name->valuestring);
    cJSON_ArrayForEach(o, outputs)
    {
        if (!cJSON_IsString(o))
            fail_msg("case '%s': an output is not a string", name->valuestring);
        parts[n].body = o->valuestring;
        parts[n].len = strlen(o->valuestring);
        n++;
    }

    rc = jmerge_parts(parts, n, &out, &out_len, err, sizeof(err), &bad);

    if (expect != NULL) {
        cJSON *got;

        if (rc != 0)
            fail_msg("case '%s': failed: %s", name->valuestring, err);
        got = cJSON_ParseWithLength(out, out_len);
        if (!cJSON_Compare(got, expect, 1))
            fail_msg("case '%s': got %s", name->valuestring, out);
        cJSON_Delete(got);
        free(out);
    } else if (raw != NULL) {
        assert_true(cJSON_IsString(raw));
        if (rc != 0)
            fail_msg("case '%s': failed: %s", name->valuestring, err);
        assert_int_equal(out_len, strlen(raw->valuestring));
        assert_memory_equal(out, raw->valuestring, out_len);
        free(out);
    } else if (cJSON_IsArray(mentions)) {
        const cJSON *m;

        if (rc != -1)
            fail_msg("case '%s': merged to %s, expected an error",
                     name->valuestring, out);
        assert_null(out);
        cJSON_ArrayForEach(m, mentions)
        {
            if (strstr(err, m->valuestring) == NULL)
                fail_msg("case '%s': error '%s' lacks '%s'", name->valuestring,
                         err, m->valuestring);
        }
        if (cJSON_IsNumber(blame) && bad != (size_t)blame->valueint)
            fail_msg("case '%s': blamed %zu, expected %d", name->valuestring,
                     bad, blame->valueint);
    } else {
        fail_msg("case '%s' states no expectation", name->valuestring);
    }
}

static void test_handed_cases(void **state)
{
    size_t len;
    char *text = read_file(CASES_FILE, &len);
    cJSON *doc = cJSON_ParseWithLength(text, len);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    const cJSON *c;
    int ran = 0;

    (void)state;
    if (!cJSON_IsArray(cases))
        fail_msg("%s has no \"cases\" array", CASES_FILE);

    cJSON_ArrayForEach(c, cases)
    {
        run_handed_case(c);
        ran++;
    }

    /* A loader that finds nothing must not pass. */
    assert_int_equal(ran, cJSON_GetArraySize(cases));
    assert_true(ran >= HANDED_CASES_MIN);

    cJSON_Delete(doc);
    free(text);
}

/* One of our cases: outputs in, and the exact text or the error out. */
typedef struct own_case {
    const char *name;
    size_t n;
    const char *outputs[MAX_OUTPUTS];
    const char *expect;
    const char *error;
    size_t bad;
} own_case;

/* A case per two or three lines reads better than one field per line. */
/* clang-format off */
static const own_case own_cases[] = {
    {"no predecessors give an empty object", 0, {NULL}, "{}", NULL, 0},
    {"a single empty body passes through empty", 1, {""}, "", NULL, 0},
    {"a single blank body passes through as is", 1, {" \n"}, " \n", NULL,
     0},
    {"a single object is not reformatted", 1, {"{ \"a\" : 1 }"},
     "{ \"a\" : 1 }", NULL, 0},
    {"a single non-object passes through", 1, {"[1]"}, "[1]", NULL, 0},
    {"only empty bodies give an empty object", 2, {"", ""}, "{}", NULL, 0},
    {"a whitespace-only body contributes nothing", 2, {" \t\r\n", "{\"a\":1}"},
     "{\"a\":1}", NULL, 0},
    {"blank around a value is allowed", 2, {" {\"a\":1}\n", "\t{\"b\":2} "},
     "{\"a\":1,\"b\":2}", NULL, 0},
    {"three-way: each earlier output wins, later ones fill gaps", 3,
     {"{\"a\":1}", "{\"a\":2,\"b\":2}", "{\"a\":3,\"b\":3,\"c\":3}"},
     "{\"a\":1,\"b\":2,\"c\":3}", NULL, 0},
    {"three-way nested merge", 3,
     {"{\"m\":{\"x\":1}}", "{\"m\":{\"y\":2}}", "{\"m\":{\"x\":9,\"z\":3}}"},
     "{\"m\":{\"x\":1,\"y\":2,\"z\":3}}", NULL, 0},
    {"earlier key order kept, new keys appended as they appear", 2,
     {"{\"b\":1,\"a\":1}", "{\"d\":2,\"a\":2,\"c\":2}"},
     "{\"b\":1,\"a\":1,\"d\":2,\"c\":2}", NULL, 0},
    {"keys are case-sensitive", 2, {"{\"K\":1}", "{\"k\":2}"},
     "{\"K\":1,\"k\":2}", NULL, 0},
    {"an earlier object beats a later scalar", 2,
     {"{\"v\":{\"a\":1}}", "{\"v\":7}"}, "{\"v\":{\"a\":1}}", NULL, 0},
    {"an earlier null beats a later object", 2,
     {"{\"v\":null}", "{\"v\":{\"a\":1}}"}, "{\"v\":null}", NULL, 0},
    {"an earlier empty object still takes later keys", 2,
     {"{\"m\":{}}", "{\"m\":{\"a\":1}}"}, "{\"m\":{\"a\":1}}", NULL, 0},
    {"objects inside arrays are not merged", 2,
     {"{\"xs\":[{\"a\":1}]}", "{\"xs\":[{\"b\":2}]}"}, "{\"xs\":[{\"a\":1}]}",
     NULL, 0},
    {"escaped and raw unicode name the same key; text kept as written", 2,
     {"{\"\\u00e9\":1}", "{\"\xc3\xa9\":2,\"s\":\"\\ud83d\\ude00\"}"},
     "{\"\\u00e9\":1,\"s\":\"\\ud83d\\ude00\"}", NULL, 0},
    {"a surrogate pair and its character name the same key", 2,
     {"{\"\\ud83d\\ude00\":1}", "{\"\xf0\x9f\x98\x80\":2}"},
     "{\"\\ud83d\\ude00\":1}", NULL, 0},
    {"lone surrogates are grammatical and kept", 2,
     {"{\"a\":\"\\ud800\"}", "{\"\\udc00\":1}"},
     "{\"a\":\"\\ud800\",\"\\udc00\":1}", NULL, 0},
    {"a key repeated in one output: its first value stands", 2,
     {"{\"a\":1,\"a\":2,\"m\":{\"x\":1,\"x\":2}}", "{\"a\":3}"},
     "{\"a\":1,\"m\":{\"x\":1}}", NULL, 0},
    {"values are copied as written, blanks inside them too", 2,
     {"{ \"l\" : [1, 2 ,3] , \"o\" : { \"p\" : \"q\" } }",
      "{\"o\":{\"r\":[ ]}}"},
     "{\"l\":[1, 2 ,3],\"o\":{\"p\":\"q\",\"r\":[ ]}}", NULL, 0},
    {"a byte order mark is not JSON", 2, {"\xef\xbb\xbf{}", "{}"}, NULL,
     "is not valid JSON: unexpected byte 0xef at byte 0", 0},
    {"a duplicated key in a later body: its first value wins", 2,
     {"{\"a\":1}", "{\"b\":1,\"b\":2}"}, "{\"a\":1,\"b\":1}", NULL, 0},
    {"an array among objects names its index", 3,
     {"{\"a\":1}", "{\"b\":2}", "[1]"}, NULL,
     "is not a JSON object but an array", 2},
    {"a string is not an object", 2, {"\"s\"", "{}"}, NULL,
     "is not a JSON object but a string", 0},
    {"a number is not an object", 2, {"{}", "42"}, NULL,
     "is not a JSON object but a number", 1},
    {"null is not an object", 2, {"null", "{}"}, NULL,
     "is not a JSON object but null", 0},
    {"a boolean is not an object", 2, {"{}", " true "}, NULL,
     "is not a JSON object but a boolean", 1},
    {"data after the object", 2, {"{\"a\":1} x", "{}"}, NULL,
     "is not valid JSON: unexpected data after the value at byte 8", 0},
    {"two objects in one body", 2, {"{}", "{}{}"}, NULL,
     "is not valid JSON: unexpected data after the value at byte 2", 1},
    {"a truncated body", 2, {"{}", "{\"a\":"}, NULL, "is not valid JSON", 1},
    {"the first bad part is blamed", 3, {"{}", "nope", "[]"}, NULL,
     "is not valid JSON: unexpected text at byte 0 (\"nope\")", 1},
    {"a bad part after an empty one", 2, {"", "{oops"}, NULL,
     "is not valid JSON", 1},
    {"numbers keep their digits: past 2^53, past a double, as written", 2,
     {"{\"t\":1700000000123456789,\"big\":1e400}",
      "{\"f\":1.50,\"z\":-0,\"e\":2E+3,\"n\":[12345678901234567890]}"},
     "{\"t\":1700000000123456789,\"big\":1e400,\"f\":1.50,\"z\":-0,"
     "\"e\":2E+3,\"n\":[12345678901234567890]}", NULL, 0},
    {"a string holding \\u0000 is kept whole", 2,
     {"{\"s\":\"a\\u0000b\"}", "{\"t\":[\"\\u0000\"]}"},
     "{\"s\":\"a\\u0000b\",\"t\":[\"\\u0000\"]}", NULL, 0},
    {"an escaped backslash before u0000 is no NUL", 2,
     {"{\"s\":\"\\\\u0000\"}", "{}"}, "{\"s\":\"\\\\u0000\"}", NULL, 0},
    {"keys holding \\u0000 stay apart, not folded into one", 2,
     {"{\"a\\u0000b\":1}", "{\"a\\u0000c\":2,\"a\\u0000b\":3}"},
     "{\"a\\u0000b\":1,\"a\\u0000c\":2}", NULL, 0},
    {"a leading zero is not JSON", 2, {"{}", "{\"a\":01}"}, NULL,
     "is not valid JSON: a number not in JSON form at byte 5", 1},
    {"a bare decimal point is not JSON", 2, {"{\"a\":1.}", "{}"}, NULL,
     "a number not in JSON form", 0},
    {"a raw control character in a string is not JSON", 2,
     {"{\"a\":\"x\ty\"}", "{}"}, NULL,
     "a raw control character in a string at byte 7", 0},
    {"bytes that are not UTF-8 become U+FFFD", 2,
     {"{\"a\":\"\xff\"}", "{\"b\":\"\xe2\x82\",\"c\":\"\xc3\xa9\"}"},
     "{\"a\":\"\xef\xbf\xbd\",\"b\":\"\xef\xbf\xbd\xef\xbf\xbd\","
     "\"c\":\"\xc3\xa9\"}", NULL, 0},
};
/* clang-format on */

static void run_own_case(const own_case *c)
{
    jmerge_part parts[MAX_OUTPUTS];
    size_t out_len, bad;
    char err[256];
    char *out;
    int rc;

    for (size_t i = 0; i < c->n; i++) {
        parts[i].body = c->outputs[i];
        parts[i].len = strlen(c->outputs[i]);
    }

    rc = jmerge_parts(parts, c->n, &out, &out_len, err, sizeof(err), &bad);

    if (c->expect != NULL) {
        if (rc != 0)
            fail_msg("case '%s': failed: %s", c->name, err);
        if (out_len != strlen(c->expect) || strcmp(out, c->expect) != 0)
            fail_msg("case '%s': got '%s', expected '%s'", c->name, out,
                     c->expect);
        assert_int_equal(bad, SIZE_MAX);
        free(out);
        return;
    }

    if (rc != -1)
        fail_msg("case '%s': merged to '%s'", c->name, out);
    assert_null(out);
    assert_int_equal(out_len, 0);
    if (strstr(err, c->error) == NULL)
        fail_msg("case '%s': error '%s' lacks '%s'", c->name, err, c->error);
    if (bad != c->bad)
        fail_msg("case '%s': blamed %zu, expected %zu", c->name, bad, c->bad);
}

static void test_own_cases(void **state)
{
    size_t n = sizeof(own_cases) / sizeof(own_cases[0]);
    size_t ran = 0;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        run_own_case(&own_cases[i]);
        ran++;
    }
    assert_int_equal(ran, n);
}

/* Bodies are length-bounded: nothing past len may be read or required. */
static void test_unterminated_parts(void **state)
{
    static const char buf[] = "{\"a\":1}{\"b\":2}GARBAGE";
    jmerge_part parts[2] = {{buf, 7}, {buf + 7, 7}};
    size_t out_len, bad;
    char err[128];
    char *out;

    (void)state;
    assert_int_equal(
        jmerge_parts(parts, 2, &out, &out_len, err, sizeof(err), &bad), 0);
    assert_string_equal(out, "{\"a\":1,\"b\":2}");
    free(out);
}

/* One predecessor: bytes through, even a NUL, and a terminator added. */
static void test_passthrough_bytes(void **state)
{
    static const char buf[] = {'a', '\0', 'b', 'X'};
    jmerge_part part = {buf, 3};
    size_t out_len, bad;
    char err[64];
    char *out;

    (void)state;
    assert_int_equal(
        jmerge_parts(&part, 1, &out, &out_len, err, sizeof(err), &bad), 0);
    assert_int_equal(out_len, 3);
    assert_memory_equal(out, buf, 3);
    assert_int_equal(out[3], '\0');
    free(out);
}

static void test_error_buffer(void **state)
{
    jmerge_part parts[2] = {{"{}", 2}, {"[]", 2}};
    char full[256], tiny[10];
    size_t out_len, bad;
    char *out;

    (void)state;
    assert_int_equal(
        jmerge_parts(parts, 2, &out, &out_len, full, sizeof(full), &bad), -1);
    assert_true(strlen(full) > sizeof(tiny));

    /* Truncated, terminated, and a prefix of the whole sentence. */
    memset(tiny, 'Z', sizeof(tiny));
    assert_int_equal(
        jmerge_parts(parts, 2, &out, &out_len, tiny, sizeof(tiny), &bad), -1);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_memory_equal(tiny, full, sizeof(tiny) - 1);
    assert_int_equal(bad, 1);

    tiny[0] = 'Z';
    assert_int_equal(jmerge_parts(parts, 2, &out, &out_len, tiny, 1, &bad), -1);
    assert_int_equal(tiny[0], '\0');

    /* No buffer and no blame slot at all is allowed. */
    assert_int_equal(jmerge_parts(parts, 2, &out, &out_len, NULL, 0, NULL), -1);
    assert_null(out);
}

/* The syntax error says where, so a bad output can be found. */
static void test_error_position(void **state)
{
    const char *bad_body = "{\"y\":2,\n  oops}";
    jmerge_part parts[2] = {{"{}", 2}, {bad_body, strlen(bad_body)}};
    size_t out_len, bad;
    char err[256];
    char *out;

    (void)state;
    assert_int_equal(
        jmerge_parts(parts, 2, &out, &out_len, err, sizeof(err), &bad), -1);
    if (strstr(err, "at byte 10") == NULL || strstr(err, "oops") == NULL)
        fail_msg("error '%s' does not point at the bad spot", err);
    assert_null(strchr(err, '\n'));
}

/* Builds {"a":{"a":...{leaf}...}} with depth levels of "a". */
static char *nested(int depth, const char *leaf)
{
    size_t len = (size_t)depth * 6 + strlen(leaf) + 1;
    char *s = malloc(len);
    char *p = s;

    assert_non_null(s);
    for (int i = 0; i < depth; i++, p += 5)
        memcpy(p, "{\"a\":", 5);
    p += sprintf(p, "%s", leaf);
    for (int i = 0; i < depth; i++)
        *p++ = '}';
    *p = '\0';
    return s;
}

static void test_deep_nesting(void **state)
{
    const int depth = 900;
    char *a = nested(depth, "{\"x\":1,\"z\":1}");
    char *b = nested(depth, "{\"y\":2,\"z\":2}");
    char *want = nested(depth, "{\"x\":1,\"z\":1,\"y\":2}");
    char *too_deep = nested(1200, "{}");
    jmerge_part parts[2] = {{a, strlen(a)}, {b, strlen(b)}};
    size_t out_len, bad;
    char err[256];
    char *out;

    (void)state;
    assert_int_equal(
        jmerge_parts(parts, 2, &out, &out_len, err, sizeof(err), &bad), 0);
    assert_string_equal(out, want);
    free(out);

    /* Past cJSON's nesting limit the body is refused, not overflowed. */
    parts[1].body = too_deep;
    parts[1].len = strlen(too_deep);
    assert_int_equal(
        jmerge_parts(parts, 2, &out, &out_len, err, sizeof(err), &bad), -1);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(err, "is not valid JSON"));

    free(a);
    free(b);
    free(want);
    free(too_deep);
}

/* {"k<from>":"v",...} for keys from..to-1. */
static char *wide(int from, int to, char v)
{
    size_t cap = (size_t)(to - from) * 20 + 3;
    char *s = malloc(cap);
    size_t len = 0;

    assert_non_null(s);
    s[len++] = '{';
    for (int i = from; i < to; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s\"k%d\":\"%c\"",
                                i > from ? "," : "", i, v);
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

/*
 * Large overlapping objects: every key once, the earlier value on the
 * overlap, earlier order then new keys. A quadratic merge would take
 * minutes here.
 */
static void test_big_objects(void **state)
{
    const int n = 50000, half = n / 2;
    char *a = wide(0, n, 'a');
    char *b = wide(half, n + half, 'b');
    jmerge_part parts[2] = {{a, strlen(a)}, {b, strlen(b)}};
    size_t out_len, bad;
    char err[256], key[32];
    const cJSON *it;
    cJSON *got;
    char *out;
    int i = 0;

    (void)state;
    assert_int_equal(
        jmerge_parts(parts, 2, &out, &out_len, err, sizeof(err), &bad), 0);
    got = cJSON_ParseWithLength(out, out_len);
    assert_non_null(got);
    assert_int_equal(cJSON_GetArraySize(got), n + half);

    cJSON_ArrayForEach(it, got)
    {
        snprintf(key, sizeof(key), "k%d", i);
        assert_string_equal(it->string, key);
        assert_string_equal(it->valuestring, i < n ? "a" : "b");
        i++;
    }
    assert_int_equal(i, n + half);

    cJSON_Delete(got);
    free(out);
    free(a);
    free(b);
}

static long max_rss_kib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* An 8 MiB array of four million numbers merges as one member: the merge
 * holds little more than the texts themselves (a tree of it took some
 * 500 MB). */
static void test_large_value(void **state)
{
    size_t n = 8u << 20, len = 0;
    char *a = malloc(n + 16);
    const char *b = "{\"b\":1}";
    long before = max_rss_kib();

    assert_non_null(a);
    len += (size_t)snprintf(a, n, "{\"a\":[");
    while (len + 4 < n) {
        a[len++] = '7';
        a[len++] = ',';
    }
    a[len++] = '7';
    a[len++] = ']';
    a[len++] = '}';

    jmerge_part parts[2] = {{a, len}, {b, strlen(b)}};
    size_t out_len, bad;
    char err[256];
    char *out;

    assert_int_equal(
        jmerge_parts(parts, 2, &out, &out_len, err, sizeof(err), &bad), 0);
    assert_int_equal(out_len, len + 6);
    assert_memory_equal(out, a, len - 1);
    assert_string_equal(out + len - 1, ",\"b\":1}");

    /* Sanitizers and valgrind change what a process holds; the check
     * means something only in a plain build. */
#ifndef __SANITIZE_ADDRESS__
    if (!getenv("ASTER_VALGRIND"))
        assert_true(max_rss_kib() - before < 64 * 1024);
#endif
    free(out);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handed_cases),
        cmocka_unit_test(test_own_cases),
        cmocka_unit_test(test_unterminated_parts),
        cmocka_unit_test(test_passthrough_bytes),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_error_position),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_big_objects),
        cmocka_unit_test(test_large_value),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
