/*
 * kcfg: where the Kubernetes API is and how to authenticate to it.
 *
 * Two sources, as client-go reads them (k8s-api.md section 7):
 *
 * - kubeconfig files. With no explicit path, $KUBECONFIG is a colon list
 *   of files merged first-wins (the first file that sets current-context,
 *   or defines a cluster, user or context of a given name, wins); without
 *   $KUBECONFIG, ~/.kube/config. A context override replaces
 *   current-context. File paths inside a file (certificate-authority,
 *   client-certificate, client-key, tokenFile) are relative to that
 *   file's directory. A *-data field wins over its path twin. exec and
 *   auth-provider users are refused, as is insecure-skip-tls-verify
 *   combined with a CA.
 * - in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT plus
 *   token, ca.crt and namespace in the service account directory
 *   (/var/run/secrets/kubernetes.io/serviceaccount, or $ASTER_SA_DIR).
 *
 * Errors go to a caller-owned buffer and name the field and the file
 * ("kubeconfig /x/config: user \"u1\": exec credential plugins are not
 * supported"). Nothing is printed.
 *
 * A kcfg is immutable after loading except for the token, which
 * kcfg_token() re-reads from its file; all functions are thread-safe.
 */
#ifndef ASTER_KCFG_H
#define ASTER_KCFG_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

typedef struct kcfg {
    char *server;          /* "https://host:port", no trailing slash */
    char *ns;              /* context namespace; "default" when unset */
    char *context;         /* context used; NULL in-cluster */
    char *source;          /* file (first) or "in-cluster", for logs */

    /* PEM bytes, NUL-terminated; len excludes the NUL. NULL: none. */
    char *ca_pem;          /* NULL: the system CA store */
    size_t ca_len;
    char *cert_pem;        /* client certificate */
    size_t cert_len;
    char *key_pem;         /* client key */
    size_t key_len;

    int insecure;          /* insecure-skip-tls-verify */
    char *tls_server_name; /* verify the server as this name, or NULL */

    /* Private: read the token through kcfg_token(). */
    char *token_;          /* bearer token or NULL */
    char *token_file_;     /* re-read at most every 60 s when set */
    time_t token_read_;
    pthread_mutex_t lock_;
} kcfg;

/*
 * Loads a kubeconfig. path NULL means $KUBECONFIG, else ~/.kube/config;
 * context NULL means current-context. Returns 0 and a kcfg the caller
 * frees with kcfg_free(), or -1 with the reason in err.
 */
int kcfg_load(const char *path, const char *context, kcfg **out, char *err,
              size_t errlen);

/*
 * Loads the in-cluster configuration (env and service account files).
 * Returns 0 and *out, or -1 with err; "not running in a cluster" when
 * the environment variables are missing.
 */
int kcfg_load_incluster(kcfg **out, char *err, size_t errlen);

/*
 * What a controller wants: an explicit path, else $KUBECONFIG or
 * ~/.kube/config when one exists, else in-cluster. Same returns.
 */
int kcfg_load_auto(const char *path, const char *context, kcfg **out,
                   char *err, size_t errlen);

/*
 * Parses one kubeconfig document held in memory (no merging). dir is the
 * directory relative paths resolve against (NULL: the current one) and
 * name is used in errors. Same returns as kcfg_load(). For the fuzzer
 * and tests.
 */
int kcfg_parse(const char *text, size_t len, const char *name,
               const char *dir, const char *context, kcfg **out, char *err,
               size_t errlen);

/*
 * Returns a malloc'd copy of the current bearer token (re-read from its
 * file when due or when force is set, e.g. after a 401), or NULL when
 * there is none or it cannot be read.
 */
char *kcfg_token(kcfg *c, int force);

void kcfg_free(kcfg *c);

#endif
