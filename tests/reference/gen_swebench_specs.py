#!/usr/bin/env python3
"""Writes agentmill's copy of SWE-bench's per-repository tables, generated from the package.

    PYTHONPATH=.venv/swebench-4.1.0 .venv/bin/python tests/reference/gen_swebench_specs.py \
        > proto/data/swebench-specs.json
    PYTHONPATH=<checkout of SWE-Gym/SWE-Bench-Fork> .venv/bin/python tests/reference/gen_swebench_specs.py \
        --swe-gym > proto/data/swe-gym-specs.json

SWE-Gym's harness is a fork of SWE-bench 2.x (github.com/SWE-Gym/SWE-Bench-Fork, not on PyPI); with
`--swe-gym` only the repositories it adds are written (its copies of SWE-bench's own are older).

The tables are what `swebench` 4.x builds eval scripts and picks parsers from
(`MAP_REPO_VERSION_TO_SPECS`, `MAP_REPO_TO_EXT`, `MAP_REPO_TO_PARSER`, `FAIL_ONLY_REPOS`,
`NON_TEST_EXTS`). The proto crate embeds the output; `worker/tests/eval_scripts.rs`
(`the_embedded_spec_tables_are_the_packages`) runs this script again and fails when the committed
file differs (a new package version, or a hand edit).
"""
import json
import sys

import swebench
from swebench.harness import constants
from swebench.harness.log_parsers import MAP_REPO_TO_PARSER


def swe_gym():
    from swebench.harness.log_parsers import MAP_REPO_TO_PARSER as parsers

    added = [r for r in constants.MAP_REPO_VERSION_TO_SPECS if r not in SWEBENCH_2X_REPOS]
    return {
        "generated_from": "SWE-Gym/SWE-Bench-Fork (tests/reference/gen_swebench_specs.py --swe-gym)",
        "non_test_exts": list(constants.NON_TEST_EXTS),
        "repo_parser": {repo: parsers[repo.lower()].__name__ for repo in sorted(added) if repo.lower() in parsers},
        "specs": {repo: constants.MAP_REPO_VERSION_TO_SPECS[repo] for repo in sorted(added)},
    }


# The repositories SWE-bench 2.x already had; SWE-Gym's fork adds the others.
SWEBENCH_2X_REPOS = {
    "astropy/astropy", "dbt-labs/dbt-core", "django/django", "matplotlib/matplotlib",
    "marshmallow-code/marshmallow", "mwaskom/seaborn", "pallets/flask", "psf/requests",
    "pvlib/pvlib-python", "pydata/xarray", "pydicom/pydicom", "pylint-dev/astroid",
    "pylint-dev/pylint", "pytest-dev/pytest", "pyvista/pyvista", "scikit-learn/scikit-learn",
    "sphinx-doc/sphinx", "sqlfluff/sqlfluff", "swe-bench/humaneval", "sympy/sympy",
}


def main():
    if sys.argv[1:] == ["--swe-gym"]:
        json.dump(swe_gym(), sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    if not swebench.__version__.startswith("4."):
        sys.exit(f"swebench {swebench.__version__} has no spec tables; put .venv/swebench-4.1.0 first on PYTHONPATH")
    tables = {
        "generated_from": f"swebench {swebench.__version__} (tests/reference/gen_swebench_specs.py)",
        "non_test_exts": list(constants.NON_TEST_EXTS),
        "fail_only_repos": sorted(constants.FAIL_ONLY_REPOS),
        "repo_ext": dict(sorted(constants.MAP_REPO_TO_EXT.items())),
        "repo_parser": {repo: fn.__name__ for repo, fn in sorted(MAP_REPO_TO_PARSER.items())},
        "specs": {repo: constants.MAP_REPO_VERSION_TO_SPECS[repo] for repo in sorted(constants.MAP_REPO_VERSION_TO_SPECS)},
    }
    json.dump(tables, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
