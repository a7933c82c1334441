/*
 * Tests for ctl_metrics: the Prometheus text after known observations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "astertower/ctl_metrics.c"
#include "astertower/ctl_phase.c"

static void assert_line(const char *text, const char *line)
{
    char want[256];

    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strstr(text, want) == NULL)
        fail_msg("no line '%s' in:\n%s", line, text);
}

static void test_render(void **state)
{
    ctl_metrics m;
    long per_phase[CTL_PHASE_COUNT] = {0};
    char *text;

    ctl_metrics_init(&m);
    ctl_metrics_observe(&m, 0.0005, 0);
    ctl_metrics_observe(&m, 0.02, 1);
    ctl_metrics_observe(&m, 9.0, 0);
    ctl_metrics_transition(&m, CTL_PHASE_SUCCESS);
    ctl_metrics_transition(&m, CTL_PHASE_SUCCESS);
    per_phase[CTL_PHASE_NONE] = 1;
    per_phase[CTL_PHASE_WRONG] = 2;

    text = ctl_metrics_render(&m, 5, per_phase);
    assert_non_null(text);
    assert_line(text, "astertower_reconciles_total 3");
    assert_line(text, "astertower_reconcile_errors_total 1");
    assert_line(text,
                "astertower_reconcile_duration_seconds_bucket{le=\"0.001\"} 1");
    assert_line(text,
                "astertower_reconcile_duration_seconds_bucket{le=\"0.025\"} 2");
    assert_line(text,
                "astertower_reconcile_duration_seconds_bucket{le=\"5\"} 2");
    assert_line(text,
                "astertower_reconcile_duration_seconds_bucket{le=\"+Inf\"} 3");
    assert_line(text, "astertower_reconcile_duration_seconds_count 3");
    assert_line(text, "astertower_transitions_total{phase=\"Success\"} 2");
    assert_line(text, "astertower_queue_depth 5");
    assert_line(text, "astertower_astros{phase=\"Pending\"} 1");
    assert_line(text, "astertower_astros{phase=\"Wrong\"} 2");
    assert_line(text, "astertower_astros{phase=\"Success\"} 0");
    free(text);
    ctl_metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
