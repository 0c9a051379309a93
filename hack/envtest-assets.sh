#!/usr/bin/env bash
# Builds the control-plane binaries that the tests run (kube-apiserver,
# kube-controller-manager, kubectl, etcd) from the Go module proxy, caches them
# outside the repo, and prints the cache directory on stdout, ready for
# KUBEBUILDER_ASSETS. Progress goes to stderr.
#
# Why build: setup-envtest downloads from a bucket these machines cannot reach,
# while the Go module proxy serves the sources.
#
# Environment:
#   KUBE_VERSION     Kubernetes version to build (default v1.37.1)
#   ETCD_VERSION     etcd version to build (default v3.6.16)
#   AUTOCRANE_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/autocrane)
#   EXTRA_BINARIES   more k8s.io/kubernetes/cmd/* programs to build into the same
#                    directory, e.g. "kube-scheduler kubelet kube-proxy"
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.37.1}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CACHE_ROOT=${AUTOCRANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/autocrane}
GOOS=$(go env GOOS)
GOARCH=$(go env GOARCH)
DIR="$CACHE_ROOT/assets/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-$GOOS-$GOARCH"
KUBE_BINARIES="kube-apiserver kube-controller-manager kubectl ${EXTRA_BINARIES:-}"

log() { echo "envtest-assets: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH"
command -v flock >/dev/null || die "flock (util-linux) is not on PATH"

missing() {
  local b
  for b in etcd $KUBE_BINARIES; do
    [ -x "$DIR/$b" ] || { echo "$b"; }
  done
}

mkdir -p "$DIR"
# One builder at a time per version set; later callers wait, then reuse.
exec 9>"$DIR.lock"
flock 9

todo=$(missing | tr '\n' ' ')
if [ -z "$todo" ]; then
  echo "$DIR"
  exit 0
fi
log "building into $DIR: $todo (a cold build takes about 9 minutes on 2 cores)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local

# run_logged runs a command with its output in the build log, and on failure
# dies with the message and the log's last lines.
run_logged() {
  local what=$1
  shift
  if ! "$@" >>"$work/build.log" 2>&1; then
    log "error: $what failed; last lines of the build log:"
    tail -n 25 "$work/build.log" >&2
    exit 1
  fi
}

# gomod_path prints the path of a module's go.mod in the module cache,
# downloading it if needed, or dies saying the version is not available.
gomod_path() {
  local out reason
  if ! out=$(cd "$work" && go mod download -json "$1" 2>&1); then
    reason=$(printf '%s' "$out" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' | sed 's/\\n.*//; s/\\t//g')
    die "$1 is not available from the Go module proxy (${reason:-$out}); pin a version it serves"
  fi
  printf '%s' "$out" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p'
}

build_etcd() {
  local m="$work/etcd"
  mkdir -p "$m"
  log "etcd $ETCD_VERSION"
  (cd "$m" && go mod init autocrane.local/etcd-build >/dev/null 2>&1)
  run_logged "fetching go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
    env -C "$m" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  run_logged "building etcd" \
    env -C "$m" go build -trimpath -ldflags "-s -w" -o "$DIR/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$DIR/etcd.tmp" "$DIR/etcd"
}

build_kube() {
  local m="$work/kube" gomod ver major minor ldflags b
  mkdir -p "$m"
  (cd "$m" && go mod init autocrane.local/kube-build >/dev/null 2>&1)
  gomod=$(gomod_path "k8s.io/kubernetes@$KUBE_VERSION")
  [ -n "$gomod" ] && [ -f "$gomod" ] || die "no go.mod for k8s.io/kubernetes@$KUBE_VERSION"
  ver=${KUBE_VERSION#v}
  # Each staging module is required at v0.0.0 and replaced by ./staging in
  # kubernetes' own go.mod; replaces of a dependency are ignored, so map each
  # one to its published v0.X.Y here.
  local staging
  staging=$(grep -E '^[[:space:]]*k8s\.io/[^ ]+ v0\.0\.0[[:space:]]*(//.*)?$' "$gomod" | awk '{print $1}' | sort -u)
  [ -n "$staging" ] || die "found no staging modules in $gomod"
  {
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    for s in $staging; do echo "replace $s => $s v0.${ver#*.}"; done
  } >>"$m/go.mod"
  log "k8s.io/kubernetes $KUBE_VERSION ($(echo "$staging" | wc -l) staging modules)"
  printf 'package tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n' >"$m/tools.go"
  run_logged "resolving k8s.io/kubernetes@$KUBE_VERSION's dependencies (is every version served by the proxy?)" \
    env -C "$m" go mod tidy
  major=${ver%%.*}
  minor=${ver#*.}; minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  for b in $KUBE_BINARIES; do
    [ -x "$DIR/$b" ] && continue
    log "$b"
    run_logged "building $b" \
      env -C "$m" go build -trimpath -ldflags "$ldflags" -o "$DIR/$b.tmp" "k8s.io/kubernetes/cmd/$b"
    mv "$DIR/$b.tmp" "$DIR/$b"
  done
}

# Fail fast, before a long build, when a version is not served.
gomod_path "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
gomod_path "k8s.io/kubernetes@$KUBE_VERSION" >/dev/null

case " $todo " in *" etcd "*) build_etcd ;; esac
if [ -n "${todo/etcd /}" ]; then build_kube; fi

[ -z "$(missing)" ] || die "still missing after build: $(echo $(missing))"
log "done"
echo "$DIR"
