#!/usr/bin/env python3
"""Records what the reference harnesses make of agentmill's parser corpus, for
`worker/tests/parsers_r2e_rebench.rs` (and the grading-rule unit tests in
`worker/src/grading/parsers/{r2e_gym,rebench_v2}.rs`) to hold the Rust ports to, output for
output, where the references are not available (CI).

The references are not vendored: give this script checkouts of them (a `git archive` export or a
clone) and the commits they are at:

    git -C <SWE-rebench-V2 clone> archive --format=tar HEAD | tar -x -C /tmp/rebench
    git -C <R2E-Gym clone> archive --format=tar HEAD | tar -x -C /tmp/r2e
    .venv/bin/python tests/reference/record_parser_fixtures.py \\
        --rebench /tmp/rebench --rebench-commit <sha> --r2e /tmp/r2e --r2e-commit <sha>

It reads every `worker/tests/data/logs/<harness>/<case>.log` (logs made for agentmill: by real
tools or by hand; never copied from the references) and writes `<case>.expected.json` beside it:
for each variant of the log (as written, CRLF line ends, cut at a third/half/two thirds of its
characters, without its final newline: the Rust test makes the same variants), each reference
parser's status map as `[[test, status], ...]` in the parser's own order (a Python dict's), or
`{"error": "..."}` where the parser raises; a parser left out of a variant gave an empty map. Logs are read and results written as UTF-8 with no
newline translation.

  swe-rebench-v2  every distinct function of `lib/agent/log_parsers.py::NAME_TO_PARSER` (keyed by
                  its `__name__`; `NAME_TO_PARSER.json` maps all 76 names to them), and under
                  "eval" what `scripts/eval.py::evaluate_instance` makes of the log (its docker
                  run replaced by the log) for a few FAIL_TO_PASS/PASS_TO_PASS lists built from
                  the parser's own output (where it gives at most 40 ids): `passed_actual`,
                  `failed_actual`, and `passed_match` for each list.
                  `normalize_test_name.json`: `scripts/eval.py::_normalize_test_name` on every
                  id the parsers produced and on constructed timing suffixes.
  r2e-gym         `src/r2egym/repo_analysis/execution_log_parser.py::parse_log_pytest`, and under
                  "rewards" what `src/r2egym/agenthub/runtime/docker.py::_calculate_reward_r2e`
                  (its source, run against a stand-in runtime that returns the log) gives for a few
                  `expected_output_json` values built from the parser's output.

Python's string hashing is fixed (PYTHONHASHSEED=0) so that the three parsers that fill part of
their map from a `set` (`parse_java_mvn`, `parse_log_haskell_v2`, `parse_log_ocaml_v2`) record
the same order each time; the Rust test compares those three as sets.
"""
import argparse
import ast
import enum
import importlib.util
import json
import os
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LOGS = os.path.join(ROOT, "worker", "tests", "data", "logs")


def variants(log):
    n = len(log)
    out = [("as written", log), ("crlf", log.replace("\n", "\r\n"))]
    for what, at in (("cut 1/3", n // 3), ("cut 1/2", n // 2), ("cut 2/3", 2 * n // 3)):
        if 0 < at < n:
            out.append((what, log[:at]))
    if log.endswith("\n"):
        out.append(("no final newline", log[:-1]))
    return out


def value(v):
    return v.value if isinstance(v, enum.Enum) else v


def run(fn, log):
    try:
        out = fn(log)
    except Exception as e:  # the reference raises: the Rust port must give an error
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    return {"status": [[k, value(v)] for k, v in out.items()]}


def read_log(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def write_json(path, head, sections):
    """One line per parser result, so that a change shows as a small diff."""
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},")
    for i, (name, body) in enumerate(sections):
        last = i == len(sections) - 1
        if isinstance(body, dict):
            lines.append(f"  {json.dumps(name)}: {{")
            for j, (k, v) in enumerate(body.items()):
                inner = body_line(k, v)
                lines.append(f"    {inner}{'' if j == len(body) - 1 else ','}")
            lines.append("  }" + ("" if last else ","))
        else:
            lines.append(f"  {json.dumps(name)}: [")
            for j, item in enumerate(body):
                lines.append(f"    {json.dumps(item, ensure_ascii=False)}{'' if j == len(body) - 1 else ','}")
            lines.append("  ]" + ("" if last else ","))
    lines.append("}")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")


def body_line(k, v):
    if isinstance(v, dict) and all(not isinstance(x, dict) for x in v.values()):
        return f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
    inner = ", ".join(f"{json.dumps(a)}: {json.dumps(b, ensure_ascii=False)}" for a, b in v.items())
    return f"{json.dumps(k)}: {{{inner}}}"


def load_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------ SWE-rebench V2

TIMING_NAMES = [
    "test [1.34 ms]", "test[123 ms]", "test (1.234s)", "test (123ms)", "Botan in 29.08 msec all ok",
    "x in 1 sec", "x in 1 secs", "x in 1 msecx", "a  [ 1 ms ]  ", "t (12 MS)", "t [1.5 S]", "t(1s)",
    "t (1 s) (2 ms)", "x in 5 sec in 6 msec", "  spaced  ", "t [1 ms]\n", "in 3 sec", " in 3 sec",
    "x\tin\t3\tsec", "x in ٣ sec", "t [٣ ms]", "t (1.5.2 s)", "t in 1.5 msec_", "t in 1.5 msec-",
    "naïve in 2 sec", "t [1 ms] tail", "t (1 ms) tail", "t in 2 SEC", "t in 2 sec\u00e9", "t in 2 sec\u0301",
    "t\u00a0[1\u00a0ms]", "t\x1c(2 ms)", "", "   ", "[1 ms]", "(1 s)", "a in 1 sec in 2 sec b",
]


def record_rebench(root, commit):
    sys.path.insert(0, root)
    from lib.agent import log_parsers  # noqa: E402  (the checkout's)

    eval_mod = load_file("rebench_eval", os.path.join(root, "scripts", "eval.py"))
    logs_tmp = tempfile.mkdtemp(prefix="rebench_logs_")
    eval_mod.LOGS_DIR = __import__("pathlib").Path(logs_tmp)

    registry = [[name, fn.__name__] for name, fn in log_parsers.NAME_TO_PARSER.items()]
    functions = []
    for name, fn in log_parsers.NAME_TO_PARSER.items():
        if fn.__name__ not in [f.__name__ for f in functions]:
            functions.append(fn)
    ref = {"repo": "SWE-rebench/SWE-rebench-V2", "commit": commit, "file": "lib/agent/log_parsers.py"}
    d = os.path.join(LOGS, "swe-rebench-v2")
    with open(os.path.join(d, "NAME_TO_PARSER.json"), "w", encoding="utf-8") as f:
        json.dump({"reference": ref, "names": registry}, f, indent=1)
        f.write("\n")

    seen_ids = []
    cases = sorted(c[:-4] for c in os.listdir(d) if c.endswith(".log"))
    for case in cases:
        log = read_log(os.path.join(d, case + ".log"))
        sections = []
        for what, text in variants(log):
            results = {fn.__name__: run(fn, text) for fn in functions}
            sections.append((what, {k: v for k, v in results.items() if v != {"status": []}}))
        base = {fn.__name__: run(fn, log) for fn in functions}
        evals = []
        for fn in functions:
            got = base[fn.__name__]
            for k, _ in got.get("status", []):
                if k not in seen_ids:
                    seen_ids.append(k)
            if not got.get("status") or len(got["status"]) > 40:
                continue
            passed = [k for k, v in got["status"] if v == "PASSED"]
            lists = [
                ([], passed),
                (passed[:1], passed[1:]),
                ([], passed + ["extra.test_not_run"]),
                ([], [k + " [12 ms]" for k in passed]),
                ([], passed + passed[:1]),
                ([], []),
            ]
            checks = []
            actual = None
            for f2p, p2p in lists:
                spec = {
                    "instance_id": f"{case}__{fn.__name__}",
                    "repo": "owner/name",
                    "install_config": {"test_cmd": ["true"], "log_parser": fn.__name__},
                    "patch": "p",
                    "test_patch": "t",
                    "FAIL_TO_PASS": f2p,
                    "PASS_TO_PASS": p2p,
                }
                eval_mod.run_in_container = lambda **_kw: (0, log)
                result = eval_mod.evaluate_instance(spec, "image", None)
                actual = (result["passed_actual"], result["failed_actual"])
                checks.append({"fail_to_pass": f2p, "pass_to_pass": p2p, "passed_match": result["passed_match"]})
            evals.append({"parser": fn.__name__, "passed_actual": actual[0], "failed_actual": actual[1], "checks": checks})
        sections.append(("eval", evals))
        write_json(os.path.join(d, case + ".expected.json"), {"reference": ref}, sections)

    pairs = []
    for name in TIMING_NAMES + seen_ids:
        if name not in [p[0] for p in pairs]:
            pairs.append([name, eval_mod._normalize_test_name(name)])
    with open(os.path.join(d, "normalize_test_name.json"), "w", encoding="utf-8", newline="") as f:
        json.dump({"reference": {**ref, "file": "scripts/eval.py"}, "pairs": pairs}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"swe-rebench-v2: {len(cases)} logs, {len(functions)} functions, {len(pairs)} names")


# ------------------------------------------------------------------------------ R2E-Gym

def r2e_reward_function(root, parser_module):
    """`_calculate_reward_r2e` and `parse_logs` from docker.py's own source, bound to a stand-in."""
    path = os.path.join(root, "src", "r2egym", "agenthub", "runtime", "docker.py")
    tree = ast.parse(open(path, encoding="utf-8").read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DockerRuntime")
    wanted = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name in ("_calculate_reward_r2e", "parse_logs")]
    module = ast.Module(body=wanted, type_ignores=[])
    ns = {"json": json, "parse_log_fn": parser_module.parse_log_fn, "decolor_dict_keys": parser_module.decolor_dict_keys}
    exec(compile(module, path, "exec"), ns)

    def reward(log, expected_output_json):
        fake = types.SimpleNamespace(swebench_verified=False, repo_name="sympy", ds={"expected_output_json": expected_output_json})
        fake.run_tests = lambda: (log, "0")
        fake.parse_logs = lambda out: ns["parse_logs"](fake, out)
        return ns["_calculate_reward_r2e"](fake)

    return reward


def reward_candidates(parsed):
    keys = list(parsed)
    out = [json.dumps(parsed), json.dumps({}), "[]", json.dumps(dict(sorted(parsed.items()), **{"extra.test_added": "PASSED"}))]
    if keys:
        flipped = dict(parsed)
        flipped[keys[0]] = "FAILED" if parsed[keys[0]] == "PASSED" else "PASSED"
        out.append(json.dumps(flipped))
        out.append(json.dumps({k: v for k, v in parsed.items() if k != keys[-1]}))
        out.append(json.dumps({(f"\u001b[32m{k}\u001b[0m" if i == 0 else f"{k} - expected message"): v for i, (k, v) in enumerate(parsed.items())}))
        renamed = {("zzz.not_in_the_log" if k == sorted(keys)[0] else k): v for k, v in parsed.items()}
        out.append(json.dumps(renamed))
        out.append(json.dumps({k: 1 for k in parsed}))
    return out


def record_r2e(root, commit):
    parser_module = load_file("r2e_execution_log_parser", os.path.join(root, "src", "r2egym", "repo_analysis", "execution_log_parser.py"))
    reward = r2e_reward_function(root, parser_module)
    ref = {"repo": "R2E-Gym/R2E-Gym", "commit": commit, "file": "src/r2egym/repo_analysis/execution_log_parser.py"}
    d = os.path.join(LOGS, "r2e-gym")
    cases = sorted(c[:-4] for c in os.listdir(d) if c.endswith(".log"))
    for case in cases:
        log = read_log(os.path.join(d, case + ".log"))
        sections = [(what, {"parse_log_pytest": run(parser_module.parse_log_pytest, text)}) for what, text in variants(log)]
        rewards = []
        for expected in reward_candidates(parser_module.parse_log_pytest(log)):
            try:
                rewards.append({"expected_output_json": expected, "reward": reward(log, expected)})
            except Exception as e:
                rewards.append({"expected_output_json": expected, "error": f"{type(e).__name__}: {e}"[:300]})
        sections.append(("rewards", rewards))
        write_json(os.path.join(d, case + ".expected.json"), {"reference": {**ref, "reward": "src/r2egym/agenthub/runtime/docker.py::_calculate_reward_r2e"}}, sections)
    print(f"r2e-gym: {len(cases)} logs")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rebench", required=True, help="a checkout of SWE-rebench/SWE-rebench-V2")
    ap.add_argument("--rebench-commit", required=True)
    ap.add_argument("--r2e", required=True, help="a checkout of R2E-Gym/R2E-Gym")
    ap.add_argument("--r2e-commit", required=True)
    args = ap.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    record_r2e(os.path.abspath(args.r2e), args.r2e_commit)
    record_rebench(os.path.abspath(args.rebench), args.rebench_commit)


if __name__ == "__main__":
    main()
