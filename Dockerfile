# syntax=docker/dockerfile:1
#
# The tracelab image: the `tracelab` binary with the repository's scenarios at /scenarios.
# One image serves every role of the lab: `tracelab svc` (a simulated service),
# `tracelab load` (the load generator) and the local `tracelab run`.
#
#   docker build -t tracelab:0.1.0 .
#   docker run --rm -v "$PWD/runs:/data/runs" tracelab:0.1.0 run /scenarios/quickstart.yaml
#
# The image runs as user 10001 from /data, the one directory that user owns: `tracelab run`
# and `tracelab load` write their run directories to /data/runs there. /data is a volume; mount
# a host directory the user can write (`mkdir -p runs && chown 10001 runs`, or `--user` with
# your own uid) to keep them, as above.
#
# compose/docker-compose.yaml builds it for you (`docker compose up --build`).

FROM rust:1.95-slim-trixie AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and the target directory between builds, so a
# change to one crate does not rebuild every dependency.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package tracelab --bin tracelab \
    && install -D target/release/tracelab /out/tracelab

FROM debian:trixie-slim
RUN groupadd --system --gid 10001 tracelab \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin tracelab \
    && mkdir -p /data \
    && chown 10001:10001 /data
COPY --from=build /out/tracelab /usr/local/bin/tracelab
COPY scenarios/ /scenarios/
WORKDIR /data
VOLUME /data
USER 10001:10001
# The service port and the admin (fault injection) port that `tracelab svc` uses in containers.
EXPOSE 8080 9091
ENTRYPOINT ["tracelab"]
CMD ["--help"]
