# syntax=docker/dockerfile:1
# The image of the workflow engine (astermule): one pod per Astro.
# Build from the repository root (the context must be the whole tree):
#   docker build -f deploy/docker/engine.Dockerfile -t astertower/astermule:latest .
# Only the binary and the shared libraries it links end up in the final
# stage; see docs/deploy.md.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates cmake gcc libc6-dev make pkg-config \
      libcurl4-openssl-dev libcjson-dev libyaml-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DASTER_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target astermule \
 && strip /build/bin/astermule
# Collect the binary and every library it loads, except glibc's own, which
# the final image already has in the same version. Paths go under /usr/lib
# because /lib is a symbolic link to it in bookworm.
RUN mkdir -p /out/usr/local/bin \
 && cp /build/bin/astermule /out/usr/local/bin/ \
 && ldd /build/bin/astermule \
    | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' \
    | sed 's|^/lib/|/usr/lib/|' \
    | grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' \
    | xargs -r cp --parents -L -t /out \
 && mkdir -p /out/etc/ssl/certs \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/

FROM debian:bookworm-slim
COPY --from=build /out/ /
RUN ldconfig \
 && groupadd --system --gid 65532 astertower \
 && useradd --system --uid 65532 --gid 65532 --no-create-home \
      --shell /usr/sbin/nologin astertower
USER 65532:65532
# The controller runs it with the DAG mounted from a ConfigMap, e.g.
#   astermule --dag-file /etc/astermule/dag.json --port 8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/astermule"]
CMD ["--dag-file", "/etc/astermule/dag.json", "--port", "8080"]
