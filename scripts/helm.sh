#!/usr/bin/env bash
# Provides the helm binary the chart tests (and a user without helm) run.
#
# The Helm version is pinned here and nowhere else. Nothing prebuilt is downloaded:
#  - HELM_BIN, when set to an executable, is used as is;
#  - otherwise helm is built with Go from the Go module proxy (`go install` at the pinned tag, so
#    Helm's own go.sum decides every dependency) into a cache outside the repository
#    (LOG_SOCKET_CACHE, default ~/.cache/log-socket) and reused on later runs.
# Progress goes to stderr; the last line on stdout is the path of the helm binary.
set -euo pipefail

HELM_VERSION=v4.3.1

log() { printf '[helm] %s\n' "$*" >&2; }

if [ -n "${HELM_BIN:-}" ]; then
  [ -x "$HELM_BIN" ] || { log "HELM_BIN=$HELM_BIN is not an executable file"; exit 1; }
  log "using HELM_BIN=$HELM_BIN"
  echo "$HELM_BIN"
  exit 0
fi

cache_root="${LOG_SOCKET_CACHE:-$HOME/.cache/log-socket}"
out="$cache_root/helm-$HELM_VERSION"
bin="$out/bin"
if [ -f "$bin/.complete" ]; then
  log "using cached helm in $bin ($(cat "$bin/.complete"))"
  echo "$bin/helm"
  exit 0
fi

command -v go >/dev/null || { log "Go is required to build helm (or set HELM_BIN)"; exit 1; }
# A parallel caller (two test runs at once) waits instead of building twice.
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [ -f "$bin/.complete" ]; then echo "$bin/helm"; exit 0; fi

start=$(date +%s)
mkdir -p "$bin"
log "building helm $HELM_VERSION from the Go module proxy into $bin (first run only; 3-15 min on 2 cores)"
# Without -X the binary reports only "v4.3"; the metadata is empty because this is the tagged release.
ld="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.metadata="
# `go install pkg@version` builds in module mode from Helm's own go.mod/go.sum, ignoring any go.mod around us.
(cd "$out" && GOBIN="$bin" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
  go install -trimpath -ldflags "$ld" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION")
"$bin/helm" version --short >/dev/null
echo "$HELM_VERSION ($(go env GOVERSION)), built in $(( $(date +%s) - start ))s" > "$bin/.complete"
log "done: $(cat "$bin/.complete")"
echo "$bin/helm"
