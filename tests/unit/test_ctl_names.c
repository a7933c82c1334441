/*
 * Tests for ctl_names: child names that fit, names that do not (long,
 * dotted, leading digits), stability, uniqueness within an Astro, and
 * label values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "astertower/ctl_names.c"

/* Checks the shape every hashed name has: a label ending -<8 hex>. */
static void assert_hashed(const char *name)
{
    size_t n = strlen(name);

    assert_true(ctl_name_is_dns1035(name));
    assert_true(n >= 10);
    assert_int_equal(name[n - 9], '-');
    for (size_t k = n - 8; k < n; k++)
        assert_non_null(strchr("0123456789abcdef", name[k]));
}

static void test_plain_names_kept(void **state)
{
    char out[CTL_NAME_BUF];

    assert_int_equal(ctl_name_child("astro-demo", "a", out), 0);
    assert_string_equal(out, "astro-demo-a");
    assert_int_equal(ctl_name_child("astro-demo", "dag", out), 0);
    assert_string_equal(out, "astro-demo-dag");
    assert_int_equal(ctl_name_child("x", "astermule", out), 0);
    assert_string_equal(out, "x-astermule");
}

static void test_exactly_63_kept(void **state)
{
    char astro[64], out[CTL_NAME_BUF];

    memset(astro, 'a', 61);
    astro[61] = '\0';
    assert_int_equal(ctl_name_child(astro, "b", out), 0);
    assert_int_equal(strlen(out), 63);
    assert_int_equal(strncmp(out, astro, 61), 0);
    assert_string_equal(out + 61, "-b");
}

static void test_long_names_hashed(void **state)
{
    char astro[254], a[CTL_NAME_BUF], b[CTL_NAME_BUF], again[CTL_NAME_BUF];

    memset(astro, 'q', 253);
    astro[253] = '\0';
    assert_int_equal(ctl_name_child(astro, "a", a), 0);
    assert_int_equal(ctl_name_child(astro, "b", b), 0);
    assert_int_equal(ctl_name_child(astro, "a", again), 0);
    assert_hashed(a);
    assert_hashed(b);
    assert_true(strlen(a) <= CTL_NAME_MAX);
    assert_string_equal(a, again);
    assert_string_not_equal(a, b);
}

static void test_odd_names_made_valid(void **state)
{
    char out[CTL_NAME_BUF];

    /* Dots are fine in an Astro name but not in a Service name. */
    assert_int_equal(ctl_name_child("my.astro", "a", out), 0);
    assert_hashed(out);
    assert_int_equal(strncmp(out, "my-astro-a-", 11), 0);

    /* A Service name must start with a letter. */
    assert_int_equal(ctl_name_child("1st", "a", out), 0);
    assert_hashed(out);
    assert_int_equal(strncmp(out, "x1st-a-", 7), 0);

    assert_int_equal(ctl_name_child("astro", "9lives", out), 0);
    assert_string_equal(out, "astro-9lives");
}

static void test_empty_refused(void **state)
{
    char out[CTL_NAME_BUF];

    assert_int_equal(ctl_name_child("", "a", out), -1);
    assert_int_equal(ctl_name_child("a", "", out), -1);
    assert_int_equal(ctl_name_child(NULL, "a", out), -1);
}

/* Stars whose names share a long prefix stay distinct once hashed. */
static void test_unique_within_astro(void **state)
{
    enum { N = 200 };
    static char names[N][CTL_NAME_BUF];
    char astro[60], star[64];

    memset(astro, 'w', 59);
    astro[59] = '\0';
    for (int k = 0; k < N; k++) {
        snprintf(star, sizeof(star),
                 "star-with-a-long-common-prefix-number-%d", k);
        assert_int_equal(ctl_name_child(astro, star, names[k]), 0);
        assert_true(ctl_name_is_dns1035(names[k]));
        for (int j = 0; j < k; j++)
            assert_string_not_equal(names[j], names[k]);
    }
}

static void test_dns1035(void **state)
{
    assert_true(ctl_name_is_dns1035("a"));
    assert_true(ctl_name_is_dns1035("a-1"));
    assert_false(ctl_name_is_dns1035(""));
    assert_false(ctl_name_is_dns1035("1a"));
    assert_false(ctl_name_is_dns1035("a-"));
    assert_false(ctl_name_is_dns1035("A"));
    assert_false(ctl_name_is_dns1035("a.b"));
}

static void test_label_values(void **state)
{
    char out[CTL_NAME_BUF], longname[120];

    ctl_label_value("astro-demo", out);
    assert_string_equal(out, "astro-demo");
    ctl_label_value("my.astro", out);
    assert_string_equal(out, "my.astro");

    memset(longname, 'z', 100);
    longname[100] = '\0';
    ctl_label_value(longname, out);
    assert_true(strlen(out) <= CTL_NAME_MAX);
    assert_hashed(out);
}

static void test_hash_known_value(void **state)
{
    /* FNV-1a 32 reference values. */
    assert_int_equal(ctl_name_hash(""), 0x811c9dc5UL);
    assert_int_equal(ctl_name_hash("a"), 0xe40c292cUL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_names_kept),
        cmocka_unit_test(test_exactly_63_kept),
        cmocka_unit_test(test_long_names_hashed),
        cmocka_unit_test(test_odd_names_made_valid),
        cmocka_unit_test(test_empty_refused),
        cmocka_unit_test(test_unique_within_astro),
        cmocka_unit_test(test_dns1035),
        cmocka_unit_test(test_label_values),
        cmocka_unit_test(test_hash_known_value),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
