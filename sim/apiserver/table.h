/*
 * table: server-side Table rendering for `kubectl get`.
 *
 * Built-in kinds use the columns a real cluster prints (ConfigMap DATA,
 * Pod READY STATUS RESTARTS, ...); custom resources use the CRD version's
 * additionalPrinterColumns; anything else gets Name and Age.
 */
#ifndef SIMAPI_TABLE_H
#define SIMAPI_TABLE_H

#include <stddef.h>
#include <time.h>
#include <cjson/cJSON.h>

/* What rows[].object carries (?includeObject=None|Metadata|Object). */
typedef enum table_include {
    TABLE_INCLUDE_NONE,
    TABLE_INCLUDE_METADATA,
    TABLE_INCLUDE_OBJECT,
} table_include;

typedef struct table_spec {
    const char *kind;            /* the object kind, picks built-ins */
    const cJSON *printer_cols;   /* CRD columns or NULL (borrowed) */
    int headers;                 /* emit columnDefinitions */
    table_include include;
    time_t now;                  /* reference time for ages */
} table_spec;

/*
 * Formats a duration in seconds the way kubectl shows ages ("5m",
 * "3h12m", "<invalid>") into buf.
 */
void table_duration(long long secs, char *buf, size_t len);

/*
 * Builds a meta.k8s.io/v1 Table with one row per element of items
 * (borrowed array of objects). rv and cont fill the Table's metadata
 * (either may be NULL); remaining < 0 leaves remainingItemCount out.
 * Returns a fresh object.
 */
cJSON *table_build(const table_spec *spec, const cJSON *items,
                   const char *rv, const char *cont, long remaining);

#endif
