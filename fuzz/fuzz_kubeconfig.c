/*
 * Fuzzes kubeconfig parsing: YAML to tree, entry checks, context
 * resolution and base64 fields. File references resolve against a
 * directory that does not exist, so no real file is read.
 */
#include <stddef.h>
#include <stdint.h>

#include "kcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    kcfg *c = NULL;

    if (kcfg_parse((const char *)data, size, "fuzz", "/nonexistent-fuzz",
                   NULL, &c, err, sizeof(err)) == 0)
        kcfg_free(c);
    return 0;
}
