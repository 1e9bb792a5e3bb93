#!/usr/bin/env bash
# Provides etcd, kube-apiserver, kube-controller-manager and kubectl for the integration tests.
#
# The Kubernetes version is pinned here and nowhere else. Nothing prebuilt is downloaded:
#  - KUBEBUILDER_ASSETS (the envtest convention), when it holds the binaries, is used as is;
#  - otherwise the binaries are built with Go from the Go module proxy into a cache outside the
#    repository (LOG_SOCKET_CACHE, default ~/.cache/log-socket) and reused on later runs.
# Progress goes to stderr; the last line on stdout is the folder that holds the binaries.
set -euo pipefail

K8S_VERSION=v1.36.3

log() { printf '[control-plane] %s\n' "$*" >&2; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  missing=()
  for b in etcd kube-apiserver kube-controller-manager kubectl; do
    [ -x "$KUBEBUILDER_ASSETS/$b" ] || missing+=("$b")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks: ${missing[*]}; building them instead"
fi

cache_root="${LOG_SOCKET_CACHE:-$HOME/.cache/log-socket}"
out="$cache_root/k8s-$K8S_VERSION"
bin="$out/bin"
if [ -f "$bin/.complete" ]; then
  log "using cached binaries in $bin ($(cat "$bin/.complete"))"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { log "Go is required to build the control plane (or set KUBEBUILDER_ASSETS)"; exit 1; }
# A parallel caller (two test runs at once) waits instead of building twice.
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [ -f "$bin/.complete" ]; then echo "$bin"; exit 0; fi

start=$(date +%s)
src="$out/src"
mkdir -p "$src" "$bin"
cd "$src"
log "building Kubernetes $K8S_VERSION from the Go module proxy into $bin (first run only; 15-40 min on 2 cores)"

kmod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
minor_patch=${K8S_VERSION#v1.}
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$kmod")
log "etcd pairs with this release at $etcd_version"

{
  echo "module logsocket.local/control-plane-build"
  echo
  echo "go $(awk '$1=="go"{print $2; exit}' "$kmod")"
  echo
  echo "require ("
  echo "  k8s.io/kubernetes $K8S_VERSION"
  echo "  go.etcd.io/etcd/server/v3 $etcd_version"
  echo ")"
  echo
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging;
  # a dependency's replaces are ignored, so point each one at its published v0.<minor>.<patch>.
  awk '$2=="v0.0.0" && $1 ~ /^k8s\.io\// {print "replace " $1 " => " $1 " v0.'"$minor_patch"'"}' "$kmod"
} > go.mod
touch go.sum

pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3)
log "resolving modules"
# Each package at the pinned version: a bare `go get` would upgrade to the newest release.
GOFLAGS=-mod=mod go get "${pkgs[0]}@$K8S_VERSION" "${pkgs[1]}@$K8S_VERSION" "${pkgs[2]}@$K8S_VERSION" \
  "${pkgs[3]}@$etcd_version" >&2

major=1; minor=${minor_patch%%.*}
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
for p in "${pkgs[@]}"; do
  name=$(basename "$p"); [ "$name" = v3 ] && name=etcd
  t0=$(date +%s)
  log "go build $name"
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ld" -o "$bin/$name" "$p"
  log "built $name in $(( $(date +%s) - t0 ))s"
done
echo "$K8S_VERSION etcd $etcd_version, built in $(( $(date +%s) - start ))s" > "$bin/.complete"
log "done: $(cat "$bin/.complete")"
echo "$bin"
