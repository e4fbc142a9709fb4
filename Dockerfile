# syntax=docker/dockerfile:1.7
#
# custody admission service image.
#
#   docker buildx build -t REGISTRY/custody:VERSION .
#
# Builder: the Rust toolchain the project pins (Cargo.toml rust-version = 1.95) on Debian 12,
# the same glibc as the runtime image. aws-lc-sys builds with the image's gcc; no cmake/clang.
# Runtime: distroless cc (glibc, libgcc_s, CA certificates, /etc/passwd entry for 65532
# "nonroot"), no shell, no package manager.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# The build needs the manifest, lockfile, sources, benches/ (declared [[bench]] targets),
# vendor/ ([patch.crates-io]) and the files src/ embeds with include_str!/include_bytes!
# (trust-roots/, deploy/policies/gitops.yaml, fixtures/registry/, docs/openapi.json).
# .dockerignore trims the rest.
COPY . .
# Cache mounts keep the crates.io index/downloads and the target dir between builds; the binary
# is copied out of the (unpersisted) target mount into /out.
RUN --mount=type=cache,id=custody-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=custody-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=custody-target,target=/src/target,sharing=locked \
    cargo build --release --locked --bin custody \
 && install -D -m 0755 target/release/custody /out/custody

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="custody" \
      org.opencontainers.image.description="Supply-chain provenance verifier: admission webhook, Gatekeeper external data provider and Kyverno service for Sigstore-signed images" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/custody" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder --chown=0:0 --chmod=0555 /out/custody /custody
# The service writes only to /var/lib/custody (SQLite, later) and /tmp; in Kubernetes both are
# volumes and the root filesystem is read-only.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/custody", "serve"]
CMD ["--config", "/etc/custody/config.yaml"]
