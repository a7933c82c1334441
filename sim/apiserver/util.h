/*
 * util: small helpers shared by the simapi modules: base64, time stamps,
 * random identifiers.
 */
#ifndef SIMAPI_UTIL_H
#define SIMAPI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Base64 (standard alphabet, padded) of len bytes; fresh string. */
char *util_b64_encode(const void *data, size_t len);

/*
 * Decodes base64 text (standard or URL alphabet, padding optional) into
 * a fresh buffer, NUL-terminated for convenience; *len gets the size.
 * Returns NULL on malformed input.
 */
unsigned char *util_b64_decode(const char *text, size_t *len);

/* Writes t as RFC3339 with whole seconds ("2025-01-01T00:00:00Z"). */
void util_rfc3339(time_t t, char *buf, size_t len);

/* Fills buf with n random bytes (urandom, with a PRNG fallback). */
void util_random(void *buf, size_t n);

/* Writes a random UUIDv4 (37 bytes with the terminator). */
void util_uuid(char out[37]);

/*
 * Inserts item (owned) at index at of an array or object; at past the end
 * appends. Used instead of cJSON_InsertItemInArray, which in cJSON 1.7.15
 * fails on arrays built by the parser.
 */
struct cJSON;
void util_insert(struct cJSON *container, int at, struct cJSON *item);

#endif
