/*
 * wf_url: the checks of a DAG node's url and of a docker star's target.
 *
 * Our own checks run first and give the precise messages (scheme, host,
 * port, length). libcurl's URL parser, the one a transfer runs on
 * CURLOPT_URL, then has the last word: a URL that passes here is one the
 * engine can call, so a bad one is refused when the document is read and
 * not at every run.
 */
#include "wf_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* The flags libcurl itself passes when a transfer parses CURLOPT_URL.
 * The scheme is checked before libcurl sees the URL, so the guess never
 * applies; the same flags keep the verdict the transfer's. */
#define TRANSFER_FLAGS (CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME)

/* What a target is tried after: any host and port will do, since the
 * target can only ever be the path of the URL. */
#define TARGET_BASE "http://h:1"

static int scheme_char(char ch, int first)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return 1;
    return !first &&
           ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.');
}

/* Checks the authority of an http(s) URL: optional user info, a host
 * (name, IPv4 or [IPv6]) and an optional port 1-65535. */
static int check_authority(wf_ctx *c, const char *path, const char *url,
                           const char *a, size_t n)
{
    char q[WF_QUOTE_BUF];
    char uq[WF_QUOTE_BUF];
    const char *at_sign = NULL;
    const char *host;
    const char *port = NULL;
    size_t hlen;

    for (size_t i = 0; i < n; i++) {
        if (a[i] == '@')
            at_sign = a + i;
    }
    host = at_sign ? at_sign + 1 : a;
    hlen = n - (size_t)(host - a);
    if (hlen > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', hlen);

        if (close == NULL) {
            wf_ctx_problem(c, path, "url '%s' has an unclosed '['",
                           wf_quotes(uq, url));
            return -1;
        }
        if (close + 1 < host + hlen) {
            if (close[1] != ':') {
                wf_ctx_problem(c, path, "url '%s' has text after its host",
                               wf_quotes(uq, url));
                return -1;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(host, ':', hlen);

        if (colon != NULL)
            port = colon + 1;
    }
    if (hlen == 0 || host[0] == ':') {
        wf_ctx_problem(c, path, "url '%s' has no host", wf_quotes(uq, url));
        return -1;
    }
    if (port != NULL) {
        size_t plen = n - (size_t)(port - a);
        long v = 0;

        for (size_t i = 0; i < plen && v <= 65535; i++)
            v = isdigit((unsigned char)port[i]) ? v * 10 + (port[i] - '0')
                                                : 100000;
        if (plen == 0 || v < 1 || v > 65535) {
            wf_ctx_problem(c, path,
                           "url port '%s' is not a number from 1 to 65535",
                           wf_quote(q, port, plen, 0));
            return -1;
        }
    }
    return 0;
}

/* Parses url as a transfer would. On success *host, when asked for,
 * holds the host as libcurl sees it (release with curl_free). */
static CURLUcode curl_parse(const char *url, char **host)
{
    CURLU *h = curl_url();
    CURLUcode rc;

    if (h == NULL)
        return CURLUE_OUT_OF_MEMORY;
    rc = curl_url_set(h, CURLUPART_URL, url, TRANSFER_FLAGS);
    if (rc == CURLUE_OK && host != NULL)
        rc = curl_url_get(h, CURLUPART_HOST, host, 0);
    curl_url_cleanup(h);
    return rc;
}

static int is_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s >= 0x80)
            return 0;
    }
    return 1;
}

/*
 * The last word on a url that passed our own checks: libcurl's. A host
 * that is not ASCII passes libcurl's parser, but a transfer must then
 * convert it with libidn2, which depends on how libcurl was built and on
 * the locale of the process (the engine runs in the C locale, where every
 * such call fails as "URL using bad/illegal format"). Such a host is
 * refused here, so the verdict is the same on every machine.
 */
static int curl_check_url(wf_ctx *c, const char *path, const char *u,
                          size_t len)
{
    char q[WF_QUOTE_BUF];
    char *host = NULL;
    CURLUcode rc = curl_parse(u, &host);
    int ok = 0;

    if (rc == CURLUE_OUT_OF_MEMORY) {
        wf_ctx_oom(c);
        return -1;
    }
    if (rc != CURLUE_OK) {
        wf_ctx_problem(c, path, "url '%s' is refused by libcurl: %s",
                       wf_quote(q, u, len, 0), curl_url_strerror(rc));
        return -1;
    }
    if (!is_ascii(host)) {
        wf_ctx_problem(c, path,
                       "url host '%s' is not ASCII; write an international "
                       "name in its ASCII form (xn--...)",
                       wf_quotes(q, host));
        ok = -1;
    }
    curl_free(host);
    return ok;
}

/*
 * Only http and https reach the network: libcurl speaks many more
 * protocols (file, ftp, gopher...) and a workflow must not be a way to
 * read the engine's files or reach other services.
 */
int wf_url_check(wf_ctx *c, const char *path, const char *u, size_t len)
{
    char q[WF_QUOTE_BUF];
    size_t max = c->lim->max_url_bytes;
    size_t i = 0;
    size_t auth;
    size_t end;

    /* Before anything reads the whole URL; the message quotes only its
     * start, a 10 MB URL must not become a 10 MB message. */
    if (len > max) {
        wf_ctx_problem(c, path,
                       "url '%s' is %zu bytes long; the limit is %zu "
                       "(max_url_bytes)",
                       wf_quote(q, u, len, 0), len, max);
        return -1;
    }

    for (size_t k = 0; k < len; k++) {
        unsigned char ch = (unsigned char)u[k];

        if (ch <= 0x20 || ch == 0x7f) {
            wf_ctx_problem(c, path,
                           "url '%s' contains a space or control character "
                           "at byte %zu",
                           wf_quote(q, u, len, 0), k);
            return -1;
        }
    }

    while (i < len && scheme_char(u[i], i == 0))
        i++;
    if (i == 0 || i == len || u[i] != ':' ||
        (i + 1 < len && isdigit((unsigned char)u[i + 1]))) {
        wf_ctx_problem(c, path,
                       "url '%s' is not absolute: write it as http://host"
                       "/path or https://host/path",
                       wf_quote(q, u, len, 0));
        return -1;
    }
    if (!(i == 4 && strncasecmp(u, "http", 4) == 0) &&
        !(i == 5 && strncasecmp(u, "https", 5) == 0)) {
        wf_ctx_problem(c, path,
                       "url scheme '%s' is refused; only http and https "
                       "are allowed",
                       wf_quote(q, u, i, 0));
        return -1;
    }
    if (len - i < 3 || u[i + 1] != '/' || u[i + 2] != '/') {
        wf_ctx_problem(c, path, "url '%s' has no host: write %.*s://host/",
                       wf_quote(q, u, len, 0), (int)i, u);
        return -1;
    }

    auth = i + 3;
    end = auth;
    while (end < len && u[end] != '/' && u[end] != '?' && u[end] != '#')
        end++;
    if (check_authority(c, path, u, u + auth, end - auth) != 0)
        return -1;
    return curl_check_url(c, path, u, len);
}

/* Reports the first space or control character of a target, naming it:
 * neither may go into a request line unencoded. */
static int target_chars(wf_ctx *c, const char *path, const char *t, size_t len)
{
    char q[WF_QUOTE_BUF];

    for (size_t k = 0; k < len; k++) {
        unsigned char ch = (unsigned char)t[k];

        if (ch == ' ') {
            wf_ctx_problem(c, path,
                           "target '%s' contains a space (U+0020) at byte "
                           "%zu; write it as %%20",
                           wf_quote(q, t, len, 0), k);
            return -1;
        }
        if (ch < 0x20 || ch == 0x7f) {
            wf_ctx_problem(c, path,
                           "target '%s' contains a control character "
                           "(U+%04X) at byte %zu",
                           wf_quote(q, t, len, 0), (unsigned)ch, k);
            return -1;
        }
    }
    return 0;
}

int wf_target_check(wf_ctx *c, const char *path, const char *t, size_t len)
{
    char q[WF_QUOTE_BUF];
    size_t max_url = c->lim->max_url_bytes;
    size_t max = max_url > WF_TARGET_ROOM ? max_url - WF_TARGET_ROOM : 0;
    size_t base = strlen(TARGET_BASE);
    CURLUcode rc;
    char *url;

    if (t[0] != '/') {
        wf_ctx_problem(c, path, "target '%s' must start with '/'",
                       wf_quote(q, t, len, 0));
        return -1;
    }
    if (len > max) {
        wf_ctx_problem(c, path,
                       "target '%s' is %zu bytes long; the limit is %zu "
                       "(max_url_bytes %zu less %d for the http://host:port "
                       "before it)",
                       wf_quote(q, t, len, 0), len, max, max_url,
                       WF_TARGET_ROOM);
        return -1;
    }
    if (target_chars(c, path, t, len) != 0)
        return -1;

    /* The controller calls the star at http://<address>:<port><target>;
     * what libcurl would refuse there is refused now. */
    url = malloc(base + len + 1);
    if (url == NULL) {
        wf_ctx_oom(c);
        return -1;
    }
    memcpy(url, TARGET_BASE, base);
    memcpy(url + base, t, len);
    url[base + len] = '\0';
    rc = curl_parse(url, NULL);
    free(url);
    if (rc == CURLUE_OUT_OF_MEMORY) {
        wf_ctx_oom(c);
        return -1;
    }
    if (rc != CURLUE_OK) {
        wf_ctx_problem(c, path,
                       "target '%s' does not make a URL libcurl accepts "
                       "after http://host:port: %s",
                       wf_quote(q, t, len, 0), curl_url_strerror(rc));
        return -1;
    }
    return 0;
}
