/* Certificates through the openssl command, and the kubeconfig writer. */
#include "tlsgen.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/* Runs argv with output discarded; 0 when it exits with status 0. */
static int run(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status, rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else if (buf) {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    int rc;

    if (!f)
        return -1;
    rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"ca.key", "ca.crt", "server.key",
                                        "server.csr", "server.crt",
                                        "ext.cnf", NULL};
    char p[512];

    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

int tlsgen_make(tlsgen_pems *out, char *err, size_t errlen)
{
    char dir[] = "/tmp/simapi-tls-XXXXXX";
    char cakey[512], cacrt[512], key[512], csr[512], crt[512], ext[512];
    char serial[40];
    unsigned char rnd[8];
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!mkdtemp(dir)) {
        snprintf(err, errlen, "creating a temporary directory for "
                 "certificates: %s", strerror(errno));
        return -1;
    }
    snprintf(cakey, sizeof(cakey), "%s/ca.key", dir);
    snprintf(cacrt, sizeof(cacrt), "%s/ca.crt", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(csr, sizeof(csr), "%s/server.csr", dir);
    snprintf(crt, sizeof(crt), "%s/server.crt", dir);
    snprintf(ext, sizeof(ext), "%s/ext.cnf", dir);
    util_random(rnd, sizeof(rnd));
    snprintf(serial, sizeof(serial), "0x%02x%02x%02x%02x%02x%02x%02x",
             rnd[0] & 0x7f, rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6]);
    {
        char *ca[] = {"openssl", "req", "-x509", "-newkey", "ec",
                      "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", cakey, "-out", cacrt, "-days", "3650",
                      "-subj", "/CN=sim-apiserver-ca", "-addext",
                      "basicConstraints=critical,CA:TRUE", "-addext",
                      "keyUsage=critical,keyCertSign,cRLSign", NULL};
        char *req[] = {"openssl", "req", "-new", "-newkey", "ec",
                       "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                       "-keyout", key, "-out", csr, "-subj",
                       "/CN=kube-apiserver", NULL};
        char *sign[] = {"openssl", "x509", "-req", "-in", csr, "-CA", cacrt,
                        "-CAkey", cakey, "-set_serial", serial, "-days",
                        "3650", "-out", crt, "-extfile", ext, NULL};

        if (run(ca) < 0) {
            snprintf(err, errlen, "openssl could not make the CA in %s",
                     dir);
            goto out;
        }
        if (run(req) < 0) {
            snprintf(err, errlen, "openssl could not make the server key");
            goto out;
        }
        if (write_file(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost,"
                       "DNS:kubernetes.default.svc\n"
                       "basicConstraints=CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,"
                       "keyEncipherment\n"
                       "extendedKeyUsage=serverAuth\n") < 0 ||
            run(sign) < 0) {
            snprintf(err, errlen, "openssl could not sign the server "
                     "certificate");
            goto out;
        }
    }
    out->ca_cert = slurp(cacrt);
    out->cert = slurp(crt);
    out->key = slurp(key);
    if (!out->ca_cert || !out->cert || !out->key) {
        snprintf(err, errlen, "reading the generated certificates in %s",
                 dir);
        tlsgen_free(out);
        goto out;
    }
    rc = 0;
out:
    remove_dir(dir);
    return rc;
}

void tlsgen_free(tlsgen_pems *p)
{
    free(p->ca_cert);
    free(p->cert);
    free(p->key);
    memset(p, 0, sizeof(*p));
}

int tlsgen_kubeconfig(const char *path, const char *url, const char *ca_pem,
                      const char *token, char *err, size_t errlen)
{
    char tmp[4096];
    char *ca = ca_pem ? util_b64_encode(ca_pem, strlen(ca_pem)) : NULL;
    FILE *f;
    int fd, rc = -1;

    snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        snprintf(err, errlen, "writing kubeconfig %s: %s", path,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        free(ca);
        return -1;
    }
    fprintf(f, "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n"
            "  cluster:\n    server: %s\n", url);
    if (ca)
        fprintf(f, "    certificate-authority-data: %s\n", ca);
    fprintf(f, "contexts:\n- name: sim\n  context:\n    cluster: sim\n"
            "    user: sim\n    namespace: default\n"
            "current-context: sim\npreferences: {}\nusers:\n- name: sim\n"
            "  user:\n");
    if (token)
        fprintf(f, "    token: %s\n", token);
    else
        fprintf(f, "    {}\n");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "writing kubeconfig %s: %s", path,
                 strerror(errno));
        unlink(tmp);
    } else {
        rc = 0;
    }
    free(ca);
    return rc;
}
