/*
 * Tests of the workflow module: the handed cases (tests/data), then each
 * rule of docs/workflow.md with small documents written here.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wf.h"

/* ---- helpers ---- */

typedef struct result {
    wf_workflow *wf;
    wf_problems p;
    int rc;
} result;

static void parse_lim(result *r, const char *doc, size_t len,
                      const wf_limits *lim)
{
    wf_problems_init(&r->p);
    r->wf = (wf_workflow *)0x1; /* must be reset by wf_parse */
    r->rc = wf_parse(doc, len, lim, &r->wf, &r->p);
    if (r->rc == 0) {
        assert_non_null(r->wf);
        assert_int_equal(r->p.n, 0);
    } else {
        assert_int_equal(r->rc, -1);
        assert_null(r->wf);
        assert_true(r->p.n > 0);
    }
}

static void parse(result *r, const char *doc)
{
    parse_lim(r, doc, strlen(doc), NULL);
}

static void parse_case(result *r, const char *name)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", ASTER_CASES, name);
    wf_problems_init(&r->p);
    r->rc = wf_parse_file(path, NULL, &r->wf, &r->p);
}

static void result_free(result *r)
{
    wf_free(r->wf);
    r->wf = NULL;
    wf_problems_free(&r->p);
}

static void dump_fail(const wf_problems *p, const char *what, const char *file,
                      int line)
{
    char *all = wf_problems_format(p);

    print_error("%s:%d: %s; the problems were:\n%s", file, line, what,
                all ? all : "(none)");
    free(all);
    _fail(file, line);
}

/* Asserts a problem at exactly path whose message holds needle. */
#define assert_problem(p, path, needle)                                        \
    assert_problem_at((p), (path), (needle), __FILE__, __LINE__)

static void assert_problem_at(const wf_problems *p, const char *path,
                              const char *needle, const char *file, int line)
{
    char what[512];

    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->items[i].path, path) == 0 &&
            strstr(p->items[i].message, needle) != NULL)
            return;
    }
    snprintf(what, sizeof(what), "no problem at '%s' saying '%s'", path,
             needle);
    dump_fail(p, what, file, line);
}

#define assert_ok(r)                                                           \
    do {                                                                       \
        if ((r)->rc != 0)                                                      \
            dump_fail(&(r)->p, "the document was refused", __FILE__,           \
                      __LINE__);                                               \
    } while (0)

/* Expects doc to be refused with one problem at path saying needle. */
static void expect_refused(const char *doc, const char *path,
                           const char *needle)
{
    result r;

    parse(&r, doc);
    if (r.rc == 0)
        fail_msg("accepted: %s", doc);
    assert_problem(&r.p, path, needle);
    result_free(&r);
}

static size_t idx(const wf_workflow *wf, const char *name)
{
    long i = wf_find(wf, name);

    assert_true(i >= 0);
    return (size_t)i;
}

/* deps of node `name` are exactly the nodes named in want, in order. */
static void assert_deps(const wf_workflow *wf, const char *name,
                        const char *const *want, size_t n)
{
    const wf_node *nd = &wf->nodes[idx(wf, name)];

    assert_int_equal(nd->n_deps, n);
    for (size_t k = 0; k < n; k++)
        assert_string_equal(wf->nodes[nd->deps[k]].name, want[k]);
}

static void assert_succs(const wf_workflow *wf, const char *name,
                         const char *const *want, size_t n)
{
    const wf_node *nd = &wf->nodes[idx(wf, name)];

    assert_int_equal(nd->n_succs, n);
    for (size_t k = 0; k < n; k++)
        assert_string_equal(wf->nodes[nd->succs[k]].name, want[k]);
}

#define DEPS(wf, name, ...)                                                    \
    do {                                                                       \
        const char *const want_[] = {__VA_ARGS__};                             \
        assert_deps(wf, name, want_, sizeof(want_) / sizeof(want_[0]));        \
    } while (0)

#define SUCCS(wf, name, ...)                                                   \
    do {                                                                       \
        const char *const want_[] = {__VA_ARGS__};                             \
        assert_succs(wf, name, want_, sizeof(want_) / sizeof(want_[0]));       \
    } while (0)

/* order is a permutation in which every node follows its dependencies;
 * exits are exactly the nodes without successors, in order. */
static void assert_consistent(const wf_workflow *wf)
{
    size_t n = wf->n_nodes;
    size_t *pos = malloc(n * sizeof(*pos));
    size_t e = 0;

    assert_non_null(pos);
    for (size_t i = 0; i < n; i++)
        pos[i] = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        assert_true(wf->order[i] < n);
        assert_int_equal(pos[wf->order[i]], SIZE_MAX);
        pos[wf->order[i]] = i;
    }
    for (size_t i = 0; i < n; i++) {
        const wf_node *nd = &wf->nodes[i];

        for (size_t k = 0; k < nd->n_deps; k++)
            assert_true(pos[nd->deps[k]] < pos[i]);
        for (size_t k = 0; k < nd->n_succs; k++) {
            assert_true(pos[nd->succs[k]] > pos[i]);
            if (k > 0)
                assert_true(nd->succs[k] > nd->succs[k - 1]);
        }
        if (nd->n_succs == 0) {
            assert_true(e < wf->n_exits);
            assert_int_equal(wf->exits[e++], i);
        }
    }
    assert_int_equal(e, wf->n_exits);
    free(pos);
}

/* Two workflows describe the same graph with the same settings. */
static void assert_same(const wf_workflow *a, const wf_workflow *b)
{
    assert_int_equal(a->form, b->form);
    assert_int_equal(a->n_nodes, b->n_nodes);
    assert_int_equal(a->n_exits, b->n_exits);
    for (size_t i = 0; i < a->n_nodes; i++) {
        const wf_node *x = &a->nodes[i];
        const wf_node *y = &b->nodes[i];

        assert_string_equal(x->name, y->name);
        assert_int_equal(x->name_len, y->name_len);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->action, y->action);
        assert_int_equal(x->action_given, y->action_given);
        assert_string_equal(x->url, y->url);
        assert_int_equal(x->timeout_ms, y->timeout_ms);
        assert_int_equal(x->retries, y->retries);
        assert_int_equal(x->n_deps, y->n_deps);
        assert_memory_equal(x->deps, y->deps, x->n_deps * sizeof(size_t));
        assert_int_equal(x->n_succs, y->n_succs);
        assert_memory_equal(x->succs, y->succs, x->n_succs * sizeof(size_t));
        assert_int_equal(a->order[i], b->order[i]);
    }
    assert_memory_equal(a->exits, b->exits, a->n_exits * sizeof(size_t));
}

/* A growing string for generated documents. */
typedef struct sbuf {
    char *s;
    size_t len;
    size_t cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->s ? b->s + b->len : NULL, b->cap - b->len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if (b->len + (size_t)n < b->cap)
            break;
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    b->len += (size_t)n;
}

/* Appends n copies of ch, for the long strings a printf per byte would
 * make slow under valgrind. */
static void sb_fill(sbuf *b, char ch, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    memset(b->s + b->len, ch, n);
    b->len += n;
    b->s[b->len] = '\0';
}

/* ---- the handed cases that must parse ---- */

static void test_case_dag_diamond(void **state)
{
    result r;

    (void)state;
    parse_case(&r, "dag-diamond.json");
    assert_ok(&r);
    assert_int_equal(r.wf->form, WF_FORM_DAG);
    assert_null(r.wf->name);
    assert_null(r.wf->namespace);
    assert_int_equal(r.wf->n_nodes, 4);
    assert_string_equal(r.wf->nodes[0].name, "A");
    assert_string_equal(r.wf->nodes[3].url, "http://127.0.0.1:8003/test");
    assert_int_equal(r.wf->nodes[0].action, WF_ACTION_GET);
    assert_int_equal(r.wf->nodes[1].action, WF_ACTION_POST);
    assert_int_equal(r.wf->nodes[1].action_given, 1);
    DEPS(r.wf, "D", "B", "C");
    DEPS(r.wf, "B", "A");
    SUCCS(r.wf, "A", "B", "C");
    assert_int_equal(r.wf->nodes[idx(r.wf, "D")].n_succs, 0);
    assert_int_equal(r.wf->n_exits, 1);
    assert_int_equal(r.wf->exits[0], 3);
    for (size_t i = 0; i < 4; i++) {
        const wf_node *nd = &r.wf->nodes[i];

        assert_int_equal(r.wf->order[i], i);
        assert_int_equal(nd->type, WF_NODE_HTTP);
        assert_int_equal(nd->timeout_ms, WF_DEFAULT_TIMEOUT_MS);
        assert_int_equal(nd->timeout_ms, 30000);
        assert_int_equal(nd->retries, 0);
        assert_null(nd->image);
        assert_null(nd->target);
        assert_int_equal(nd->port, 0);
    }
    assert_int_equal(wf_find(r.wf, "C"), 2);
    assert_int_equal(wf_find(r.wf, "E"), -1);
    assert_int_equal(wf_find(r.wf, "c"), -1);
    assert_consistent(r.wf);
    result_free(&r);
}

static void test_case_dag_six(void **state)
{
    result r;

    (void)state;
    parse_case(&r, "dag-six.yaml");
    assert_ok(&r);
    assert_int_equal(r.wf->n_nodes, 6);
    DEPS(r.wf, "n5", "n2", "n3");
    DEPS(r.wf, "n6", "n4", "n5");
    SUCCS(r.wf, "n1", "n2", "n3", "n4");
    SUCCS(r.wf, "n4", "n6");
    assert_int_equal(r.wf->n_exits, 1);
    assert_string_equal(r.wf->nodes[r.wf->exits[0]].name, "n6");
    assert_consistent(r.wf);
    result_free(&r);
}

static void test_case_dag_ten(void **state)
{
    result r;

    (void)state;
    parse_case(&r, "dag-ten.yaml");
    assert_ok(&r);
    assert_int_equal(r.wf->n_nodes, 10);
    DEPS(r.wf, "j", "q1", "q2", "q3");
    DEPS(r.wf, "q2", "p2", "p3");
    SUCCS(r.wf, "s", "p1", "p2", "p3", "p4");
    SUCCS(r.wf, "p3", "q2", "q3");
    assert_int_equal(r.wf->n_exits, 1);
    assert_string_equal(r.wf->nodes[r.wf->exits[0]].name, "t");

    /* No action is written: entry nodes GET, the rest POST. */
    for (size_t i = 0; i < r.wf->n_nodes; i++) {
        const wf_node *nd = &r.wf->nodes[i];

        assert_int_equal(nd->action_given, 0);
        assert_int_equal(nd->action, i == 0 ? WF_ACTION_GET : WF_ACTION_POST);
        assert_int_equal(r.wf->order[i], i);
    }
    assert_consistent(r.wf);
    result_free(&r);
}

static void test_case_astro_diamond(void **state)
{
    static const char *const images[] = {"kasterism/test_a", "kasterism/test_b",
                                         "kasterism/test_c",
                                         "kasterism/test_d"};
    result r;

    (void)state;
    parse_case(&r, "astro-diamond.yaml");
    assert_ok(&r);
    assert_int_equal(r.wf->form, WF_FORM_ASTRO);
    assert_string_equal(r.wf->name, "astro-demo");
    assert_string_equal(r.wf->namespace, "default");
    assert_int_equal(r.wf->n_nodes, 4);
    for (size_t i = 0; i < 4; i++) {
        const wf_node *nd = &r.wf->nodes[i];

        assert_int_equal(nd->type, WF_NODE_DOCKER);
        assert_string_equal(nd->image, images[i]);
        assert_int_equal(nd->port, 8000 + (int)i);
        assert_string_equal(nd->target, "/test");
        assert_null(nd->url);
        assert_int_equal(nd->action, i == 0 ? WF_ACTION_GET : WF_ACTION_POST);
        assert_int_equal(nd->timeout_ms, 30000);
        assert_int_equal(nd->retries, 0);
    }
    DEPS(r.wf, "d", "b", "c");
    SUCCS(r.wf, "a", "b", "c");
    assert_int_equal(r.wf->n_exits, 1);
    assert_int_equal(r.wf->exits[0], 3);
    assert_consistent(r.wf);
    result_free(&r);
}

/* ---- the handed cases that must be refused ---- */

static void refused_case(const char *name, result *r)
{
    parse_case(r, name);
    assert_int_equal(r->rc, -1);
    assert_null(r->wf);
}

static void test_case_cycle(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/cycle.json", &r);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[0].dependencies[0]", "cycle");
    assert_problem(&r.p, "nodes[0].dependencies[0]", "a -> b -> c -> a");
    result_free(&r);
}

static void test_case_self_dependency(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/self-dependency.json", &r);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[0].dependencies[0]",
                   "node 'a' depends on itself");
    result_free(&r);
}

static void test_case_missing_dependency(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/missing-dependency.json", &r);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[1].dependencies[1]",
                   "node 'b' depends on 'ghost'");
    assert_problem(&r.p, "nodes[1].dependencies[1]", "not a node");
    result_free(&r);
}

static void test_case_duplicate_name(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/duplicate-name.json", &r);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[1].name", "'a' is already used by nodes[0]");
    result_free(&r);
}

static void test_case_empty(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/empty.json", &r);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes", "there are no nodes");
    result_free(&r);
}

static void test_case_file_scheme(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/file-scheme.json", &r);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[0].url", "scheme 'file' is refused");
    assert_problem(&r.p, "nodes[0].url", "only http and https");
    result_free(&r);
}

static void test_case_bad_action(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/bad-action.json", &r);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[0].action", "'FETCH'");
    assert_problem(&r.p, "nodes[0].action", "GET, POST, PUT, PATCH, DELETE");
    result_free(&r);
}

static void test_case_astro_bad_names(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/astro-bad-names.yaml", &r);
    assert_int_equal(r.p.n, 3);
    assert_problem(&r.p, "spec.stars[0].name",
                   "'Read_Temp' is not a DNS-1123 label");
    assert_problem(&r.p, "spec.stars[1].port", "70000 is out of range");
    assert_problem(&r.p, "spec.stars[1].target", "'test' must start with '/'");
    result_free(&r);
}

static void test_case_not_json(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/not-json.txt", &r);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "", "could not be parsed as JSON");
    assert_problem(&r.p, "", "line 2, column 1");
    result_free(&r);
}

static void test_case_nul_in_name(void **state)
{
    result r;

    (void)state;
    refused_case("invalid/nul-in-name.json", &r);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[0].name", "name 'a\\u0000b'");
    assert_problem(&r.p, "nodes[0].name", "NUL character");
    result_free(&r);
}

/* ---- syntax ---- */

static const char diamond_json[] =
    "{\"nodes\": ["
    "{\"name\": \"A\", \"url\": \"http://h:1/a\", \"timeout\": \"5s\"},"
    "{\"name\": \"B\", \"url\": \"http://h:2/b\", \"dependencies\": [\"A\"],"
    " \"retries\": 2, \"action\": \"put\"},"
    "{\"name\": \"C\", \"url\": \"http://h:3/c\", \"dependencies\": [\"A\"],"
    " \"timeout\": 1500},"
    "{\"name\": \"D\", \"url\": \"http://h:4/d\","
    " \"dependencies\": [\"B\", \"C\"]}]}";

static const char diamond_yaml[] =
    "# the same diamond\n"
    "nodes:\n"
    "  - name: A\n"
    "    url: http://h:1/a\n"
    "    timeout: 5s\n"
    "  - name: B\n"
    "    url: 'http://h:2/b'\n"
    "    dependencies:\n"
    "      - A\n"
    "    retries: 2\n"
    "    action: put\n"
    "  - {name: C, url: \"http://h:3/c\", dependencies: [A], timeout: 1500}\n"
    "  - name: D\n"
    "    url: http://h:4/d\n"
    "    dependencies: [B, C]\n";

static void test_json_and_yaml_agree(void **state)
{
    result j;
    result y;
    result f;

    (void)state;
    parse(&j, diamond_json);
    parse(&y, diamond_yaml);
    assert_ok(&j);
    assert_ok(&y);
    assert_same(j.wf, y.wf);
    assert_int_equal(j.wf->nodes[0].timeout_ms, 5000);
    assert_int_equal(j.wf->nodes[1].retries, 2);
    assert_int_equal(j.wf->nodes[1].action, WF_ACTION_PUT);
    assert_int_equal(j.wf->nodes[2].timeout_ms, 1500);

    /* A document in YAML flow style opens like JSON but is not JSON. */
    parse(&f, "{nodes: [{name: A, url: 'http://h:1/a', timeout: 5s},"
              " {name: B, url: 'http://h:2/b', dependencies: [A],"
              " retries: 2, action: put},"
              " {name: C, url: 'http://h:3/c', dependencies: [A],"
              " timeout: 1500},"
              " {name: D, url: 'http://h:4/d', dependencies: [B, C]}]}");
    assert_ok(&f);
    assert_same(j.wf, f.wf);
    result_free(&j);
    result_free(&y);
    result_free(&f);
}

static void test_yaml_core_schema(void **state)
{
    static const char *const words[] = {"y", "n",  "no", "yes",   "on", "off",
                                        "Y", "NO", "0x", "1.2.3", "~x"};
    result r;
    char doc[256];

    (void)state;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        snprintf(doc, sizeof(doc), "nodes:\n- name: %s\n  url: http://h/\n",
                 words[i]);
        parse(&r, doc);
        assert_ok(&r);
        assert_string_equal(r.wf->nodes[0].name, words[i]);
        result_free(&r);
    }

    /* Typed plain scalars are not strings; quoted ones always are. */
    expect_refused("nodes:\n- {name: 12, url: 'http://h/'}\n", "nodes[0].name",
                   "must be a string; got a number");
    expect_refused("nodes:\n- {name: 0x1f, url: 'http://h/'}\n",
                   "nodes[0].name", "got a number");
    expect_refused("nodes:\n- {name: 1.5e3, url: 'http://h/'}\n",
                   "nodes[0].name", "got a number");
    expect_refused("nodes:\n- {name: true, url: 'http://h/'}\n",
                   "nodes[0].name", "got a boolean");
    expect_refused("nodes:\n- {name: ~, url: 'http://h/'}\n", "nodes[0].name",
                   "name is required");
    expect_refused("nodes:\n- {name: .inf, url: 'http://h/'}\n",
                   "nodes[0].name", "got a number");
    parse(&r, "nodes:\n- {name: '12', url: 'http://h/'}\n"
              "- {name: \"true\", url: 'http://h/', dependencies: ['12']}\n"
              "- {name: !!str null, url: 'http://h/'}\n");
    assert_ok(&r);
    assert_string_equal(r.wf->nodes[0].name, "12");
    assert_string_equal(r.wf->nodes[1].name, "true");
    assert_string_equal(r.wf->nodes[2].name, "null");
    result_free(&r);

    /* Integers in the forms the core schema knows. */
    parse(&r, "nodes:\n- {name: a, url: 'http://h/', retries: 0x3,"
              " timeout: 0o17}\n- {name: b, url: 'http://h/', retries: +2,"
              " timeout: 2.5e3}\n");
    assert_ok(&r);
    assert_int_equal(r.wf->nodes[0].retries, 3);
    assert_int_equal(r.wf->nodes[0].timeout_ms, 15);
    assert_int_equal(r.wf->nodes[1].retries, 2);
    assert_int_equal(r.wf->nodes[1].timeout_ms, 2500);
    result_free(&r);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_refused("{\"nodes\": [\n  {\"name\": \"a\",, \"url\": \"x\"}]}", "",
                   "could not be parsed as JSON");
    expect_refused("{\"nodes\": [\n  {\"name\": \"a\",, \"url\": \"x\"}]}", "",
                   "line 2, column");
    expect_refused("{\"nodes\": []} x\n", "", "line 1, column 15");
    expect_refused("{\"nodes\": []} x\n", "", "after the end");
    expect_refused("[1, 2\n", "", "line 2, column 1");
    expect_refused("nodes:\n  - name: a\n    url: http://h/x\n   bad: [\n", "",
                   "could not be parsed as YAML");
    expect_refused("nodes:\n  - name: a\n    url: http://h/x\n   bad: [\n", "",
                   "line 4, column 4");
    expect_refused("nodes: [a, b\n", "", "could not be parsed as YAML");
    expect_refused("nodes:\n\t- a\n", "", "line 2, column 1");

    /* A NUL byte in the text itself, not an escape. */
    {
        static const char doc[] = "nodes:\n  - name: a\0b\n";
        result r;

        parse_lim(&r, doc, sizeof(doc) - 1, NULL);
        assert_problem(&r.p, "", "NUL byte at line 2, column 12");
        result_free(&r);
    }

    /* Invalid UTF-8 is caught by libyaml's reader, with a position. */
    expect_refused("nodes:\n  - name: a\xff\n", "", "line 2, column 12");
}

static void test_yaml_refusals(void **state)
{
    (void)state;
    expect_refused("nodes: &x\n- {name: a, url: 'http://h/'}\nother: *x\n", "",
                   "anchors are not supported");
    expect_refused("a: &x [1]\nnodes: *x\n", "", "line 1, column 4");
    expect_refused("nodes:\n- {name: a, url: 'http://h/'}\n---\nnodes: []\n",
                   "", "more than one YAML document");
    expect_refused("nodes:\n- {name: a, url: 'http://h/'}\n---\nnodes: []\n",
                   "", "line 3, column 1");
    expect_refused("? [a]\n: b\n", "", "mapping key must be a plain value");
    expect_refused("? {a: 1}\n: b\n", "", "not a mapping");
    expect_refused("nodes:\n- {name: !!int 5, url: 'http://h/'}\n", "",
                   "tag 'tag:yaml.org,2002:int' is not supported");
    expect_refused("nodes: !custom [1]\n", "", "tag '!custom'");
    expect_refused("", "", "the document is empty");
    expect_refused("  \n\t\n", "", "the document is empty");
    expect_refused("# nothing but a comment\n", "", "the document is empty");
    expect_refused("---\n...\n", "", "must be an object");
}

static void test_forms(void **state)
{
    result r;

    (void)state;
    expect_refused("[1, 2]", "", "must be an object with 'nodes'");
    expect_refused("just text", "", "got a string");
    expect_refused("{\"name\": \"x\"}", "",
                   "neither a DAG (it has no 'nodes') nor an Astro");
    expect_refused("{\"nodes\": {\"a\": 1}}", "nodes",
                   "nodes must be a list of nodes; got an object");
    expect_refused("{\"nodes\": null}", "nodes", "got null");
    expect_refused("{\"nodes\": [\"a\"]}", "nodes[0]",
                   "each node must be an object; got a string");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\"}],"
                   " \"kind\": \"Astro\"}",
                   "kind", "unknown field 'kind'");

    /* A UTF-8 byte order mark before JSON is allowed. */
    parse(&r, "\xef\xbb\xbf{\"nodes\": [{\"name\": \"a\", \"url\": "
              "\"http://h/\"}]}");
    assert_ok(&r);
    result_free(&r);

    /* text may be NULL when there is nothing to read. */
    parse_lim(&r, NULL, 0, NULL);
    assert_problem(&r.p, "", "empty");
    result_free(&r);
}

/* ---- keys and fields ---- */

static void test_duplicate_keys(void **state)
{
    sbuf b = {0};

    (void)state;
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"name\": \"b\","
                   " \"url\": \"http://h/\"}]}",
                   "nodes[0].name", "the key 'name' appears more than once");
    expect_refused("nodes:\n- name: a\n  url: http://h/\n  url: http://g/\n",
                   "nodes[0].url", "the key 'url' appears more than once");
    expect_refused("{\"nodes\": [], \"nodes\": [{\"name\": \"a\"}]}", "nodes",
                   "appears more than once");

    /* A big object goes through the hash path; the path quotes odd keys. */
    sb_printf(&b, "apiVersion: astertower.kasterism.io/v1alpha1\n"
                  "kind: Astro\nmetadata:\n  name: x\n  labels:\n");
    for (int i = 0; i < 40; i++)
        sb_printf(&b, "    l%d: v\n", i);
    sb_printf(&b, "    l17: again\n    a.b/c: 1\n    a.b/c: 2\n");
    sb_printf(&b, "spec:\n  stars:\n  - {name: a, type: device}\n");
    expect_refused(b.s, "metadata.labels.l17", "'l17' appears more");
    expect_refused(b.s, "metadata.labels[\"a.b/c\"]", "'a.b/c' appears");
    free(b.s);
}

static void test_unknown_fields(void **state)
{
    result r;

    (void)state;
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"dependancies\": []}]}",
                   "nodes[0].dependancies",
                   "unknown field 'dependancies' (did you mean "
                   "'dependencies'?)");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"image\": \"x\"}]}",
                   "nodes[0].image", "unknown field 'image'");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\"}],"
                   " \"version\": 2}",
                   "version", "unknown field 'version'");
    expect_refused("apiVersion: astertower.kasterism.io/v1alpha1\n"
                   "kind: Astro\nmetadata: {name: x}\n"
                   "spec:\n  stars:\n"
                   "  - {name: a, type: docker, image: i, port: 1,"
                   " target: /, url: 'http://h/'}\n",
                   "spec.stars[0].url", "unknown field 'url'");
    expect_refused("apiVersion: astertower.kasterism.io/v1alpha1\n"
                   "kind: Astro\nmetadata: {name: x}\n"
                   "spec: {stars: [{name: a, type: device}], replicas: 2}\n",
                   "spec.replicas", "unknown field 'replicas'");

    /* status, metadata extras and imagePullSecrets are accepted. */
    parse(&r, "apiVersion: astertower.kasterism.io/v1alpha1\n"
              "kind: Astro\n"
              "metadata:\n  name: demo.example\n"
              "  labels: {app: x}\n  annotations: {note: y}\n"
              "spec:\n  imagePullSecrets: [{name: regcred}]\n  stars:\n"
              "  - {name: a, type: device, image: whatever, port: 0}\n"
              "  - {name: b, type: script, dependencies: [a]}\n"
              "status: {phase: Success, nodeNumber: 2}\n");
    assert_ok(&r);
    assert_string_equal(r.wf->name, "demo.example");
    assert_null(r.wf->namespace);
    assert_int_equal(r.wf->nodes[0].type, WF_NODE_DEVICE);
    assert_int_equal(r.wf->nodes[1].type, WF_NODE_SCRIPT);
    assert_null(r.wf->nodes[0].image);
    assert_int_equal(r.wf->nodes[0].port, 0);
    DEPS(r.wf, "b", "a");
    result_free(&r);
}

static void test_nul_and_control(void **state)
{
    (void)state;
    expect_refused("{\"nodes\": [{\"na\\u0000me\": \"a\", \"url\": "
                   "\"http://h/\"}]}",
                   "nodes[0].na", "the key 'na\\u0000me' contains a NUL");
    expect_refused("nodes:\n- {name: \"a\\0b\", url: 'http://h/'}\n",
                   "nodes[0].name", "name 'a\\u0000b' contains a NUL");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"dependencies\": [\"a\\u0000\"]}]}",
                   "nodes[0].dependencies[0]",
                   "dependency 'a\\u0000' contains a NUL");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": "
                   "\"http://h/\\u0000x\"}]}",
                   "nodes[0].url", "NUL");
    expect_refused("{\"nodes\": [{\"name\": \"a\\tb\", \"url\": "
                   "\"http://h/\"}]}",
                   "nodes[0].name", "control character (U+0009) at byte 1");
    expect_refused("{\"nodes\": [{\"name\": \"a\xc3\", \"url\": "
                   "\"http://h/\"}]}",
                   "nodes[0].name", "not valid UTF-8 (byte 1)");

    /* An escaped backslash before u0000 is not a NUL. */
    {
        result r;

        parse(&r, "{\"nodes\": [{\"name\": \"a\\\\u0000\", \"url\": "
                  "\"http://h/\"}]}");
        assert_ok(&r);
        assert_string_equal(r.wf->nodes[0].name, "a\\u0000");
        result_free(&r);
    }
}

/* ---- node fields ---- */

static void test_names(void **state)
{
    char doc[2048];
    char name[300];
    result r;

    (void)state;

    /* Any printable text, UTF-8 included, up to 253 bytes. */
    memset(name, 'x', 253);
    name[253] = '\0';
    snprintf(doc, sizeof(doc),
             "{\"nodes\": [{\"name\": \"%s\", \"url\": \"http://h/\"},"
             " {\"name\": \"caf\xc3\xa9 & co / step 2\", \"url\": "
             "\"http://h/\", \"dependencies\": [\"%s\"]}]}",
             name, name);
    parse(&r, doc);
    assert_ok(&r);
    assert_int_equal(r.wf->nodes[0].name_len, 253);
    assert_string_equal(r.wf->nodes[1].name, "caf\xc3\xa9 & co / step 2");
    result_free(&r);

    memset(name, 'x', 254);
    name[254] = '\0';
    snprintf(doc, sizeof(doc),
             "{\"nodes\": [{\"name\": \"%s\", \"url\": \"http://h/\"}]}", name);
    expect_refused(doc, "nodes[0].name",
                   "name is 254 bytes long; the limit is 253 "
                   "(max_name_bytes)");
    expect_refused("{\"nodes\": [{\"name\": \"\", \"url\": \"http://h/\"}]}",
                   "nodes[0].name", "name is empty");
    expect_refused("{\"nodes\": [{\"url\": \"http://h/\"}]}", "nodes[0].name",
                   "name is required");
    expect_refused("{\"nodes\": [{\"name\": [\"a\"], \"url\": "
                   "\"http://h/\"}]}",
                   "nodes[0].name", "must be a string; got a list");
}

static void test_dependencies(void **state)
{
    result r;

    (void)state;
    parse(&r, "{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
              " \"dependencies\": null}]}");
    assert_ok(&r);
    assert_int_equal(r.wf->nodes[0].n_deps, 0);
    assert_null(r.wf->nodes[0].deps);
    result_free(&r);

    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\"},"
                   " {\"name\": \"b\", \"url\": \"http://h/\","
                   " \"dependencies\": [\"a\", \"a\"]}]}",
                   "nodes[1].dependencies[1]",
                   "node 'b' lists 'a' twice (also at dependencies[0])");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"dependencies\": \"b\"}]}",
                   "nodes[0].dependencies",
                   "must be a list of names; got a string");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"dependencies\": [7]}]}",
                   "nodes[0].dependencies[0]", "got a number");

    /* Two cycles' worth of trouble: both nodes report, plus the cycle. */
    parse(&r, "nodes:\n- {name: a, url: 'http://h/', dependencies: [b]}\n"
              "- {name: b, url: 'http://h/', dependencies: [a, zz]}\n"
              "- {name: c, url: 'ftp://h/'}\n");
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.p.n, 3);
    assert_problem(&r.p, "nodes[1].dependencies[1]", "'zz'");
    assert_problem(&r.p, "nodes[2].url", "'ftp'");
    assert_problem(&r.p, "nodes[0].dependencies[0]", "a -> b -> a");
    result_free(&r);

    /* The cycle starts at its first declared node, whatever its entry. */
    expect_refused("nodes:\n- {name: x, url: 'http://h/'}\n"
                   "- {name: q, url: 'http://h/', dependencies: [x, r]}\n"
                   "- {name: p, url: 'http://h/', dependencies: [q]}\n"
                   "- {name: r, url: 'http://h/', dependencies: [p]}\n"
                   "- {name: z, url: 'http://h/', dependencies: [r]}\n",
                   "nodes[1].dependencies[1]", "cycle: q -> p -> r -> q");
}

static void test_order_is_stable(void **state)
{
    result r;

    (void)state;

    /* Ready first: y (1) and w (3); y frees z (2), z frees x (0). Among
     * ready nodes the one declared first goes first. */
    parse(&r, "nodes:\n- {name: x, url: 'http://h/', dependencies: [z]}\n"
              "- {name: y, url: 'http://h/'}\n"
              "- {name: z, url: 'http://h/', dependencies: [y]}\n"
              "- {name: w, url: 'http://h/'}\n");
    assert_ok(&r);
    assert_int_equal(r.wf->order[0], 1);
    assert_int_equal(r.wf->order[1], 2);
    assert_int_equal(r.wf->order[2], 0);
    assert_int_equal(r.wf->order[3], 3);
    assert_int_equal(r.wf->n_exits, 2);
    assert_int_equal(r.wf->exits[0], 0);
    assert_int_equal(r.wf->exits[1], 3);
    assert_consistent(r.wf);
    result_free(&r);
}

static void test_actions(void **state)
{
    static const char *const spell[] = {"get", "Post", "PUT", "pAtCh",
                                        "delete"};
    wf_action a;
    result r;
    char doc[256];

    (void)state;
    for (int i = 0; i < 5; i++) {
        snprintf(doc, sizeof(doc),
                 "{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                 " \"action\": \"%s\"}]}",
                 spell[i]);
        parse(&r, doc);
        assert_ok(&r);
        assert_int_equal(r.wf->nodes[0].action, (wf_action)i);
        assert_int_equal(r.wf->nodes[0].action_given, 1);
        result_free(&r);
    }
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"action\": 1}]}",
                   "nodes[0].action", "must be a string");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"action\": \"\"}]}",
                   "nodes[0].action", "action '' is not one of");

    assert_string_equal(wf_action_name(WF_ACTION_PATCH), "PATCH");
    assert_string_equal(wf_action_name(WF_ACTION_DELETE), "DELETE");
    assert_int_equal(wf_action_parse("delete", &a), 0);
    assert_int_equal(a, WF_ACTION_DELETE);
    assert_int_equal(wf_action_parse("GETX", &a), -1);
}

static void test_urls(void **state)
{
    static const char *const good[] = {"http://h",
                                       "https://h:443/x?y=1#z",
                                       "HTTP://H/",
                                       "http://[::1]:8080/",
                                       "http://user:pw@h:1/",
                                       "https://10.0.0.1:65535"};
    static const struct {
        const char *url;
        const char *says;
    } bad[] = {
        {"file:///etc/passwd", "scheme 'file' is refused"},
        {"gopher://h/", "scheme 'gopher' is refused"},
        {"ftp://h/", "scheme 'ftp' is refused"},
        {"localhost:8000/x", "is not absolute"},
        {"/just/a/path", "is not absolute"},
        {"h", "is not absolute"},
        {"http:/h/x", "has no host"},
        {"http:///x", "has no host"},
        {"http://u@/x", "has no host"},
        {"http://:80/x", "has no host"},
        {"http://h:0/", "port '0' is not a number from 1 to 65535"},
        {"http://h:65536/", "port '65536'"},
        {"http://h:/", "port ''"},
        {"http://h:8x/", "port '8x'"},
        {"http://[::1/", "unclosed '['"},
        {"http://[::1]x/", "text after its host"},
        {"http://h/a b", "space or control character at byte 10"},
        {"", "url is empty"},

        /* Our own checks let these through; a transfer would not. */
        {"http://[zz]/", "url 'http://[zz]/' is refused by libcurl: Bad IPv6"},
        {"http://a@b@h/", "'http://a@b@h/' is refused by libcurl: Bad host"},
        {"http://h^/", "refused by libcurl: Bad hostname"},
        {"http://\xc3\xbc.invalid/",
         "url host '\xc3\xbc.invalid' is not ASCII"},
        {"https://\xe4\xbe\x8b\xe5\xad\x90.com:8443/", "is not ASCII"},
    };
    char doc[256];
    result r;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(doc, sizeof(doc),
                 "{\"nodes\": [{\"name\": \"a\", \"url\": \"%s\"}]}", good[i]);
        parse(&r, doc);
        assert_ok(&r);
        assert_string_equal(r.wf->nodes[0].url, good[i]);
        result_free(&r);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(doc, sizeof(doc),
                 "{\"nodes\": [{\"name\": \"a\", \"url\": \"%s\"}]}",
                 bad[i].url);
        expect_refused(doc, "nodes[0].url", bad[i].says);
    }
    expect_refused("{\"nodes\": [{\"name\": \"a\"}]}", "nodes[0].url",
                   "url is required");

    /* One problem per url, at its own node, with libcurl's reason. */
    parse(&r, "nodes:\n- {name: a, url: 'http://[zz]/'}\n"
              "- {name: b, url: 'http://h/'}\n"
              "- {name: c, url: 'http://a@b@h/', dependencies: [b]}\n");
    assert_int_equal(r.p.n, 2);
    assert_problem(&r.p, "nodes[0].url", "Bad IPv6 address");
    assert_problem(&r.p, "nodes[2].url", "Bad hostname");
    result_free(&r);
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": 80}]}",
                   "nodes[0].url", "must be a string; got a number");
}

static void test_timeouts_and_retries(void **state)
{
    static const struct {
        const char *value;
        long ms;
    } good[] = {
        {"\"250ms\"", 250},   {"\"5s\"", 5000},
        {"\"1m30s\"", 90000}, {"\"1.5s\"", 1500},
        {"\"1h\"", 3600000},  {"\"0.5m\"", 30000},
        {"1500", 1500},       {"10", 10},
        {"3600000", 3600000}, {"\"1s500ms\"", 1500},
        {"1e3", 1000},        {"null", 30000},
    };
    static const struct {
        const char *value;
        const char *says;
    } bad[] = {
        {"\"5\"", "has no unit"},
        {"\"\"", "is empty"},
        {"\"-1s\"", "is not a duration"},
        {"\"1d\"", "unknown unit"},
        {"\"5 s\"", "unknown unit"},
        {"\"0s\"", "under the shortest accepted, 10 ms"},
        {"\"9ms\"", "under the shortest accepted, 10 ms"},
        {"\"0.0001s\"", "finer than a millisecond"},
        {"\"2h\"", "over the limit of 3600000 ms (max_timeout_ms)"},
        {"\"99999999999999999999h\"", "over the limit"},
        {"0", "timeout 0 is out of range 10-3600000"},
        {"1", "timeout 1 is out of range 10-3600000"},
        {"-5", "out of range"},
        {"1.5", "must be a whole number; got 1.5"},
        {"3600001", "over the limit of 3600000 (max_timeout_ms)"},
        {"true", "got a boolean"},
    };
    char doc[256];
    result r;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(doc, sizeof(doc),
                 "{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                 " \"timeout\": %s}]}",
                 good[i].value);
        parse(&r, doc);
        assert_ok(&r);
        assert_int_equal(r.wf->nodes[0].timeout_ms, good[i].ms);
        result_free(&r);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(doc, sizeof(doc),
                 "{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                 " \"timeout\": %s}]}",
                 bad[i].value);
        expect_refused(doc, "nodes[0].timeout", bad[i].says);
    }

    parse(&r, "{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
              " \"retries\": 10}]}");
    assert_ok(&r);
    assert_int_equal(r.wf->nodes[0].retries, 10);
    result_free(&r);
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"retries\": 11}]}",
                   "nodes[0].retries",
                   "retries 11 is over the limit of 10 (max_retries)");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"retries\": -1}]}",
                   "nodes[0].retries", "out of range 0-10");
    expect_refused("{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/\","
                   " \"retries\": \"2\"}]}",
                   "nodes[0].retries", "got a string");
}

/* ---- Astro ---- */

#define ASTRO_HEAD                                                             \
    "apiVersion: astertower.kasterism.io/v1alpha1\nkind: Astro\n"              \
    "metadata: {name: demo}\n"

static void test_astro_rules(void **state)
{
    char name[80];
    char doc[512];

    (void)state;
    expect_refused("apiVersion: v1\nkind: Astro\nmetadata: {name: x}\n"
                   "spec: {stars: [{name: a, type: device}]}\n",
                   "apiVersion",
                   "apiVersion must be 'astertower.kasterism.io/v1alpha1';"
                   " got 'v1'");
    expect_refused("apiVersion: astertower.kasterism.io/v1alpha1\n"
                   "kind: Pod\nmetadata: {name: x}\n"
                   "spec: {stars: [{name: a, type: device}]}\n",
                   "kind", "kind must be 'Astro'; got 'Pod'");
    expect_refused("apiVersion: astertower.kasterism.io/v1alpha1\n"
                   "metadata: {name: x}\n"
                   "spec: {stars: [{name: a, type: device}]}\n",
                   "kind", "kind is required");
    expect_refused("apiVersion: astertower.kasterism.io/v1alpha1\n"
                   "kind: Astro\nspec: {stars: [{name: a, type: device}]}\n",
                   "metadata", "metadata must be an object");
    expect_refused("apiVersion: astertower.kasterism.io/v1alpha1\n"
                   "kind: Astro\nmetadata: {labels: {}}\n"
                   "spec: {stars: [{name: a, type: device}]}\n",
                   "metadata.name", "metadata.name is required");
    expect_refused("apiVersion: astertower.kasterism.io/v1alpha1\n"
                   "kind: Astro\nmetadata: {name: -x.y}\n"
                   "spec: {stars: [{name: a, type: device}]}\n",
                   "metadata.name", "not a DNS-1123 subdomain");
    expect_refused("apiVersion: astertower.kasterism.io/v1alpha1\n"
                   "kind: Astro\nmetadata: {name: x, namespace: Prod}\n"
                   "spec: {stars: [{name: a, type: device}]}\n",
                   "metadata.namespace", "'Prod' is not a DNS-1123 label");
    expect_refused(ASTRO_HEAD "spec: {}\n", "spec.stars",
                   "must be a list of stars; got nothing");
    expect_refused(ASTRO_HEAD "spec: {stars: []}\n", "spec.stars",
                   "there are no stars");
    expect_refused(ASTRO_HEAD, "spec", "spec must be an object");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a}]}\n",
                   "spec.stars[0].type",
                   "type is required: one of docker, device, script");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: Docker}]}\n",
                   "spec.stars[0].type", "type 'Docker' is not one of");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: docker}]}\n",
                   "spec.stars[0].image",
                   "image is required for a docker star");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: docker}]}\n",
                   "spec.stars[0].port", "port is required");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: docker}]}\n",
                   "spec.stars[0].target", "target is required");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: docker,"
                              " image: i, port: 0, target: /}]}\n",
                   "spec.stars[0].port", "port 0 is out of range 1-65535");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: docker,"
                              " image: i, port: '80', target: /}]}\n",
                   "spec.stars[0].port", "got a string");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: docker,"
                              " image: 'a b', port: 80, target: /}]}\n",
                   "spec.stars[0].image", "white space");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: docker,"
                              " image: i, port: 80, target: /,"
                              " action: FETCH}]}\n",
                   "spec.stars[0].action", "'FETCH'");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: device},"
                              " {name: b, type: device, dependencies:"
                              " [c]}]}\n",
                   "spec.stars[1].dependencies[0]",
                   "star 'b' depends on 'c', which is not a star");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a, type: device},"
                              " {name: a, type: device}]}\n",
                   "spec.stars[1].name",
                   "'a' is already used by spec.stars[0]");

    /* Star names are DNS-1123 labels: 63 characters at most. */
    memset(name, 'a', 64);
    name[64] = '\0';
    snprintf(doc, sizeof(doc),
             ASTRO_HEAD "spec: {stars: [{name: %s, type: device}]}\n", name);
    expect_refused(doc, "spec.stars[0].name", "not a DNS-1123 label");
    name[63] = '\0';
    snprintf(doc, sizeof(doc),
             ASTRO_HEAD "spec: {stars: [{name: %s, type: device}]}\n", name);
    {
        result r;

        parse(&r, doc);
        assert_ok(&r);
        result_free(&r);
    }
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a-, type: device}]}\n",
                   "spec.stars[0].name", "not a DNS-1123 label");
    expect_refused(ASTRO_HEAD "spec: {stars: [{name: a.b, type: device}]}\n",
                   "spec.stars[0].name", "not a DNS-1123 label");
}

/* The Astro of one docker star whose target is given as a JSON string
 * (the text between the quotes). */
static void target_astro(sbuf *b, const char *target)
{
    b->len = 0;
    sb_printf(b,
              "{\"apiVersion\": \"astertower.kasterism.io/v1alpha1\","
              " \"kind\": \"Astro\", \"metadata\": {\"name\": \"t\"},"
              " \"spec\": {\"stars\": [{\"name\": \"a\", \"type\":"
              " \"docker\", \"image\": \"i\", \"port\": 80,"
              " \"target\": \"%s\"}]}}",
              target);
}

static void expect_target(const char *target, const char *says)
{
    sbuf b = {0};
    result r;

    target_astro(&b, target);
    parse_lim(&r, b.s, b.len, NULL);
    if (says == NULL) {
        assert_ok(&r);
    } else {
        assert_int_equal(r.p.n, 1);
        assert_problem(&r.p, "spec.stars[0].target", says);
    }
    result_free(&r);
    free(b.s);
}

static void test_targets(void **state)
{
    static const char *const good[] = {
        "/",       "/test",          "/a/b?x=1&y=2", "/x%20y", "/caf\xc3\xa9",
        "/a#frag", "//double/slash", "/a@b:c"};
    static const struct {
        const char *target;
        const char *says;
    } bad[] = {
        {"test", "target 'test' must start with '/'"},
        {"http://h/x", "must start with '/'"},
        {"/test?x=a b", "target '/test?x=a b' contains a space (U+0020) at "
                        "byte 9; write it as %20"},
        {"/a\\tb", "target '/a\\u0009b' contains a control character "
                   "(U+0009) at byte 2"},
        {"/a\\u007f", "control character (U+007F) at byte 2"},
        {"/a\\r\\nHost: evil", "(U+000D) at byte 2"},
        {"/a\\u0085", "control character (U+0085) at byte 2"},
        {"/a\xff", "not valid UTF-8 (byte 2)"},
    };
    wf_limits lim;
    sbuf b = {0};
    sbuf t = {0};
    result r;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        expect_target(good[i], NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_target(bad[i].target, bad[i].says);

    /* The limit leaves room for http://host:port: 8192 - 64. */
    sb_printf(&t, "/");
    sb_fill(&t, 'x', 8127);
    expect_target(t.s, NULL);
    sb_printf(&t, "x");
    expect_target(t.s, "is 8129 bytes long; the limit is 8128 (max_url_bytes "
                       "8192 less 64 for the http://host:port before it)");

    /* Past libcurl's own limit, with ours raised: libcurl's reason. */
    sb_fill(&t, 'x', 8000000);
    target_astro(&b, t.s);
    wf_limits_default(&lim);
    lim.max_url_bytes = 16u * 1024 * 1024;
    parse_lim(&r, b.s, b.len, &lim);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "spec.stars[0].target",
                   "does not make a URL libcurl accepts after "
                   "http://host:port: Malformed input");
    result_free(&r);

    /* A target is checked only for docker stars, as before. */
    parse(&r, ASTRO_HEAD "spec: {stars: [{name: a, type: device,"
                         " target: 'a b'}]}\n");
    assert_ok(&r);
    result_free(&r);
    free(b.s);
    free(t.s);
}

/* ---- limits ---- */

static void test_limits(void **state)
{
    static const char doc[] =
        "{\"nodes\": ["
        "{\"name\": \"abcdefghij\", \"url\": \"http://h/\", \"timeout\": 900,"
        " \"retries\": 4},"
        "{\"name\": \"b\", \"url\": \"http://h/\", \"dependencies\":"
        " [\"abcdefghij\", \"c\"]},"
        "{\"name\": \"c\", \"url\": \"http://h/\"}]}";
    wf_limits lim;
    result r;

    (void)state;
    wf_limits_default(&lim);
    assert_int_equal(lim.max_doc_bytes, 16 * 1024 * 1024);
    assert_int_equal(lim.max_nodes, 20000);
    assert_int_equal(lim.max_name_bytes, 253);
    assert_int_equal(lim.max_deps, 1000);
    assert_int_equal(lim.max_timeout_ms, 3600000);
    assert_int_equal(lim.max_retries, 10);
    assert_int_equal(lim.max_url_bytes, 8192);

    parse_lim(&r, doc, strlen(doc), &lim);
    assert_ok(&r);
    result_free(&r);

    lim.max_doc_bytes = 100;
    parse_lim(&r, doc, strlen(doc), &lim);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "", "the limit is 100 (max_doc_bytes)");
    result_free(&r);

    wf_limits_default(&lim);
    lim.max_nodes = 2;
    parse_lim(&r, doc, strlen(doc), &lim);
    assert_problem(&r.p, "nodes",
                   "there are 3 nodes; the limit is 2 (max_nodes)");
    result_free(&r);

    wf_limits_default(&lim);
    lim.max_name_bytes = 9;
    parse_lim(&r, doc, strlen(doc), &lim);
    assert_problem(&r.p, "nodes[0].name",
                   "name is 10 bytes long; the limit is 9 (max_name_bytes)");
    result_free(&r);

    wf_limits_default(&lim);
    lim.max_deps = 1;
    parse_lim(&r, doc, strlen(doc), &lim);
    assert_problem(&r.p, "nodes[1].dependencies",
                   "there are 2 dependencies; the limit is 1 (max_deps)");
    result_free(&r);

    wf_limits_default(&lim);
    lim.max_timeout_ms = 899;
    parse_lim(&r, doc, strlen(doc), &lim);
    assert_problem(&r.p, "nodes[0].timeout",
                   "timeout 900 is over the limit of 899 (max_timeout_ms)");
    result_free(&r);

    wf_limits_default(&lim);
    lim.max_retries = 3;
    parse_lim(&r, doc, strlen(doc), &lim);
    assert_problem(&r.p, "nodes[0].retries",
                   "retries 4 is over the limit of 3 (max_retries)");
    result_free(&r);

    wf_limits_default(&lim);
    lim.max_url_bytes = 8;
    parse_lim(&r, doc, strlen(doc), &lim);
    assert_int_equal(r.p.n, 3);
    assert_problem(&r.p, "nodes[2].url",
                   "url 'http://h/' is 9 bytes long; the limit is 8 "
                   "(max_url_bytes)");
    result_free(&r);
}

/* A DAG of one node whose url is http://h/ and n more bytes of 'a'. */
static void long_url_dag(sbuf *b, size_t n)
{
    b->len = 0;
    sb_printf(b, "{\"nodes\": [{\"name\": \"a\", \"url\": \"http://h/");
    sb_fill(b, 'a', n);
    sb_printf(b, "\"}]}");
}

static void test_url_length(void **state)
{
    const size_t ten_mb = 10u * 1024 * 1024;
    wf_limits lim;
    sbuf b = {0};
    result r;

    (void)state;

    /* The default limit, exactly and one past. */
    long_url_dag(&b, 8192 - 9);
    parse_lim(&r, b.s, b.len, NULL);
    assert_ok(&r);
    result_free(&r);
    long_url_dag(&b, 8192 - 8);
    parse_lim(&r, b.s, b.len, NULL);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[0].url",
                   "is 8193 bytes long; the limit is 8192 (max_url_bytes)");
    result_free(&r);

    /* 10 MB: refused, and the message quotes only the start. */
    long_url_dag(&b, ten_mb);
    parse_lim(&r, b.s, b.len, NULL);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[0].url", "url 'http://h/aaaa");
    assert_problem(&r.p, "nodes[0].url", "aaa...' is 10485769 bytes long");
    assert_true(strlen(r.p.items[0].message) < 200);
    result_free(&r);

    /* Past libcurl's own limit of 8,000,000 bytes, with ours raised:
     * libcurl's reason is given. */
    wf_limits_default(&lim);
    lim.max_url_bytes = ten_mb * 2;
    long_url_dag(&b, ten_mb);
    parse_lim(&r, b.s, b.len, &lim);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[0].url", "refused by libcurl: Malformed");
    assert_true(strlen(r.p.items[0].message) < 200);
    result_free(&r);
    free(b.s);
}

/* A generated file with a broken value in every node gets a bounded list
 * of problems, closed by a count of the rest. */
static void test_problem_cap(void **state)
{
    sbuf b = {0};
    result r;

    (void)state;
    sb_printf(&b, "{\"nodes\": [");
    for (int i = 0; i < 2500; i++)
        sb_printf(&b, "%s{\"name\": \"n%d\", \"url\": \"ftp://h/\"}",
                  i ? "," : "", i);
    sb_printf(&b, "]}");
    parse_lim(&r, b.s, b.len, NULL);
    assert_int_equal(r.p.n, 1001);
    assert_problem(&r.p, "nodes[999].url", "'ftp'");
    assert_problem(&r.p, "", "1500 more problems were found");
    result_free(&r);
    free(b.s);
}

/* ---- size and shape ---- */

static void test_big_chain(void **state)
{
    const int n = 10000;
    sbuf b = {0};
    result r;

    (void)state;

    /* Declared last to first, so the order must reverse the document. */
    sb_printf(&b, "{\"nodes\": [");
    for (int i = n - 1; i >= 0; i--) {
        sb_printf(&b, "%s{\"name\": \"n%d\", \"url\": \"http://h/%d\"",
                  i == n - 1 ? "" : ",", i, i);
        if (i > 0)
            sb_printf(&b, ", \"dependencies\": [\"n%d\"]", i - 1);
        sb_printf(&b, "}");
    }
    sb_printf(&b, "]}");
    parse_lim(&r, b.s, b.len, NULL);
    assert_ok(&r);
    assert_int_equal(r.wf->n_nodes, n);
    for (int k = 0; k < n; k++)
        assert_int_equal(r.wf->order[k], n - 1 - k);
    assert_int_equal(r.wf->n_exits, 1);
    assert_int_equal(r.wf->exits[0], 0);
    assert_int_equal(wf_find(r.wf, "n5000"), n - 1 - 5000);
    assert_consistent(r.wf);
    result_free(&r);

    free(b.s);
}

static void test_big_cycle(void **state)
{
    const int n = 10000;
    sbuf b = {0};
    result r;

    (void)state;
    sb_printf(&b, "nodes:\n");
    for (int i = 0; i < n; i++)
        sb_printf(&b, "- {name: c%d, url: 'http://h/', dependencies: [c%d]}\n",
                  i, (i + 1) % n);
    parse_lim(&r, b.s, b.len, NULL);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "nodes[0].dependencies[0]",
                   "cycle: c0 -> c9999 -> c9998 -> ");
    assert_problem(&r.p, "nodes[0].dependencies[0]",
                   "(10000 nodes in all) -> c0");
    result_free(&r);
    free(b.s);
}

static void test_big_wide(void **state)
{
    const int n = 10000;
    sbuf b = {0};
    result r;

    (void)state;
    sb_printf(&b, "nodes:\n- name: root\n  url: http://h/\n");
    for (int i = 0; i < n - 2; i++)
        sb_printf(&b, "- {name: w%d, url: 'http://h/', dependencies: [root]}\n",
                  i);
    sb_printf(&b, "- name: join\n  url: http://h/\n  dependencies:\n");
    for (int i = 0; i < 1000; i++)
        sb_printf(&b, "  - w%d\n", i * 7);
    parse_lim(&r, b.s, b.len, NULL);
    assert_ok(&r);
    assert_int_equal(r.wf->n_nodes, n);
    assert_int_equal(r.wf->nodes[0].n_succs, n - 2);
    assert_int_equal(r.wf->nodes[n - 1].n_deps, 1000);
    assert_int_equal(r.wf->nodes[n - 1].deps[999], 1 + 999 * 7);
    assert_int_equal(r.wf->n_exits, n - 1 - 1000);
    assert_int_equal(r.wf->order[0], 0);
    assert_int_equal(r.wf->order[n - 1], n - 1);
    assert_int_equal(r.wf->nodes[n - 1].action, WF_ACTION_POST);
    assert_consistent(r.wf);
    result_free(&r);
    free(b.s);
}

/* Opens n levels: "[" each, or "{"a":" each when obj; closes them when
 * close, around a 1 in the innermost object. */
static void sb_nest(sbuf *b, int n, int obj, int close)
{
    for (int i = 0; i < n; i++)
        sb_printf(b, "%s", obj ? "{\"a\":" : "[");
    if (obj)
        sb_printf(b, "1");
    for (int i = 0; close && i < n; i++)
        sb_printf(b, "%s", obj ? "}" : "]");
}

/* Parses b and expects exactly one problem: too deep at line 1, col. */
static void expect_too_deep(const sbuf *b, const char *what, size_t col)
{
    char want[160];
    result r;

    snprintf(want, sizeof(want),
             "the document nests deeper than 64 levels: the %s at line 1, "
             "column %zu is level 65",
             what, col);
    parse_lim(&r, b->s, b->len, NULL);
    if (r.p.n != 1)
        dump_fail(&r.p, "not exactly one problem", __FILE__, __LINE__);
    assert_problem(&r.p, "", want);
    result_free(&r);
}

static void test_deep_nesting(void **state)
{
    static const int depths[] = {65, 500, 1000, 100000};
    sbuf b = {0};
    result r;

    (void)state;

    /*
     * JSON lists and objects, closed and left open, from just past the
     * limit to far past cJSON's own limit of 1000: always one problem
     * naming the depth and where the 65th level opens.
     */
    for (size_t k = 0; k < sizeof(depths) / sizeof(depths[0]); k++) {
        for (int obj = 0; obj <= 1; obj++) {
            for (int close = 0; close <= 1; close++) {
                b.len = 0;
                sb_nest(&b, depths[k], obj, close);
                expect_too_deep(&b, obj ? "object" : "list",
                                obj ? 1 + 64 * 5 : 65);
            }
        }
    }

    /* 64 levels are allowed: what is wrong then is the shape. */
    b.len = 0;
    sb_nest(&b, 64, 0, 1);
    parse_lim(&r, b.s, b.len, NULL);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "", "must be an object");
    result_free(&r);

    /* Inside a DAG: the root is level 1, nodes level 2, so level 65 is
     * the 64th '[', at column 10 + 63. */
    b.len = 0;
    sb_printf(&b, "{\"nodes\":");
    sb_nest(&b, 499, 0, 1);
    sb_printf(&b, "}");
    expect_too_deep(&b, "list", 73);

    /* On a later line, and past text that is JSON but not a DAG. */
    b.len = 0;
    sb_printf(&b, "{\"nodes\": [{\"name\": \"a\", \"url\": "
                  "\"http://h/\"}],\n \"x\": ");
    sb_nest(&b, 500, 1, 1);
    sb_printf(&b, "}");
    parse_lim(&r, b.s, b.len, NULL);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "",
                   "nests deeper than 64 levels: the object at "
                   "line 2, column 322 is level 65");
    result_free(&r);

    /* Brackets after the end of the value are just text after it. */
    b.len = 0;
    sb_printf(&b, "{\"nodes\": []} ");
    sb_nest(&b, 70, 0, 1);
    parse_lim(&r, b.s, b.len, NULL);
    assert_int_equal(r.p.n, 1);
    assert_problem(&r.p, "",
                   "unexpected text after the end of the JSON "
                   "value: '[[[[");
    result_free(&r);

    /* Brackets in strings do not count, escaped quotes included. */
    b.len = 0;
    sb_printf(&b, "{\"nodes\": [{\"name\": \"a\\\"");
    for (int i = 0; i < 100; i++)
        sb_printf(&b, "[{");
    sb_printf(&b, "\", \"url\": \"http://h/\"}]}");
    parse_lim(&r, b.s, b.len, NULL);
    assert_ok(&r);
    result_free(&r);

    /* YAML in flow style that is not JSON: the depth, not the JSON
     * error, is what is reported. */
    b.len = 0;
    sb_printf(&b, "{nodes: ");
    sb_nest(&b, 100, 0, 1);
    sb_printf(&b, "}");
    expect_too_deep(&b, "list", 72);

    /* YAML in flow and block style. */
    b.len = 0;
    sb_printf(&b, "x: ");
    for (int i = 0; i < 100000; i++)
        sb_printf(&b, "[");
    parse_lim(&r, b.s, b.len, NULL);
    assert_problem(&r.p, "", "nests deeper than 64 levels");
    result_free(&r);

    b.len = 0;
    for (int i = 0; i < 200; i++)
        sb_printf(&b, "%*sk:\n", i, "");
    parse_lim(&r, b.s, b.len, NULL);
    assert_problem(&r.p, "",
                   "nests deeper than 64 levels: the object at "
                   "line 65, column 65 is level 65");
    result_free(&r);
    free(b.s);
}

/* ---- the rest of the API ---- */

static void test_problems_api(void **state)
{
    wf_problems p;
    char *s;

    (void)state;
    wf_problems_init(&p);
    s = wf_problems_format(&p);
    assert_string_equal(s, "");
    free(s);
    for (int i = 0; i < 20; i++)
        assert_int_equal(
            wf_problems_add(&p, i % 2 ? "" : "nodes[1].url", "problem %d", i),
            0);
    assert_int_equal(p.n, 20);
    s = wf_problems_format(&p);
    assert_non_null(strstr(s, "nodes[1].url: problem 0\nproblem 1\n"));
    assert_int_equal(s[strlen(s) - 1], '\n');
    free(s);
    wf_problems_free(&p);
    assert_int_equal(p.n, 0);
    assert_null(p.items);
}

static void test_parse_file_errors(void **state)
{
    wf_workflow *wf = NULL;
    wf_problems p;
    wf_limits lim;
    char path[1024];

    (void)state;
    wf_problems_init(&p);
    assert_int_equal(wf_parse_file("/nonexistent/astro.yaml", NULL, &wf, &p),
                     -1);
    assert_null(wf);
    assert_problem(&p, "", "cannot open '/nonexistent/astro.yaml'");
    assert_problem(&p, "", "No such file");
    wf_problems_free(&p);

    assert_int_equal(wf_parse_file(ASTER_CASES, NULL, &wf, &p), -1);
    assert_problem(&p, "", "cannot read");
    wf_problems_free(&p);

    wf_limits_default(&lim);
    lim.max_doc_bytes = 10;
    snprintf(path, sizeof(path), "%s/dag-diamond.json", ASTER_CASES);
    assert_int_equal(wf_parse_file(path, &lim, &wf, &p), -1);
    assert_problem(&p, "", "over the limit of 10 bytes (max_doc_bytes)");
    wf_problems_free(&p);
    wf_free(NULL);
}

static void *parse_many(void *arg)
{
    const char *doc = arg;

    for (int i = 0; i < 200; i++) {
        wf_workflow *wf = NULL;
        wf_problems p;

        wf_problems_init(&p);
        if (wf_parse(doc, strlen(doc), NULL, &wf, &p) != 0 ||
            wf->n_nodes != 4 || wf->order[3] != 3)
            return (void *)1;
        wf_free(wf);
        wf_problems_free(&p);
    }
    return NULL;
}

/* Parses from several threads at once; run under a sanitizer this is
 * where shared state would show. */
static void test_threads(void **state)
{
    pthread_t t[4];

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            pthread_create(&t[i], NULL, parse_many,
                           (void *)(i % 2 ? diamond_json : diamond_yaml)),
            0);
    for (int i = 0; i < 4; i++) {
        void *rc;

        assert_int_equal(pthread_join(t[i], &rc), 0);
        assert_null(rc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_dag_diamond),
        cmocka_unit_test(test_case_dag_six),
        cmocka_unit_test(test_case_dag_ten),
        cmocka_unit_test(test_case_astro_diamond),
        cmocka_unit_test(test_case_cycle),
        cmocka_unit_test(test_case_self_dependency),
        cmocka_unit_test(test_case_missing_dependency),
        cmocka_unit_test(test_case_duplicate_name),
        cmocka_unit_test(test_case_empty),
        cmocka_unit_test(test_case_file_scheme),
        cmocka_unit_test(test_case_bad_action),
        cmocka_unit_test(test_case_astro_bad_names),
        cmocka_unit_test(test_case_not_json),
        cmocka_unit_test(test_case_nul_in_name),
        cmocka_unit_test(test_json_and_yaml_agree),
        cmocka_unit_test(test_yaml_core_schema),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_yaml_refusals),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_nul_and_control),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_dependencies),
        cmocka_unit_test(test_order_is_stable),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_timeouts_and_retries),
        cmocka_unit_test(test_astro_rules),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_url_length),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_problem_cap),
        cmocka_unit_test(test_big_chain),
        cmocka_unit_test(test_big_cycle),
        cmocka_unit_test(test_big_wide),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_problems_api),
        cmocka_unit_test(test_parse_file_errors),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
