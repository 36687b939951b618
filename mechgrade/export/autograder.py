"""The trusted side of an exported Gradescope autograder (``run_autograder`` calls ``run``).

Runs as root from ``$ROOT/source/trusted`` (the full package: reference, hidden cases), with
that root-owned folder as its working directory, while the student's code runs in the
worker inside the strongest sandbox the container allows (``mechgrade.sandbox``: namespaces
where bubblewrap works, and always the unprivileged user, which can read only
``$ROOT/runtime``). Every process of that user is killed before the submission is staged
and again when grading is over; only then is results.json written. results.json is always
written, valid and bounded: its space is reserved before any student code runs.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import sys
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mechgrade.engine.results import GradescopeVisibility

CONFIG = "autograder.json"
# The worker's limit is on address space, not resident memory: with less headroom than this, a
# correct train_linear_probe failed to allocate its inputs (768 MB container, 100 MB allowance).
# A submission that really uses it all may then be OOM-killed (oom_score_adj 1000): its case only.
AS_FLOOR_MB = 256
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
    """Copy the student's files into a fresh folder for ``user`` and return the workspace in it
    (the folder holding the modules, or a notebook). Every process of ``user`` is killed
    first, so nothing of an earlier run can swap entries while root works here; the copy
    takes regular files only, reads none through a link, and is handed over with ``lchown``."""
    from mechgrade.engine.gradebook import locate_modules
    from mechgrade.sandbox.fs import chown_tree, copy_submission, remove_tree
    from mechgrade.sandbox.procs import kill_uid

    account = pwd.getpwnam(user)
    kill_uid(account.pw_uid)
    remove_tree(work.parent)  # an earlier run's, however deep: root-made again below
    work.parent.mkdir(mode=0o711)
    work.mkdir(mode=0o700)
    copy_submission(submission, work)
    located = locate_modules(work, lesson)
    chown_tree(work, account.pw_uid, account.pw_gid)
    return located


def end_user_processes(user: str) -> None:
    """Kill every process of ``user`` and remove what it left in the machine's writable places
    and its SysV IPC objects (the worker's sealed room holds nothing of it once it ends; this
    is for a container that refused the room)."""
    from mechgrade.sandbox.procs import kill_uid
    from mechgrade.sandbox.rooms import sweep_uid

    uid = pwd.getpwnam(user).pw_uid
    kill_uid(uid)
    sweep_uid(uid)


def protect_self() -> None:
    """The kernel's OOM killer spares the grading process before the worker (root may lower
    its own score; the worker's 1000 was set by root and cannot be lowered by it)."""
    try:
        Path("/proc/self/oom_score_adj").write_text("-800")
    except OSError:
        pass


PROBE = """
import sys
from mechgrade.sandbox.drop import drop_to
drop_to({uid}, {gid})
import mechgrade.engine.worker, {cases}, torch
for secret in sys.argv[1:]:
    try:
        open(secret, "rb").close()
    except OSError:
        continue
    sys.exit("the student user can read " + secret)
print("ok")
"""


def selftest(root: Path) -> str:
    """Build time: prove that the student's code, run exactly as grading will run it (same
    sandbox, same user), can import the worker and cannot read the trusted side. Returns the
    sandbox's name; raises ``SystemExit`` with the reason otherwise."""
    import subprocess
    import tempfile

    from mechgrade.engine.key import cache_root
    from mechgrade.sandbox import choose
    from mechgrade.sandbox.fs import remove_tree

    config = AutograderConfig.load(root)
    sandbox = choose(user=config.user)
    secrets = [root / "source" / CONFIG, *sorted(cache_root().rglob("*.safetensors"))[:3]]
    scratch = Path(tempfile.mkdtemp(prefix="mechgrade-selftest-"))
    try:
        sandbox.own(scratch)
        from mechgrade import lessons

        code = PROBE.format(uid=sandbox.uid, gid=sandbox.gid, cases=f"{lessons.get(config.lesson).data}.cases")
        cmd = sandbox.command([sys.executable, "-I", "-c", code, *map(str, secrets)], scratch=scratch)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=scratch, timeout=300,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch)})
    finally:
        sandbox.cleanup()
        remove_tree(scratch)
    if proc.returncode != 0 or "ok" not in proc.stdout:
        why = (proc.stderr.strip().splitlines() or [f"it printed nothing and exited with status {proc.returncode}"])[-1]
        raise SystemExit(f"setup.sh: student code could not run safely as {config.user} in sandbox '{sandbox.name}': {why}. "
                         "If the interpreter lies under a folder that user cannot enter (e.g. /root), install Python "
                         "where every user can run it (apt's python3), or install bubblewrap.")
    return sandbox.name


def failure_results(message: str) -> dict:
    return {"score": 0, "output": message, "visibility": "visible", "tests": []}


def grade(root: Path) -> dict:
    from mechgrade.engine.session import check_workspace
    from mechgrade.export.container import needed_mb, read_limits, recommended_mb, student_allowance
    from mechgrade import lessons
    from mechgrade.errors import MechgradeError, WorkspaceError
    from mechgrade.spec import load_lesson

    config = AutograderConfig.load(root)
    lesson = load_lesson(config.lesson)
    started = float(os.environ.get("MECHGRADE_STARTED") or time.time())  # set by run_autograder
    limits = read_limits()
    peaks = lessons.get(config.lesson).peak_mb
    allowance = student_allowance(config.model, peaks, config.mem_mb, limits)
    if allowance is None:
        need = needed_mb(config.model, peaks)
        return failure_results(f"The autograder needs at least {need} MB of memory to grade on model '{config.model}', and this "
                               f"container has {limits.memory_mb:.0f} MB: raise the assignment's autograder memory (container "
                               f"specifications) to {recommended_mb(config.model, peaks)} MB. Your submission was not graded.")
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
                                 mem_mb=max(allowance, AS_FLOOR_MB), worker_user=config.user, deadline=started + config.time_limit_s - RESERVE_S)
    except MechgradeError as err:
        return failure_results(f"The autograder could not grade this submission: {err}")
    finally:
        end_user_processes(config.user)
    data = result.to_gradescope(hidden_visibility=config.hidden_visibility)
    if limits.cpus is not None and limits.cpus < MEASURED_CPUS:  # the per-call limits were measured with more
        data["output"] += (f" (Graded with {limits.cpus:g} CPU, less than the {MEASURED_CPUS:g} this autograder was measured with: "
                           "time limits may have cut correct code short; raise the assignment's autograder CPU.)")
    return data


def run(root: Path) -> None:
    """Grade and write results.json; whatever happens, a valid results.json is written: its
    space is reserved before the student's code runs (a submission that fills the disk cannot
    leave it empty), and it is bounded in size."""
    from mechgrade.export.results_file import ReservedResults

    os.chdir(root / "source")  # never the submission's folder: nothing there is imported or read as config
    protect_self()
    out = ReservedResults(root / "results" / "results.json")
    out.write(failure_results("The autograder did not finish grading this submission; please tell your instructor."))
    try:
        data = grade(root)
    except Exception as err:  # the trusted side failed: say so instead of leaving no results
        data = failure_results(f"The autograder failed ({type(err).__name__}: {str(err)[:500]}); please tell your instructor.")
    out.write(data)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("command", choices=["prepare", "run", "selftest"])
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("MECHGRADE_AUTOGRADER_ROOT", "/autograder")))
    args = ap.parse_args(argv)
    if args.command == "prepare":
        prepare(args.root)
    elif args.command == "selftest":
        print(f"mechgrade: student code will run in sandbox: {selftest(args.root)}")
    else:
        run(args.root)
    sys.exit(0)


if __name__ == "__main__":
    main()
