#!/usr/bin/env bash
# Installs what agentmill needs on a fresh Debian machine, idempotently: every step checks first
# and says whether it did the work or skipped it. Safe to run any number of times.
#
#   deploy/setup.sh            # everything
#   AGENTMILL_NO_DOCKER=1 ...  # skip the sandbox image (hosts without a Docker engine)
#
# What it sets up:
#   1. Debian packages: redis-server, protobuf-compiler, mmdebstrap, bubblewrap, git, patch,
#      chromium (the status page test renders it headless), strace (a learner test traces its
#      fsyncs and acknowledgements), docker-compose where Docker has no
#      compose tool (the compose file is validated with it).
#   2. .venv/ in the repo (ignored by git) with deploy/requirements.txt (torch==2.11.0,
#      swebench 5.x, ...), swebench 4.1.0 in .venv/swebench-4.1.0, swesmith 0.0.9 in
#      .venv/swesmith-0.0.9, harbor 0.25.0 in .venv/harbor-0.25.0 (a Python 3.12 venv of its
#      own), .venv/libtorch -> the wheel's torch/ folder, which .cargo/config.toml points
#      tch at, and llama.cpp's OpenAI-compatible server (llama-cpp-python 0.3.36 with its server
#      extras) in .venv/llama-cpp-0.3.36, from a wheel built once from its sdist into
#      "${XDG_CACHE_HOME:-$HOME/.cache}/agentmill/wheels" (about 4 minutes; PyPI has no Linux wheel).
#   3. The sandbox image agentmill/sandbox-python:bookworm, built offline (mmdebstrap + docker
#      import) when a Docker engine answers.
#   4. The SWE-bench-shaped images agentmill/swebench-django:4.2 and agentmill/swebench-sympy:1.12
#      (deploy/swebench/build.sh: pinned sdists and wheels downloaded once into .cache/swebench/,
#      then docker build FROM the sandbox image) when a Docker engine answers.
#   5. The multilingual sandbox images agentmill/sandbox-{go,rust,node,java}:bookworm
#      (deploy/multilingual/images.sh: mmdebstrap + docker import, each skipped while its recipe's
#      hash matches the image's label) when a Docker engine answers.
#   6. The agent-harness image agentmill/harness-mini-swe-agent:2.4.6 (deploy/harness/build.sh:
#      mini-swe-agent's pinned wheels downloaded once into ~/.cache/agentmill/harness/, then
#      docker build FROM the sandbox image with no network) when a Docker engine answers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

did() { printf 'setup: did      %s\n' "$*"; }
skipped() { printf 'setup: skipped  %s\n' "$*"; }
die() { printf 'setup: error    %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root for: $* (run as root or install sudo)"; fi
}

# --- 1. Debian packages ---------------------------------------------------------------------
DEB_PACKAGES=(redis-server protobuf-compiler mmdebstrap bubblewrap git patch ca-certificates chromium strace cmake g++)
# The compose file's check needs a compose tool: Debian's docker-compose where Docker has none.
if [ "${AGENTMILL_NO_DOCKER:-0}" != 1 ] && ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  DEB_PACKAGES+=(docker-compose)
fi
# The image pull tests run a registry on loopback (worker/tests/image_pull.rs).
# Their credentials test writes the registry's htpasswd file with apache2-utils' htpasswd (bcrypt).
[ "${AGENTMILL_NO_DOCKER:-0}" != 1 ] && DEB_PACKAGES+=(docker-registry apache2-utils)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  skipped "Debian packages (${DEB_PACKAGES[*]} are installed)"
else
  command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  did "Debian packages: installed ${missing[*]}"
  # Debian's docker-registry package enables a registry service on :5000; the tests start their
  # own on loopback, so the host gets none.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

command -v cargo >/dev/null || die "cargo not found; install the Rust toolchain (rustup) first"

# --- 2. Python virtual environment with torch -------------------------------------------------
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
REQ="$ROOT/deploy/requirements.txt"
req_hash="$(sha256sum "$REQ" | cut -d' ' -f1)"
stamp="$VENV/.agentmill-requirements"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_hash" ]; then
  skipped "Python venv .venv (requirements unchanged)"
else
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || die "could not create .venv with $PYTHON (install python3-venv)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" \
    || die "pip could not install deploy/requirements.txt"
  echo "$req_hash" > "$stamp"
  did "Python venv .venv: installed deploy/requirements.txt"
fi
# swebench 4.1.0 beside 5.x (the two generations grade differently; tests compare with both).
# Its dependencies are a subset of 5.x's, already installed above; tests put this folder first
# on PYTHONPATH to import it.
SWEBENCH4="$VENV/swebench-4.1.0"
if [ -f "$SWEBENCH4/swebench-4.1.0.dist-info/METADATA" ]; then
  skipped "swebench 4.1.0 in .venv/swebench-4.1.0"
else
  rm -rf "$SWEBENCH4"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --target "$SWEBENCH4" swebench==4.1.0 \
    || die "pip could not install swebench 4.1.0 into .venv/swebench-4.1.0"
  did "swebench 4.1.0 in .venv/swebench-4.1.0"
fi
# swesmith 0.0.9, SWE-smith's harness (its profiles and log parsers), without its dependencies:
# `swesmith.profiles` needs only docker, ghapi, python-dotenv and unidiff (swebench 5.x's, above)
# and swebench 4.x's names (.venv/swebench-4.1.0). Tests put both folders on PYTHONPATH.
SWESMITH="$VENV/swesmith-0.0.9"
if [ -f "$SWESMITH/swesmith-0.0.9.dist-info/METADATA" ]; then
  skipped "swesmith 0.0.9 in .venv/swesmith-0.0.9"
else
  rm -rf "$SWESMITH"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --target "$SWESMITH" swesmith==0.0.9 \
    || die "pip could not install swesmith 0.0.9 into .venv/swesmith-0.0.9"
  did "swesmith 0.0.9 in .venv/swesmith-0.0.9"
fi
# harbor 0.25.0, the reference for Harbor task directories (task.toml, instruction.md, tests/,
# solution/) and for its verifier's reward files. It needs Python >= 3.12, so it gets a venv of
# its own: python3.12 on PATH, else pyenv's newest 3.12 (3.12 exactly: tomllib, which reads
# task.toml, is TOML 1.0 there). proto/tests/harbor.rs runs tests/reference/harbor_ref.py with it.
HARBOR="$VENV/harbor-0.25.0"
if [ -x "$HARBOR/bin/python" ] && "$HARBOR/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("harbor") != "0.25.0")' 2>/dev/null; then
  skipped "harbor 0.25.0 in .venv/harbor-0.25.0"
else
  # A pyenv shim may sit on PATH without a 3.12 selected, so every candidate is run, not trusted.
  is312() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; }
  py312="$(command -v python3.12 || true)"
  if ! is312 "$py312"; then
    py312=""
    if command -v pyenv >/dev/null 2>&1; then
      for c in $(ls -d "$(pyenv root)"/versions/3.12*/bin/python3.12 2>/dev/null | sort -rV); do
        if is312 "$c"; then py312="$c"; break; fi
      done
    fi
  fi
  [ -n "$py312" ] || die "harbor 0.25.0 needs Python 3.12: install python3.12 (or 'pyenv install 3.12') and run setup again"
  rm -rf "$HARBOR"
  "$py312" -m venv "$HARBOR" || die "$py312 could not make the venv .venv/harbor-0.25.0"
  "$HARBOR/bin/python" -m pip install -q --disable-pip-version-check harbor==0.25.0 \
    || die "pip could not install harbor 0.25.0 into .venv/harbor-0.25.0"
  did "harbor 0.25.0 in .venv/harbor-0.25.0 (Python $("$HARBOR/bin/python" -c 'import platform; print(platform.python_version())'))"
fi
torch_dir="$("$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
# Compared resolved: a .venv reached through a symlink (a git worktree sharing one) names the same
# folder by another path, and relinking it there would break the link for its owner.
if [ "$(readlink -f "$VENV/libtorch" 2>/dev/null)" = "$(readlink -f "$torch_dir")" ]; then
  skipped "link .venv/libtorch (points at the torch wheel)"
else
  ln -sfn "$torch_dir" "$VENV/libtorch"
  did "link .venv/libtorch -> $torch_dir"
fi

# llama.cpp's server (llama-cpp-python), the real OpenAI-compatible model server the tests and the
# closed loop serve the learner's checkpoints with (exported by `agentmill-learner export-gguf`).
# PyPI has only its sdist for Linux, whose C++ build takes minutes: the wheel is built once into a
# cache outside the repo (CI keeps it between runs), then installed into a venv of its own.
LLAMA_VERSION=0.3.36
LLAMA_VENV="$VENV/llama-cpp-$LLAMA_VERSION"
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/agentmill/wheels"
llama_wheel="$WHEELS/llama_cpp_python-$LLAMA_VERSION-py3-none-linux_x86_64.whl"
if [ -x "$LLAMA_VENV/bin/python" ] && "$LLAMA_VENV/bin/python" -c 'import importlib.metadata as m, sys, llama_cpp.server.app; sys.exit(m.version("llama_cpp_python") != "'"$LLAMA_VERSION"'")' 2>/dev/null; then
  skipped "llama-cpp-python $LLAMA_VERSION in .venv/llama-cpp-$LLAMA_VERSION"
else
  if [ -f "$llama_wheel" ]; then
    skipped "llama-cpp-python $LLAMA_VERSION wheel (cached in $WHEELS)"
  else
    mkdir -p "$WHEELS"
    printf 'setup: building llama-cpp-python %s from its sdist (a few minutes, once)\n' "$LLAMA_VERSION"
    "$VENV/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps --no-binary llama-cpp-python \
      -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION" \
      || die "could not build llama-cpp-python $LLAMA_VERSION from its sdist (needs cmake and g++)"
    [ -f "$llama_wheel" ] || die "pip built no $llama_wheel (see its output above)"
    did "llama-cpp-python $LLAMA_VERSION wheel built into $WHEELS"
  fi
  [ -x "$LLAMA_VENV/bin/python" ] || "$PYTHON" -m venv "$LLAMA_VENV" || die "could not create $LLAMA_VENV with $PYTHON"
  "$LLAMA_VENV/bin/python" -m pip install -q --disable-pip-version-check "$llama_wheel[server]" \
    || die "pip could not install llama-cpp-python[server] into .venv/llama-cpp-$LLAMA_VERSION"
  did "llama-cpp-python $LLAMA_VERSION (server) in .venv/llama-cpp-$LLAMA_VERSION"
fi

# --- 3. The sandbox image ----------------------------------------------------------------------
# shellcheck source=sandbox/recipe.env
. "$ROOT/deploy/sandbox/recipe.env"
recipe_hash="$(sha256sum "$ROOT/deploy/sandbox/recipe.env" | cut -c1-16)"
if [ "${AGENTMILL_NO_DOCKER:-0}" = 1 ]; then
  skipped "sandbox image (AGENTMILL_NO_DOCKER=1)"
elif ! docker info >/dev/null 2>&1; then
  skipped "sandbox image: no Docker engine answers (tests that need Docker will fail; set AGENTMILL_NO_DOCKER=1 to say so)"
elif [ "$(docker image inspect -f '{{ index .Config.Labels "org.agentmill.recipe" }}' "$SANDBOX_IMAGE" 2>/dev/null)" = "$recipe_hash" ]; then
  skipped "sandbox image $SANDBOX_IMAGE (recipe $recipe_hash is built)"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  as_root mmdebstrap --quiet --variant=minbase --include="$SANDBOX_PACKAGES" "$SANDBOX_SUITE" "$work/rootfs.tar" \
    || die "mmdebstrap could not build the $SANDBOX_SUITE root (is Debian's package mirror reachable?)"
  docker import \
    -c "LABEL org.agentmill.recipe=$recipe_hash" \
    -c 'ENV LANG=C.UTF-8 TZ=UTC PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1' \
    -c 'WORKDIR /testbed' \
    -c 'CMD ["sleep", "infinity"]' \
    "$work/rootfs.tar" "$SANDBOX_IMAGE" >/dev/null
  rm -rf "$work"
  trap - EXIT
  did "sandbox image $SANDBOX_IMAGE (recipe $recipe_hash)"
fi

# --- 4. The SWE-bench-shaped images (deploy/swebench/) -------------------------------------------
if [ "${AGENTMILL_NO_DOCKER:-0}" = 1 ]; then
  skipped "SWE-bench images (AGENTMILL_NO_DOCKER=1)"
elif ! docker info >/dev/null 2>&1; then
  skipped "SWE-bench images: no Docker engine answers"
else
  "$ROOT/deploy/swebench/build.sh" || die "deploy/swebench/build.sh failed (its error is above)"
fi

# --- 5. The multilingual sandbox images (deploy/multilingual/) ----------------------------------
if [ "${AGENTMILL_NO_DOCKER:-0}" = 1 ]; then
  skipped "multilingual images (AGENTMILL_NO_DOCKER=1)"
elif ! docker info >/dev/null 2>&1; then
  skipped "multilingual images: no Docker engine answers"
else
  "$ROOT/deploy/multilingual/images.sh" || die "deploy/multilingual/images.sh failed (its error is above)"
fi

# --- 6. The agent-harness images (deploy/harness/) ---------------------------------------------
if [ "${AGENTMILL_NO_DOCKER:-0}" = 1 ]; then
  skipped "harness images (AGENTMILL_NO_DOCKER=1)"
elif ! docker info >/dev/null 2>&1; then
  skipped "harness images: no Docker engine answers"
else
  "$ROOT/deploy/harness/build.sh" || die "deploy/harness/build.sh failed (its error is above)"
fi

echo "setup: ready"
