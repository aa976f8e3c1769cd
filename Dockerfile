# syntax=docker/dockerfile:1
#
# One image for every idbridge service: `idbridge serve <service>` (token-vault, writer,
# reader, webhook-receiver, portal), `idbridge migrate`, the operator commands, and
# `orcid-sim` (the ORCID sandbox stand-in of docker-compose.yml).
#
#   docker build -t idbridge:dev .
#   docker run --rm --read-only idbridge:dev --help
#
# The runtime stage runs as UID/GID 10001 and writes nothing to its root filesystem: run it
# with a read-only root (docker `--read-only`, compose `read_only: true`, Kubernetes
# `readOnlyRootFilesystem: true`) and a tmpfs on /tmp. Configuration comes from a mounted
# TOML file (`--config /etc/idbridge/idbridge.toml`) and IDBRIDGE__SECTION__KEY variables;
# secrets only from the environment or mounted files, never from the image.
# See deploy/README.md.

# Exact base images: the toolchain the project is built and tested with, and a Debian point
# release. Tags can still be re-pushed: pin digests from your registry for production
# (`docker buildx imagetools inspect rust:1.95.0-bookworm`, then
# --build-arg RUST_IMAGE=rust:1.95.0-bookworm@sha256:…, the same for RUNTIME_IMAGE).
ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG RUNTIME_IMAGE=debian:12.12-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The whole workspace (target/, .git and local data are excluded by .dockerignore): every
# member's manifest is needed for `--locked`, and proto/schemas is embedded at build time.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p idbridge -p orcid-sim \
    && install -D -m 0755 target/release/idbridge /out/idbridge \
    && install -D -m 0755 target/release/orcid-sim /out/orcid-sim

FROM ${RUNTIME_IMAGE} AS runtime
# ca-certificates: ORCID, the identity provider and SMTP are reached over TLS with the
# system's roots. Nothing else is installed (no shell tools beyond Debian's base).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 idbridge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/idbridge \
       --no-create-home --shell /usr/sbin/nologin idbridge \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/idbridge /etc/idbridge
COPY --from=build /out/idbridge /out/orcid-sim /usr/local/bin/
COPY --chmod=0755 deploy/docker/healthcheck.sh /usr/local/bin/idbridge-healthcheck

LABEL org.opencontainers.image.title="idbridge" \
      org.opencontainers.image.description="Connects a research institution to ORCID (Member API v3.0)" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"

# Logs as JSON lines on stdout; the admin server (/healthz, /readyz, /metrics) on 9000.
ENV IDBRIDGE__TELEMETRY__FORMAT=json
# Two glibc malloc arenas instead of one per thread: keeps each service under 64 MiB at rest
# (docs/benchmarks.md, "Pipeline").
ENV MALLOC_ARENA_MAX=2
WORKDIR /var/lib/idbridge
USER 10001:10001
EXPOSE 9000
# /healthz of the admin server (its port from IDBRIDGE__ADMIN__LISTEN, 9000 by default).
# Kubernetes ignores this and uses the Deployment's probes.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/idbridge-healthcheck", "/healthz"]
ENTRYPOINT ["/usr/local/bin/idbridge"]
CMD ["--help"]
