# syntax=docker/dockerfile:1
# One image with the three taskbench binaries, for Kubernetes (deploy/kubernetes/, README "More
# than one machine"): the two servers built exactly as `taskbench run` builds them (profile
# `server`, fat LTO) and the CLI (profile `release`), which is the load agent, the seeder and
# `taskbench merge`. One image, so that the server and the load generator of a run always come
# from the same commit; a pod picks its binary with `command`.
#
#   docker build -t taskbench:latest .          # or: podman build -t taskbench:latest .
#
# About 10 minutes on two cores from nothing (the servers' fat LTO dominates; README, "A first
# report"); the cache mounts keep cargo's registry and target directory between builds.

# 1.95, the toolchain this project is built and tested with (Cargo.toml's rust-version is 1.94,
# what the locked sqlx 0.9.0 declares). Bookworm, so that the binaries link against the glibc
# of the runtime stage.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# SQLX_OFFLINE=true comes from .cargo/config.toml: the queries are checked against the committed
# metadata in servers/data/.sqlx, so the build needs no database. The binaries are copied out in
# the same step because the target directory is a cache mount, absent from the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p taskbench \
 && cargo build --locked --profile server -p taskbench-axum --bin taskbench-axum -p taskbench-actix --bin taskbench-actix \
 && install -D -m 0755 -t /out target/release/taskbench target/server/taskbench-axum target/server/taskbench-actix

FROM debian:bookworm-slim
COPY --from=build /out/ /usr/local/bin/
# `taskbench loadgen --scenario NAME` looks for ./scenarios first: the shipped scenarios, in the
# working directory. A scenario of your own goes into scenarios/ before the image is built.
WORKDIR /opt/taskbench
COPY scenarios/ scenarios/
# No root at run time: the manifests also ask for a non-root user and a read-only root filesystem.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin taskbench
USER 10001
# The servers listen on 8080 in a pod (`--addr 0.0.0.0:8080` in the manifests).
EXPOSE 8080
CMD ["taskbench", "--help"]
