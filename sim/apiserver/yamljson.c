/* YAML to cJSON through libyaml's document loader. */
#include "yamljson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Nesting deeper than this is refused rather than recursed into. */
#define MAX_DEPTH 200

static cJSON *scalar(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    char *end;
    double d;

    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return cJSON_CreateString(s);
    if (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0)
        return cJSON_CreateNull();
    if (strcmp(s, "true") == 0)
        return cJSON_CreateTrue();
    if (strcmp(s, "false") == 0)
        return cJSON_CreateFalse();
    d = strtod(s, &end);
    if (!*end && (s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
        return cJSON_CreateNumber(d);
    return cJSON_CreateString(s);
}

static cJSON *convert(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    cJSON *out;

    if (!n || depth > MAX_DEPTH)
        return NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return scalar(n);
    case YAML_SEQUENCE_NODE:
        out = cJSON_CreateArray();
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             i < n->data.sequence.items.top; i++) {
            cJSON *v = convert(doc, yaml_document_get_node(doc, *i),
                               depth + 1);

            if (!v)
                goto fail;
            cJSON_AddItemToArray(out, v);
        }
        return out;
    case YAML_MAPPING_NODE:
        out = cJSON_CreateObject();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            cJSON *v;

            if (!k || k->type != YAML_SCALAR_NODE)
                goto fail;
            v = convert(doc, yaml_document_get_node(doc, p->value),
                        depth + 1);
            if (!v)
                goto fail;
            cJSON_DeleteItemFromObjectCaseSensitive(
                out, (const char *)k->data.scalar.value);
            cJSON_AddItemToObject(out, (const char *)k->data.scalar.value,
                                  v);
        }
        return out;
    default:
        return NULL;
    }
fail:
    cJSON_Delete(out);
    return NULL;
}

cJSON *yamljson_parse(const char *text, size_t len, char *err,
                      size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    cJSON *out = NULL;

    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "yaml: line %zu: %s",
                 parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        return NULL;
    }
    out = convert(&doc, yaml_document_get_root_node(&doc), 0);
    if (!out)
        snprintf(err, errlen, "yaml: unsupported or empty document");
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return out;
}
