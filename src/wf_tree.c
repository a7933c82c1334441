/*
 * wf_tree: checks that hold for every object of a document, whatever its
 * form: no key twice in one object (cJSON and libyaml both keep
 * duplicates, and the model builder would silently read the first), no
 * key cut short by a NUL. Both syntaxes refuse nesting past WF_MAX_DEPTH
 * while parsing; the walk checks it again because its recursion relies
 * on it.
 */
#include "wf_internal.h"

#include <stdio.h>
#include <string.h>

/* Objects up to this many members are checked pairwise; bigger ones
 * through a hash map, so a huge object stays linear. */
#define SMALL_OBJECT 16

/* One step of the path: a member's key, or an index when key is NULL. */
typedef struct step {
    const char *key;
    size_t index;
} step;

typedef struct walk {
    wf_ctx *c;
    step steps[WF_MAX_DEPTH + 2];
    size_t depth;
    char path[WF_PATH_MAX];
    int deep_reported;
} walk;

static int key_is_plain(const char *k)
{
    if (*k == '\0')
        return 0;
    for (; *k != '\0'; k++) {
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
              (*k >= '0' && *k <= '9') || *k == '_' || *k == '-'))
            return 0;
    }
    return 1;
}

/*
 * Renders the steps, plus one more member key when last is not NULL, as
 * "a.b[2][\"odd key\"]". Only done when there is something to report, so
 * the walk itself never formats. A path too long for the buffer ends in
 * "...".
 */
static const char *render(walk *w, const char *last)
{
    char q[WF_QUOTE_BUF];
    size_t len = 0;

    w->path[0] = '\0';
    for (size_t i = 0; i <= w->depth; i++) {
        const char *key = i < w->depth ? w->steps[i].key : last;
        size_t room = sizeof(w->path) - len;
        int n;

        if (i == w->depth && last == NULL)
            break;
        if (key == NULL)
            n = snprintf(w->path + len, room, "[%zu]", w->steps[i].index);
        else if (key_is_plain(key))
            n = snprintf(w->path + len, room, "%s%s", len ? "." : "", key);
        else
            n = snprintf(w->path + len, room, "[\"%s\"]", wf_quotes(q, key));
        if (n < 0 || (size_t)n >= room) {
            memcpy(w->path + sizeof(w->path) - 4, "...", 4);
            break;
        }
        len += (size_t)n;
    }
    return w->path;
}

static void report_dup(walk *w, const cJSON *member)
{
    char q[WF_QUOTE_BUF];

    wf_ctx_problem(w->c, render(w, member->string),
                   "the key '%s' appears more than once in this object",
                   wf_quotes(q, member->string));
}

static void dups_small(walk *w, const cJSON *obj)
{
    for (const cJSON *a = obj->child; a != NULL; a = a->next) {
        for (const cJSON *b = obj->child; b != a; b = b->next) {
            if (strcmp(a->string, b->string) == 0) {
                report_dup(w, a);
                break;
            }
        }
    }
}

static void dups_large(walk *w, const cJSON *obj, size_t n)
{
    wf_map m;

    if (wf_map_init(&m, n, w->c->seed) != 0) {
        wf_ctx_oom(w->c);
        return;
    }
    for (const cJSON *a = obj->child; a != NULL; a = a->next) {
        if (wf_map_put(&m, a->string, strlen(a->string), 0, NULL) == 0)
            report_dup(w, a);
    }
    wf_map_free(&m);
}

static void check_keys(walk *w, const cJSON *obj)
{
    size_t n = 0;

    for (const cJSON *a = obj->child; a != NULL; a = a->next) {
        const wf_nul *nul = wf_nulset_find(&w->c->nuls, a, 1);

        if (nul != NULL) {
            char q[WF_QUOTE_BUF];

            wf_ctx_problem(w->c, render(w, a->string),
                           "the key '%s' contains a NUL character",
                           wf_quote(q, nul->text, nul->len, nul->raw_json));
        }
        n++;
    }
    if (n <= SMALL_OBJECT)
        dups_small(w, obj);
    else
        dups_large(w, obj, n);
}

static void visit(walk *w, const cJSON *item)
{
    size_t i = 0;

    if (!cJSON_IsObject(item) && !cJSON_IsArray(item))
        return;

    /* The root is the first level, so depth counts the levels above. */
    if (w->depth >= WF_MAX_DEPTH) {
        if (!w->deep_reported)
            wf_ctx_problem(w->c, render(w, NULL),
                           "the document nests deeper than %d levels",
                           WF_MAX_DEPTH);
        w->deep_reported = 1;
        return;
    }
    if (cJSON_IsObject(item))
        check_keys(w, item);
    for (const cJSON *ch = item->child; ch != NULL; ch = ch->next, i++) {
        step *st = &w->steps[w->depth++];

        st->key = cJSON_IsObject(item) ? ch->string : NULL;
        st->index = i;
        visit(w, ch);
        w->depth--;
    }
}

void wf_tree_check(wf_ctx *c, const cJSON *root)
{
    walk w;

    memset(&w, 0, sizeof(w));
    w.c = c;
    visit(&w, root);
}
