#!/usr/bin/env python3
"""SWE-smith's harness (`swesmith` 0.0.9) as a reference for agentmill, over JSON lines.

Run with the project's .venv and PYTHONPATH=.venv/swesmith-0.0.9:.venv/swebench-4.1.0 (swesmith
imports swebench 4.x names; deploy/setup.sh installs both folders). One JSON object per line on
stdin, one answer per line on stdout, in order:

  {"op": "version"}                             -> {"version": "0.0.9"}
  {"op": "parse", "profile": KEY, "log": TEXT}  -> {"status": {test: STATUS, ...}}
       KEY is a registry key (repo name '<owner>__<repo>.<commit8>' or mirror name
       'swesmith/<repo name>'); "class": NAME instead picks a profile by its class name (the names
       proto/data/swesmith-profiles.json gives as `parser`). The answer is the profile's
       log_parser(log), keys in the parser's insertion order.
  {"op": "profile", "row": ROW, "go_test_files": {TEST: [FILE, ...]}}
                                                -> {"key", "class", "image_name", "timeout",
                                                    "test_cmd", "test_cmd_files",
                                                    "f2p_files", "p2p_files"}
       What the harness uses for ROW: registry.get_from_inst(ROW); get_test_cmd(ROW) (command and
       files) and get_test_files(ROW). Where one of them raises, its fields are replaced by
       "test_cmd_error" / "test_files_error". GoProfile.get_test_files reads the mirror's *_test.go
       files; "go_test_files" stands in for that map (test function name -> files), since nothing
       is cloned here. Files returned as sets come back as the set's order (compare unordered).
  {"op": "profiles"}                            -> the table gen_swesmith_profiles.py writes
  {"op": "delegates"}                           -> {"delegates": {CLASS: FUNCTION or null}}
       For every class that defines a log_parser used by a registered profile: the module function
       it only forwards to (`return parse_log_jest(log)`), or null for a parser of its own.

Errors come back as {"error": "..."} for that line; the process goes on.
"""
import contextlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen_swesmith_profiles as gen  # noqa: E402  (patches platform.machine before swesmith loads)
import swesmith  # noqa: E402
from swesmith.profiles import registry  # noqa: E402

def _by_class():
    """Class name -> a registered profile class whose log_parser that class defines: every
    registered class by its own name, and the classes that define a parser (PythonProfile, ...)
    by the first registered class, by name, that uses theirs."""
    out = {}
    for cls in sorted(set(registry.data.values()), key=lambda c: c.__name__):
        out[cls.__name__] = cls
        out.setdefault(gen.definer(cls, "log_parser").__name__, cls)
    return out


_BY_CLASS = _by_class()


def profile_for(req):
    if "class" in req:
        cls = _BY_CLASS[req["class"]]
        if gen.definer(cls, "log_parser").__name__ != req["class"] and cls.__name__ != req["class"]:
            raise KeyError(req["class"])
        return cls()
    return registry.get(req["profile"])


def op_parse(req):
    return {"status": profile_for(req).log_parser(req["log"])}


def op_profile(req):
    row = req["row"]
    rp = registry.get_from_inst(row)
    out = {"key": rp.repo_name, "class": type(rp).__name__, "image_name": rp.image_name, "timeout": rp.timeout}
    go_map = req.get("go_test_files")
    if go_map is not None:
        rp._test_name_to_files_cache = {k: set(v) for k, v in go_map.items()}
    try:
        try:
            cmd, files = rp.get_test_cmd(row)
            out["test_cmd"] = cmd
            out["test_cmd_files"] = [str(f) for f in files]
        except Exception as e:  # noqa: BLE001
            out["test_cmd_error"] = f"{type(e).__name__}: {e}"
        try:
            f2p, p2p = rp.get_test_files(row)
            out["f2p_files"] = [str(f) for f in f2p]
            out["p2p_files"] = [str(f) for f in p2p]
        except Exception as e:  # noqa: BLE001
            out["test_files_error"] = f"{type(e).__name__}: {e}"
    finally:
        if go_map is not None:
            rp._test_name_to_files_cache = None
    return out


def op_profiles(_req):
    return gen.table()


def op_delegates(_req):
    parsers = {gen.definer(cls, "log_parser") for cls in set(registry.data.values())}
    return {"delegates": {p.__name__: gen.delegate_of(p) for p in sorted(parsers, key=lambda c: c.__name__)}}


OPS = {"parse": op_parse, "profile": op_profile, "profiles": op_profiles, "delegates": op_delegates}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if req.get("op") == "version":
                out = {"version": swesmith.__version__}
            else:
                with contextlib.redirect_stdout(sys.stderr):
                    out = OPS[req["op"]](req)
        except Exception as e:  # noqa: BLE001 - one bad request must not end the session
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
