#!/usr/bin/env bash
# Builds the SWE-bench-shaped sandbox images, offline, idempotently (each step says whether it did
# the work or skipped it; safe to run any number of times):
#
#   agentmill/swebench-django:4.2   Django 4.2.16's tree at /testbed (tests/runtests.py runs it)
#   agentmill/swebench-sympy:1.12   SymPy 1.12's tree at /testbed (bin/test runs it)
#
# 1. Downloads the pinned sdists and wheels once into .cache/swebench/ (ignored by git) and checks
#    each file's sha256 against the value written below; a file already there with the right
#    hash is not fetched again. Only this step needs the network (PyPI's file host).
# 2. Builds each image with `docker build` (the legacy builder, no registry) from
#    deploy/swebench/<name>/ and its downloads, FROM the sandbox base image deploy/setup.sh
#    builds. The image carries a hash of its recipe (its folder's files, its downloads' hashes,
#    the base image's recipe) as the label org.agentmill.recipe: an image whose label matches is
#    skipped, anything else is rebuilt.
# 3. Checks that each image's HEAD is the base_commit its row in deploy/swebench/tasks.jsonl
#    names (a changed bug patch changes the commit: remake the rows, see README.md).
#
#   deploy/swebench/build.sh            # both images
#   deploy/swebench/build.sh django     # one of them (django, sympy)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/swebench"
CACHE="$ROOT/.cache/swebench"
BASE_IMAGE=agentmill/sandbox-python:bookworm

did() { printf 'swebench: did      %s\n' "$*"; }
skipped() { printf 'swebench: skipped  %s\n' "$*"; }
die() { printf 'swebench: error    %s\n' "$*" >&2; exit 1; }

# file  sha256  url (PyPI's own addresses for these exact files)
DOWNLOADS="
Django-4.2.16.tar.gz 6f1616c2786c408ce86ab7e10f792b8f15742f7b7b7460243929cb371e7f1dad https://files.pythonhosted.org/packages/65/d8/a607ee443b54a4db4ad28902328b906ae6218aa556fb9b3ac45c0bcb313d/Django-4.2.16.tar.gz
asgiref-3.8.1-py3-none-any.whl 3e1e3ecc849832fe52ccf2cb6686b7a55f82bb1d6aee72a58826471390335e47 https://files.pythonhosted.org/packages/39/e3/893e8757be2612e6c266d9bb58ad2e3651524b5b40cf56761e985a28b13e/asgiref-3.8.1-py3-none-any.whl
sqlparse-0.5.1-py3-none-any.whl 773dcbf9a5ab44a090f3441e2180efe2560220203dc2f8c0b0fa141e18b505e4 https://files.pythonhosted.org/packages/5d/a5/b2860373aa8de1e626b2bdfdd6df4355f0565b47e51f7d0c54fe70faf8fe/sqlparse-0.5.1-py3-none-any.whl
sympy-1.12.tar.gz ebf595c8dac3e0fdc4152c51878b498396ec7f30e7a914d6071e674d49420fb8 https://files.pythonhosted.org/packages/e5/57/3485a1a3dff51bfd691962768b14310dae452431754bfc091250be50dd29/sympy-1.12.tar.gz
mpmath-1.3.0-py3-none-any.whl a0b2b9fe80bbcd81a6647ff13108738cfb482d481d826cc0e02f5b35e5c88d2c https://files.pythonhosted.org/packages/43/e3/7d92a15f894aa0c9c4b49b8ee9ac9850d6e63b03c9c32c0367a13ae62209/mpmath-1.3.0-py3-none-any.whl
"

# name  image  row  downloads it needs
IMAGES="
django agentmill/swebench-django:4.2 agentmill__django-1 Django-4.2.16.tar.gz asgiref-3.8.1-py3-none-any.whl sqlparse-0.5.1-py3-none-any.whl
sympy agentmill/swebench-sympy:1.12 agentmill__sympy-1 sympy-1.12.tar.gz mpmath-1.3.0-py3-none-any.whl
"

pin() { # file -> "sha256 url"
  local line
  line="$(printf '%s\n' "$DOWNLOADS" | awk -v f="$1" '$1 == f { print $2, $3 }')"
  [ -n "$line" ] || die "no pinned download named $1"
  printf '%s\n' "$line"
}

download() { # url path: curl where there is one, else Python's urllib
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1"
  else
    python3 -c 'import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)' "$1" "$2"
  fi
}

fetch() { # file: into the cache, checked
  local file="$1" sha url got
  read -r sha url <<<"$(pin "$file")"
  if [ -f "$CACHE/$file" ] && [ "$(sha256sum "$CACHE/$file" | cut -d' ' -f1)" = "$sha" ]; then
    skipped "download $file (in .cache/swebench, sha256 matches)"
    return
  fi
  mkdir -p "$CACHE"
  download "$url" "$CACHE/$file.part" || die "could not download $url (is PyPI's file host reachable?)"
  got="$(sha256sum "$CACHE/$file.part" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    rm -f "$CACHE/$file.part"
    die "$url has sha256 $got, not the pinned $sha: refusing it"
  fi
  mv "$CACHE/$file.part" "$CACHE/$file"
  did "download $file (sha256 $sha)"
}

recipe_hash() { # name downloads... -> the image's recipe hash
  local name="$1" base_label; shift
  base_label="$(docker image inspect -f '{{ index .Config.Labels "org.agentmill.recipe" }}' "$BASE_IMAGE" 2>/dev/null)" \
    || die "the base image $BASE_IMAGE is missing; run deploy/setup.sh first"
  {
    echo "base $BASE_IMAGE $base_label"
    (cd "$HERE/$name" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    for f in "$@"; do echo "download $f $(pin "$f")"; done
  } | sha256sum | cut -c1-16
}

build() { # name image downloads...
  local name="$1" image="$2"; shift 2
  local f hash ctx t0 out old
  for f in "$@"; do fetch "$f"; done
  hash="$(recipe_hash "$name" "$@")"
  if [ "$(docker image inspect -f '{{ index .Config.Labels "org.agentmill.recipe" }}' "$image" 2>/dev/null)" = "$hash" ]; then
    skipped "image $image (recipe $hash is built)"
  else
    old="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
    ctx="$(mktemp -d)"
    trap 'rm -rf "$ctx"' EXIT
    cp -p "$HERE/$name"/* "$ctx/"
    for f in "$@"; do cp "$CACHE/$f" "$ctx/"; done
    t0=$SECONDS
    if ! out="$(DOCKER_BUILDKIT=0 docker build --label "org.agentmill.recipe=$hash" -t "$image" "$ctx" 2>&1)"; then
      printf '%s\n' "$out" >&2
      die "docker build of $image failed (its output is above)"
    fi
    rm -rf "$ctx"
    trap - EXIT
    # The image this one replaces, if nothing else uses it.
    if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
      docker rmi "$old" >/dev/null 2>&1 || true
    fi
    did "image $image (recipe $hash, $((SECONDS - t0)) s)"
  fi
}

check_row() { # image row: the image's HEAD is the row's base_commit
  local image="$1" row="$2" head want
  head="$(docker run --rm --network none "$image" git -C /testbed rev-parse HEAD)"
  want="$(python3 -c 'import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    if row["instance_id"] == sys.argv[2]:
        print(row["base_commit"])' "$HERE/tasks.jsonl" "$row" 2>/dev/null || true)"
  [ "$head" = "$want" ] || die "$image is at $head but $row in deploy/swebench/tasks.jsonl says base_commit ${want:-(none)}: remake the rows (deploy/swebench/README.md)"
}

command -v docker >/dev/null 2>&1 || die "docker not found"
docker info >/dev/null 2>&1 || die "no Docker engine answers"

only="${1:-}"
selected=()
while read -r name image row downloads; do
  [ -n "$name" ] || continue
  [ -z "$only" ] || [ "$only" = "$name" ] || continue
  selected+=("$image $row")
  # shellcheck disable=SC2086
  build "$name" "$image" $downloads
done <<<"$IMAGES"
[ ${#selected[@]} -gt 0 ] || die "no image named $only (django, sympy)"
for s in "${selected[@]}"; do
  # shellcheck disable=SC2086
  check_row $s
done
