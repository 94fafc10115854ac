# Stand-ins for the third-party images docker-compose.yml and the
# Dockerfile name, for a machine that cannot pull them (scripts/compose-smoke
# builds each target and tags it with the name it stands in for; every one
# carries the label org.learnsphere.stand-in). All start from a Debian
# bookworm base made here with debootstrap (BASE), and take what they run
# from Debian's packages, so versions differ from the pinned images':
#
#   target      stands in for                           runs (Debian)
#   busybox     busybox:1.37.0-musl                     busybox-static 1.35 (the Dockerfile copies /bin/busybox)
#   postgres    postgres:17.6-alpine                    PostgreSQL 15, with the image's entrypoint contract
#   nats        nats:2.11.6-alpine                      nats-server 2.9
#   prometheus  prom/prometheus:v3.5.0                  Prometheus 2.42
#   rust        rust:1.95.0-slim-bookworm               the host's Rust toolchain (build context: see compose-smoke)
#
# debian:12.12-slim is BASE itself, tagged; the OpenTelemetry Collector's
# stand-in is loadgen's OTLP receiver, from our own image (compose.stand-ins.yml).

ARG BASE=learnsphere-smoke/debian:bookworm

FROM ${BASE} AS apt
LABEL org.learnsphere.stand-in=true
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update

FROM apt AS busybox
RUN apt-get install -y --no-install-recommends busybox-static \
 && rm -rf /var/lib/apt/lists/*

# The official image's contract, as far as docker-compose.yml uses it: on
# an empty PGDATA, initdb with POSTGRES_USER/POSTGRES_PASSWORD, run
# /docker-entrypoint-initdb.d/*.sh against a server on the socket only,
# then serve on every interface with password authentication.
FROM apt AS postgres
RUN apt-get install -y --no-install-recommends postgresql-common \
 && echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 0700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]

# The official alpine image runs `nats-server "$@"` as root, with
# busybox's wget (the healthcheck's).
FROM apt AS nats
RUN apt-get install -y --no-install-recommends nats-server busybox-static \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /bin/busybox /usr/local/bin/wget
ENTRYPOINT ["nats-server"]

# The official image: user nobody, data in /prometheus, busybox's wget.
FROM apt AS prometheus
RUN apt-get install -y --no-install-recommends prometheus busybox-static \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /bin/busybox /usr/local/bin/wget \
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]

# The rust:slim image's layout (RUSTUP_HOME, CARGO_HOME, gcc, libc6-dev,
# ca-certificates), with the host's toolchain. The build context is a
# stream compose-smoke makes: this file, the toolchain under toolchain/,
# and the machine's CA bundle, so that cargo reaches crates.io through a
# TLS-inspecting proxy. The bundle stays in this local builder image;
# nothing of it reaches the runtime image.
FROM apt AS rust
RUN apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:$PATH
RUN mkdir -p /usr/local/cargo/bin && cargo --version
