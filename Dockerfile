# syntax=docker/dockerfile:1
# One image for every Fiscus role: `fiscus identity-ca|orderer|ledger-store|
# contract-executor|gossip-gateway|exchange-adapter --config FILE`, the
# client commands, and the Kubernetes operator, a binary of its own beside
# `fiscus` (`fiscus-operator run`; charts/fiscus-operator sets the command).
# Build: docker build -t fiscus:0.1.0 .
# tests/charts/test_dockerfile.py checks what can be checked without Docker.

ARG RUST_VERSION=1.90
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
# protoc for proto/build.rs; gcc (for ring and mimalloc) comes with the image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: cargo needs every member's manifest to resolve it.
COPY Cargo.toml Cargo.lock ./
COPY proto ./proto
COPY services ./services
COPY operator ./operator
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p fiscus -p fiscus-operator \
 && cp target/release/fiscus target/release/fiscus-operator /usr/local/bin/

# Same Debian release as the builder, so the binary's glibc matches.
FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 fiscus \
 && useradd --system --uid 10001 --gid fiscus --home-dir /var/lib/fiscus --shell /usr/sbin/nologin fiscus \
 && mkdir -p /var/lib/fiscus /etc/fiscus \
 && chown fiscus:fiscus /var/lib/fiscus
COPY --from=build /usr/local/bin/fiscus /usr/local/bin/fiscus-operator /usr/local/bin/
COPY config/*.example.toml /etc/fiscus/examples/

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="fiscus" \
      org.opencontainers.image.description="Fiscus: a consortium ledger for China's fiscal transfer payments (财政转移支付)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/fiscus" \
      org.opencontainers.image.base.name="debian:${DEBIAN_RELEASE}-slim"

# identity-ca gRPC/HTTP; orderer client/raft/ops; ledger-store gRPC/ops;
# contract-executor gRPC/ops; gossip-gateway gossip/ops; exchange-adapter
# REST, gRPC and ops; analytics API and ops (the ports of config/*.example.toml);
# the operator's ops port.
EXPOSE 7100 7101 7200 7210 7220 7300 7320 7400 7420 7500 7520 7620 8080 8090 8443 9480 9490

USER 10001:10001
WORKDIR /var/lib/fiscus
ENTRYPOINT ["fiscus"]
CMD ["--help"]
