/*
 * ctl_names: the names and labels of what the controller creates for an
 * Astro.
 *
 * A child is named "<astro>-<suffix>": the suffix is a star name for a
 * star's Deployment and Service, "dag" for the ConfigMap and "astermule"
 * for the engine pod. That name is used as it is when it is a DNS-1035
 * label (what a Service name must be: at most 63 characters of a-z, 0-9
 * and '-', starting with a letter and ending with a letter or digit).
 * Otherwise it is made into one (other characters become '-', an 'x' is
 * put in front of a leading digit), cut to 54 characters and given
 * "-<8 hex digits>" of a hash of "<astro>/<suffix>", so the name stays
 * stable across restarts and distinct for distinct stars of an Astro.
 *
 * Pure functions without state; safe from any thread.
 */
#ifndef ASTER_CTL_NAMES_H
#define ASTER_CTL_NAMES_H

#include <stddef.h>

/* Longest DNS-1035 label, and a buffer that holds one. */
#define CTL_NAME_MAX 63
#define CTL_NAME_BUF (CTL_NAME_MAX + 1)

/* Labels every child carries. */
#define CTL_LABEL_ASTRO "astertower.kasterism.io/astro"
#define CTL_LABEL_STAR "astertower.kasterism.io/star"
#define CTL_LABEL_ROLE "astertower.kasterism.io/role"
#define CTL_LABEL_MANAGED "app.kubernetes.io/managed-by"
#define CTL_MANAGED_BY "astertower"
#define CTL_SELECTOR_MANAGED "app.kubernetes.io/managed-by=astertower"

/* Annotation holding the Astro generation a child was made for. */
#define CTL_ANN_GENERATION "astertower.kasterism.io/generation"

#define CTL_FINALIZER "astertower.kasterism.io/finalizer"

/* Roles (CTL_LABEL_ROLE) of the children. */
#define CTL_ROLE_STAR "star"
#define CTL_ROLE_ENGINE "engine"
#define CTL_ROLE_DAG "dag"

/* Suffixes of the per-Astro children. */
#define CTL_SUFFIX_DAG "dag"
#define CTL_SUFFIX_ENGINE "astermule"

/*
 * Writes the child name for (astro, suffix) into out (CTL_NAME_BUF
 * bytes). Returns 0, or -1 when astro or suffix is empty.
 */
int ctl_name_child(const char *astro, const char *suffix,
                   char out[CTL_NAME_BUF]);

/* True when s is a DNS-1035 label. */
int ctl_name_is_dns1035(const char *s);

/*
 * Writes a label value for s into out (CTL_NAME_BUF bytes): s itself
 * when it is a valid label value (at most 63 characters of alphanumerics,
 * '-', '_' and '.', starting and ending alphanumeric), else the rule of
 * ctl_name_child() applied to s alone. Astro names may be 253 characters
 * long, label values only 63.
 */
void ctl_label_value(const char *s, char out[CTL_NAME_BUF]);

/* The 32-bit FNV-1a hash of s, used for the suffixes above. */
unsigned long ctl_name_hash(const char *s);

#endif
