/*
 * schema: the structural-schema checks a CRD's openAPIV3Schema implies.
 *
 * Covers type, nullable, enum, minimum/maximum, minLength/maxLength,
 * minItems/maxItems, required, properties, items and additionalProperties
 * (as a schema). Patterns, formats, CEL rules and pruning of unknown
 * fields are not checked.
 */
#ifndef SIMAPI_SCHEMA_H
#define SIMAPI_SCHEMA_H

#include <cjson/cJSON.h>

/*
 * Validates obj (a whole custom resource) against schema (both
 * borrowed); metadata, apiVersion and kind are skipped. Each violation is
 * appended as a cause to the Status st. Returns the number of violations.
 */
int schema_validate(const cJSON *schema, const cJSON *obj, cJSON *st);

#endif
