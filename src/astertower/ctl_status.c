/*
 * ctl_status: conditions, phase and result in the status document (see
 * ctl_status.h).
 */
#define _GNU_SOURCE
#include "ctl_status.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void ctl_time_format(long t, char buf[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int ctl_time_parse(const char *s, long *out)
{
    struct tm tm;
    int used = 0;
    const char *rest;

    if (s == NULL)
        return -1;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
               &used) != 6 ||
        used != 19)
        return -1;
    rest = s + used;
    if (*rest == '.') {
        rest++;
        while (*rest >= '0' && *rest <= '9')
            rest++;
    }
    if (strcmp(rest, "Z") != 0)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (long)timegm(&tm);
    return 0;
}

int ctl_json_put(cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL)
        return -1;
    if (cJSON_HasObjectItem(obj, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item) ? 0
                                                                      : -1;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

cJSON *ctl_cond_find(const cJSON *status, const char *type)
{
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    cJSON *c;

    cJSON_ArrayForEach(c, conds)
    {
        const char *t = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(c, "type"));

        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

long ctl_cond_since(const cJSON *status, const char *type, const char *st)
{
    const cJSON *c = ctl_cond_find(status, type);
    const char *s, *when;
    long t;

    if (c == NULL)
        return 0;
    s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));
    when = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(c, "lastTransitionTime"));
    if (s == NULL || strcmp(s, st) != 0 || ctl_time_parse(when, &t) < 0)
        return 0;
    return t;
}

/* The conditions array of status, made when missing. */
static cJSON *conditions(cJSON *status)
{
    cJSON *conds = cJSON_GetObjectItemCaseSensitive(status, "conditions");

    if (cJSON_IsArray(conds))
        return conds;
    if (ctl_json_put(status, "conditions", cJSON_CreateArray()) < 0)
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(status, "conditions");
}

int ctl_cond_set(cJSON *status, const char *type, const char *st,
                 const char *reason, const char *message, long now, long gen)
{
    cJSON *c = ctl_cond_find(status, type);
    cJSON *conds = conditions(status);
    const char *old;
    char when[32];
    int rc = 0;

    if (conds == NULL)
        return -1;
    if (c == NULL) {
        c = cJSON_CreateObject();
        if (c == NULL || !cJSON_AddItemToArray(conds, c)) {
            cJSON_Delete(c);
            return -1;
        }
        rc |= ctl_json_put(c, "type", cJSON_CreateString(type));
    }

    old = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));
    if (old == NULL || strcmp(old, st) != 0 ||
        !cJSON_HasObjectItem(c, "lastTransitionTime")) {
        ctl_time_format(now, when);
        rc |= ctl_json_put(c, "lastTransitionTime", cJSON_CreateString(when));
    }
    rc |= ctl_json_put(c, "status", cJSON_CreateString(st));
    rc |= ctl_json_put(c, "reason", cJSON_CreateString(reason));
    rc |= ctl_json_put(c, "message", cJSON_CreateString(message));
    rc |= ctl_json_put(c, "observedGeneration", cJSON_CreateNumber(gen));
    return rc ? -1 : 0;
}

int ctl_status_enter(cJSON *status, ctl_phase p, const char *reason,
                     const char *message, long now, long gen)
{
    int rc = ctl_json_put(status, "phase",
                          cJSON_CreateString(ctl_phase_name(p)));

#define COND(type, st, why, msg)                                           \
    rc |= ctl_cond_set(status, type, st, why, msg, now, gen)
    switch (p) {
    case CTL_PHASE_INITIALIZED:
        COND("Initialized", "True", reason, message);
        COND("Deployed", "False", "Deploying", "waiting for the stars");
        break;
    case CTL_PHASE_WAITED:
        COND("Deployed", "True", reason, message);
        COND("EngineReady", "False", "EngineStarting",
             "waiting for the engine pod");
        break;
    case CTL_PHASE_READY:
        COND("EngineReady", "True", reason, message);
        COND("Succeeded", "Unknown", "Running", "the run is in progress");
        break;
    case CTL_PHASE_SUCCESS:
        COND("Succeeded", "True", reason, message);
        break;
    case CTL_PHASE_WRONG:
        COND("Succeeded", "False", reason, message);
        break;
    case CTL_PHASE_DEPLOY_FAILED:
        COND("Deployed", "False", reason, message);
        break;
    case CTL_PHASE_ENGINE_FAILED:
        COND("EngineReady", "False", reason, message);
        break;
    default:
        break;
    }
#undef COND
    return rc ? -1 : 0;
}

int ctl_result_healthy(const cJSON *result)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(result, "status");

    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "health"));
}

void ctl_result_why(const cJSON *result, char *buf, size_t len)
{
    const char *err = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(result, "error"));
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(result, "failed");
    const cJSON *f;
    size_t used = 0;

    if (err && *err) {
        snprintf(buf, len, "%s", err);
        return;
    }
    used = (size_t)snprintf(buf, len, "failed nodes:");
    cJSON_ArrayForEach(f, failed)
    {
        if (!cJSON_IsString(f) || used >= len)
            continue;
        used += (size_t)snprintf(buf + used, len - used, " %s",
                                 f->valuestring);
    }
}

/* Copies key from src into dst when present. */
static int keep(cJSON *dst, const cJSON *src, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, key);

    if (v == NULL)
        return 0;
    return ctl_json_put(dst, key, cJSON_Duplicate(v, 1));
}

/* Bytes of o printed compactly, or 0 when it cannot be printed. */
static size_t printed_size(const cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    size_t n = s ? strlen(s) : 0;

    cJSON_free(s);
    return n;
}

/*
 * The summary of a result too large to store: the fields that say what
 * happened, smaller and smaller until it fits max (the per-node map goes
 * first, then the error text is cut).
 */
static cJSON *summarize(const cJSON *full, size_t max)
{
    cJSON *sum = cJSON_CreateObject();
    int rc = 0;

    if (sum == NULL)
        return NULL;
    rc |= keep(sum, full, "id");
    rc |= keep(sum, full, "status");
    rc |= keep(sum, full, "durationMs");
    rc |= keep(sum, full, "failed");
    rc |= keep(sum, full, "error");
    rc |= keep(sum, full, "nodes");
    if (rc == 0 && printed_size(sum) > max)
        cJSON_DeleteItemFromObjectCaseSensitive(sum, "nodes");
    if (rc == 0 && printed_size(sum) > max) {
        const char *e = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(sum, "error"));
        char cut[256];

        if (e) {
            snprintf(cut, sizeof(cut), "%s", e);
            rc |= ctl_json_put(sum, "error", cJSON_CreateString(cut));
        }
    }
    if (rc == 0 && printed_size(sum) > max)
        cJSON_DeleteItemFromObjectCaseSensitive(sum, "failed");
    if (rc) {
        cJSON_Delete(sum);
        return NULL;
    }
    return sum;
}

int ctl_status_set_result(cJSON *status, const char *doc, size_t len,
                          size_t max)
{
    cJSON *full = cJSON_ParseWithLength(doc, len);
    cJSON *stored;
    int truncated = 0, rc = 0;

    if (!cJSON_IsObject(full)) {
        cJSON_Delete(full);
        return -1;
    }
    if (len > max) {
        stored = summarize(full, max);
        cJSON_Delete(full);
        truncated = 1;
    } else {
        stored = full;
    }
    rc |= ctl_json_put(status, "result", stored);
    rc |= ctl_json_put(status, "resultTruncated", cJSON_CreateBool(truncated));
    rc |= ctl_json_put(status, "resultSize", cJSON_CreateNumber((double)len));
    return rc ? -1 : 0;
}
