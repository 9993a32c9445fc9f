# syntax=docker/dockerfile:1
#
# tidewatch container image.
#
#   docker build -t tidewatch .
#   docker run --rm -v "$PWD/policies:/etc/tidewatch/policies:ro" tidewatch check -c /etc/tidewatch/policies
#
# The default command starts the long-running service (`tidewatch run`).
# Any subcommand can be given instead: check, tags, once, schema.

############################ builder ############################
FROM rust:1-bookworm AS builder

# git2 builds libgit2 and libssh2 from source (vendored) against the
# system OpenSSL, found through pkg-config. Package versions are not pinned
# on purpose: bookworm's security updates should land on every rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Only what the package build reads: the manifest, the lock file, the
# sources and the bench targets Cargo.toml declares (tests and fuzz/ are not
# needed to build the binary).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches

# BuildKit cache mounts keep the registry and target/ between builds; the
# binary is copied out of the cached target/ so the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin tidewatch \
 && install -D -m 0755 target/release/tidewatch /out/tidewatch

############################ runtime ############################
FROM debian:bookworm-slim

# ca-certificates: TLS to registries and GitHub (rustls and OpenSSL both use
# the system store); libssl3 and zlib1g: linked by git2; git and
# openssh-client: ssh-keyscan/known_hosts tooling and debugging the clone.
# Unpinned for the same reason as above.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libssl3 zlib1g git openssh-client \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid so Kubernetes' runAsNonRoot/runAsUser can match it.
RUN groupadd --gid 10001 tidewatch \
 && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /home/tidewatch \
      --create-home --shell /usr/sbin/nologin tidewatch \
 && install -d -o 10001 -g 10001 -m 0700 /home/tidewatch/.ssh \
 && install -d -o 10001 -g 10001 -m 0755 /var/cache/tidewatch \
 && install -d -m 0755 /etc/tidewatch/policies

COPY --from=builder /out/tidewatch /usr/local/bin/tidewatch

# The clone of the environment repository lives under
# $XDG_CACHE_HOME/tidewatch/<name>-<hash> (keep it on a volume, e.g.
# `-v tidewatch-cache:/var/cache/tidewatch`, so restarts fetch instead of
# cloning); SSH host keys are read from $HOME/.ssh/known_hosts. Policy files
# are mounted at /etc/tidewatch/policies (a ConfigMap in Kubernetes, a bind
# mount with docker run). The working directory is the cache directory, the
# one place that is writable when the root filesystem is read-only.
ENV HOME=/home/tidewatch \
    XDG_CACHE_HOME=/var/cache/tidewatch
WORKDIR /var/cache/tidewatch
USER 10001:10001

EXPOSE 8080
ENTRYPOINT ["tidewatch"]
CMD ["run", "-c", "/etc/tidewatch/policies", "--listen", "0.0.0.0:8080"]
