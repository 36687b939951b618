"""``check()`` for a running notebook: grade one function defined in the kernel without calling it
there. ``from mechgrade import check; check("lesson27", induction_scores)``.

The function's *source* is sent, never the object: it is written with what it needs into a
one-module workspace, graded by ``check_workspace`` exactly like a folder workspace (in the
isolated worker), and the result is filtered to that function's cases.

What is sent with it, found from the names its source uses and the kernel's values for them:
modules (as imports), objects importable from where they live (``Float``, ``Tensor``), literal
constants, small tensors (as ``torch.tensor(...)`` literals), and the source of helper functions
and classes defined in the notebook, recursively. The notebook's own namespace is never a place
to import from: the worker's ``__main__`` is not the kernel's (and torch aliases it as
``__mp_main__``).
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
import linecache
import re
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
        sent = SentModule.of(function, *helpers)
        with tempfile.TemporaryDirectory(prefix="mechgrade-check-") as tmp:
            (Path(tmp) / f"{exercise}.py").write_text(sent.source, encoding="utf-8")
            result = check_workspace(lesson, Path(tmp), model=model, exercises=(exercise,),
                                     from_cell="notebook" if _in_notebook() else "script")
    except CheckError:
        raise
    except MechgradeError as err:
        raise CheckError(str(err)) from None
    mine = [c.model_copy(update={"feedback": sent.translate(c.feedback, exercise)})
            for c in result.cases if c.function == function.__name__]
    return CheckResult(result.model_copy(update={"cases": mine}), function.__name__, sent.not_sent)


def _in_notebook() -> bool:
    """Called from a Jupyter kernel (feedback then says "this notebook"), not a script or a REPL."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and hasattr(shell, "kernel")


def _exercise_of(spec, function) -> str:
    names = [key.split(".", 1)[1] for key in spec.functions]
    if not isinstance(function, types.FunctionType):
        raise CheckError(f"check() takes the function itself, e.g. check({spec.id!r}, {names[0]}), not {type(function).__name__}.")
    for key in spec.functions:
        if key.split(".", 1)[1] == function.__name__:
            return key.split(".", 1)[0]
    raise CheckError(f"{spec.id} has no function named {function.__name__}; its functions are: {', '.join(names)}.")


# -- the source closure ----------------------------------------------------------------------------

class SentModule:
    """The one module ``check()`` sends: ``source``, the {name: type} of the globals that could
    not be sent, and for each of its lines where it came from, so that the worker's "sae.py, line
    7" (a file the student does not have) becomes "sae_decode, line 2" of their own code."""

    def __init__(self, source: str, not_sent: dict[str, str], origins: list[str]):
        self.source, self.not_sent, self.origins = source, not_sent, origins

    @classmethod
    def of(cls, function, *helpers) -> "SentModule":
        return cls(*_closure(function, *helpers))

    def where(self, line: int) -> str:
        return self.origins[line - 1] if 0 < line <= len(self.origins) else f"line {line} of the code check() sent"

    def translate(self, feedback: str, module: str) -> str:
        feedback = feedback.replace(f"{module}.py failed to import", "the code check() sent along failed to run")
        feedback = feedback.replace(f"{module}.py did not finish importing", "the code check() sent along did not finish running")
        return re.sub(rf"\({re.escape(module)}\.py, line (\d+)\)", lambda m: f"({self.where(int(m.group(1)))})", feedback)


def module_source(function, *helpers) -> tuple[str, dict[str, str]]:
    """A module defining ``function`` and ``helpers`` with what they use, and {name: type} of the
    globals that could not be sent."""
    sent = SentModule.of(function, *helpers)
    return sent.source, sent.not_sent


def _closure(function, *helpers) -> tuple[str, dict[str, str], list[str]]:
    imports: dict[str, str] = {}
    constants: dict[str, str] = {}
    defs: dict[str, tuple[str, tuple[int, str]]] = {}  # name -> (source, (its first line, " of FILE" or " of its cell"))
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
        for name in sorted(_global_names(obj, defs[obj.__name__][0])):
            if name in defs or name in imports or name in constants or name in not_sent or name not in scope:
                continue
            value = scope[name]
            line = _import_line(name, value, scope)
            if line:
                imports[name] = line
            elif _defined_here(value, scope):
                queue.append(value)
            elif _is_literal(value):
                constants[name] = f"{name} = {value!r}"
            elif (tensor := _tensor_literal(value)) is not None:
                imports.setdefault("torch", "import torch")
                constants[name] = f"{name} = {tensor}"
            else:
                not_sent[name] = type(value).__name__
    lines: list[str] = []
    origins: list[str] = []

    def add(text: str, origin) -> None:
        for i, line in enumerate(text.splitlines()):
            lines.append(line)
            origins.append(origin(i))
        lines.append("")
        origins.append("")

    add("from __future__ import annotations", lambda i: "the code check() sent")
    for name, line in sorted(imports.items(), key=lambda kv: kv[1]):
        add(line, lambda i, name=name, line=line: f"the line check() wrote for your {name}: {line}")
    for name, line in constants.items():
        add(line, lambda i, name=name: f"the line check() wrote for your {name}")
    for name, (text, first) in reversed(list(defs.items())):
        add(text, lambda i, name=name, first=first: f"{name}, line {first[0] + i}{first[1]}")
    return "\n".join(lines) + "\n", not_sent, origins


def _source(obj) -> tuple[str, tuple[int, str]]:
    """The source of ``obj`` and (its first line number, " of FILE" or " of its cell")."""
    if getattr(obj, "__closure__", None):
        raise CheckError(f"{obj.__name__} is defined inside another function; check() needs functions defined at the top level of a cell.")
    try:
        lines, first = inspect.getsourcelines(obj)
        filename = inspect.getsourcefile(obj) or ""
    except (OSError, TypeError):
        found = _class_source(obj) if inspect.isclass(obj) else None
        if found is None:
            raise CheckError(f"The source of {obj.__name__} is not available; define it in a notebook cell or a .py file.") from None
        lines, first, filename = found
    # IPython names a cell's code after a temporary file ("/tmp/ipykernel_8/123.py"): a cell.
    cell = filename.startswith("<") or "ipykernel_" in filename or not Path(filename).is_file()
    return textwrap.dedent("".join(lines)), (max(first, 1), " of its cell" if cell else f" of {Path(filename).name}")


def _class_source(cls) -> tuple[list[str], int, str] | None:
    """A class defined in a notebook cell: ``inspect`` looks for it in ``__main__``'s file, which a
    kernel has not; its methods know their cell, so the class is found in that cell's source."""
    for attr in vars(cls).values():
        fn = getattr(attr, "__func__", None) or getattr(attr, "fget", None) or attr
        code = getattr(fn, "__code__", None)
        if code is None:
            continue
        cell = linecache.getlines(code.co_filename)
        try:
            tree = ast.parse("".join(cell))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__ and node.lineno <= code.co_firstlineno <= node.end_lineno:
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                return cell[start - 1:node.end_lineno], start, code.co_filename
    return None


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


MAIN_NAMES = ("__main__", "__mp_main__")  # torch's multiprocessing aliases __main__ as __mp_main__


def _import_line(name: str, value, scope: dict) -> str | None:
    """``import``/``from ... import`` that gives the worker ``value``, else None. Never from the
    caller's own namespace (a kernel's or script's ``__main__``, under any alias): the worker's
    ``__main__`` is not that."""
    if isinstance(value, types.ModuleType):
        return f"import {value.__name__}" if value.__name__ == name else f"import {value.__name__} as {name}"

    def home(module_name: str, module) -> bool:
        return module_name not in MAIN_NAMES and module is not None and _attr(module, "__dict__") is not scope

    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if isinstance(module, str) and home(module, sys.modules.get(module, sys)) and isinstance(qualname, str) and "." not in qualname:
        try:
            if getattr(importlib.import_module(module), qualname, None) is value:
                return f"from {module} import {qualname}" + (f" as {name}" if qualname != name else "")
        except Exception:  # noqa: BLE001 - an unimportable home just means "not importable"
            pass
    homes = [m for m, mod in list(sys.modules.items()) if home(m, mod) and _attr(mod, name) is value]
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


MAX_TENSOR_ELEMENTS = 4096  # a constant, sent as its values; anything bigger is data, passed as an argument


def _tensor_literal(value) -> str | None:
    """``torch.tensor([...], dtype=torch.float32)`` for a small CPU tensor, exactly (a Python float
    holds every float32, float16 and bfloat16 value); None for anything else."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.Tensor) or value.numel() > MAX_TENSOR_ELEMENTS:
        return None
    if value.is_complex() or value.device.type != "cpu" or value.layout != torch.strided:
        return None
    return f"torch.tensor({value.tolist()!r}, dtype={value.dtype})"


def _is_literal(value) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
