/*
 * Test harness shared by the unit tests that need live services: starts
 * built binaries (test-service, astermule) on free ports, talks to them
 * with libcurl, and stops them. Header-only: each test binary is one
 * translation unit.
 */
#ifndef ASTER_TEST_HARNESS_H
#define ASTER_TEST_HARNESS_H

#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct proc {
    pid_t pid;
    int port;
} proc;

/*
 * Starts ASTER_BIN/<prog> with argv (NULL-terminated, without argv[0])
 * and waits for its "listening on ADDR:PORT" line. Returns 0 and fills p,
 * or -1 when it did not come up.
 */
static inline int proc_start(proc *p, const char *prog, char *const *args)
{
    char path[512];
    char *argv[32];
    int fds[2];
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/%s", ASTER_BIN, prog);
    argv[n++] = path;
    for (size_t k = 0; args && args[k] && n < 31; k++)
        argv[n++] = args[k];
    argv[n] = NULL;

    if (pipe(fds) < 0)
        return -1;
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(path, argv);
        _exit(127);
    }
    close(fds[1]);

    FILE *f = fdopen(fds[0], "r");
    char line[256];
    const char *colon;

    p->port = 0;
    if (f && fgets(line, sizeof(line), f) &&
        strncmp(line, "listening on ", 13) == 0 &&
        (colon = strrchr(line, ':')))
        p->port = atoi(colon + 1);
    if (f)
        fclose(f);
    else
        close(fds[0]);
    return p->port > 0 ? 0 : -1;
}

/* Sends SIGTERM and reaps; returns the exit status, or -1. */
static inline int proc_stop(proc *p)
{
    int status = 0;

    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    if (waitpid(p->pid, &status, 0) < 0)
        return -1;
    p->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A test-service named name on a free port, recording its visits. */
static inline int service_start(proc *p, const char *name)
{
    char *args[] = {"--port", "0", "--name", (char *)name, "--record", NULL};

    return proc_start(p, "test-service", args);
}

typedef struct buf {
    char *data;
    size_t len;
} buf;

static inline size_t buf_write(char *d, size_t s, size_t n, void *ud)
{
    buf *b = ud;
    char *p = realloc(b->data, b->len + s * n + 1);

    if (!p)
        return 0;
    b->data = p;
    memcpy(b->data + b->len, d, s * n);
    b->len += s * n;
    b->data[b->len] = '\0';
    return s * n;
}

/* One HTTP request; returns the status (0 on transport error) and the
 * body in *out (caller frees out->data). */
static inline long http_do(const char *method, const char *url,
                           const char *body, buf *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    long status = 0;

    out->data = NULL;
    out->len = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* The hit counter of a test-service, or -1. */
static inline long service_hits(const proc *p)
{
    char url[128];
    buf b;
    long hits = -1;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hits", p->port);
    if (http_do("GET", url, NULL, &b) == 200) {
        cJSON *v = cJSON_Parse(b.data);
        cJSON *h = cJSON_GetObjectItem(v, "hits");

        if (cJSON_IsNumber(h))
            hits = (long)h->valuedouble;
        cJSON_Delete(v);
    }
    free(b.data);
    return hits;
}

/* printf into a new string; aborts the test binary when out of memory. */
static inline char *fmt(const char *f, ...)
{
    va_list ap;
    char *s;

    va_start(ap, f);
    if (vasprintf(&s, f, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

/* Follows a dotted path of object keys ("nodes.C.state"). */
static inline cJSON *jget(cJSON *v, const char *path)
{
    char key[256];

    while (v && *path) {
        size_t n = strcspn(path, ".");

        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = cJSON_GetObjectItemCaseSensitive(v, key);
        path += n + (path[n] == '.');
    }
    return v;
}

static inline const char *jstr(cJSON *v, const char *path)
{
    cJSON *x = jget(v, path);

    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static inline double jnum(cJSON *v, const char *path)
{
    cJSON *x = jget(v, path);

    return cJSON_IsNumber(x) ? x->valuedouble : -1;
}

#endif
