"""The mutant catalogue: small named edits of reference functions that reproduce mistakes
students really make, each with the hint the engine shows when a submission matches it.

Kept with the lesson as data (``exercises/<lesson>/mutants.toml``). A mutant is applied by
replacing one snippet of the reference module's source (it must occur exactly once) and
executing the edited module in the trusted process.
"""

from __future__ import annotations

import inspect
import sys
import types
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mechgrade import lessons
from mechgrade.spec import lesson_dir, require_reference

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Mutant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="Short id, e.g. 'induction-off-by-one'.")
    module: str = Field(description="Reference module (= exercise id) the edit applies to.")
    functions: list[str] = Field(description="The graded functions whose cases must catch it (a shared helper can break several).")
    old: str = Field("", description="Reference snippet; blank in student bundles, which keep only the hints.")
    new: str = ""
    hint: str = Field(description="What the engine says when a submission's output matches this mutant's.")
    error: str = Field("", description="For a mistake that makes the call fail (an import removed in TransformerLens 4.x): "
                                       "a substring of the failure message that recognises it; the hint is shown then.")


class MutantCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mutants: list[Mutant]

    def for_function(self, module: str, function: str) -> list[Mutant]:
        return [m for m in self.mutants if m.module == module and function in m.functions]

    def error_hint(self, message: str) -> str | None:
        """The hint of the first mutant recognised by its failure message, if any."""
        return next((m.hint for m in self.mutants if m.error and m.error in message), None)


@cache
def load_catalogue(lesson: str) -> MutantCatalogue:
    path = lesson_dir(lesson) / "mutants.toml"
    if not path.exists():
        return MutantCatalogue(mutants=[])
    return MutantCatalogue.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))


def reference_source(lesson: str, module: str) -> str:
    require_reference(lesson, "Running the mutant catalogue")
    return inspect.getsource(lessons.get(lesson).reference_module(module))


def mutated_source(lesson: str, mutant: Mutant) -> str:
    source = reference_source(lesson, mutant.module)
    count = source.count(mutant.old)
    if count != 1:
        raise ValueError(f"mutant {mutant.name}: its snippet occurs {count} times in reference {mutant.module}.py, not once")
    return source.replace(mutant.old, mutant.new)


def mutant_module(lesson: str, mutant: Mutant) -> types.ModuleType:
    module = types.ModuleType(f"mechgrade_mutant_{mutant.name.replace('-', '_')}")
    exec(compile(mutated_source(lesson, mutant), f"<mutant {mutant.name}>", "exec"), module.__dict__)
    return module


def write_mutant_workspace(lesson: str, mutant: Mutant, directory: Path) -> Path:
    """A workspace equal to the reference except for this mutant's edit (a test 'student')."""
    directory.mkdir(parents=True, exist_ok=True)
    ref_dir = lessons.get(lesson).reference_dir()
    for path in ref_dir.glob("*.py"):
        if path.name != "__init__.py":
            (directory / path.name).write_text(path.read_text())
    (directory / f"{mutant.module}.py").write_text(mutated_source(lesson, mutant))
    return directory
