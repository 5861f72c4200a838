#!/usr/bin/env python3
"""Writes agentmill's copy of SWE-smith's repository profiles, generated from the package.

    PYTHONPATH=.venv/swesmith-0.0.9:.venv/swebench-4.1.0 .venv/bin/python \
        tests/reference/gen_swesmith_profiles.py > proto/data/swesmith-profiles.json

SWE-smith (`swesmith` 0.0.9 on PyPI, installed by deploy/setup.sh into .venv/swesmith-0.0.9) keeps
one Python class per repository snapshot in `swesmith/profiles/*.py`, registered in
`swesmith.profiles.registry` under `<owner>__<repo>.<commit8>` (and the mirror name
`swesmith/<owner>__<repo>.<commit8>`). The harness asks a profile for the image, the test command
(`get_test_cmd`), the test files it reverts before a run (`get_test_files`), the timeout and the
log parser (`log_parser`). This script writes, for every registered profile, what agentmill needs to
run and grade a row the same way; methods are named by the class that defines them (profiles that
share a parser share its name), and the header says what each of those methods does.

`worker/tests/parsers_swesmith.rs` runs this script again and fails when the committed file differs
(a new package version, or a hand edit). The script fails on a method override it does not know, so
a new package version is read before it is embedded.
"""
import ast
import dataclasses
import inspect
import json
import platform
import sys
import textwrap

# `RepoProfile.arch` (part of every image name) is read from the machine when the class is created.
# The published images are x86_64 (the harness also starts containers with platform linux/x86_64),
# so the table is generated as on x86_64 whatever machine runs this.
platform.machine = lambda: "x86_64"

import swesmith  # noqa: E402
from swesmith.profiles import registry  # noqa: E402
from swesmith.profiles.base import RepoProfile  # noqa: E402

LANGUAGE_OF_MODULE = {
    "swesmith.profiles.c": "c",
    "swesmith.profiles.cpp": "cpp",
    "swesmith.profiles.csharp": "csharp",
    "swesmith.profiles.golang": "go",
    "swesmith.profiles.java": "java",
    "swesmith.profiles.javascript": "javascript",
    "swesmith.profiles.php": "php",
    "swesmith.profiles.python": "python",
    "swesmith.profiles.rust": "rust",
    "swesmith.profiles.typescript": "typescript",
}

# What each known `get_test_files` does (the instance's F2P/P2P lists -> the files the harness
# reverts with `git checkout --` after applying a prediction). Order is not significant where a
# set is returned.
GET_TEST_FILES = {
    "RepoProfile": "([], []): no files.",
    "PythonProfile": "asserts FAIL_TO_PASS and PASS_TO_PASS are in the row; each list -> "
    "sorted(set(id.split('::', 1)[0] for id in list)), i.e. the pytest file of every test id.",
    "MidoA0158ff9": "PythonProfile's, then a leading '../dev/' is cut from each file; each list "
    "-> sorted(set(...)).",
    "PythonSlugify872b3750": "(['test.py'], ['test.py']) whatever the row holds.",
    "TornadoD5ac65c1": "for each test id (P2P then F2P), re.search(r'\\s\\((.*)\\)', id): the "
    "dotted name in the parentheses (e.g. 'test_x (tornado.test.web_test.WebTest)') without its "
    "last part, '/'-joined, + '.py' (tornado/test/web_test.py); ids without parentheses add "
    "nothing. Each list is a set (unordered). Raises KeyError without FAIL_TO_PASS/PASS_TO_PASS.",
    "GoProfile": "asserts FAIL_TO_PASS and PASS_TO_PASS are in the row; reads every '*_test.go' "
    "file of the mirror clone (the repository at the profile's commit), and maps each name N of a "
    "line matching re.match(r'^\\s*func\\s+(\\w+)\\b', line.strip()) to the files defining it "
    "(paths relative to the repository root; methods 'func (r T) X' do not count); each list -> "
    "the set (unordered) of the files of its ids found in that map (subtest ids 'TestX/sub' are "
    "not found). A file that is not valid UTF-8 is read up to where decoding fails.",
}

# What each known `get_test_cmd` does (-> the command line run between the output markers).
GET_TEST_CMD = {
    "RepoProfile": "asserts instance_id.rsplit('.', 1)[0] == the profile key; then, without "
    "f2p_only (evaluation): if min_testing and FAIL_TO_PASS is in the row: test_cmd + ' ' + "
    "' '.join(f2p_files + p2p_files) from get_test_files (test_cmd alone when both are empty); "
    "else if not min_testing, or the row has no 'patch': test_cmd. (min_testing with a patch but "
    "no FAIL_TO_PASS guesses test files from a clone of the mirror: not reproducible offline, and "
    "not reached by dataset rows, which carry FAIL_TO_PASS.)",
    "MypyE93f06ce": "keys = [id.rsplit('::', 1)[-1] for FAIL_TO_PASS] with f2p_only; else "
    "re.findall(r'\\[case ([^\\]]+)\\]', row['instance_ref']['test_patch']) when the row has "
    "instance_ref with a test_patch; else none. With more than one key: test_cmd + ' \"' + "
    "' or '.join(keys) + '\"'; otherwise test_cmd alone (so a plain SWE-smith row runs "
    "test_cmd, which ends in '-k', as it is). No instance-id assertion.",
    "Babel2ea3fc8f": "without 'patch' in the row: test_cmd. Otherwise test_cmd + ' ' + ' '.join of "
    "'packages/<name>' for every file of the patch (unidiff PatchSet order, duplicates kept) whose "
    "path has >= 2 parts and starts with 'packages' (so test_cmd + ' ' when there are none; a "
    "patch unidiff cannot parse raises). No instance-id assertion.",
}

# The base classes the registry skips, and each language's base class.
LANGUAGE_BASE = {
    "c": "CProfile",
    "cpp": "CppProfile",
    "csharp": "CSharpProfile",
    "go": "GoProfile",
    "java": "JavaProfile",
    "javascript": "JavaScriptProfile",
    "php": "PhpProfile",
    "python": "PythonProfile",
    "rust": "RustProfile",
    "typescript": "TypeScriptProfile",
}


def definer(cls, name):
    """The class in `cls`'s MRO that defines `name`."""
    for k in cls.__mro__:
        if name in k.__dict__:
            return k
    raise LookupError(f"{cls.__name__} has no {name}")


def field_default(cls, name):
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    return getattr(cls, name)


def base_classes():
    """language -> its base class object."""
    out = {}
    for cls in set(registry.data.values()):
        for k in cls.__mro__:
            lang = LANGUAGE_OF_MODULE.get(k.__module__)
            if lang and k.__name__ == LANGUAGE_BASE[lang]:
                out[lang] = k
    return out


def language_defaults(base):
    parser = definer(base, "log_parser")
    return {
        "test_cmd": field_default(base, "test_cmd"),
        "timeout": field_default(base, "timeout"),
        "min_testing": field_default(base, "min_testing"),
        # None where the language's base class leaves log_parser abstract.
        "parser": None if parser is RepoProfile else parser.__name__,
        "get_test_files": definer(base, "get_test_files").__name__,
        "get_test_cmd": definer(base, "get_test_cmd").__name__,
    }


def delegate_of(parser_cls):
    """The module function a `log_parser` only forwards to (`return parse_log_x(log)`), or None."""
    src = textwrap.dedent(inspect.getsource(parser_cls.__dict__["log_parser"]))
    fn = ast.parse(src).body[0]
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) == 1 and isinstance(body[0], ast.Return) and isinstance(body[0].value, ast.Call):
        call = body[0].value
        if (
            isinstance(call.func, ast.Name)
            and len(call.args) == 1
            and isinstance(call.args[0], ast.Name)
            and call.args[0].id == "log"
            and not call.keywords
        ):
            return call.func.id
    return None


def profile_classes():
    """repo_name -> profile class, as `Registry.get_from_inst` finds them (the registry also holds
    every profile under its mirror name `swesmith/<repo_name>`)."""
    out = {}
    for key, cls in registry.data.items():
        p = cls()
        if key == p.repo_name:
            out[key] = cls
        elif key != p.mirror_name:
            raise SystemExit(f"registry key {key} is neither the repo name nor the mirror name of {cls.__name__}")
    return out


def eval_script_lines():
    """`harness/utils.py::run_patch_in_container`'s eval.sh, '\\n'-joined plus a final '\\n', with
    {test_cmd} standing for get_test_cmd's command."""
    from swebench.harness.constants import DOCKER_WORKDIR
    from swesmith.constants import TEST_OUTPUT_END, TEST_OUTPUT_START

    return [
        "#!/bin/bash",
        "set -uxo pipefail",
        f"cd {DOCKER_WORKDIR}",
        f": '{TEST_OUTPUT_START}'",
        "{test_cmd}",
        f": '{TEST_OUTPUT_END}'",
    ]


def table():
    bases = base_classes()
    defaults = {lang: language_defaults(bases[lang]) for lang in sorted(bases)}
    profiles = {}
    for key, cls in sorted(profile_classes().items()):
        p = cls()
        lang = LANGUAGE_OF_MODULE.get(cls.__module__)
        if lang is None:
            raise SystemExit(f"{cls.__name__}: unknown profile module {cls.__module__}")
        if p.mirror_name != f"swesmith/{key}":
            raise SystemExit(f"{cls.__name__}: mirror {p.mirror_name} is not swesmith/{key}")
        parser = definer(cls, "log_parser")
        if parser is RepoProfile:
            raise SystemExit(f"{cls.__name__}: log_parser is abstract")
        files = definer(cls, "get_test_files").__name__
        cmd = definer(cls, "get_test_cmd").__name__
        if files not in GET_TEST_FILES:
            raise SystemExit(f"{cls.__name__}: get_test_files is overridden by {files}, which this script does not describe")
        if cmd not in GET_TEST_CMD:
            raise SystemExit(f"{cls.__name__}: get_test_cmd is overridden by {cmd}, which this script does not describe")
        entry = {
            "language": lang,
            "image_name": p.image_name,
            "test_cmd": p.test_cmd,
            "timeout": p.timeout,
            "min_testing": p.min_testing,
            "parser": parser.__name__,
            "get_test_files": files,
            "get_test_cmd": cmd,
        }
        d = defaults[lang]
        profiles[key] = {k: v for k, v in entry.items() if k in ("language", "image_name") or d.get(k) != v}
    return {
        "header": {
            "generated_from": f"swesmith {swesmith.__version__} (tests/reference/gen_swesmith_profiles.py)",
            "key": "profiles are keyed by repo_name '<owner>__<repo>.<commit[:8]>'. A row's profile "
            "is registry.get_from_inst: row['repo'] if present (the mirror name "
            "'swesmith/<repo_name>'), else instance_id.rsplit('.', 1)[0] (the repo name).",
            "fields": "language, image_name (for arch x86_64) always; test_cmd, timeout (seconds for "
            "the whole eval script), min_testing, parser (the class defining log_parser), "
            "get_test_files, get_test_cmd (the classes defining those methods) only where they "
            "differ from defaults[language].",
            "defaults": defaults,
            "get_test_files": GET_TEST_FILES,
            "get_test_cmd": GET_TEST_CMD,
            "eval_script": eval_script_lines(),
        },
        "profiles": profiles,
    }


def main():
    json.dump(table(), sys.stdout, indent=1, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
