"""The trusted side of an exported Gradescope autograder (``run_autograder`` calls ``run``).

Runs as root from ``$ROOT/source/trusted`` (the full package: reference, hidden cases), while
the student's code runs in the worker as an unprivileged user that can read only
``$ROOT/runtime``. The submission is copied into a folder of that user's; when grading is
over, every process of that user is killed, and only then is results.json written.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import sys
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mechgrade.engine.results import GradescopeVisibility

CONFIG = "autograder.json"
# Grading stops this long before the assignment's timeout: room for Gradescope starting the
# container and run_autograder, stopping the worker, killing the student's processes and writing
# results.json at half a CPU. The shell's own `timeout` fires at KILL_S before it.
RESERVE_S = 60
KILL_S = 20
MEASURED_CPUS = 0.5  # the reference fits every per-call limit at half a CPU (benchmarks/autograder.py --container)


class AutograderConfig(BaseModel):
    """Written by ``mechgrade export gradescope`` into the zip's root."""

    model_config = ConfigDict(extra="forbid")
    lesson: str
    model: str = "embedded"
    hidden_visibility: GradescopeVisibility = "after_published"
    mem_mb: int = Field(description="Memory the student's code may add to the worker, at most (cut to fit the container).")
    time_limit_s: int = Field(600, description="The assignment's autograder timeout; grading ends RESERVE_S before it.")
    user: str = "mechgrade-student"
    version: str

    @classmethod
    def load(cls, root: Path) -> "AutograderConfig":
        return cls.model_validate_json((root / "source" / CONFIG).read_text())


def model_spec(config: AutograderConfig, root: Path) -> str:
    """A model shipped inside the zip (``--model DIR``) lives in the world-readable runtime."""
    return str(root / "runtime" / "model") if config.model == "zip" else config.model


def prepare(root: Path) -> None:
    """Build time (network available): fetch the model, fill every case's key entry."""
    from mechgrade.engine.key import AnswerKey
    from mechgrade.models.spec import resolve
    from mechgrade.spec import load_lesson

    config = AutograderConfig.load(root)
    if config.model == "zip":
        shutil.copytree(root / "source" / "model", root / "runtime" / "model", dirs_exist_ok=True)
    spec = model_spec(config, root)
    resolve(spec, allow_download=True)
    lesson = load_lesson(config.lesson)
    key = AnswerKey(lesson, spec)
    computed = key.fill(lesson.iter_cases(hidden=True))
    print(f"mechgrade: answer key for {lesson.id} on '{config.model}': {len(key.entries)} cases "
          f"({'computed now' if computed else 'shipped'}), {key.cache_path}")


def _stage_submission(submission: Path, work: Path, lesson, user: str) -> Path:
    """Copy the student's files (regular files only: a symlink could point into trusted
    space) into a fresh folder owned by ``user``; return the workspace in it (the folder
    holding the modules, or a notebook)."""
    from mechgrade.engine.gradebook import locate_modules
    from mechgrade.workspace import copy_regular_files

    if work.exists():
        shutil.rmtree(work)
    copy_regular_files(submission, work)
    account = pwd.getpwnam(user)
    for path in [work, *work.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid)
    work.chmod(0o700)
    return locate_modules(work, lesson)


def kill_user_processes(user: str) -> int:
    """SIGKILL every process of ``user`` (a worker's children may have left its process group)."""
    uid = pwd.getpwnam(user).pw_uid
    killed = 0
    for _ in range(3):  # a fork bomb can spawn while we scan; a few passes settle it
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        os.kill(int(entry), signal.SIGKILL)
                        killed += 1
                except (FileNotFoundError, ProcessLookupError, PermissionError):
                    pass
        time.sleep(0.05)
    return killed


def failure_results(message: str) -> dict:
    return {"score": 0, "output": message, "visibility": "visible", "tests": []}


def grade(root: Path) -> dict:
    from mechgrade.engine.session import check_workspace
    from mechgrade.export.container import needed_mb, read_limits, recommended_mb, student_allowance
    from mechgrade.errors import MechgradeError, WorkspaceError
    from mechgrade.spec import load_lesson

    config = AutograderConfig.load(root)
    lesson = load_lesson(config.lesson)
    started = float(os.environ.get("MECHGRADE_STARTED") or time.time())  # set by run_autograder
    limits = read_limits()
    allowance = student_allowance(config.model, config.mem_mb, limits)
    if allowance is None:
        need = needed_mb(config.model)
        return failure_results(f"The autograder needs at least {need} MB of memory to grade on model '{config.model}', and this "
                               f"container has {limits.memory_mb:.0f} MB: raise the assignment's autograder memory (container "
                               f"specifications) to {recommended_mb(config.model)} MB. Your submission was not graded.")
    metadata = root / "submission_metadata.json"  # names and emails: not for the student's code
    if metadata.exists():
        metadata.chmod(0o600)
    try:
        workspace = _stage_submission(root / "submission", root / "work" / "submission", lesson, config.user)
    except WorkspaceError as err:
        return failure_results(f"Nothing to grade: {err}. Upload {', '.join(e.id + '.py' for e in lesson.exercises)} "
                               f"(loose, or in a {lesson.id}/ folder), or your one .ipynb notebook.")
    try:
        result = check_workspace(config.lesson, workspace, model=model_spec(config, root), hidden=True,
                                 mem_mb=allowance, worker_user=config.user, deadline=started + config.time_limit_s - RESERVE_S)
    except MechgradeError as err:
        return failure_results(f"The autograder could not grade this submission: {err}")
    finally:
        kill_user_processes(config.user)
    data = result.to_gradescope(hidden_visibility=config.hidden_visibility)
    if limits.cpus is not None and limits.cpus < MEASURED_CPUS:  # the per-call limits were measured with more
        data["output"] += (f" (Graded with {limits.cpus:g} CPU, less than the {MEASURED_CPUS:g} this autograder was measured with: "
                           "time limits may have cut correct code short; raise the assignment's autograder CPU.)")
    return data


def run(root: Path) -> None:
    """Grade and write results.json; whatever happens, a valid results.json is written."""
    results = root / "results" / "results.json"
    try:
        data = grade(root)
    except Exception as err:  # the trusted side failed: say so instead of leaving no results
        data = failure_results(f"The autograder failed ({type(err).__name__}: {err}); please tell your instructor.")
    results.parent.mkdir(parents=True, exist_ok=True)
    tmp = results.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(results)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("command", choices=["prepare", "run"])
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("MECHGRADE_AUTOGRADER_ROOT", "/autograder")))
    args = ap.parse_args(argv)
    if args.command == "prepare":
        prepare(args.root)
    else:
        run(args.root)
    sys.exit(0)


if __name__ == "__main__":
    main()
