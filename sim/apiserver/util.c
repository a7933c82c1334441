/* Base64, time stamps and random identifiers. */
#include "util.h"

#include <cjson/cJSON.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *util_b64_encode(const void *data, size_t len)
{
    const unsigned char *in = data;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    size_t o = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p;

    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

unsigned char *util_b64_decode(const char *text, size_t *len)
{
    size_t n = strlen(text), o = 0;
    unsigned char *out = malloc(n / 4 * 3 + 4);
    unsigned acc = 0;
    int bits = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int v;

        if (text[i] == '=')
            break;
        v = b64_value(text[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

void util_rfc3339(time_t t, char *buf, size_t len)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static pthread_mutex_t rnd_lock = PTHREAD_MUTEX_INITIALIZER;

void util_random(void *buf, size_t n)
{
    static uint64_t state;
    unsigned char *p = buf;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, buf, n) : -1;

    if (fd >= 0)
        close(fd);
    if (got == (ssize_t)n)
        return;
    /* No urandom: a xorshift seeded from the clock is enough here. */
    pthread_mutex_lock(&rnd_lock);
    if (!state)
        state = (uint64_t)time(NULL) * 2654435761u + (uint64_t)getpid();
    for (size_t i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        p[i] = (unsigned char)state;
    }
    pthread_mutex_unlock(&rnd_lock);
}

void util_uuid(char out[37])
{
    unsigned char b[16];

    util_random(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
}

void util_insert(cJSON *container, int at, cJSON *item)
{
    cJSON *tail = cJSON_CreateArray();

    while (cJSON_GetArraySize(container) > at)
        cJSON_AddItemToArray(tail, cJSON_DetachItemFromArray(container, at));
    cJSON_AddItemToArray(container, item);
    while (cJSON_GetArraySize(tail) > 0)
        cJSON_AddItemToArray(container, cJSON_DetachItemFromArray(tail, 0));
    cJSON_Delete(tail);
}
