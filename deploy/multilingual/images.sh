#!/usr/bin/env bash
# Builds the sandbox images of the multilingual corpus, offline and idempotently (each step says
# whether it did the work or skipped it; safe to run any number of times):
#
#   agentmill/sandbox-go:bookworm     images/go.env    (golang-go: Go 1.19)
#   agentmill/sandbox-rust:bookworm   images/rust.env  (rustc 1.63, cargo)
#   agentmill/sandbox-node:bookworm   images/node.env  (nodejs 18: node --test)
#   agentmill/sandbox-java:bookworm   images/java.env  (OpenJDK 17, Maven 3.8.7, JUnit 4)
#
# Each image is a Debian root made by `mmdebstrap --variant=minbase` from the recipe's packages
# (documentation, manual pages, translations and the recipe's SANDBOX_EXCLUDE paths left out),
# its SANDBOX_WARM command run in it once (e.g. Go's standard library compiled into its build
# cache, Maven's settings written), then `docker import`ed with
# the recipe's environment and the hash of the recipe file as the label org.agentmill.recipe:
# an image whose label matches is skipped, anything else is rebuilt (and the image it replaces
# removed). Only mmdebstrap needs the network (Debian's package mirror).
#
#   deploy/multilingual/images.sh            # every image
#   deploy/multilingual/images.sh go rust    # some of them (go, rust, node, java)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

did() { printf 'multilingual: did      %s\n' "$*"; }
skipped() { printf 'multilingual: skipped  %s\n' "$*"; }
die() { printf 'multilingual: error    %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker not found"
docker info >/dev/null 2>&1 || die "no Docker engine answers"
command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap not found (deploy/setup.sh installs it)"

build() { # name
  local recipe="$HERE/images/$1.env" hash t0 old work hook
  [ -f "$recipe" ] || die "no recipe images/$1.env (known: $(cd "$HERE/images" && ls -- *.env | sed 's/\.env$//' | tr '\n' ' '))"
  local SANDBOX_IMAGE="" SANDBOX_SUITE="" SANDBOX_PACKAGES="" SANDBOX_ENV="" SANDBOX_WARM="" SANDBOX_EXCLUDE=""
  # shellcheck disable=SC1090
  . "$recipe"
  hash="$(sha256sum "$recipe" | cut -c1-16)"
  if [ "$(docker image inspect -f '{{ index .Config.Labels "org.agentmill.recipe" }}' "$SANDBOX_IMAGE" 2>/dev/null)" = "$hash" ]; then
    skipped "image $SANDBOX_IMAGE (recipe $hash is built)"
    return
  fi
  old="$(docker image inspect -f '{{.Id}}' "$SANDBOX_IMAGE" 2>/dev/null || true)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  t0=$SECONDS
  hook=()
  local -a excludes
  read -r -a excludes <<< "$SANDBOX_EXCLUDE" # split on blanks, never expanded as globs here
  local glob
  for glob in "${excludes[@]}"; do hook+=(--dpkgopt="path-exclude=$glob"); done
  if [ -n "$SANDBOX_WARM" ]; then
    # shellcheck disable=SC2016
    hook+=(--customize-hook="chroot \"\$1\" env HOME=/root $SANDBOX_ENV sh -c '$SANDBOX_WARM'")
  fi
  # The empty man1 folder: packages that register their manual pages as alternatives (the JDK's
  # java.1) fail to configure without it, though the pages themselves are left out.
  # shellcheck disable=SC2016
  mmdebstrap --quiet --variant=minbase --include="$SANDBOX_PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
    "${hook[@]}" "$SANDBOX_SUITE" "$work/rootfs.tar" \
    || die "mmdebstrap could not build the $SANDBOX_SUITE root for $SANDBOX_IMAGE (is Debian's package mirror reachable?)"
  docker import \
    -c "LABEL org.agentmill.recipe=$hash" \
    -c "ENV LANG=C.UTF-8 TZ=UTC $SANDBOX_ENV" \
    -c 'WORKDIR /testbed' \
    -c 'CMD ["sleep", "infinity"]' \
    "$work/rootfs.tar" "$SANDBOX_IMAGE" >/dev/null
  rm -rf "$work"
  trap - EXIT
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$SANDBOX_IMAGE")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
  did "image $SANDBOX_IMAGE (recipe $hash, $((SECONDS - t0)) s, $(docker image inspect -f '{{.Size}}' "$SANDBOX_IMAGE" | awk '{ printf "%d MB", $1 / 1000000 }'))"
}

if [ $# -eq 0 ]; then set -- go rust node java; fi
for name in "$@"; do build "$name"; done
