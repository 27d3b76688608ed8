# syntax=docker/dockerfile:1
# kube-haproxy's image: the supervisor (PID 1) and the watcher, built in release mode with the
# Swift standard library linked in, on Debian 12 with its HAProxy 2.6. scripts/image-check builds
# it (the README's `docker build`) and runs it as the README and deploy/deployment.yaml do.

FROM swift:6.3.1-bookworm AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Package.swift names the test targets, so their folders come too (.dockerignore leaves out
# their fixtures and every build folder).
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product kube-haproxy \
    && swift build -c release --static-swift-stdlib --product kube-haproxy-watcher \
    && mkdir -p dist \
    && cp "$(swift build -c release --show-bin-path)/kube-haproxy" "$(swift build -c release --show-bin-path)/kube-haproxy-watcher" dist/

FROM debian:bookworm-slim
# HAProxy 2.6 and the shared libraries the binaries link (libcurl; libstdc++ and libc are in the
# base image). HAProxy gets the one capability it needs, binding ports below 1024, as a file
# capability; setcap's package goes again.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy libcurl4 ca-certificates libcap2-bin \
    && setcap cap_net_bind_service=+ep /usr/sbin/haproxy \
    && apt-get purge -y --auto-remove libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
# A numeric user, so that Kubernetes' runAsNonRoot can tell it is not root.
RUN groupadd --gid 10001 kube-haproxy \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kube-haproxy \
    && install -d -m 0700 -o 10001 -g 10001 /run/kube-haproxy
COPY --from=build /src/dist/kube-haproxy /src/dist/kube-haproxy-watcher /usr/local/bin/
ENV KUBE_HAPROXY_RUN_DIR=/run/kube-haproxy \
    KUBE_HAPROXY_HAPROXY=/usr/sbin/haproxy \
    KUBE_HAPROXY_WATCHER=/usr/local/bin/kube-haproxy-watcher
USER 10001:10001
# The examples' HTTP, HTTPS and statistics ports, and the metrics port of the deployment.
EXPOSE 80 443 1936 9090
# kube-haproxy is PID 1: it reaps every child and stops HAProxy gracefully on SIGTERM.
ENTRYPOINT ["/usr/local/bin/kube-haproxy"]
