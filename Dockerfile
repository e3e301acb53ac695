# The strata broker as a container image.
#
#   docker build -t strata .
#   docker run -p 9092:9092 -e KAFKA_ADVERTISED_HOST_NAME=<this host's address> strata
#
# Configure it as Kafka's Docker images are configured: KAFKA_<KEY> sets
# <key> (KAFKA_ZOOKEEPER_CONNECT, KAFKA_ADVERTISED_HOST_NAME,
# KAFKA_CREATE_TOPICS=Topic1:3:1, ...), STRATA_<KEY> sets strata.<key>, and
# arguments after the image name go to `strata serve` (a server.properties
# path, --override key=value). An advertised address is needed: without
# one the broker listens on the container's loopback only, where no client
# outside the container can reach it. docker-compose.yml runs a cluster.

# Stage 1: a static binary. CGO_ENABLED=0 because the runtime image has no
# C library; every engine built in (mmap, mem, pebble, tiered) is pure Go.
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /strata ./cmd/strata
# The log dir, owned by the runtime image's nonroot user (65532): Docker
# copies an image directory's owner into the volume it mounts there, and
# the runtime image has no shell to create it.
RUN mkdir -p /out/var/lib/strata

# Stage 2: distroless static. It is scratch plus what a static Go program
# still expects of a system: /tmp, CA certificates, time zones, an
# /etc/passwd with a nonroot user, so the broker does not run as root.
# No shell or package manager (for a shell, use the :debug-nonroot tag of
# the same image). An engine plugin (strata.plugins.<name>.path) must then
# be a static binary copied into a derived image.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /strata /strata
COPY --from=build --chown=65532:65532 /out/var/lib/strata /var/lib/strata
# Logs and meta.properties (cluster id, broker id) live in this volume, one
# per container, so a restarted container keeps its data and its id.
ENV KAFKA_LOG_DIRS=/var/lib/strata
VOLUME ["/var/lib/strata"]
EXPOSE 9092
USER 65532:65532
ENTRYPOINT ["/strata", "serve"]
