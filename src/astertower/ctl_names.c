/*
 * ctl_names: child names and label values (see ctl_names.h).
 */
#include "ctl_names.h"

#include <stdio.h>
#include <string.h>

/* Room left for the prefix when "-" and 8 hex digits are appended. */
#define HASHED_PREFIX_MAX (CTL_NAME_MAX - 9)

unsigned long ctl_name_hash(const char *s)
{
    unsigned long h = 2166136261UL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h = (h * 16777619UL) & 0xffffffffUL;
    }
    return h;
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int ctl_name_is_dns1035(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CTL_NAME_MAX)
        return 0;
    if (s[0] < 'a' || s[0] > 'z')
        return 0;
    if (!is_lower_alnum(s[n - 1]))
        return 0;
    for (size_t k = 0; k < n; k++) {
        if (!is_lower_alnum(s[k]) && s[k] != '-')
            return 0;
    }
    return 1;
}

/*
 * Copies src into out as a label-safe prefix of at most HASHED_PREFIX_MAX
 * characters: lower-cased, anything else turned into '-', a leading
 * non-letter given an 'x' in front, trailing dashes dropped.
 */
static void sanitize(const char *src, char *out)
{
    size_t n = 0;

    if (src[0] < 'a' || src[0] > 'z') {
        if (src[0] < 'A' || src[0] > 'Z')
            out[n++] = 'x';
    }
    for (; *src && n < HASHED_PREFIX_MAX; src++) {
        char c = *src;

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[n++] = is_lower_alnum(c) ? c : '-';
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
}

/* Writes "<prefix>-<hash of key>" for a name that did not fit as is. */
static void hashed(const char *name, const char *key, char *out)
{
    char prefix[CTL_NAME_BUF];

    sanitize(name, prefix);
    snprintf(out, CTL_NAME_BUF, "%.*s-%08x", HASHED_PREFIX_MAX, prefix,
             (unsigned)ctl_name_hash(key));
}

int ctl_name_child(const char *astro, const char *suffix,
                   char out[CTL_NAME_BUF])
{
    char whole[2 * 256];
    char key[2 * 256];

    if (astro == NULL || suffix == NULL || !*astro || !*suffix)
        return -1;

    /* Object names are at most 253 bytes; longer input only hashes. */
    snprintf(whole, sizeof(whole), "%s-%s", astro, suffix);
    if (ctl_name_is_dns1035(whole)) {
        memcpy(out, whole, strlen(whole) + 1);
        return 0;
    }
    snprintf(key, sizeof(key), "%s/%s", astro, suffix);
    hashed(whole, key, out);
    return 0;
}

static int is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static int is_label_value(const char *s)
{
    size_t n = strlen(s);

    if (n > CTL_NAME_MAX)
        return 0;
    if (n == 0)
        return 1;
    if (!is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return 0;
    for (size_t k = 0; k < n; k++) {
        if (!is_alnum(s[k]) && s[k] != '-' && s[k] != '_' && s[k] != '.')
            return 0;
    }
    return 1;
}

void ctl_label_value(const char *s, char out[CTL_NAME_BUF])
{
    if (is_label_value(s)) {
        memcpy(out, s, strlen(s) + 1);
        return;
    }
    hashed(s, s, out);
}
