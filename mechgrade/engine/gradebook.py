"""`mechgrade grade`: a whole class's submissions, graded locally, in parallel.

Each of ``jobs`` grading processes keeps one zygote (TransformerLens imported and the model
booted once) inside the run's sandbox (``mechgrade.sandbox``; required unless
``no_sandbox``) and forks a fresh worker per submission, so a submission costs its own cases
and nothing else. One crashing, hanging or cheating submission costs only its own row: any
error while grading it becomes its row, with the reason; the run never stops early, and
``resume`` skips students whose results already exist. A submission is copied in (or
unzipped) under caps on its files, size and depth before anything reads it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import signal
import statistics
import tempfile
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

from mechgrade.errors import MechgradeError, WorkspaceError
from mechgrade.models.spec import resolve, spec_from_env
from mechgrade.sandbox import Sandbox, choose
from mechgrade.sandbox.fs import MAX_BYTES, MAX_DEPTH, MAX_FILE_BYTES, MAX_FILES, copy_submission, remove_tree
from mechgrade.spec import Lesson, load_lesson


class StudentRow(BaseModel):
    student: str
    score: float
    max_score: float
    status: str
    exercises: dict[str, float]
    failed_cases: list[str] = []
    hints: list[str] = []


class ClassReport(BaseModel):
    lesson: str
    rows: list[StudentRow]
    gradebook: Path
    results_dir: Path
    sandbox: str = ""
    hidden_not_graded: float = 0.0  # points of the hidden cases, when they were not run (no --hidden)
    not_submissions: dict[str, str] = {}  # entry of the class folder -> why it is not graded
    interrupted: list[str] = []  # students not graded because the run was interrupted (Ctrl-C)

    def summary_lines(self, top: int = 5) -> list[str]:
        graded = [r for r in self.rows if r.status == "graded"]
        scores = [r.score for r in graded]
        lines = [f"{len(self.rows) + len(self.interrupted)} submissions, {len(graded)} graded, "
                 f"{len(self.rows) - len(graded)} not gradable"
                 + (f", {len(self.interrupted)} not graded (interrupted)" if self.interrupted else "")
                 + (f"; student code ran in a sandbox: {self.sandbox}" if self.sandbox else "")]
        if scores:
            hidden = (f"; hidden cases worth {self.hidden_not_graded:g} more points were not graded (grade with --hidden)"
                      if self.hidden_not_graded else "")
            lines.append(f"scores: mean {statistics.mean(scores):.1f}, median {statistics.median(scores):.1f}, "
                         f"min {min(scores):g}, max {max(scores):g} (of {graded[0].max_score:g}{hidden})")
            bins = Counter(min(int(100 * r.score / r.max_score // 10) * 10, 90) if r.max_score else 0 for r in graded)
            lines.append("distribution (% of max): " + "  ".join(f"{b}-{b + 9 if b < 90 else 100}: {bins[b]}" for b in range(0, 100, 10)))
        for title, counter in (("most failed cases", Counter(c for r in graded for c in r.failed_cases)),
                               ("hints shown most", Counter(h for r in graded for h in r.hints))):
            if counter:
                lines.append(f"{title}:")
                lines += [f"  {n:>3} x {what}" for what, n in counter.most_common(top)]
        for r in self.rows:
            if r.status != "graded":
                lines.append(f"not graded: {r.student}: {r.status}")
        for name, why in self.not_submissions.items():
            lines.append(f"not a submission: {name}: {why}")
        if self.interrupted:
            lines.append(f"interrupted: not graded: {', '.join(self.interrupted)} (rerun with --resume to grade them)")
        return lines


SUBMISSION_SUFFIXES = (".zip", ".ipynb", ".py")  # beside folders: one file per student, named after them


def find_submissions(root: Path, lesson: Lesson, *, ours: tuple[Path, ...] = ()) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    """(student id, folder, .zip, .ipynb or .py) for each entry of ``root`` (Gradescope's export
    layout works), and {entry: why it is not graded} for every other entry, so that no student is
    dropped without a word. ``ours``: this run's own outputs (gradebook, results), not listed."""
    if not root.is_dir():
        raise WorkspaceError(f"{root} is not a folder of submissions (one subfolder, .zip, .ipynb or .py per student).")
    modules = {f"{e.id}.py" for e in lesson.exercises}
    subs, others = [], {}
    for p in sorted(root.iterdir()):
        if any(p.resolve() == o.resolve() for o in ours):
            continue
        if p.name in modules:
            others[p.name] = "a lesson module loose in the class folder; a student's modules go in their own subfolder or .zip"
        elif p.is_dir() or (p.is_file() and p.suffix in SUBMISSION_SUFFIXES):
            subs.append((p.name if p.is_dir() else p.stem, p))
        else:
            others[p.name] = "not a submission (one subfolder, .zip, .ipynb or .py per student)"
    if not subs:
        raise WorkspaceError(f"{root} holds no submissions: expected one subfolder, .zip, .ipynb or .py per student.")
    return subs, others


def locate_modules(folder: Path, lesson: Lesson) -> Path:
    """The student's workspace in a submission: the folder holding the lesson's modules (loose
    files, or inside any subfolder), else its one Jupyter notebook."""
    names = {f"{e.id}.py" for e in lesson.exercises}
    best, best_n = folder, len(names & {p.name for p in folder.iterdir()})
    for sub in folder.rglob("*"):
        if sub.is_dir() and not any(part.startswith(("__", ".")) for part in sub.relative_to(folder).parts):
            n = len(names & {p.name for p in sub.iterdir()})
            if n > best_n:
                best, best_n = sub, n
    if best_n:
        return best
    notebooks = [p for p in folder.rglob("*.ipynb") if not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    if len(notebooks) == 1:
        return notebooks[0]
    if notebooks:
        raise WorkspaceError(f"no lesson modules and {len(notebooks)} notebooks ({', '.join(sorted(p.name for p in notebooks))}) "
                             "in the submission; submit one notebook")
    raise WorkspaceError(f"no lesson modules ({', '.join(sorted(names))}) or notebook in the submission")


def _materialize(source: Path, scratch: Path, lesson: Lesson) -> Path:
    """Copy (or safely unzip) a submission into scratch space; the original is never touched."""
    dest = scratch / "submission"
    if source.suffix == ".zip":
        unzip_capped(source, dest)
    elif source.is_file():  # a loose NAME.ipynb, or NAME.py holding every function: graded as a notebook
        dest.mkdir()
        if source.is_symlink():
            raise WorkspaceError(f"{source.name} is a link; links are not graded")
        if source.stat().st_size > MAX_FILE_BYTES:
            raise WorkspaceError(f"{source.name} is too large (at most {MAX_FILE_BYTES >> 20} MB is graded)")
        notebook = dest / f"{source.stem}.ipynb"
        if source.suffix == ".py":
            from mechgrade.notebook import module_notebook

            notebook.write_text(json.dumps(module_notebook(source.read_text(encoding="utf-8", errors="replace"))))
        else:
            notebook.write_bytes(source.read_bytes())
        return notebook
    else:
        copy_submission(source, dest)
    return locate_modules(dest, lesson)


def unzip_capped(source: Path, dest: Path) -> None:
    """Extract a student's zip: regular files only, no entry outside ``dest`` or deeper than
    the copy's depth cap, and the same caps on count and size as a copied folder, counted on
    the bytes actually inflated (a zip's headers can lie about sizes)."""
    too_big = WorkspaceError(f"the zip is too large (at most {MAX_FILES} files and {MAX_BYTES >> 20} MB "
                             f"uncompressed, {MAX_FILE_BYTES >> 20} MB per file, are graded)")
    dest.mkdir(parents=True)
    total = 0
    with zipfile.ZipFile(source) as zf:
        members = zf.infolist()
        if len(members) > MAX_FILES:
            raise too_big
        for member in members:
            parts = Path(member.filename).parts
            if member.filename.startswith("/") or ".." in parts or len(parts) > MAX_DEPTH + 1:
                raise WorkspaceError(f"the zip has an entry outside its folder or too deep ({member.filename[:80]})")
            if member.is_dir() or (member.external_attr >> 16) & 0o170000 not in (0, 0o100000):
                continue  # folders come with their files; links and devices are not copied
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "xb") as out:
                while chunk := src.read(1 << 20):
                    total += len(chunk)
                    if total > MAX_BYTES or out.tell() + len(chunk) > MAX_FILE_BYTES:
                        raise too_big
                    out.write(chunk)


# -- grading processes ------------------------------------------------------------------------
STUDENT_LIMIT_S = 600.0  # one submission's wall clock in `grade`: its worst case is a few time limits, not this
_ZYGOTE = None


_SCRATCH: Path | None = None  # the submission being graded in this process, removed if it is stopped


def _init_process(lesson_id: str, model: str, mem_mb: int, sandbox: Sandbox) -> None:
    """A grading process (started with Ctrl-C ignored: the parent handles it and stops us with
    SIGTERM, after the students already graded are saved); however it ends, its zygote and
    folders go with it."""
    from multiprocessing.util import Finalize

    from mechgrade.engine.forking import Zygote

    global _ZYGOTE
    signal.signal(signal.SIGTERM, _stopped)
    _ZYGOTE = Zygote(lesson=lesson_id, model_spec=model, mem_mb=mem_mb, sandbox=sandbox)
    Finalize(_ZYGOTE, _ZYGOTE.close, exitpriority=10)  # run when the pool shuts its processes down


def _stopped(signum, frame) -> None:
    if _ZYGOTE is not None:
        _ZYGOTE.close()
    if _SCRATCH is not None:
        remove_tree(_SCRATCH)
    os._exit(0)


def _grade_one(lesson_id: str, student: str, source: Path, results_dir: Path, model: str, hidden: bool,
               limit_s: float) -> StudentRow:
    from mechgrade.engine.session import check_workspace

    lesson = load_lesson(lesson_id)
    exercises = {e.id: 0.0 for e in lesson.exercises}
    public_max = sum(c.points for _, _, c in lesson.iter_cases(hidden=hidden))
    global _SCRATCH
    tmp = _SCRATCH = Path(tempfile.mkdtemp(prefix="mechgrade-grade-"))
    try:
        ws = _materialize(source, tmp, lesson)
        result = check_workspace(lesson_id, ws, model=model, hidden=hidden, zygote=_ZYGOTE,
                                 results_path=results_dir / f"{student}.json", deadline=time.time() + limit_s)
    except Exception as err:  # whatever went wrong with this submission is this submission's row
        why = str(err) if isinstance(err, (MechgradeError, OSError, zipfile.BadZipFile)) else f"{type(err).__name__}: {err}"
        why = why[:500]
        (results_dir / f"{student}.json").write_text(json.dumps({"score": 0, "output": f"not graded: {why}", "tests": []}))
        return StudentRow(student=student, score=0, max_score=public_max, status=why, exercises=exercises)
    finally:
        remove_tree(tmp)
        _SCRATCH = None
    for summary in result.exercises():
        exercises[summary.exercise] = summary.score
    return StudentRow(student=student, score=result.score, max_score=result.max_score, status="graded", exercises=exercises,
                      failed_cases=[c.name for c in result.cases if not c.passed],
                      hints=[c.hint for c in result.cases if c.hint])


def _row_from_results(lesson: Lesson, student: str, path: Path) -> StudentRow:
    """Rebuild a row from a results.json written by an earlier (resumed) run."""
    data = json.loads(path.read_text())
    exercises = {e.id: 0.0 for e in lesson.exercises}
    for t in data.get("tests", []):
        exercises[t["name"].split(".")[0]] += t["score"]
    status = "graded" if data.get("tests") else data.get("output", "not graded")
    return StudentRow(student=student, score=data.get("score", 0), max_score=sum(t["max_score"] for t in data.get("tests", [])),
                      status=status, exercises=exercises,
                      failed_cases=[t["name"] for t in data.get("tests", []) if t["status"] == "failed"],
                      hints=[line[6:] for t in data.get("tests", []) for line in t["output"].splitlines() if line.startswith("Hint: ")])


def grade_class(lesson_id: str, submissions: Path, *, gradebook: Path, results_dir: Path, model: str | None = None,
                hidden: bool = False, jobs: int | None = None, resume: bool = False, mem_mb: int = 2048,
                no_sandbox: bool = False, student_limit_s: float = STUDENT_LIMIT_S,
                progress: Callable[[str, int, int], None] | None = None) -> ClassReport:
    """``no_sandbox``: grade even where no sandbox can be built (student code then runs as you).
    ``student_limit_s``: wall-clock seconds one submission may take; its cases not run by then
    are reported as not run."""
    lesson = load_lesson(lesson_id)
    model = spec_from_env(model)
    resolve(model)
    sandbox = choose(required=not no_sandbox)
    subs, not_submissions = find_submissions(Path(submissions), lesson, ours=(gradebook, results_dir))
    results_dir.mkdir(parents=True, exist_ok=True)
    done = {s for s, _ in subs if resume and (results_dir / f"{s}.json").exists()}
    rows = [_row_from_results(lesson, s, results_dir / f"{s}.json") for s, _ in subs if s in done]
    todo = [(s, p) for s, p in subs if s not in done]
    interrupted: list[str] = []
    if todo:
        # A key computed once here is reused by every grading process through the disk cache.
        from mechgrade.engine.key import AnswerKey

        AnswerKey(lesson, model).fill(lesson.iter_cases(hidden=hidden))
        jobs = max(1, min(jobs or multiprocessing.cpu_count(), len(todo)))
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_process, initargs=(lesson_id, model, mem_mb, sandbox)) as pool:
            with _children_ignore_ctrl_c():  # the pool starts its processes here
                futures = {pool.submit(_grade_one, lesson_id, s, p, results_dir, model, hidden, student_limit_s): s for s, p in todo}
            try:
                for n, future in enumerate(as_completed(futures), 1):
                    rows.append(future.result())
                    if progress:
                        progress(futures[future], n, len(todo))
            except KeyboardInterrupt:  # Ctrl-C: keep who is graded, stop the rest, leave nothing behind
                for child in multiprocessing.active_children():
                    child.terminate()  # SIGTERM: the process closes its zygote and scratch (_stopped)
                pool.shutdown(wait=True, cancel_futures=True)
                graded = {r.student for r in rows}
                interrupted = [s for s, _ in todo if s not in graded]
    rows.sort(key=lambda r: r.student)
    hidden_not_graded = 0.0 if hidden else lesson.total_points - sum(c.points for _, _, c in lesson.iter_cases())
    _write_gradebook(gradebook, rows, [e.id for e in lesson.exercises], hidden_not_graded)
    return ClassReport(lesson=lesson_id, rows=rows, gradebook=gradebook, results_dir=results_dir, sandbox=sandbox.name,
                       hidden_not_graded=hidden_not_graded, not_submissions=not_submissions, interrupted=interrupted)


@contextlib.contextmanager
def _children_ignore_ctrl_c():
    """Processes started in here begin with SIGINT ignored (an ignored signal stays ignored across
    exec, and Python then installs no handler of its own): a Ctrl-C while one is still starting
    cannot print its traceback. The parent alone handles Ctrl-C and stops them."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_gradebook(path: Path, rows: list[StudentRow], exercises: list[str], hidden_not_graded: float = 0.0) -> None:
    """Without --hidden, a column says on every row how many points were not graded, so that
    "74 of 74" is never uploaded as a full mark out of 100."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = ["hidden_points_not_graded"] if hidden_not_graded else []
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "total", "max", *hidden, *exercises, "status"])
        for r in rows:
            writer.writerow([r.student, f"{r.score:g}", f"{r.max_score:g}", *(f"{hidden_not_graded:g}" for _ in hidden),
                             *(f"{r.exercises[e]:g}" for e in exercises), r.status])
