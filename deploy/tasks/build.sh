#!/usr/bin/env bash
# Regenerates the bundled task corpus (Python) from src/:
#
#   archives/<instance_id>.tar.gz   the repo at the base commit (deterministic tar + gzip)
#   tasks.jsonl                     one SWE-bench row per task, sorted by instance_id
#
#   deploy/tasks/build.sh           # rewrite archives/ and tasks.jsonl in place
#   deploy/tasks/build.sh --check   # rebuild into a temp dir; fail if the committed files differ
#
# This file is the corpus's profile; deploy/corpus/build.sh (shared with deploy/multilingual/)
# does the work and documents the variables.
set -euo pipefail

# Every task is Python, graded in the Python sandbox image; task.json names no spec of its own,
# and its rows carry none (SWE-bench's fields, then agentmill's).
CORPUS_PATCHES="gold.patch test.patch" \
CORPUS_TASK_FIELDS="" \
CORPUS_LANGUAGE=python \
CORPUS_IMAGE=agentmill/sandbox-python:bookworm \
CORPUS_ROW="instance_id repo base_commit problem_statement hints_text patch test_patch FAIL_TO_PASS
  PASS_TO_PASS version environment_setup_commit created_at image workdir source archive labels difficulty" \
  exec "$(dirname "${BASH_SOURCE[0]}")/../corpus/build.sh" "$(dirname "${BASH_SOURCE[0]}")" "$@"
