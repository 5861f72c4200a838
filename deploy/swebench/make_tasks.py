#!/usr/bin/env python3
"""Writes deploy/swebench/tasks.jsonl, the SWE-bench 4.x rows of the images build.sh makes.

Each row's material is in rows/<instance_id>/: problem_statement.md, hints.md, gold.patch (the
fix), test.patch (the tests SWE-bench's eval script applies), wrong.patch (a plausible fix that
does not resolve, for the tests) and tests.json (FAIL_TO_PASS and PASS_TO_PASS). The base
commit is read from the row's image (build.sh builds it).

  python3 deploy/swebench/make_tasks.py            # tasks.jsonl from rows/ and the images
  PYTHONPATH=.venv/swebench-4.1.0 .venv/bin/python deploy/swebench/make_tasks.py --derive

--derive first remakes each tests.json as SWE-bench's validation does, with the `swebench`
package (4.x) itself: its eval script for the row runs in the image twice, at the base commit
and with the gold patch applied; its log parser reads both logs (between the test-output
markers); FAIL_TO_PASS are the tests that do not pass before and pass after, PASS_TO_PASS the
tests that pass both times. It prints each list.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# instance_id -> the row's fixed fields. repo and version pick SWE-bench's spec (the test
# command) and log parser.
ROWS = {
    "agentmill__django-1": {
        "repo": "django/django",
        "version": "4.2",
        "image": "agentmill/swebench-django:4.2",
        "created_at": "2024-09-03T00:00:00Z",
    },
    "agentmill__sympy-1": {
        "repo": "sympy/sympy",
        "version": "1.12",
        "image": "agentmill/swebench-sympy:1.12",
        "created_at": "2024-09-03T00:00:00Z",
    },
}


def read(instance_id, name):
    with open(os.path.join(HERE, "rows", instance_id, name), encoding="utf-8") as f:
        return f.read()


def head_of(image):
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "git", "-C", "/testbed", "rev-parse", "HEAD"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def row_of(instance_id, base_commit, tests):
    fixed = ROWS[instance_id]
    # SWE-bench's field order; agentmill's `image` last.
    return {
        "repo": fixed["repo"],
        "instance_id": instance_id,
        "base_commit": base_commit,
        "patch": read(instance_id, "gold.patch"),
        "test_patch": read(instance_id, "test.patch"),
        "problem_statement": read(instance_id, "problem_statement.md"),
        "hints_text": read(instance_id, "hints.md"),
        "created_at": fixed["created_at"],
        "version": fixed["version"],
        # As the dataset has them: JSON-encoded strings.
        "FAIL_TO_PASS": json.dumps(tests["FAIL_TO_PASS"]),
        "PASS_TO_PASS": json.dumps(tests["PASS_TO_PASS"]),
        "environment_setup_commit": base_commit,
        "image": fixed["image"],
    }


def derive(instance_id, base_commit):
    """SWE-bench's own eval script and parser, before and after the gold patch."""
    from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS
    from swebench.harness.grading import get_logs_eval
    from swebench.harness.test_spec.create_scripts import make_eval_script_list
    import types

    row = row_of(instance_id, base_commit, {"FAIL_TO_PASS": [], "PASS_TO_PASS": []})
    specs = MAP_REPO_VERSION_TO_SPECS[row["repo"]][row["version"]]
    lines = make_eval_script_list(row, specs, "testbed", "/testbed", base_commit, row["test_patch"])
    script = "\n".join(["#!/bin/bash", "set -uxo pipefail"] + lines) + "\n"
    spec = types.SimpleNamespace(instance_id=instance_id, repo=row["repo"], version=row["version"])
    status = {}
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "eval.sh"), "w", encoding="utf-8") as f:
            f.write(script)
        with open(os.path.join(tmp, "gold.patch"), "w", encoding="utf-8") as f:
            f.write(row["patch"])
        os.chmod(tmp, 0o755)
        for when, prelude in (("before", ""), ("after", "git apply -v /in/gold.patch && ")):
            run = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{tmp}:/in:ro", ROWS[instance_id]["image"],
                                  "bash", "-c", prelude + "/bin/bash /in/eval.sh"], capture_output=True, text=True, errors="replace")
            log = os.path.join(tmp, f"{when}.log")
            with open(log, "w", encoding="utf-8") as f:
                f.write(run.stdout + run.stderr)
            status[when], found = get_logs_eval(spec, log)
            if not found:
                sys.exit(f"{instance_id}: SWE-bench finds no test output in the {when} log:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    passed = lambda s: {t for t, v in s.items() if v in ("PASSED", "XFAIL")}  # noqa: E731
    before, after = passed(status["before"]), passed(status["after"])
    # The order the runner printed them in.
    order = list(status["after"])
    tests = {
        "FAIL_TO_PASS": [t for t in order if t in after and t not in before],
        "PASS_TO_PASS": [t for t in order if t in after and t in before],
    }
    broken = [t for t in order if t in before and t not in after]
    if broken:
        sys.exit(f"{instance_id}: the gold patch breaks {broken}")
    if not tests["FAIL_TO_PASS"]:
        sys.exit(f"{instance_id}: no test fails before the gold patch and passes after it")
    return tests


def main():
    derive_lists = "--derive" in sys.argv[1:]
    rows = []
    for instance_id, fixed in ROWS.items():
        base_commit = head_of(fixed["image"])
        path = os.path.join(HERE, "rows", instance_id, "tests.json")
        if derive_lists:
            tests = derive(instance_id, base_commit)
            with open(path, "w", encoding="utf-8") as f:
                f.write(json.dumps(tests, indent=1) + "\n")
            print(f"{instance_id}: FAIL_TO_PASS {tests['FAIL_TO_PASS']}")
            print(f"{instance_id}: PASS_TO_PASS ({len(tests['PASS_TO_PASS'])}) {tests['PASS_TO_PASS']}")
        with open(path, encoding="utf-8") as f:
            tests = json.load(f)
        rows.append(row_of(instance_id, base_commit, tests))
    with open(os.path.join(HERE, "tasks.jsonl"), "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote deploy/swebench/tasks.jsonl ({len(rows)} rows)")


if __name__ == "__main__":
    main()
