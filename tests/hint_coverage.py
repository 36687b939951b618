"""Hint coverage on mistakes the catalogue was not written from (tests/mistakes/lesson27.toml).

Each mistake is one snippet edit of the reference, like a mutant. It is run in this process on
every case of the functions it names (public and hidden), compared with the answer key at the
function's tolerance, and a failing case is diagnosed exactly as the grader does
(``Grader.diagnose``: catalogued mutants first, then the structural detectors). A mistake is

- caught: at least one case fails;
- hinted: some failing case gets a hint;
- named: some hint contains one of the mistake's ``about`` words (it names the mistake).

Figures are over caught mistakes; one marked ``equivalent`` cannot be caught, and says why.

    python tests/hint_coverage.py [first|heldout]     # prints the table and the figures
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict

from mechgrade.engine.compare import compare
from mechgrade.engine.grader import Grader, output_dims
from mechgrade.engine.key import AnswerKey, roundtrip
from mechgrade.engine.mutants import Mutant, mutant_module
from mechgrade.spec import load_lesson

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SETS = {"first": Path(__file__).parent / "mistakes" / "lesson27.toml",  # written before the catalogue grew
        "heldout": Path(__file__).parent / "mistakes" / "lesson27_heldout.toml",  # written after, never used to extend it
        "heldout2": Path(__file__).parent / "mistakes" / "lesson27_heldout2.toml"}


class Mistake(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    module: str
    functions: list[str]
    old: str
    new: str
    about: list[str]
    equivalent: str = ""  # why this edit changes nothing on the lesson's models (so it cannot be caught)


@dataclass
class Outcome:
    mistake: Mistake
    failed_cases: int = 0
    hints: list[str] = field(default_factory=list)

    @property
    def caught(self) -> bool:
        return self.failed_cases > 0

    @property
    def hinted(self) -> bool:
        return bool(self.hints)

    @property
    def named(self) -> bool:
        return any(word.lower() in hint.lower() for hint in self.hints for word in self.mistake.about)


def load_mistakes(which: str = "first") -> list[Mistake]:
    return [Mistake(**m) for m in tomllib.loads(SETS[which].read_text(encoding="utf-8"))["mistakes"]]


def measure(which: str = "first", lesson_id: str = "lesson27", model_spec: str = "embedded") -> list[Outcome]:
    from mechgrade import lessons

    lesson = load_lesson(lesson_id)
    key = AnswerKey(lesson, model_spec)
    grader = Grader(lesson, Path("."), model_spec)
    grader.__dict__["key"] = key
    build = lessons.get(lesson_id).builders()
    outcomes = []
    for mistake in load_mistakes(which):
        module = mutant_module(lesson_id, Mutant(name=mistake.name, module=mistake.module, functions=mistake.functions,
                                                  old=mistake.old, new=mistake.new, hint=""))
        out = Outcome(mistake)
        for name in mistake.functions:
            exercise, function = lesson.functions[f"{mistake.module}.{name}"]
            dims = output_dims(lesson_id, exercise.id, name)
            for case in function.cases:
                entry = key.entry(exercise, function, case)
                try:
                    got = roundtrip(getattr(module, name)(**build(key.model, function.builder, case.params)))
                except Exception:
                    out.failed_cases += 1  # a crash is caught, and says why, but carries no hint
                    continue
                finally:
                    key.model.reset_hooks()
                if compare(got, entry["expected"], atol=function.atol, rtol=function.rtol, dims=dims).passed:
                    continue
                out.failed_cases += 1
                hint = grader.diagnose(got, entry, function, dims)
                if hint:
                    out.hints.append(hint)
        outcomes.append(out)
    key.persist()
    return outcomes


def figures(outcomes: list[Outcome]) -> dict[str, int]:
    caught = [o for o in outcomes if o.caught]
    return {"mistakes": len(outcomes), "caught": len(caught), "hinted": sum(o.hinted for o in caught),
            "named": sum(o.named for o in caught)}


if __name__ == "__main__":
    torch.set_num_threads(1)
    results = measure(sys.argv[1] if len(sys.argv) > 1 else "first")
    for o in results:
        status = "named " if o.named else "hint  " if o.hinted else "caught" if o.caught else "MISSED"
        print(f"{status} {o.mistake.name:<36} {(o.hints[0] if o.hints else '')[:110]}")
    f = figures(results)
    print(f"\n{f['named']}/{f['caught']} caught mistakes get a hint naming them ({f['named'] / f['caught']:.0%}); "
          f"{f['hinted']}/{f['caught']} get some hint; {f['caught']}/{f['mistakes']} caught")
