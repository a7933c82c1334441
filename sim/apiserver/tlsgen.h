/*
 * tlsgen: a throwaway CA and server certificate for the fake apiserver,
 * and the kubeconfig that lets kubectl trust it.
 */
#ifndef SIMAPI_TLSGEN_H
#define SIMAPI_TLSGEN_H

#include <stddef.h>

typedef struct tlsgen_pems {
    char *ca_cert;     /* PEM of the CA certificate */
    char *cert;        /* PEM of the server certificate */
    char *key;         /* PEM of the server private key */
} tlsgen_pems;

/*
 * Generates a CA and a server certificate for IP:127.0.0.1,
 * DNS:localhost and DNS:kubernetes.default.svc with the openssl command
 * (searched in PATH) in a temporary directory, which is removed again.
 * Returns 0, or -1 with the failed step in err.
 */
int tlsgen_make(tlsgen_pems *out, char *err, size_t errlen);

void tlsgen_free(tlsgen_pems *p);

/*
 * Writes a kubeconfig (mode 0600, replaced atomically) with one cluster,
 * user and context named "sim": server url, the CA as
 * certificate-authority-data when ca_pem is not NULL, and the bearer
 * token when token is not NULL. Returns 0 or -1 with err naming path.
 */
int tlsgen_kubeconfig(const char *path, const char *url, const char *ca_pem,
                      const char *token, char *err, size_t errlen);

#endif
