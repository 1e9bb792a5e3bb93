# syntax=docker/dockerfile:1
# The log-socket controller + relay image: `docker build -t <registry>/log-socket:0.1.0 .`
# Three stages: the first compiles TypeScript with every dependency; the second installs the production
# dependencies of the controller's workspace alone (controller/package.json: no k8stail, no test or
# build tools); the last carries only those and the compiled program, and runs as a non-root user.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Dependencies first, so source edits reuse this layer.
COPY package.json package-lock.json ./
COPY controller/package.json ./controller/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY controller ./controller
COPY cli ./cli
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
COPY controller/package.json ./controller/
# The workspace's link to itself is dropped: the image has no controller/ folder for it to point at.
RUN npm ci --omit=dev --workspace=controller --no-audit --no-fund \
 && rm node_modules/log-socket-controller

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOME=/tmp
WORKDIR /app
# The controller's package.json: "type": "module" for dist/, and the record of what the image carries.
COPY --from=build --chown=root:root /src/controller/package.json ./package.json
COPY --from=deps --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/dist/api ./dist/api
COPY --from=build --chown=root:root /src/dist/controller ./dist/controller
# 65532 is the conventional "nonroot" uid; the chart's securityContext runs as it too and keeps the
# root filesystem read-only (the program writes nothing to disk).
USER 65532:65532
EXPOSE 10000 10001 8080
# --max-semi-space-size=1 (MB): V8's young generation otherwise grows to tens of MB under the relay's
# allocation rate; a small one is collected often, and with it the request bodies it still
# refers to (their bytes live outside the heap until then). 2 MB cut peak RSS at 20k records/s by
# ~60 MB; 1 MB takes ~10 MB more off at any rate, for no measurable CPU (docs/benchmarks.md).
# `npm run bench` starts its relay with these same flags.
ENTRYPOINT ["node", "--max-semi-space-size=1", "dist/controller/program/main.js"]
