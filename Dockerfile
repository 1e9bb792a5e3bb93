# syntax=docker/dockerfile:1
# The log-socket controller + relay image: `docker build -t <registry>/log-socket:0.1.0 .`
# Two stages: the first compiles TypeScript with every dependency, the second carries only the
# compiled program and the production dependencies, and runs as a non-root user.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Dependencies first, so source edits reuse this layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY controller ./controller
COPY cli ./cli
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOME=/tmp
WORKDIR /app
COPY --from=build --chown=root:root /src/package.json ./package.json
COPY --from=build --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/dist ./dist
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
