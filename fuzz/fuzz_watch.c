/*
 * Fuzzes watch-stream decoding: the input is fed to the decoder in
 * chunks whose sizes come from the first byte, with a small line bound
 * so the overflow path is reached too.
 */
#include <stddef.h>
#include <stdint.h>

#include "kube.h"

static int on_event(kube_event_type t, cJSON *obj, void *ud)
{
    size_t *n = ud;

    (void)kube_obj_name(obj);
    (void)kube_obj_rv(obj);
    (*n)++;
    return t == KUBE_DELETED && *n > 64;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0, step;
    kube_wdec *d;
    kube_err e;

    if (size == 0)
        return 0;
    step = (size_t)(data[0] % 31) + 1;
    d = kube_wdec_new(4096, on_event, &n);
    if (!d)
        return 0;
    for (size_t off = 1; off < size; off += step) {
        size_t len = size - off < step ? size - off : step;

        if (kube_wdec_feed(d, (const char *)data + off, len, &e) != 0)
            break;
    }
    kube_wdec_free(d);
    return 0;
}
