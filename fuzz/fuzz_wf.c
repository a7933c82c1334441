/*
 * libFuzzer harness for the workflow parser: any bytes, as JSON or YAML,
 * DAG or Astro, must give a workflow or problems, never a crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wf.h"

/* Walks the model so a bad index or length shows under ASan, and stops
 * on anything the contract in wf.h rules out. */
static void check_model(const wf_workflow *wf)
{
    for (size_t i = 0; i < wf->n_nodes; i++) {
        const wf_node *n = &wf->nodes[i];

        if (strlen(n->name) != n->name_len || wf_find(wf, n->name) < 0)
            abort();
        if (wf->order[i] >= wf->n_nodes)
            abort();
        for (size_t k = 0; k < n->n_deps; k++) {
            if (n->deps[k] >= wf->n_nodes)
                abort();
        }
        for (size_t k = 0; k < n->n_succs; k++) {
            if (n->succs[k] >= wf->n_nodes)
                abort();
        }
    }
    for (size_t i = 0; i < wf->n_exits; i++) {
        if (wf->nodes[wf->exits[i]].n_succs != 0)
            abort();
    }
}

/* Parses one input; either outcome must keep the contract. */
static void parse_once(const char *text, size_t len, const wf_limits *lim)
{
    wf_workflow *wf = NULL;
    wf_problems probs;
    char *all;

    wf_problems_init(&probs);
    if (wf_parse(text, len, lim, &wf, &probs) == 0) {
        if (probs.n != 0)
            abort();
        check_model(wf);
    } else if (wf != NULL || probs.n == 0) {
        abort();
    }
    all = wf_problems_format(&probs);
    free(all);
    wf_free(wf);
    wf_problems_free(&probs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wf_limits lim;

    parse_once((const char *)data, size, NULL);

    /* Small limits too, so the limit checks are reached by inputs the
     * fuzzer can actually grow. */
    wf_limits_default(&lim);
    lim.max_nodes = 3;
    lim.max_name_bytes = 4;
    lim.max_deps = 2;
    lim.max_timeout_ms = 1000;
    lim.max_retries = 1;
    parse_once((const char *)data, size, &lim);
    return 0;
}
