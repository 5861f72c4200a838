#!/usr/bin/env bash
# Builds the agent-harness sandbox images, offline and idempotently (each step says whether it did
# the work or skipped it):
#
#   agentmill/harness-mini-swe-agent:2.4.6   mini-swe-agent (PyPI) on agentmill/sandbox-python:bookworm
#
# 1. Downloads the pinned wheels (deploy/harness/mini-swe-agent/requirements.txt, plus pip's own
#    wheel) once into "${XDG_CACHE_HOME:-$HOME/.cache}/agentmill/harness/mini-swe-agent/" with pip
#    (CPython 3.11 manylinux wheels: the sandbox image's Python). A stamp holding the requirements'
#    hash marks a complete download; only this step needs PyPI.
# 2. `docker build` FROM the sandbox base image with the wheels copied into the context: pip runs
#    from its wheel (the base image has none) with --no-index. The image carries a hash of its
#    recipe (this script, the folder's files, the base image's recipe) as the label
#    org.agentmill.recipe: a matching image is skipped, anything else rebuilt.
#
# A worker runs mini-swe-agent episodes in this image when its policy endpoint says
# harness = "mini-swe-agent" (deploy/OPERATIONS.md, [policy.endpoints.*]).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/harness/mini-swe-agent"
IMAGE=agentmill/harness-mini-swe-agent:2.4.6
BASE_IMAGE=agentmill/sandbox-python:bookworm
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/agentmill/harness/mini-swe-agent"

did() { printf 'harness: did      %s\n' "$*"; }
skipped() { printf 'harness: skipped  %s\n' "$*"; }
die() { printf 'harness: error    %s\n' "$*" >&2; exit 1; }

PY="${AGENTMILL_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi

# --- 1. the wheels ------------------------------------------------------------------------------
want="$(sha256sum "$HERE/requirements.txt" | cut -c1-16)"
if [ -f "$CACHE/complete" ] && [ "$(cat "$CACHE/complete")" = "$want" ]; then
  skipped "mini-swe-agent wheels (in $CACHE, requirements $want)"
else
  rm -rf "$CACHE/wheels.part"
  mkdir -p "$CACHE/wheels.part"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_34_x86_64 --platform linux_x86_64 --platform any \
    -d "$CACHE/wheels.part" -r "$HERE/requirements.txt" pip \
    || die "pip could not download the wheels of $HERE/requirements.txt (is PyPI reachable? is pip installed for $PY?)"
  rm -rf "$CACHE/wheels"
  mv "$CACHE/wheels.part" "$CACHE/wheels"
  printf '%s\n' "$want" > "$CACHE/complete"
  did "mini-swe-agent wheels ($(find "$CACHE/wheels" -name '*.whl' | wc -l) files into $CACHE)"
fi

# --- 2. the image -------------------------------------------------------------------------------
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "the base image $BASE_IMAGE is missing; run deploy/setup.sh"
recipe="$(cat "${BASH_SOURCE[0]}" "$HERE/Dockerfile" "$HERE/requirements.txt" "$ROOT/deploy/sandbox/recipe.env" | sha256sum | cut -c1-16)"
have="$(docker image inspect -f '{{ index .Config.Labels "org.agentmill.recipe" }}' "$IMAGE" 2>/dev/null || true)"
if [ "$have" = "$recipe" ]; then
  skipped "image $IMAGE (recipe $recipe is built)"
  exit 0
fi
context="$(mktemp -d)"
log="$(mktemp)"
trap 'rm -rf "$context" "$log"' EXIT
cp "$HERE/Dockerfile" "$HERE/requirements.txt" "$context/"
cp -r "$CACHE/wheels" "$context/wheels"
if ! DOCKER_BUILDKIT=0 docker build --network none --build-arg "BASE=$BASE_IMAGE" --build-arg "RECIPE=$recipe" -t "$IMAGE" "$context" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "docker build of $IMAGE failed (the end of its log is above)"
fi
did "image $IMAGE (recipe $recipe)"
