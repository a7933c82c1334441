/*
 * engine: runs workflows on one event loop.
 *
 * Every node of every run in flight is an HTTP transfer on one libcurl
 * multi handle driven by epoll; there is no thread per node and none per
 * run. The loop belongs to the thread that calls engine_loop() or
 * engine_step(); engine_submit() and engine_stop() may be called from any
 * thread and wake it.
 *
 * A run follows semantics.md section 3: entry nodes get the run input;
 * a node starts once all its predecessors succeeded, with their outputs
 * merged (see jmerge.h); success is a 2xx answer within the node's timeout
 * and the body limit; failures are retried with exponential backoff when
 * the node asks for retries, then propagated: every node downstream of a
 * failed one is skipped and names it. The run ends when every node is
 * settled, and its result document is handed to the caller.
 *
 * Result document (JSON object):
 *   {"id": "...", "status": {"health": bool}, "data": <merged exit outputs>,
 *    "durationMs": n, "failed": ["C"], "error": "first failure, in words",
 *    "nodes": {"A": {"state": "succeeded"|"failed"|"skipped",
 *                    "httpStatus": 200, "attempts": 1, "durationMs": 0.4,
 *                    "error": "..."}, ...}}
 */
#ifndef ASTER_ENGINE_H
#define ASTER_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "wf.h"

typedef struct engine engine;

typedef struct engine_config {
    size_t max_body_bytes; /* per node answer; over it the node fails */
    size_t max_runs;       /* runs in flight; more are refused */
    long backoff_ms;       /* delay before the first retry; doubles */
    long backoff_max_ms;   /* cap on the retry delay */
    long max_host_conns;   /* open connections per host; 0 = no cap */
    long max_idle_conns;   /* idle connections kept for reuse */
    size_t max_idle_calls; /* idle easy handles kept, set up per node */
} engine_config;

/* 8 MiB bodies, 100,000 runs, 100 ms backoff doubling up to 10 s,
 * 1,024 idle connections and 256 idle easy handles kept. */
void engine_config_default(engine_config *cfg);

/* Creates an engine; NULL with a reason in err on failure. The caller
 * must have called curl_global_init() once. */
engine *engine_new(const engine_config *cfg, char *err, size_t errlen);

/* Ends every run in flight (their callbacks are called with a result that
 * says the engine stopped) and releases the engine. Call it from the loop
 * thread, or after the loop thread has returned. */
void engine_free(engine *e);

/*
 * Called on the loop thread when a run ends. result is a NUL-terminated
 * JSON document of len bytes; ownership passes to the callee, who frees
 * it with free(). healthy is 1 when every node succeeded.
 */
typedef void (*engine_done_fn)(void *ud, char *result, size_t len,
                               int healthy);

/*
 * Queues a run of wf with the given input (a JSON object, or len 0 for
 * "{}"); the input is copied. wf must stay valid until done is called.
 * Thread-safe. Returns 0 and stores the run's id (also the "id" of its
 * result) in *id when id is not NULL; or returns -1 with a reason in err
 * when the engine is stopping or max_runs runs are already in flight
 * (done is then not called).
 */
int engine_submit(engine *e, const wf_workflow *wf, const char *input,
                  size_t len, engine_done_fn done, void *ud, uint64_t *id,
                  char *err, size_t errlen);

/* Runs the loop until engine_stop() is called. */
void engine_loop(engine *e);

/* Runs one pass of the loop, waiting at most timeout_ms for something to
 * happen (-1: no limit). Returns the number of runs in flight. */
size_t engine_step(engine *e, int timeout_ms);

/*
 * Adds fd (readable, level-triggered) to what the loop waits on, so that a
 * process can serve its own sockets on the same thread: engine_step()
 * returns once fd is ready, and engine_fd_ready() reports it. At most
 * ENGINE_MAX_WATCHED fds. Loop thread only. Returns a slot, or -1.
 */
#define ENGINE_MAX_WATCHED 4
int engine_watch_fd(engine *e, int fd);

/* 1 when the fd in slot was ready during the last engine_step(), then
 * cleared; 0 otherwise. */
int engine_fd_ready(engine *e, int slot);

/* Asks the loop to return; thread-safe. Runs in flight are left as they
 * are: engine_free() ends them. */
void engine_stop(engine *e);

typedef struct engine_stats {
    uint64_t runs_started;
    uint64_t runs_healthy;
    uint64_t runs_unhealthy;
    uint64_t runs_refused;
    uint64_t calls;         /* HTTP attempts made */
    uint64_t call_failures; /* attempts that failed */
    uint64_t retries;
    uint64_t runs_inflight;
    uint64_t handles_created; /* easy handles set up; reuse keeps it low */
} engine_stats;

/* Copies the counters; thread-safe (values are read one by one). */
void engine_get_stats(const engine *e, engine_stats *out);

#endif
