"""The HTML report of ``mechgrade check --report``: one self-contained file (inline CSS and SVG,
no script, no network) that reads the same results model as the terminal table and
results.json, plus the per-case values recorded beside it (``engine.values``).

Per exercise: title, points and status from the spec and results, each case's feedback and hint,
and pictures of the expected output beside the student's, with the difference where they
disagree. Then "your model": the model the lesson ran on, and what the lesson's ``extras``
measure on it (``mechgrade.extras``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from mechgrade.engine.results import CaseResult, GradingResult
from mechgrade.engine.values import CaseValues
from mechgrade.errors import MechgradeError
from mechgrade.extras import ModelSection, hook
from mechgrade.render.figures import Figure, figures
from mechgrade.spec import Lesson, lesson_dir, load_lesson

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ReportError(MechgradeError):
    """The report could not be written (the grade itself is unaffected)."""


@dataclass
class ReportModel:
    """The "your model" section: the booted model, and the lesson's measurements of it (if any)."""

    spec: str
    architecture: str
    model: object = field(repr=False)
    section: ModelSection | None = None


@dataclass
class CaseView:
    result: CaseResult
    figures: list[Figure] = field(default_factory=list)
    shown: bool = False  # values recorded (public cases, or hidden ones for an instructor)
    open: bool = False


@dataclass
class FunctionView:
    name: str
    caption: str
    cases: list[CaseView]


@dataclass
class ExerciseView:
    id: str
    number: int  # its section number in the lesson, as in the workspace README and feedback (-e keeps it)
    title: str
    paper: str
    score: float
    max_score: float
    functions: list[FunctionView]

    @property
    def status(self) -> str:
        cases = [c.result for f in self.functions for c in f.cases]
        return "passed" if all(c.passed for c in cases) else "error" if any(c.status == "error" for c in cases) else "failed"


def captions(lesson_id: str) -> dict:
    """The lesson's figure captions and output labels (``report/captions.toml``), keyed 'exercise.function'."""
    path = lesson_dir(lesson_id) / "report" / "captions.toml"
    return tomllib.loads(path.read_text())["functions"] if path.is_file() else {}


def _extra(fn, view: ReportModel, values: CaseValues) -> list[Figure]:
    try:
        return fn(view.model, values.params, values.expected, values.got)
    except Exception:  # a picture is a courtesy: it must never cost the report
        return []


def _section_figures(view: ReportModel, dims, values: CaseValues, **tol) -> list[Figure]:
    try:
        return view.section.figures(dims, values.expected, values.got, **tol)
    except Exception:
        return []


def _once(cases: list[CaseView]) -> None:
    """Each distinct picture once per function: a panel (or a whole figure) that a later case
    would draw again, the same to the byte (the top head's attention is drawn on one fixed
    sequence), refers to the case that drew it first."""
    seen: dict[str, str] = {}
    for cv in cases:
        for i, fig in enumerate(cv.figures):
            panels = [str(p) for p in fig.panels]
            repeated = [p in seen and "<svg" in p for p in panels]
            if panels and all(repeated):
                cv.figures[i] = Figure(fig.title, [Markup(f'<p class="note">The same as in {escape(seen[panels[0]])} above.</p>')])
                continue
            for j, p in enumerate(panels):
                if repeated[j]:
                    fig.panels[j] = Markup(f'<p class="note">The same map as in {escape(seen[p])} above.</p>')
                else:
                    seen.setdefault(p, cv.result.case)


def codespans(text: str) -> Markup:
    """Feedback text as HTML: `code` spans become <code>, everything else escaped."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: leave the text as it is
        return Markup(escape(text))
    return Markup("".join(f"<code>{escape(p)}</code>" if i % 2 else str(escape(p)) for i, p in enumerate(parts)))


def build(result: GradingResult, values: dict[str, CaseValues], *, view: ReportModel | None = None,
          lesson: Lesson | None = None) -> list[ExerciseView]:
    from mechgrade.engine.grader import output_dims

    lesson = lesson or load_lesson(result.lesson)
    texts, more = captions(lesson.id), hook(lesson.id, "FIGURES") or {}
    summaries = {s.exercise: s for s in result.exercises()}
    out = []
    for number, exercise in enumerate(lesson.exercises, 1):
        if exercise.id not in summaries:
            continue  # not selected with -e
        functions = []
        for function in exercise.functions:
            key = f"{exercise.id}.{function.name}"
            text = texts.get(key, {})
            dims = output_dims(lesson.id, exercise.id, function.name)
            cases = []
            for c in (c for c in result.cases if c.exercise == exercise.id and c.function == function.name):
                cv = CaseView(c, open=not c.passed)
                v = values.get(c.number)
                if v is not None:
                    cv.shown = True
                    tol = {"atol": function.atol, "rtol": function.rtol}
                    cv.figures = figures(function.name, v.expected, v.got, dims, labels=text.get("labels"), **tol)
                    if view is not None and view.section is not None:
                        cv.figures += _section_figures(view, dims, v, **tol)
                    if view is not None and key in more:
                        cv.figures += _extra(more[key], view, v)
                    if c.passed:  # the grader found it within tolerance: no picture may say otherwise
                        for fig in cv.figures:
                            fig.differs = False
                cases.append(cv)
            if cases and not any(c.open for c in cases):
                next((c for c in cases if c.shown), cases[0]).open = True  # one picture per function on a pass
            _once(cases)
            functions.append(FunctionView(function.name, text.get("caption", ""), cases))
        s = summaries[exercise.id]
        out.append(ExerciseView(exercise.id, number, exercise.title, exercise.paper, s.score, s.max_score, functions))
    return out


def render(result: GradingResult, values: dict[str, CaseValues], *, view: ReportModel | None = None, note: str = "") -> str:
    """The report's HTML; ``note``: shown where the "your model" section would be, if it is missing."""
    lesson = load_lesson(result.lesson)
    env = Environment(loader=PackageLoader("mechgrade.render", "templates"), autoescape=select_autoescape(["j2", "html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["codespans"] = codespans
    from mechgrade.render.terminal import hidden_note

    return env.get_template("report.html.j2").render(
        result=result, lesson=lesson, exercises=build(result, values, view=view, lesson=lesson), view=view, note=note,
        generated=time.strftime("%Y-%m-%d %H:%M"), hidden_note=hidden_note(result))


def lesson_prompts(lesson: Lesson) -> list[str]:
    """The lesson's public text prompts, in spec order, once each."""
    seen: list[str] = []
    for _, _, case in lesson.iter_cases():
        prompt = case.params.get("prompt")
        if prompt and prompt not in seen:
            seen.append(prompt)
    return seen


def report_model(result: GradingResult) -> tuple[ReportModel | None, str]:
    """Boot the model and measure it with the lesson's ``your_model`` hook; a failure costs only
    the section (or its measured part), said in the returned note."""
    from mechgrade.models.loader import load_model
    from mechgrade.models.spec import provenance, resolve

    try:
        source = resolve(result.model)
        model = load_model(result.model)
    except Exception as err:  # the exercises' pictures are still worth writing
        return None, f'The "your model" section is missing: the model could not be loaded here ({type(err).__name__}: {err}).'
    cfg = model.cfg
    arch = (f"{provenance(result.model, source)}: {cfg.n_layers} layers, {cfg.n_heads} heads of d_head {cfg.d_head}, "
            f"d_model {cfg.d_model}, d_mlp {cfg.d_mlp}, d_vocab {cfg.d_vocab}, n_ctx {cfg.n_ctx}")
    view = ReportModel(result.model, arch, model)
    measure = hook(result.lesson, "your_model")
    if measure is None:
        return view, ""
    try:
        view.section = measure(model, lesson_prompts(load_lesson(result.lesson)))
    except MechgradeError as err:  # e.g. a student bundle, which has no reference to measure heads with
        return view, f'The rest of the "your model" section is missing: {err}'
    except Exception as err:
        return view, f'The rest of the "your model" section is missing: the model could not be measured here ({type(err).__name__}: {err}).'
    return view, ""


def check_report_path(path: Path) -> Path:
    """Raise ``ReportError`` (one sentence) if no report can be written at ``path``: ``check``
    asks before grading, so a typo in the folder costs no grading run."""
    path = Path(path)
    if path.is_dir():
        raise ReportError(f"Cannot write the report to {path}: it is a directory; give a file name such as report.html.")
    if not path.parent.is_dir():
        raise ReportError(f"Cannot write the report to {path}: the folder {path.parent} does not exist.")
    return path


def write_report(result: GradingResult, values: dict[str, CaseValues], path: Path, *, with_model: bool = True) -> Path:
    """Render and write the report; ``with_model`` boots the model for the "your model" section.
    Raises ``ReportError`` (one sentence) when the file cannot be written."""
    path = check_report_path(path)
    view, note = None, ""
    if with_model:
        view, note = report_model(result)
    try:
        html = render(result, values, view=view, note=note)
    except MechgradeError:
        raise
    except Exception as err:  # a bug here must cost the report, never the grade
        raise ReportError(f"The report could not be rendered ({type(err).__name__}: {err}); the grade above is unaffected.") from None
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as err:
        raise ReportError(f"Cannot write the report to {path}: {err.strerror or err}.") from None
    return path
