#!/usr/bin/env bash
# Builds a task corpus from its reviewable sources, for every corpus the repository bundles
# (deploy/tasks/, deploy/multilingual/). A corpus is a folder whose src/<instance_id>/ hold its
# tasks; this writes beside src/:
#
#   archives/<instance_id>.tar.gz   the repo at the base commit (deterministic tar + gzip)
#   tasks.jsonl                     one SWE-bench row per task, sorted by instance_id
#
#   deploy/tasks/build.sh [--check]          # a corpus's entry point: its profile, then this
#   deploy/corpus/build.sh DIR [--check]     # what it runs (--check: rebuild into a temp dir;
#                                            # fail if the committed files differ)
#
# A task folder holds repo/ (the project at its base), task.json (the issue, its tests, labels),
# gold.patch, test.patch and, where the task has them, wrong.patch / partial.patch (fixes that
# must not resolve it). Needs bash, GNU tar, gzip, git and python3 (used only to validate
# task.json and encode JSON). The output depends on nothing but the contents of src/, so
# running it twice gives byte-identical files.
#
# What differs by language is one line of LANGUAGES below; what differs by corpus is its
# profile, set by the corpus's build.sh in these variables:
#   CORPUS_PATCHES      the patches every task has (e.g. "gold.patch test.patch")
#   CORPUS_TASK_FIELDS  task.json's fields beyond the common ones (e.g. "language image test_cmd log_parser")
#   CORPUS_LANGUAGE     the language of a task whose task.json names none
#   CORPUS_IMAGE        the sandbox image of a task whose task.json names none
#   CORPUS_ROW          a row's fields, in their order
set -euo pipefail

# The languages a task may be written in, one line each:
#   test files  the files test.patch changes, and no fix may change
#   test names  what every FAIL_TO_PASS / PASS_TO_PASS entry looks like
#   left out    build output and caches no archive carries (comma-separated; - for none)
# Patterns are globs whose * also matches /. (The sandbox image a language runs in is its
# task.json's `image`; the multilingual images are deploy/multilingual/images/<name>.env.)
LANGUAGES="
# language  test files  test names  left out
python      tests/*     tests/*::*  __pycache__,.pytest_cache,*.pyc
go          *_test.go   *           -
rust        tests/*     *           ./target
javascript  test/*      *           node_modules
java        src/test/*  *           ./target
"

usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
CORPUS="${1:-}"
[ -n "$CORPUS" ] && [ -d "$CORPUS/src" ] || { printf 'corpus/build.sh: error: name a corpus folder (one holding src/)\n' >&2; exit 1; }
CORPUS="$(cd "$CORPUS" && pwd)"
shift
NAME="$(basename "$CORPUS")/build.sh"
SRC="$CORPUS/src"

die() { printf '%s: error: %s\n' "$NAME" "$*" >&2; exit 1; }

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h|--help) usage; exit 0 ;;
  *) die "unknown argument: $1 (expected --check)" ;;
esac
[ $# -le 1 ] || die "too many arguments"
: "${CORPUS_PATCHES:?set by the corpus build.sh}" "${CORPUS_ROW:?set by the corpus build.sh}"
export CORPUS_PATCHES CORPUS_ROW CORPUS_TASK_FIELDS="${CORPUS_TASK_FIELDS:-}" CORPUS_LANGUAGE="${CORPUS_LANGUAGE:-}" CORPUS_IMAGE="${CORPUS_IMAGE:-}"

for tool in tar gzip git python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

export LC_ALL=C TZ=UTC
# Keep the caller's git configuration (hooks, autocrlf, signing, ...) out of the base commit.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [ "$check" = 1 ]; then OUT="$WORK/out"; else OUT="$CORPUS"; fi
mkdir -p "$OUT/archives"
STAGE="$WORK/stage"          # new archives and rows are written here first
mkdir -p "$STAGE/archives" "$STAGE/rows"

mapfile -t ids < <(find "$SRC" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
[ ${#ids[@]} -gt 0 ] || die "no tasks under $SRC"

for id in "${ids[@]}"; do
  dir="$SRC/$id"
  [[ "$id" =~ ^agentmill__[a-z0-9]+-[0-9]+$ ]] || die "$id: instance_id must look like agentmill__<project>-<n>"
  for f in repo task.json $CORPUS_PATCHES; do
    [ -e "$dir/$f" ] || die "$id: missing $f"
  done

  # 0. The task's language, and its line of LANGUAGES.
  language="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1], encoding="utf-8")).get("language", sys.argv[2]))' "$dir/task.json" "$CORPUS_LANGUAGE")" \
    || die "$id: task.json is not a JSON object"
  read -r _ test_files test_names left_out < <(awk -v l="$language" '$1 == l' <<<"$LANGUAGES") \
    || die "$id: language '$language' is not one of: $(awk 'NF && $1 != "#" { printf "%s%s", sep, $1; sep = " " }' <<<"$LANGUAGES")"

  # 1. The archive: plain files of the base commit, no build output or caches, normalised
  #    owner/mode/mtime.
  excludes=()
  if [ "$left_out" != - ]; then
    IFS=, read -ra patterns <<<"$left_out"
    for p in "${patterns[@]}"; do excludes+=(--exclude="$p"); done
  fi
  archive="$STAGE/archives/$id.tar.gz"
  tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner --format=gnu \
      --mode='u+rwX,go+rX,go-w' "${excludes[@]}" \
      -C "$dir/repo" -cf - . | gzip -n -9 > "$archive"

  # 2. The base commit, made exactly as the worker makes it after uploading the archive.
  tree="$WORK/git/$id"
  mkdir -p "$tree"
  tar -xzf "$archive" -C "$tree"
  (
    cd "$tree"
    git -c init.defaultBranch=main init -q
    git add -A
    GIT_AUTHOR_NAME=agentmill GIT_AUTHOR_EMAIL=agentmill@localhost \
    GIT_COMMITTER_NAME=agentmill GIT_COMMITTER_EMAIL=agentmill@localhost \
    GIT_AUTHOR_DATE='2000-01-01T00:00:00Z' GIT_COMMITTER_DATE='2000-01-01T00:00:00Z' \
      git -c commit.gpgsign=false -c init.defaultBranch=main commit -q -m base
  )
  base_commit="$(git -C "$tree" rev-parse HEAD)"

  # 3. Every shipped patch must apply to the base commit, and the gold patch on top of the test
  #    patch (that is how tasks are graded).
  for p in gold.patch test.patch wrong.patch partial.patch; do
    [ -e "$dir/$p" ] || continue
    git -C "$tree" apply --check "$dir/$p" 2>"$WORK/apply.err" \
      || die "$id: $p does not apply to the base commit: $(cat "$WORK/apply.err")"
  done
  git -C "$tree" apply "$dir/test.patch"
  git -C "$tree" apply --check "$dir/gold.patch" 2>"$WORK/apply.err" \
    || die "$id: gold.patch does not apply after test.patch: $(cat "$WORK/apply.err")"

  # 4. The JSON row (python3 is used for JSON encoding and field validation only).
  CORPUS_NAME="$NAME" python3 - "$id" "$dir" "$base_commit" "$language" "$test_files" "$test_names" > "$STAGE/rows/$id.json" <<'PY'
import json, os, re, sys
from fnmatch import fnmatchcase

instance_id, task_dir, base_commit, language, test_files, test_names = sys.argv[1:7]

def fail(msg):
    sys.exit(f"{os.environ['CORPUS_NAME']}: error: {instance_id}: {msg}")

def read(name):
    with open(f"{task_dir}/{name}", encoding="utf-8", newline="") as fp:
        return fp.read()

def touched(patch):
    return re.findall(r"^diff --git a/(\S+) b/\S+$", patch, flags=re.M)

meta = json.loads(read("task.json"))
required = ["problem_statement", "hints_text", "FAIL_TO_PASS", "PASS_TO_PASS", "created_at",
            "difficulty", "labels"] + os.environ["CORPUS_TASK_FIELDS"].split()
missing = [k for k in required if k not in meta]
if missing:
    fail(f"task.json lacks {missing}")
extra = sorted(set(meta) - set(required))
if extra:
    fail(f"task.json has unknown fields {extra}")
for key in ("FAIL_TO_PASS", "PASS_TO_PASS"):
    ids = meta[key]
    if not ids or not all(isinstance(t, str) and t.strip() and fnmatchcase(t, test_names) for t in ids):
        fail(f"{key} must be a non-empty list of {language} test names like {test_names!r}")
    if len(set(ids)) != len(ids):
        fail(f"{key} has duplicates")
if set(meta["FAIL_TO_PASS"]) & set(meta["PASS_TO_PASS"]):
    fail("a test is in both FAIL_TO_PASS and PASS_TO_PASS")
# The test command: one command, or a list run one after another (SWE-bench's spec tables list
# Java's, one `mvn test -Dtest=...` per test).
test_cmd = meta.get("test_cmd")
if isinstance(test_cmd, list):
    if not test_cmd or not all(isinstance(c, str) and c.strip() and "\n" not in c for c in test_cmd):
        fail("test_cmd as a list must hold one-line commands")
elif test_cmd is not None and (not isinstance(test_cmd, str) or not test_cmd.strip()):
    fail("test_cmd must be a command or a list of commands")
if meta.get("log_parser") == "parse_log_maven":
    # The parser names each result after the `-Dtest=` of the command that ran before it: one
    # command per listed test, each test exactly once.
    commands = test_cmd if isinstance(test_cmd, list) else [test_cmd]
    named = [m for c in commands for m in re.findall(r"-Dtest=(\S+)", c)]
    if [len(re.findall(r"-Dtest=", c)) for c in commands] != [1] * len(commands):
        fail("each maven test command must name exactly one -Dtest=")
    if named != meta["FAIL_TO_PASS"] + meta["PASS_TO_PASS"]:
        fail("the maven test commands must run FAIL_TO_PASS then PASS_TO_PASS, one -Dtest= each, in their order")

def is_test(path):
    return fnmatchcase(path, test_files)

patch, test_patch = read("gold.patch"), read("test.patch")
for name in ("gold.patch", "wrong.patch", "partial.patch"):
    if name != "gold.patch" and not os.path.exists(f"{task_dir}/{name}"):
        continue
    files = touched(read(name))
    if not files or any(is_test(p) for p in files):
        fail(f"{name} must change source files only (no {language} test files: {test_files})")
if not touched(test_patch) or not all(is_test(p) for p in touched(test_patch)):
    fail(f"test.patch must change {language} test files only ({test_files})")

project = instance_id.split("__", 1)[1].rsplit("-", 1)[0]
# Every field a row may carry; the corpus's profile picks them and their order.
fields = {
    "repo": f"agentmill/{project}",
    "instance_id": instance_id,
    "base_commit": base_commit,
    "patch": patch,
    "test_patch": test_patch,
    "problem_statement": meta["problem_statement"],
    "hints_text": meta["hints_text"],
    "created_at": meta["created_at"],
    "version": "0.1",
    "FAIL_TO_PASS": json.dumps(meta["FAIL_TO_PASS"], ensure_ascii=False),
    "PASS_TO_PASS": json.dumps(meta["PASS_TO_PASS"], ensure_ascii=False),
    "environment_setup_commit": base_commit,
    # The spec a row carries where SWE-bench's table does not know its repository.
    "family": "swe-bench",
    "language": language,
    "test_cmd": meta.get("test_cmd"),
    "log_parser": meta.get("log_parser"),
    "image": meta.get("image") or os.environ["CORPUS_IMAGE"] or None,
    # agentmill's fields.
    "workdir": "/testbed",
    "source": "archive",
    "archive": f"archives/{instance_id}.tar.gz",
    "labels": meta["labels"],
    "difficulty": meta["difficulty"],
}
row = {}
for key in os.environ["CORPUS_ROW"].split():
    if key not in fields:
        fail(f"CORPUS_ROW names {key!r}, which no row carries (one of {sorted(fields)})")
    if fields[key] is None:
        fail(f"a row of this corpus carries {key!r}: name it in task.json")
    row[key] = fields[key]
sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
PY
  printf '%s: %-28s base_commit %s\n' "$NAME" "$id" "$base_commit" >&2
done

# 5. Publish: tasks.jsonl in instance_id order, archives/ holding exactly one file per task.
for id in "${ids[@]}"; do cat "$STAGE/rows/$id.json"; done > "$STAGE/tasks.jsonl"
find "$OUT/archives" -mindepth 1 -maxdepth 1 -name '*.tar.gz' -delete
cp "$STAGE/archives/"*.tar.gz "$OUT/archives/"
cp "$STAGE/tasks.jsonl" "$OUT/tasks.jsonl"

if [ "$check" = 1 ]; then
  status=0
  cmp -s "$OUT/tasks.jsonl" "$CORPUS/tasks.jsonl" || { echo "$NAME: tasks.jsonl is out of date" >&2; status=1; }
  committed="$(cd "$CORPUS" && find archives -mindepth 1 -maxdepth 1 2>/dev/null | sort)"
  expected="$(cd "$OUT" && find archives -mindepth 1 -maxdepth 1 | sort)"
  [ "$committed" = "$expected" ] || { echo "$NAME: archives/ does not hold exactly one archive per task" >&2; status=1; }
  for id in "${ids[@]}"; do
    cmp -s "$OUT/archives/$id.tar.gz" "$CORPUS/archives/$id.tar.gz" 2>/dev/null \
      || { echo "$NAME: archives/$id.tar.gz is out of date" >&2; status=1; }
  done
  [ "$status" = 0 ] || die "generated files are out of sync with src/; run deploy/$NAME"
  echo "$NAME: ${#ids[@]} tasks, tasks.jsonl and archives/ are up to date" >&2
else
  echo "$NAME: wrote tasks.jsonl and ${#ids[@]} archives" >&2
fi
