#!/usr/bin/env bash
# Regenerates the multilingual task corpus (Go, Rust, JavaScript, Java) from src/:
#
#   archives/<instance_id>.tar.gz   the repo at the base commit (deterministic tar + gzip)
#   tasks.jsonl                     one SWE-bench (Multilingual-shaped) row per task, by instance_id
#
#   deploy/multilingual/build.sh           # rewrite archives/ and tasks.jsonl in place
#   deploy/multilingual/build.sh --check   # rebuild into a temp dir; fail if the committed files differ
#
# This file is the corpus's profile; deploy/corpus/build.sh (shared with deploy/tasks/) does the
# work, with the base commit made exactly as for the Python corpus, and keeps the table of
# languages (what a test file is, what each language's archives leave out).
set -euo pipefail

# Every task names its language, sandbox image and test command, and has a trap fix; its row is
# SWE-bench's instance fields in SWE-bench's order, then the spec this repository carries itself
# (SWE-bench's table does not know it), then agentmill's fields.
CORPUS_PATCHES="gold.patch test.patch wrong.patch" \
CORPUS_TASK_FIELDS="language image test_cmd log_parser" \
CORPUS_ROW="repo instance_id base_commit patch test_patch problem_statement hints_text created_at version
  FAIL_TO_PASS PASS_TO_PASS environment_setup_commit family language test_cmd log_parser image workdir
  source archive labels difficulty" \
  exec "$(dirname "${BASH_SOURCE[0]}")/../corpus/build.sh" "$(dirname "${BASH_SOURCE[0]}")" "$@"
