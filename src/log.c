#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static log_level g_level = LOG_INFO;
static log_hook_fn g_hook;
static void *g_hook_ud;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(log_level lvl)
{
    g_level = lvl;
}

log_level log_get_level(void)
{
    return g_level;
}

int log_level_parse(const char *s, log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
         i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_set_hook(log_hook_fn fn, void *ud)
{
    g_hook = fn;
    g_hook_ud = ud;
}

void log_msg(log_level lvl, const char *subsys, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    if (lvl > g_level)
        return;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    if (g_hook) {
        g_hook(lvl, subsys, line, g_hook_ud);
        return;
    }

    /* One fprintf per line keeps lines whole when threads log at once. */
    struct timespec ts;
    struct tm tm;
    char stamp[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", stamp, ts.tv_nsec / 1000000,
            level_names[lvl], subsys, line);
}
