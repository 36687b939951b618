"""``check()`` for a running notebook: grade one function defined in the kernel without calling it
there. ``from mechgrade import check; check("lesson27", induction_scores)``.

The function's *source* is sent, never the object: it is written with what it needs into a
one-module workspace, graded by ``check_workspace`` exactly like a folder workspace (in the
isolated worker), and the result is filtered to that function's cases.

What is sent with it, found from the names its source uses and the kernel's values for them:
modules (as imports), objects importable from where they live (``Float``, ``Tensor``), literal
constants, and the source of helper functions and classes defined in the notebook, recursively.
Why not the notebook's executed history (``In``): that would rerun model loading, experiments,
stale redefinitions and failed cells, for seconds to minutes, on every check; the closure is
exact, fast, and works where there is no IPython (a script, a test). Helpers the closure cannot
see (e.g. looked up through a dict) can be passed explicitly: ``check(lesson, f, helper, ...)``.
Anything else (``model``, a tensor) is not sent, and the result says so.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import sys
import tempfile
import textwrap
import types
from pathlib import Path

from mechgrade.engine.results import GradingResult
from mechgrade.errors import MechgradeError


class CheckError(MechgradeError):
    """A mistake in a ``check()`` call; in IPython it shows as its one sentence, not a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for custom exception display
        return [f"{type(self).__name__}: {self}"]


class CheckResult:
    """The graded cases of one function: HTML in a notebook, a plain-text table elsewhere."""

    def __init__(self, result: GradingResult, function: str, not_sent: dict[str, str]):
        self.result, self.function, self.not_sent = result, function, not_sent

    @property
    def score(self) -> float:
        return self.result.score

    @property
    def max_score(self) -> float:
        return self.result.max_score

    @property
    def all_passed(self) -> bool:
        return self.result.all_passed

    def _note(self) -> str:
        if not self.not_sent:
            return ""
        names = ", ".join(f"{n} ({t})" for n, t in self.not_sent.items())
        return f"Not sent with {self.function} (pass these as arguments instead): {names}."

    def _console(self):
        from rich.console import Console
        from rich.text import Text

        from mechgrade.render.terminal import render

        console = Console(record=True, file=io.StringIO(), width=110, color_system="truecolor", force_jupyter=False)
        render(self.result, console)
        if self.not_sent:
            console.print(Text(self._note(), style="yellow"))
        return console

    def __repr__(self) -> str:
        return self._console().export_text().rstrip()

    def _repr_html_(self) -> str:
        return self._console().export_html(inline_styles=True, code_format=(
            '<pre style="font-family: ui-monospace, monospace; line-height: 1.25; white-space: pre-wrap">{code}</pre>'))


def check(lesson: str, function, *helpers, model: str | None = None) -> CheckResult:
    """Grade ``function`` (named like one of ``lesson``'s functions) on the public cases, in the
    isolated worker; ``helpers`` are sent along. Raises ``CheckError`` on a usage mistake."""
    from mechgrade.engine.session import check_workspace
    from mechgrade.spec import load_lesson

    try:
        spec = load_lesson(lesson)
        exercise = _exercise_of(spec, function)
        source, not_sent = module_source(function, *helpers)
        with tempfile.TemporaryDirectory(prefix="mechgrade-check-") as tmp:
            (Path(tmp) / f"{exercise}.py").write_text(source, encoding="utf-8")
            result = check_workspace(lesson, Path(tmp), model=model, exercises=(exercise,), from_cell=True)
    except CheckError:
        raise
    except MechgradeError as err:
        raise CheckError(str(err)) from None
    mine = result.model_copy(update={"cases": [c for c in result.cases if c.function == function.__name__]})
    return CheckResult(mine, function.__name__, not_sent)


def _exercise_of(spec, function) -> str:
    names = [key.split(".", 1)[1] for key in spec.functions]
    if not isinstance(function, types.FunctionType):
        raise CheckError(f"check() takes the function itself, e.g. check({spec.id!r}, {names[0]}), not {type(function).__name__}.")
    for key in spec.functions:
        if key.split(".", 1)[1] == function.__name__:
            return key.split(".", 1)[0]
    raise CheckError(f"{spec.id} has no function named {function.__name__}; its functions are: {', '.join(names)}.")


# -- the source closure ----------------------------------------------------------------------------

def module_source(function, *helpers) -> tuple[str, dict[str, str]]:
    """A module defining ``function`` and ``helpers`` with what they use, and {name: type} of the
    globals that could not be sent."""
    imports: dict[str, str] = {}
    constants: dict[str, str] = {}
    defs: dict[str, str] = {}
    not_sent: dict[str, str] = {}
    for obj in helpers:
        if not (isinstance(obj, types.FunctionType) or inspect.isclass(obj)):
            raise CheckError(f"check() sends helper functions and classes along with yours, and a {type(obj).__name__} is neither; "
                             "pass data to your function as arguments.")
    queue = [function, *helpers]
    asked = len(queue)  # the objects passed explicitly must have a source; those found may not
    while queue:
        obj = queue.pop(0)
        asked -= 1
        if obj.__name__ in defs:
            continue
        try:
            defs[obj.__name__] = _source(obj)
        except CheckError:
            if asked >= 0:
                raise
            not_sent[obj.__name__] = f"{type(obj).__name__}, source not available"
            continue
        scope = getattr(obj, "__globals__", None) or vars(sys.modules.get(obj.__module__, types.ModuleType("_")))
        for name in sorted(_global_names(obj, defs[obj.__name__])):
            if name in defs or name in imports or name in constants or name in not_sent or name not in scope:
                continue
            value = scope[name]
            line = _import_line(name, value)
            if line:
                imports[name] = line
            elif _defined_here(value, scope):
                queue.append(value)
            elif _is_literal(value):
                constants[name] = f"{name} = {value!r}"
            else:
                not_sent[name] = type(value).__name__
    parts = ["from __future__ import annotations", "\n".join(sorted(imports.values())), "\n".join(constants.values()),
             *reversed(list(defs.values()))]
    return "\n\n".join(p for p in parts if p) + "\n", not_sent


def _source(obj) -> str:
    if getattr(obj, "__closure__", None):
        raise CheckError(f"{obj.__name__} is defined inside another function; check() needs functions defined at the top level of a cell.")
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        raise CheckError(f"The source of {obj.__name__} is not available; define it in a notebook cell or a .py file.") from None


def _global_names(obj, source: str) -> set[str]:
    """Names the source uses minus the function's own locals (a parameter `cache` is not the
    notebook's global `cache`)."""
    used = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    local: set[str] = set()
    codes = [obj.__code__] if hasattr(obj, "__code__") else []
    while codes:
        code = codes.pop()
        local.update(code.co_varnames, code.co_cellvars, code.co_freevars)
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return used - local - {obj.__name__}


def _import_line(name: str, value) -> str | None:
    if isinstance(value, types.ModuleType):
        return f"import {value.__name__}" if value.__name__ == name else f"import {value.__name__} as {name}"
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if isinstance(module, str) and module != "__main__" and isinstance(qualname, str) and "." not in qualname:
        try:
            if getattr(importlib.import_module(module), qualname, None) is value:
                return f"from {module} import {qualname}" + (f" as {name}" if qualname != name else "")
        except Exception:  # noqa: BLE001 - an unimportable home just means "not importable"
            pass
    homes = [m for m, mod in list(sys.modules.items()) if m != "__main__" and _attr(mod, name) is value]
    return f"from {min(homes, key=lambda m: (len(m), m))} import {name}" if homes else None


def _attr(module, name: str):
    try:
        return getattr(module, name, None)
    except Exception:  # noqa: BLE001 - a module's own __getattr__ may raise anything
        return None


def _defined_here(value, scope: dict) -> bool:
    """A function or class of the notebook (or module) itself, so its source goes along."""
    if isinstance(value, types.FunctionType):
        return value.__globals__ is scope
    return inspect.isclass(value) and value.__module__ == scope.get("__name__")


def _is_literal(value) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
