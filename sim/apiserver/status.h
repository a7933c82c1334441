/*
 * status: metav1.Status error bodies.
 *
 * kubectl builds its error lines from these (reason, message, details),
 * so the shapes follow a real apiserver exactly. Every builder returns a
 * fresh cJSON object.
 */
#ifndef SIMAPI_STATUS_H
#define SIMAPI_STATUS_H

#include <cjson/cJSON.h>

/* A failure Status with code, reason and message (printf-style). */
cJSON *status_new(int code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Adds details {name, group, kind} (kind is the plural for most
 * reasons, the Kind for Invalid). Empty strings are left out.
 */
void status_set_details(cJSON *st, const char *name, const char *group,
                        const char *kind);

/* Appends a cause {reason, message, field} to details.causes. */
void status_add_cause(cJSON *st, const char *reason, const char *message,
                      const char *field);

/* A success Status (used by some deletes). */
cJSON *status_success(const char *name, const char *group,
                      const char *kind, const char *uid);

#endif
