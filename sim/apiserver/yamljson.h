/*
 * yamljson: YAML request bodies (application/apply-patch+yaml written by
 * hand, application/yaml) converted to cJSON.
 */
#ifndef SIMAPI_YAMLJSON_H
#define SIMAPI_YAMLJSON_H

#include <stddef.h>
#include <cjson/cJSON.h>

/*
 * Parses the first YAML document in text[0..len). Plain scalars become
 * null, booleans (true/false) or numbers when they read as such, else
 * strings; quoted scalars stay strings. Returns a fresh object or NULL
 * with the parser's reason and position in err.
 */
cJSON *yamljson_parse(const char *text, size_t len, char *err,
                      size_t errlen);

#endif
