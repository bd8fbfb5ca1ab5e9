# syntax=docker/dockerfile:1
#
# One image recipe for every omnibus service, picked by the SERVICE build arg:
#
#   docker build --build-arg SERVICE=example -t omnibus/example .
#
# It builds ./services/${SERVICE}/cmd/${SERVICE} from the repository root in workspace mode
# (go.work), so the image ships exactly the module versions `go test work` ran against.
# docker-compose.yml builds every service with this file; services/omnibus/compose_test.go checks
# that each SERVICE arg there names an existing services/<name>/cmd/<name> directory.
#
# There is no HEALTHCHECK: distroless has no shell. Every service binary answers
# `/service health` (GET http://127.0.0.1:8080/healthz, exit 0 or 1), and docker-compose.yml
# uses that as the healthcheck.

# Base images are pinned by digest (the tag stays for readers): a rebuild gets the same bytes.
# `task compose:pin` looks up each tag's current digest and rewrites the pins (and the compose
# files'); review the diff and rebuild.

# ---- build ---------------------------------------------------------------------------------
# Runs on the build host's platform and cross-compiles (CGO off), so multi-arch builds
# (docker buildx build --platform linux/amd64,linux/arm64) need no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm@sha256:116d58cbd88c1297624acc6e967a060012422bacf9930927e23fb719189c6f36 AS build

ARG SERVICE
ARG TARGETOS
ARG TARGETARCH

WORKDIR /src

# The whole workspace: every module in go.work must be present for workspace mode.
# (go.work.su[m] is a glob so the COPY works before go.work.sum exists.)
COPY go.work go.work.su[m] ./
COPY pkg/ pkg/
COPY schemas/ schemas/
COPY services/ services/
COPY bench/ bench/

RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    if [ -z "${SERVICE:-}" ]; then \
        echo "build arg SERVICE is required, e.g. --build-arg SERVICE=example" >&2; exit 1; \
    fi; \
    if [ ! -d "./services/${SERVICE}/cmd/${SERVICE}" ]; then \
        echo "no such service: ./services/${SERVICE}/cmd/${SERVICE}; have:" >&2; \
        ls -d ./services/*/cmd/* >&2 || true; exit 1; \
    fi; \
    CGO_ENABLED=0 GOOS="${TARGETOS:-linux}" GOARCH="${TARGETARCH:-}" \
        go build -trimpath -ldflags="-s -w" -o /out/service "./services/${SERVICE}/cmd/${SERVICE}"

# ---- run -----------------------------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot@sha256:b7bb25d9f7c31d2bdd1982feb4dafcaf137703c7075dbe2febb41c24212b946f

ARG SERVICE
LABEL org.opencontainers.image.title="omnibus-${SERVICE}" \
      org.opencontainers.image.source="https://github.com/omnibus-dev/omnibus"

COPY --from=build /out/service /service

# distroless "nonroot" is uid/gid 65532; say so explicitly.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/service"]
