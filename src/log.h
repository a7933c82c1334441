/*
 * log: one line per event, to stderr or to a hook.
 *
 * Libraries report through log_msg(); binaries choose the level and may
 * install a hook. A line is "LEVEL subsystem: message". The level is
 * global to the process and read without a lock: set it once at start.
 */
#ifndef ASTER_LOG_H
#define ASTER_LOG_H

typedef enum log_level {
    LOG_ERROR = 0,
    LOG_WARN,
    LOG_INFO,
    LOG_DEBUG,
} log_level;

typedef void (*log_hook_fn)(log_level lvl, const char *subsys,
                            const char *line, void *ud);

void log_set_level(log_level lvl);
log_level log_get_level(void);

/* Parses "error", "warn", "info" or "debug"; returns 0 or -1. */
int log_level_parse(const char *s, log_level *out);

/* Replaces the stderr writer; NULL restores it. */
void log_set_hook(log_hook_fn fn, void *ud);

void log_msg(log_level lvl, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_enabled(lvl) ((lvl) <= log_get_level())

#endif
