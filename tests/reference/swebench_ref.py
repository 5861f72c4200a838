#!/usr/bin/env python3
"""The `swebench` package as a reference for agentmill's grader, over JSON lines.

Run with the project's .venv: `swebench` 5.x is installed there; 4.1.0 lives beside it in
`.venv/swebench-4.1.0` (put that folder first on PYTHONPATH to get it). One JSON object per
line on stdin, one answer per line on stdout, in order:

  {"op": "version"}                                   -> {"version": "5.0.2"}
  {"op": "parse", "parser": NAME, "log": TEXT,
   "instance_id": ID, "version": V, "repo": R}        -> {"status": {test: STATUS, ...}}
       NAME is a PARSER_REGISTRY key (5.x) or a parser function's name (4.x, looked up in
       swebench.harness.log_parsers.*); the map keeps the parser's insertion order.
  {"op": "grade", "row": ROW, "log": TEXT}            -> {"found": bool, "status": {...},
                                                          "report": {...}, "resolution": S}
       get_logs_eval + get_eval_tests_report + get_resolution_status, as run_evaluation does.
  {"op": "eval_script", "row": ROW}                   -> {"script": TEXT}
       The TestSpec's eval_script (4.x: from the spec tables; 5.x: from the row).
  {"op": "time_grade", "parser": NAME, "log": TEXT,
   "FAIL_TO_PASS": [...], "PASS_TO_PASS": [...], "repeat": N} -> {"median_s": S}
       the parser plus get_eval_tests_report and get_resolution_status, timed in-process.
  {"op": "specs"}                                     -> the 4.x tables agentmill generates its
                                                          data file from (see gen_swebench_specs.py)

Errors come back as {"error": "..."} for that line; the process goes on.
"""
import contextlib
import importlib
import json
import os
import sys
import tempfile
import types

import swebench

MAJOR = int(swebench.__version__.split(".")[0])


def find_parser(name):
    if MAJOR >= 5:
        from swebench.harness.log_parsers import PARSER_REGISTRY

        if name in PARSER_REGISTRY:
            return PARSER_REGISTRY[name]
    for lang in ("python", "javascript", "go", "rust", "java", "php", "ruby", "c"):
        module = importlib.import_module(f"swebench.harness.log_parsers.{lang}")
        fn = getattr(module, name, None)
        if callable(fn):
            return fn
    raise KeyError(f"no parser named {name} in swebench {swebench.__version__}")


def spec_for(req):
    return types.SimpleNamespace(
        instance_id=req.get("instance_id", "x__y-1"),
        version=req.get("version", ""),
        repo=req.get("repo", ""),
        log_parser=req.get("parser", ""),
    )


def op_parse(req):
    fn = find_parser(req["parser"])
    status = fn(req["log"], spec_for(req))
    return {"status": status}


def make_spec(row):
    """The TestSpec grading needs. 5.x builds it from the row; 4.x's make_test_spec would also
    build the environment scripts, which fetch requirements files from GitHub, so its eval script
    and fields are assembled here with the same functions make_test_spec calls."""
    if MAJOR >= 5:
        from swebench.harness.utils import make_test_spec

        return make_test_spec(row)
    from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS
    from swebench.harness.test_spec.create_scripts import make_eval_script_list

    def listed(key):
        value = row.get(key, [])
        return json.loads(value) if isinstance(value, str) else value

    specs = MAP_REPO_VERSION_TO_SPECS[row["repo"]][row["version"]]
    eval_list = make_eval_script_list(row, specs, "testbed", "/testbed", row["base_commit"], row["test_patch"])
    return types.SimpleNamespace(
        instance_id=row["instance_id"],
        repo=row["repo"],
        version=row["version"],
        FAIL_TO_PASS=listed("FAIL_TO_PASS"),
        PASS_TO_PASS=listed("PASS_TO_PASS"),
        eval_script="\n".join(["#!/bin/bash", "set -uxo pipefail"] + eval_list) + "\n",
    )


def op_grade(req):
    from swebench.harness import grading

    row = req["row"]
    spec = make_spec(row)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(req["log"])
        path = f.name
    try:
        status, found = grading.get_logs_eval(spec, path)
    finally:
        os.unlink(path)
    out = {"found": found, "status": status}
    if found:
        ref = {"FAIL_TO_PASS": spec.FAIL_TO_PASS, "PASS_TO_PASS": spec.PASS_TO_PASS}
        kwargs = {}
        if MAJOR >= 5:
            from swebench.harness.constants import EvalType

            kwargs["eval_type"] = EvalType(spec.eval_type)
        else:
            from swebench.harness.constants import EvalType, FAIL_ONLY_REPOS

            kwargs["eval_type"] = EvalType.FAIL_ONLY if spec.repo in FAIL_ONLY_REPOS else EvalType.PASS_AND_FAIL
        report = grading.get_eval_tests_report(status, ref, **kwargs)
        out["report"] = {k: report[k] for k in ("FAIL_TO_PASS", "PASS_TO_PASS")}
        out["resolution"] = grading.get_resolution_status(report)
    return out


def op_eval_script(req):
    return {"script": make_spec(req["row"]).eval_script}


def op_time_grade(req):
    import statistics
    import time

    from swebench.harness import grading

    fn = find_parser(req["parser"])
    spec = spec_for(req)
    ref = {"FAIL_TO_PASS": req["FAIL_TO_PASS"], "PASS_TO_PASS": req["PASS_TO_PASS"]}
    times = []
    for _ in range(int(req.get("repeat", 10))):
        t = time.perf_counter()
        status = fn(req["log"], spec)
        grading.get_resolution_status(grading.get_eval_tests_report(status, ref))
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times)}


def op_specs(_req):
    from swebench.harness import constants
    from swebench.harness.log_parsers import MAP_REPO_TO_PARSER

    return {
        "swebench_version": swebench.__version__,
        "specs": constants.MAP_REPO_VERSION_TO_SPECS,
        "repo_ext": constants.MAP_REPO_TO_EXT,
        "repo_parser": {repo: fn.__name__ for repo, fn in MAP_REPO_TO_PARSER.items()},
        "fail_only_repos": sorted(constants.FAIL_ONLY_REPOS),
        "non_test_exts": list(constants.NON_TEST_EXTS),
    }


OPS = {"parse": op_parse, "grade": op_grade, "eval_script": op_eval_script, "specs": op_specs, "time_grade": op_time_grade}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if req.get("op") == "version":
                out = {"version": swebench.__version__}
            else:
                # Some parsers print (5.x maven/gradle warnings, next_v2's failures): keep
                # stdout for the answers.
                with contextlib.redirect_stdout(sys.stderr):
                    out = OPS[req["op"]](req)
        except Exception as e:  # noqa: BLE001 - one bad request must not end the session
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
