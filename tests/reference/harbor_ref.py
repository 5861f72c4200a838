"""The harbor package's own reading of Harbor task directories and reward files (harbor 0.25.0).

proto/tests/harbor.rs runs this with .venv/harbor-0.25.0/bin/python (deploy/setup.sh makes it)
and compares agentmill's reading with it field for field.

  harbor_ref.py tasks DIR...    one JSON object per task directory, as a JSON list:
      {"ok": true, "name", "instruction", "config": TaskConfig.model_dump(mode="json"),
       "files": {...paths relative to the task dir...}}   (non-finite floats written as null)  or  {"ok": false, "error": class name}
  harbor_ref.py dirs PATH...    the task directories `harbor run --path PATH` takes (the path when
      Task.is_valid_dir says it is a task, else its valid children, sorted), relative to PATH
  harbor_ref.py env FILE...     FILE holds {"env": {...}, "environ": {...}}: resolve_env_vars(env)
      with os.environ set to environ: {"ok": true, "env": {...}} or {"ok": false}
  harbor_ref.py rewards DIR...  the verifier's reading of DIR/reward.json / DIR/reward.txt:
      {"ok": true, "rewards": {name: float}}  or  {"ok": false, "error": class name}
"""

import importlib.metadata
import json
import math
import os
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

from harbor.models.task.task import Task
from harbor.models.task.verifier_mode import (
    resolve_task_verifier_mode,
    resolve_verifier_environment_definition,
)
from harbor.models.verifier.result import VerifierResult
from harbor.utils.env import resolve_env_vars
from harbor.utils.scripts import discover_script
from harbor.verifier.verifier import Verifier

warnings.simplefilter("ignore")


def finite(v):
    """Non-finite floats as null, as pydantic's own JSON (ser_json_inf_nan="null") writes them."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def rel(task, path):
    return None if path is None else path.relative_to(task.paths.task_dir).as_posix()


def read_task(d):
    try:
        task = Task(d)
    except Exception as e:  # the package's refusal, whatever its class
        return {"ok": False, "error": type(e).__name__, "message": str(e)}
    paths = task.paths
    env_dir = paths.environment_dir
    definition = resolve_verifier_environment_definition(task.config, paths)
    bundled = definition is not None and definition.bundled_tests
    verifier_os = definition.config.os if definition else task.config.environment.os
    return {
        "ok": True,
        "name": task.name,
        "instruction": task.instruction,
        "config": finite(task.config.model_dump(mode="json")),
        "files": {
            "environment_dir": env_dir.is_dir(),
            "dockerfile": rel(task, env_dir / "Dockerfile") if (env_dir / "Dockerfile").is_file() else None,
            "docker_compose": rel(task, env_dir / "docker-compose.yaml")
            if (env_dir / "docker-compose.yaml").is_file()
            else None,
            "test_script": None if bundled else rel(task, paths.discovered_test_path_for(verifier_os)),
            "solve_script": rel(task, discover_script(paths.solution_dir, "solve", task_os=task.config.environment.os)),
            "verifier_mode": resolve_task_verifier_mode(task.config).value,
        },
    }


def read_rewards(d):
    d = Path(d)
    # Verifier.verify's choice (reward.json preferred), then its own parsers, then VerifierResult.
    me = SimpleNamespace(
        trial_paths=SimpleNamespace(reward_json_path=d / "reward.json", reward_text_path=d / "reward.txt")
    )
    try:
        if me.trial_paths.reward_json_path.exists():
            rewards = Verifier._parse_reward_json(me)
        elif me.trial_paths.reward_text_path.exists():
            rewards = Verifier._parse_reward_text(me)
        else:
            return {"ok": False, "error": "RewardFileNotFoundError"}
        result = VerifierResult(rewards=rewards)
    except Exception as e:
        return {"ok": False, "error": type(e).__name__}
    return {"ok": True, "rewards": {k: float(v) for k, v in result.rewards.items()}}


def task_dirs(p):
    p = Path(p)
    if Task.is_valid_dir(p):
        return ["."]
    return [c.name for c in sorted(p.iterdir()) if Task.is_valid_dir(c)]


def resolve_env(f):
    case = json.loads(Path(f).read_text())
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(case["environ"])
    try:
        return {"ok": True, "env": resolve_env_vars(case["env"])}
    except ValueError:
        return {"ok": False}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main():
    version = importlib.metadata.version("harbor")
    if version != "0.25.0":
        sys.exit(f"harbor_ref.py: expected harbor 0.25.0, found {version}; run deploy/setup.sh")
    mode, dirs = sys.argv[1], sys.argv[2:]
    fn = {"tasks": read_task, "rewards": read_rewards, "dirs": task_dirs, "env": resolve_env}[mode]
    json.dump([fn(d) for d in dirs], sys.stdout)


if __name__ == "__main__":
    main()
