#!/usr/bin/env bash
# Regenerates the multilingual task corpus (Go, Rust, JavaScript, Java) from src/:
#
#   archives/<instance_id>.tar.gz   the repo at the base commit (deterministic tar + gzip)
#   tasks.jsonl                     one SWE-bench (Multilingual-shaped) row per task, by instance_id
#
#   deploy/multilingual/build.sh           # rewrite archives/ and tasks.jsonl in place
#   deploy/multilingual/build.sh --check   # rebuild into a temp dir; fail if the committed files differ
#
# Needs bash, GNU tar, gzip, git and python3 (used only to validate task.json and encode JSON).
# The output depends on nothing but the contents of src/, so running it twice gives
# byte-identical files. The base commit is made exactly as for the Python corpus
# (deploy/tasks/README.md, "base_commit").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/src"

die() { printf 'multilingual/build.sh: error: %s\n' "$*" >&2; exit 1; }

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (expected --check)" ;;
esac
[ $# -le 1 ] || die "too many arguments"

for tool in tar gzip git python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

export LC_ALL=C TZ=UTC
# Keep the caller's git configuration (hooks, autocrlf, signing, ...) out of the base commit.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [ "$check" = 1 ]; then OUT="$WORK/out"; else OUT="$HERE"; fi
mkdir -p "$OUT/archives"
STAGE="$WORK/stage"
mkdir -p "$STAGE/archives" "$STAGE/rows"

mapfile -t ids < <(find "$SRC" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
[ ${#ids[@]} -gt 0 ] || die "no tasks under $SRC"

for id in "${ids[@]}"; do
  dir="$SRC/$id"
  [[ "$id" =~ ^agentmill__[a-z0-9]+-[0-9]+$ ]] || die "$id: instance_id must look like agentmill__<project>-<n>"
  for f in repo task.json gold.patch test.patch wrong.patch; do
    [ -e "$dir/$f" ] || die "$id: missing $f"
  done

  # 1. The archive: plain files of the base commit, no build output, normalised owner/mode/mtime.
  archive="$STAGE/archives/$id.tar.gz"
  tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner --format=gnu \
      --mode='u+rwX,go+rX,go-w' \
      --exclude='./target' --exclude='node_modules' \
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
  for p in gold.patch test.patch wrong.patch; do
    git -C "$tree" apply --check "$dir/$p" 2>"$WORK/apply.err" \
      || die "$id: $p does not apply to the base commit: $(cat "$WORK/apply.err")"
  done
  git -C "$tree" apply "$dir/test.patch"
  git -C "$tree" apply --check "$dir/gold.patch" 2>"$WORK/apply.err" \
    || die "$id: gold.patch does not apply after test.patch: $(cat "$WORK/apply.err")"

  # 4. The JSON row (python3 is used for JSON encoding and field validation only).
  python3 - "$id" "$dir" "$base_commit" > "$STAGE/rows/$id.json" <<'PY'
import json, re, sys

instance_id, task_dir, base_commit = sys.argv[1:4]

def fail(msg):
    sys.exit(f"multilingual/build.sh: error: {instance_id}: {msg}")

def read(name):
    with open(f"{task_dir}/{name}", encoding="utf-8", newline="") as fp:
        return fp.read()

def touched(patch):
    return re.findall(r"^diff --git a/(\S+) b/\S+$", patch, flags=re.M)

# What a test file is, per language: the test patch touches only these, the fixes none of them.
TEST_FILE = {
    "go": lambda p: p.endswith("_test.go"),
    "rust": lambda p: p.startswith("tests/"),
    "javascript": lambda p: p.startswith("test/"),
    "java": lambda p: p.startswith("src/test/"),
}

meta = json.loads(read("task.json"))
required = ["problem_statement", "hints_text", "FAIL_TO_PASS", "PASS_TO_PASS", "created_at",
            "difficulty", "labels", "language", "image", "test_cmd", "log_parser"]
missing = [k for k in required if k not in meta]
if missing:
    fail(f"task.json lacks {missing}")
extra = sorted(set(meta) - set(required))
if extra:
    fail(f"task.json has unknown fields {extra}")
if meta["language"] not in TEST_FILE:
    fail(f"language {meta['language']!r} is not one of {sorted(TEST_FILE)}")
for key in ("FAIL_TO_PASS", "PASS_TO_PASS"):
    ids = meta[key]
    if not ids or not all(isinstance(t, str) and t.strip() for t in ids):
        fail(f"{key} must be a non-empty list of test names")
    if len(set(ids)) != len(ids):
        fail(f"{key} has duplicates")
if set(meta["FAIL_TO_PASS"]) & set(meta["PASS_TO_PASS"]):
    fail("a test is in both FAIL_TO_PASS and PASS_TO_PASS")
# The test command: one command, or a list run one after another (SWE-bench's spec tables list
# Java's, one `mvn test -Dtest=...` per test).
test_cmd = meta["test_cmd"]
if isinstance(test_cmd, list):
    if not test_cmd or not all(isinstance(c, str) and c.strip() and "\n" not in c for c in test_cmd):
        fail("test_cmd as a list must hold one-line commands")
elif not isinstance(test_cmd, str) or not test_cmd.strip():
    fail("test_cmd must be a command or a list of commands")
if meta["log_parser"] == "parse_log_maven":
    # The parser names each result after the `-Dtest=` of the command that ran before it: one
    # command per listed test, each test exactly once.
    commands = test_cmd if isinstance(test_cmd, list) else [test_cmd]
    named = [m for c in commands for m in re.findall(r"-Dtest=(\S+)", c)]
    if [len(re.findall(r"-Dtest=", c)) for c in commands] != [1] * len(commands):
        fail("each maven test command must name exactly one -Dtest=")
    if named != meta["FAIL_TO_PASS"] + meta["PASS_TO_PASS"]:
        fail("the maven test commands must run FAIL_TO_PASS then PASS_TO_PASS, one -Dtest= each, in their order")

is_test = TEST_FILE[meta["language"]]
patch, test_patch = read("gold.patch"), read("test.patch")
for name in ("gold.patch", "wrong.patch"):
    files = touched(read(name))
    if not files or any(is_test(p) for p in files):
        fail(f"{name} must change source files only (no {meta['language']} test files)")
if not touched(test_patch) or not all(is_test(p) for p in touched(test_patch)):
    fail(f"test.patch must change {meta['language']} test files only")

project = instance_id.split("__", 1)[1].rsplit("-", 1)[0]
# SWE-bench's instance fields in its order, then the spec this repository carries itself
# (SWE-bench's table does not know it), then agentmill's fields.
row = {
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
    "family": "swe-bench",
    "language": meta["language"],
    "test_cmd": meta["test_cmd"],
    "log_parser": meta["log_parser"],
    "image": meta["image"],
    "workdir": "/testbed",
    "source": "archive",
    "archive": f"archives/{instance_id}.tar.gz",
    "labels": meta["labels"],
    "difficulty": meta["difficulty"],
}
sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
PY
  printf 'multilingual/build.sh: %-28s base_commit %s\n' "$id" "$base_commit" >&2
done

# 5. Publish: tasks.jsonl in instance_id order, archives/ holding exactly one file per task.
for id in "${ids[@]}"; do cat "$STAGE/rows/$id.json"; done > "$STAGE/tasks.jsonl"
find "$OUT/archives" -mindepth 1 -maxdepth 1 -name '*.tar.gz' -delete
cp "$STAGE/archives/"*.tar.gz "$OUT/archives/"
cp "$STAGE/tasks.jsonl" "$OUT/tasks.jsonl"

if [ "$check" = 1 ]; then
  status=0
  cmp -s "$OUT/tasks.jsonl" "$HERE/tasks.jsonl" || { echo "multilingual/build.sh: tasks.jsonl is out of date" >&2; status=1; }
  committed="$(cd "$HERE" && find archives -mindepth 1 -maxdepth 1 2>/dev/null | sort)"
  expected="$(cd "$OUT" && find archives -mindepth 1 -maxdepth 1 | sort)"
  [ "$committed" = "$expected" ] || { echo "multilingual/build.sh: archives/ does not hold exactly one archive per task" >&2; status=1; }
  for id in "${ids[@]}"; do
    cmp -s "$OUT/archives/$id.tar.gz" "$HERE/archives/$id.tar.gz" 2>/dev/null \
      || { echo "multilingual/build.sh: archives/$id.tar.gz is out of date" >&2; status=1; }
  done
  [ "$status" = 0 ] || die "generated files are out of sync with src/; run deploy/multilingual/build.sh"
  echo "multilingual/build.sh: ${#ids[@]} tasks, tasks.jsonl and archives/ are up to date" >&2
else
  echo "multilingual/build.sh: wrote tasks.jsonl and ${#ids[@]} archives" >&2
fi
