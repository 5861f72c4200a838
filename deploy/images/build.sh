#!/usr/bin/env bash
# Builds agentmill's service images offline: agentmill/{redis,coordinator,worker,learner}, each
# tagged with the workspace version (Cargo.toml) and `latest`, from deploy/images/Dockerfile.
#
#   deploy/images/build.sh                         # release binaries, every image
#   deploy/images/build.sh --profile dev           # target/debug binaries: a quick check
#   deploy/images/build.sh coordinator worker      # only these images
#   deploy/images/build.sh --no-cargo ...          # use the binaries already built
#
# Steps (each says how long it took):
#   1. cargo builds the four binaries (agentmill-coordinator, agentmill, agentmill-worker,
#      agentmill-learner) with the chosen profile;
#   2. the base images (deploy/images/recipe.env) are built with mmdebstrap + docker import when
#      missing or when the recipe changed, as deploy/setup.sh does for the sandbox image;
#   3. the learner's libraries (the torch wheel's torch/lib and nvidia/*/lib, ~3.6 GB) become the
#      image agentmill/libtorch-runtime:<torch>-<hash>, rebuilt only when they change;
#   4. a build context with only the binaries and the entrypoint (hard links under target/) is
#      sent to `docker build --target <service>` for each image;
#   5. each image is smoke-tested: `--version` (for the learner that loads libtorch), and
#      `agentmill-learner doctor --device cpu`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
HERE="$ROOT/deploy/images"

say() { printf 'images: %s\n' "$*"; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root for: $* (run as root or install sudo)"; fi
}

profile=release
cargo_build=1
services=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:-}"; shift 2 ;;
    --profile=*) profile="${1#--profile=}"; shift ;;
    --no-cargo) cargo_build=0; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    redis | coordinator | worker | learner) services+=("$1"); shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ ${#services[@]} -gt 0 ] || services=(redis coordinator worker learner)
case "$profile" in
  release) profile_dir=release ;;
  dev) profile_dir=debug ;;
  *) die "--profile is release or dev, not '$profile'" ;;
esac

command -v docker >/dev/null || die "docker not found (install Docker Engine)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (is dockerd running, may this user use it?)"

version="$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
[ -n "$version" ] || die "no version in Cargo.toml's [workspace.package]"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/$profile_dir"
wants() { local s; for s in "${services[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
total_start="$(now)"

# --- 1. Binaries --------------------------------------------------------------------------------
# All four, whatever images were asked for: the classic builder runs every stage above the
# target, so building the worker copies the coordinator's binaries too (cargo's incremental build
# makes the extra ones cheap).
bins=(agentmill-coordinator agentmill agentmill-worker agentmill-learner)
if [ "$cargo_build" = 1 ]; then
  t="$(now)"
  args=()
  for b in "${bins[@]}"; do args+=(--bin "$b"); done
  cargo build --profile "$profile" "${args[@]}"
  say "cargo build --profile $profile (${bins[*]}): $(took "$t")"
fi
for b in "${bins[@]}"; do
  [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing (build it, or drop --no-cargo)"
done

# --- 2. Base images -----------------------------------------------------------------------------
# shellcheck source=recipe.env
. "$HERE/recipe.env"
recipe_hash="$(sha256sum "$HERE/recipe.env" | cut -c1-16)"
build_base() { # IMAGE PACKAGES
  local image="$1" packages="$2" t work
  if [ "$(docker image inspect -f '{{ index .Config.Labels "org.agentmill.recipe" }}' "$image" 2>/dev/null)" = "$recipe_hash" ]; then
    say "base $image is built (recipe $recipe_hash)"
    return
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap not found: run deploy/setup.sh (or apt-get install mmdebstrap)"
  t="$(now)"
  work="$(mktemp -d)"
  as_root mmdebstrap --quiet --variant=minbase --include="$packages" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      "$BASE_SUITE" "$work/rootfs.tar" \
    || { rm -rf "$work"; die "mmdebstrap could not build the $BASE_SUITE root for $image (is Debian's package mirror reachable?)"; }
  docker import -c "LABEL org.agentmill.recipe=$recipe_hash" -c 'ENV LANG=C.UTF-8' \
    "$work/rootfs.tar" "$image" >/dev/null
  rm -rf "$work"
  say "base $image built: $(took "$t")"
}
wants redis && build_base "$REDIS_BASE_IMAGE" "$REDIS_BASE_PACKAGES"
# Building any target runs the stages above it (classic builder), the redis stage included.
build_base "$RUNTIME_BASE_IMAGE" "$RUNTIME_BASE_PACKAGES"
docker image inspect "$REDIS_BASE_IMAGE" >/dev/null 2>&1 || build_base "$REDIS_BASE_IMAGE" "$REDIS_BASE_PACKAGES"

# The build context: the binaries and the entrypoint, as hard links (copies across filesystems).
mkdir -p "$TARGET_DIR"
CTX="$(mktemp -d "$TARGET_DIR/agentmill-images.XXXXXX")"
trap 'rm -rf "$CTX" "$CTX.log"' EXIT
link() { ln -f "$1" "$2" 2>/dev/null || cp -p "$1" "$2"; }
mkdir -p "$CTX/bin" "$CTX/empty"
link "$HERE/agentmill-entrypoint" "$CTX/agentmill-entrypoint"
chmod 0755 "$CTX/agentmill-entrypoint"
for b in "${bins[@]}"; do link "$BIN_DIR/$b" "$CTX/bin/$b"; done

# docker build, quiet: prints the image id; its messages (the classic builder's deprecation
# notice included) are shown only when the build fails.
dbuild() {
  local log="$CTX.log" rc=0
  docker build -q "$@" 2>"$log" || rc=$?
  if [ "$rc" != 0 ]; then grep -v -e '^DEPRECATED' -e 'buildx' "$log" >&2 || true; rm -f "$log"; die "docker build $* failed"; fi
  rm -f "$log"
}

common=(--build-arg "RUNTIME_BASE=$RUNTIME_BASE_IMAGE" --build-arg "REDIS_BASE=$REDIS_BASE_IMAGE"
        --build-arg "VERSION=$version" --build-arg LIBTORCH_SRC=empty -f "$HERE/Dockerfile")

# --- 3. The learner's libraries -------------------------------------------------------------------
learner_args=()
if wants learner; then
  torch_link="$ROOT/.venv/libtorch"
  [ -d "$torch_link/lib" ] || die ".venv/libtorch/lib is missing: run deploy/setup.sh (it installs the torch wheel)"
  torch_dir="$(cd "$torch_link" && pwd -P)"
  site="$(dirname "$torch_dir")"
  torch_version="$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$torch_dir/version.py" | tr '+' '-')"
  # What goes in: torch/lib without the Python binding, and every nvidia/*/lib.
  # (A CPU-only wheel has no nvidia/ folder: then torch/lib alone.)
  lib_list() {
    local dirs=(torch/lib) d
    for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && dirs+=("${d#"$site"/}"); done
    (cd "$site" && find "${dirs[@]}" -type f ! -name 'libtorch_python.so' -printf '%p %s\n' | LC_ALL=C sort)
  }
  lib_hash="$(lib_list | sha256sum | cut -c1-12)"
  LIBTORCH_IMAGE="agentmill/libtorch-runtime:${torch_version:-unknown}-$lib_hash"
  # The libraries sit on the runtime stage: a changed base, Dockerfile runtime stage or entrypoint
  # means building them again on the new one (the image remembers which it was built on).
  runtime_id="$(dbuild "${common[@]}" --target runtime "$CTX")"
  if [ "$(docker image inspect -f '{{ index .Config.Labels "org.agentmill.runtime" }}' "$LIBTORCH_IMAGE" 2>/dev/null)" = "$runtime_id" ]; then
    say "libraries $LIBTORCH_IMAGE are built"
  else
    t="$(now)"
    old_libtorch="$(docker image inspect -f '{{ .Id }}' "$LIBTORCH_IMAGE" 2>/dev/null || true)"
    LCTX="$(mktemp -d "$TARGET_DIR/agentmill-libtorch.XXXXXX")"
    trap 'rm -rf "$CTX" "$CTX.log" "$LCTX"' EXIT
    mkdir -p "$LCTX/libtorch" "$LCTX/empty"
    link "$HERE/agentmill-entrypoint" "$LCTX/agentmill-entrypoint"
    chmod 0755 "$LCTX/agentmill-entrypoint"
    (cd "$site" && lib_list | cut -d' ' -f1 | while read -r f; do
      mkdir -p "$LCTX/libtorch/$(dirname "$f")"
      ln -f "$f" "$LCTX/libtorch/$f" 2>/dev/null || cp -p "$f" "$LCTX/libtorch/$f"
    done)
    lib_size="$(du -sh "$LCTX/libtorch" | cut -f1)"
    dbuild "${common[@]}" --build-arg LIBTORCH_SRC=libtorch --label "org.agentmill.runtime=$runtime_id" \
      --target libtorch -t "$LIBTORCH_IMAGE" "$LCTX" >/dev/null
    rm -rf "$LCTX"
    say "libraries $LIBTORCH_IMAGE ($lib_size: torch/lib + nvidia/*/lib) built: $(took "$t")"
  fi
  learner_args=(--build-arg "LIBTORCH_FROM=$LIBTORCH_IMAGE")
fi

# --- 4 and 5. The images, each checked ------------------------------------------------------------
smoke() { # IMAGE ARGS...: runs the image once, prints the first line of its output
  local image="$1"; shift
  local out
  out="$(docker run --rm "$image" "$@" 2>&1)" || die "$image $*: failed:
$out
(a GLIBC_x.yy error: the binaries were built on a newer system than the $BASE_SUITE base; set
BASE_SUITE in deploy/images/recipe.env to the build machine's Debian release)"
  printf '%s' "$out" | head -n1
}
for s in "${services[@]}"; do
  t="$(now)"
  image="agentmill/$s"
  args=("${common[@]}")
  [ "$s" = learner ] && args+=("${learner_args[@]}")
  old_id="$(docker image inspect -f '{{ .Id }}' "$image:$version" 2>/dev/null || true)"
  dbuild "${args[@]}" --target "$s" -t "$image:$version" -t "$image:latest" "$CTX" >/dev/null
  built="$(took "$t")"
  # The image this build replaced is left untagged: remove it (best effort: a container may use it).
  if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{ .Id }}' "$image:$version")" ]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true
  fi
  case "$s" in
    redis) check="$(smoke "$image:$version" redis-server --version)" ;;
    *) check="$(smoke "$image:$version" --version)" ;;
  esac
  size="$(docker image inspect -f '{{ .Size }}' "$image:$version" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
  say "$image:$version (+latest): $size, built in $built; runs: $check"
  if [ "$s" = learner ]; then
    doctor="$(docker run --rm "$image:$version" doctor --device cpu 2>&1)" || die "$image doctor failed:
$doctor"
    printf '%s\n' "$doctor" | sed 's/^/images:   doctor | /'
  fi
done
# The classic builder leaves the libtorch stage it ran (empty) for the other targets as an
# untagged image; nothing is built on it, so it goes.
empty_stage="$(dbuild "${common[@]}" --target libtorch "$CTX")"
docker rmi "$empty_stage" >/dev/null 2>&1 || true
if [ -n "${old_libtorch:-}" ] && [ "$old_libtorch" != "$(docker image inspect -f '{{ .Id }}' "$LIBTORCH_IMAGE")" ]; then
  docker rmi "$old_libtorch" >/dev/null 2>&1 || true
fi
say "done in $(took "$total_start") (profile $profile, version $version)"
