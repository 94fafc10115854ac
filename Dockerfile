# One image for every LearnSphere service: `loadgen serve <service>` runs
# one of them (gateway, users, courses, payments, progress), `loadgen run`
# drives a scenario. docker-compose.yml starts them all from this image.
#
# Stages (cargo-chef, as in "Zero To Production"):
#   chef     the Rust toolchain plus cargo-chef
#   planner  reduces the workspace to a recipe: manifests and the lock file
#   builder  builds the dependencies from the recipe (a layer that stays
#            cached until Cargo.toml or Cargo.lock change), then our code
#   prebuilt a loadgen built outside, instead of builder's (below)
#   base     Debian slim, the binary, a wget for healthchecks, a non-root user
#   loadgen-kubectl
#            base plus kubectl, for loadgen as a Kubernetes Job whose
#            scenario scales, crashes and redeploys through kubectl
#            (`docker build --target loadgen-kubectl`; deploy/k8s/loadgen)
#   runtime  base as it is: the image the services run (the default target)
#
# Every base image is pinned by version, so a rebuild next month builds
# the same thing.

# kubectl for the loadgen-kubectl target (below).
ARG KUBECTL_VERSION=v1.32.4
# Which stage the runtime images take the binary from: `builder` compiles
# it here (the default, what users and the release workflow build);
# `prebuilt` copies the file `loadgen` at the root of the build context,
# a binary built on a bookworm host (scripts/compose-smoke's fast path:
# the one the test suite already built, with a context holding only it).
# Needs BuildKit, which builds only the stages the target uses.
ARG LOADGEN_BINARY=builder

FROM rust:1.95.0-slim-bookworm AS chef
# cmake: aws-lc-sys (jsonwebtoken's crypto backend) may need it to build
# its C sources.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.77
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is reused until a manifest or Cargo.lock
# changes, so editing a service rebuilds our crates, not the ~400 others.
RUN cargo chef cook --release --locked -p loadgen --recipe-path recipe.json
COPY . .
# `loadgen` links every service, so this one binary is the whole system.
RUN cargo build --release --locked -p loadgen --bin loadgen \
 && cp target/release/loadgen /usr/local/bin/loadgen

FROM scratch AS prebuilt
COPY loadgen /usr/local/bin/loadgen

FROM ${LOADGEN_BINARY} AS binary

# A static busybox, pinned by its image tag, for its `wget` applet only.
FROM busybox:1.37.0-musl AS busybox

# The Kubernetes project's own kubectl image, for its static binary only.
# kubectl supports clusters one minor version either side of its own: build
# with --build-arg KUBECTL_VERSION=v1.X.Y for your cluster's minor (the
# ARG is declared at the top, where a FROM can read it).
FROM registry.k8s.io/kubectl:${KUBECTL_VERSION} AS kubectl

FROM debian:12.12-slim AS base
# Compose probes `/readyz` from inside the container, so the image needs an
# HTTP client. Debian's curl would add libcurl and a TLS stack (~10 MB and
# their CVEs) to an image that otherwise speaks only plain HTTP inside the
# network; busybox's wget is one static ~1 MB file. Installed under the
# name `wget`, busybox runs that applet (it dispatches on argv[0]).
COPY --from=busybox /bin/busybox /usr/local/bin/wget
COPY --from=binary /usr/local/bin/loadgen /usr/local/bin/loadgen
# An unprivileged user with a fixed id (volumes and Kubernetes
# securityContext can name it); /app is its working directory, where a
# service without DATABASE_URL would keep its SQLite file.
RUN groupadd --system --gid 10001 learnsphere \
 && useradd --system --uid 10001 --gid learnsphere --home-dir /app --no-create-home learnsphere \
 && mkdir -p /app/data \
 && chown -R learnsphere:learnsphere /app
WORKDIR /app
USER 10001:10001
# Inside a container the services must listen on every interface (their
# default, 127.0.0.1, is for local runs).
ENV HOST=0.0.0.0
# No HEALTHCHECK here: the port differs per service, so docker-compose.yml
# (and Kubernetes' readinessProbe) define it on /readyz.
ENTRYPOINT ["loadgen"]
CMD ["--help"]

# loadgen with kubectl: `loadgen run --platform kubernetes` inside the
# cluster. Kept out of the services' image, which never calls kubectl.
FROM base AS loadgen-kubectl
COPY --from=kubectl /bin/kubectl /usr/local/bin/kubectl

# The services' image, and what a plain `docker build .` builds (the last
# stage).
FROM base AS runtime
