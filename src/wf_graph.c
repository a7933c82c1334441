/*
 * wf_graph: turns names into indices and the nodes into a graph.
 *
 * Every step is linear in nodes plus dependencies: names go through a
 * hash map, repeated dependencies are caught with a per-node stamp, and
 * the order comes from Kahn's algorithm. Among the nodes ready at the same
 * time the one declared first goes first (a min-heap of indices), so the
 * order is the same on every run and reads like the document.
 */
#include "wf_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cycles longer than this are printed with the middle left out. */
#define CYCLE_SHOWN 16

typedef struct graph {
    wf_ctx *c;
    wf_owned *o;
    const wf_pending *pend;
    size_t n;
    size_t *stamp; /* per node: 1 + index of the node that last named it */
    size_t *where; /* per node: at which dependency it was named */
    char path[WF_PATH_MAX];
} graph;

/* "node 'a'", or "nodes[3]" for a node without a usable name. */
static const char *label(graph *g, size_t i, char *buf, size_t cap)
{
    char q[WF_QUOTE_BUF];
    const wf_node *nd = &g->o->wf.nodes[i];

    if (g->pend[i].named)
        snprintf(buf, cap, "%s '%s'", g->c->noun,
                 wf_quote(q, nd->name, nd->name_len, 0));
    else
        snprintf(buf, cap, "%s[%zu]", g->c->list_path, i);
    return buf;
}

static const char *dep_path(graph *g, size_t i, size_t k)
{
    snprintf(g->path, sizeof(g->path), "%s[%zu].dependencies[%zu]",
             g->c->list_path, i, k);
    return g->path;
}

static void index_names(graph *g)
{
    wf_owned *o = g->o;

    if (wf_map_init(&o->names, g->n, g->c->seed) != 0) {
        wf_ctx_oom(g->c);
        return;
    }
    for (size_t i = 0; i < g->n; i++) {
        const wf_node *nd = &o->wf.nodes[i];
        char q[WF_QUOTE_BUF];
        size_t first;

        if (!g->pend[i].named)
            continue;
        if (wf_map_put(&o->names, nd->name, nd->name_len, i, &first) != 0)
            continue;
        snprintf(g->path, sizeof(g->path), "%s[%zu].name", g->c->list_path, i);
        wf_ctx_problem(
            g->c, g->path, "the name '%s' is already used by %s[%zu]",
            wf_quote(q, nd->name, nd->name_len, 0), g->c->list_path, first);
    }
}

/* Resolves dependency k of node i, whose item is it. */
static void resolve_one(graph *g, size_t i, size_t k, const cJSON *it)
{
    wf_node *nd = &g->o->wf.nodes[i];
    char q[WF_QUOTE_BUF];
    char who[WF_QUOTE_BUF + 32];
    const wf_map_slot *hit;
    const wf_nul *nul;
    const char *s;
    size_t d;

    if (!cJSON_IsString(it)) {
        wf_ctx_problem(g->c, dep_path(g, i, k),
                       "a dependency must be the name of a %s; got %s",
                       g->c->noun, wf_type_name(it));
        return;
    }
    nul = wf_nulset_find(&g->c->nuls, it, 0);
    if (nul != NULL) {
        wf_ctx_problem(g->c, dep_path(g, i, k),
                       "the dependency '%s' contains a NUL character",
                       wf_quote(q, nul->text, nul->len, nul->raw_json));
        return;
    }
    s = it->valuestring;
    hit = wf_map_get(&g->o->names, s, strlen(s));
    if (hit == NULL) {
        wf_ctx_problem(g->c, dep_path(g, i, k),
                       "%s depends on '%s', which is not a %s of this "
                       "workflow",
                       label(g, i, who, sizeof(who)), wf_quotes(q, s),
                       g->c->noun);
        return;
    }
    d = hit->val;
    if (d == i) {
        wf_ctx_problem(g->c, dep_path(g, i, k), "%s depends on itself",
                       label(g, i, who, sizeof(who)));
        return;
    }
    if (g->stamp[d] == i + 1) {
        wf_ctx_problem(g->c, dep_path(g, i, k),
                       "%s lists '%s' twice (also at dependencies[%zu])",
                       label(g, i, who, sizeof(who)), wf_quotes(q, s),
                       g->where[d]);
        return;
    }
    g->stamp[d] = i + 1;
    g->where[d] = k;
    nd->deps[nd->n_deps++] = d;
}

static void resolve_deps(graph *g, size_t *slab)
{
    for (size_t i = 0; i < g->n; i++) {
        wf_node *nd = &g->o->wf.nodes[i];
        const cJSON *it;
        size_t k = 0;

        nd->deps = g->pend[i].n_items > 0 ? slab : NULL;
        slab += g->pend[i].n_items;
        if (g->pend[i].deps == NULL)
            continue;
        for (it = g->pend[i].deps->child; it != NULL; it = it->next, k++)
            resolve_one(g, i, k, it);
    }
}

/* Successors in declaration order: walking the nodes in order and
 * appending each to its predecessors' lists sorts every list. */
static void link_succs(graph *g, size_t *slab)
{
    wf_node *nodes = g->o->wf.nodes;
    size_t *count = g->stamp;

    memset(count, 0, g->n * sizeof(*count));
    for (size_t i = 0; i < g->n; i++) {
        for (size_t k = 0; k < nodes[i].n_deps; k++)
            count[nodes[i].deps[k]]++;
    }
    for (size_t i = 0; i < g->n; i++) {
        nodes[i].succs = count[i] > 0 ? slab : NULL;
        slab += count[i];
    }
    for (size_t i = 0; i < g->n; i++) {
        for (size_t k = 0; k < nodes[i].n_deps; k++) {
            wf_node *p = &nodes[nodes[i].deps[k]];

            p->succs[p->n_succs++] = i;
        }
    }
}

/* ---- min-heap of node indices ---- */

static void heap_push(size_t *h, size_t *n, size_t v)
{
    size_t i = (*n)++;

    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static size_t heap_pop(size_t *h, size_t *n)
{
    size_t top = h[0];
    size_t v = h[--*n];
    size_t i = 0;

    for (;;) {
        size_t l = 2 * i + 1;
        size_t m = l;

        if (l >= *n)
            break;
        if (l + 1 < *n && h[l + 1] < h[l])
            m = l + 1;
        if (h[m] >= v)
            break;
        h[i] = h[m];
        i = m;
    }
    h[i] = v;
    return top;
}

/* Kahn's algorithm; returns how many nodes it could order. Nodes left
 * out are on a cycle or behind one. */
static size_t topo_order(graph *g, size_t *order)
{
    wf_node *nodes = g->o->wf.nodes;
    size_t *indeg = g->stamp;
    size_t *heap = g->where;
    size_t nh = 0;
    size_t m = 0;

    for (size_t i = 0; i < g->n; i++) {
        indeg[i] = nodes[i].n_deps;
        if (indeg[i] == 0)
            heap_push(heap, &nh, i);
    }
    while (nh > 0) {
        size_t v = heap_pop(heap, &nh);

        order[m++] = v;
        for (size_t k = 0; k < nodes[v].n_succs; k++) {
            size_t s = nodes[v].succs[k];

            if (--indeg[s] == 0)
                heap_push(heap, &nh, s);
        }
    }
    return m;
}

/* Where node s names node p among its dependencies, for the path. */
static size_t dep_index(graph *g, size_t s, size_t p)
{
    const wf_node *nd = &g->o->wf.nodes[p];
    const cJSON *it;
    size_t k = 0;

    if (g->pend[s].deps == NULL)
        return 0;
    for (it = g->pend[s].deps->child; it != NULL; it = it->next, k++) {
        if (cJSON_IsString(it) && strcmp(it->valuestring, nd->name) == 0)
            return k;
    }
    return 0;
}

/* Prints the cycle cyc[0..len) (in the direction work flows), starting
 * from its earliest declared node. */
static void report_cycle(graph *g, const size_t *cyc, size_t len)
{
    size_t first = 0;
    size_t shown = len < CYCLE_SHOWN ? len : CYCLE_SHOWN;
    size_t cap = (shown + 1) * (WF_QUOTE_BUF + 4) + 64;
    char *msg = malloc(cap);
    size_t w = 0;
    char q[WF_QUOTE_BUF];
    size_t start;
    size_t pred;

    if (msg == NULL) {
        wf_ctx_oom(g->c);
        return;
    }
    for (size_t j = 1; j < len; j++) {
        if (cyc[j] < cyc[first])
            first = j;
    }
    for (size_t j = 0; j < shown; j++) {
        const wf_node *nd = &g->o->wf.nodes[cyc[(first + j) % len]];

        w += (size_t)snprintf(msg + w, cap - w, "%s -> ",
                              wf_quote(q, nd->name, nd->name_len, 0));
    }
    if (shown < len)
        w += (size_t)snprintf(msg + w, cap - w, "... (%zu %ss in all) -> ", len,
                              g->c->noun);
    start = cyc[first];
    snprintf(msg + w, cap - w, "%s",
             wf_quote(q, g->o->wf.nodes[start].name,
                      g->o->wf.nodes[start].name_len, 0));

    pred = cyc[(first + len - 1) % len];
    wf_ctx_problem(g->c, dep_path(g, start, dep_index(g, start, pred)),
                   "the dependencies form a cycle: %s", msg);
    free(msg);
}

/*
 * Finds one cycle among the nodes Kahn could not order. Each of them
 * waits for at least one other such node, so following those
 * dependencies must come back to a node already seen.
 */
static void find_cycle(graph *g, const size_t *order, size_t m)
{
    wf_node *nodes = g->o->wf.nodes;
    size_t *done = g->stamp;
    size_t *pos = g->where;
    size_t *seq = malloc(g->n * sizeof(*seq));
    size_t len = 0;
    size_t cur = 0;

    if (seq == NULL) {
        wf_ctx_oom(g->c);
        return;
    }
    for (size_t i = 0; i < g->n; i++) {
        done[i] = 0;
        pos[i] = SIZE_MAX;
    }
    for (size_t i = 0; i < m; i++)
        done[order[i]] = 1;
    while (done[cur])
        cur++;

    while (pos[cur] == SIZE_MAX) {
        size_t k = 0;

        pos[cur] = len;
        seq[len++] = cur;
        while (done[nodes[cur].deps[k]])
            k++;
        cur = nodes[cur].deps[k];
    }

    /* seq[pos[cur]..len) runs against the flow: each entry depends on
     * the next. Reverse it so the message reads in the order work moves. */
    for (size_t a = pos[cur], b = len - 1; a < b; a++, b--) {
        size_t t = seq[a];

        seq[a] = seq[b];
        seq[b] = t;
    }
    report_cycle(g, seq + pos[cur], len - pos[cur]);
    free(seq);
}

static void fill_exits(wf_workflow *wf, size_t *slab)
{
    wf->exits = slab;
    wf->n_exits = 0;
    for (size_t i = 0; i < wf->n_nodes; i++) {
        if (wf->nodes[i].n_succs == 0)
            wf->exits[wf->n_exits++] = i;
    }
}

/* The default of semantics.md: an entry node fetches, the others post
 * what their predecessors produced. */
static void default_actions(wf_workflow *wf)
{
    for (size_t i = 0; i < wf->n_nodes; i++) {
        wf_node *nd = &wf->nodes[i];

        if (!nd->action_given)
            nd->action = nd->n_deps == 0 ? WF_ACTION_GET : WF_ACTION_POST;
    }
}

void wf_graph_build(wf_ctx *c, wf_owned *o, const wf_pending *pend)
{
    graph g;
    size_t items = 0;
    size_t total;
    size_t m;

    memset(&g, 0, sizeof(g));
    g.c = c;
    g.o = o;
    g.pend = pend;
    g.n = o->wf.n_nodes;
    for (size_t i = 0; i < g.n; i++)
        items += pend[i].n_items;

    /* deps and succs take at most one slot per dependency each; order
     * and exits one per node. */
    total = 2 * items + 2 * g.n;
    o->slab = malloc(total * sizeof(*o->slab));
    g.stamp = calloc(g.n, sizeof(*g.stamp));
    g.where = calloc(g.n, sizeof(*g.where));
    if (o->slab == NULL || g.stamp == NULL || g.where == NULL) {
        wf_ctx_oom(c);
        goto out;
    }

    index_names(&g);
    if (c->oom)
        goto out;
    resolve_deps(&g, o->slab);
    link_succs(&g, o->slab + items);

    o->wf.order = o->slab + 2 * items;
    m = topo_order(&g, o->wf.order);
    if (m < g.n)
        find_cycle(&g, o->wf.order, m);

    fill_exits(&o->wf, o->slab + 2 * items + g.n);
    default_actions(&o->wf);

out:
    free(g.stamp);
    free(g.where);
}
