"""`mechgrade validate`: the lesson's graders proven by the reference, the stubs and the mutants."""

from __future__ import annotations

from mechgrade.engine.key import AnswerKey


def test_validate_proves_the_lesson27_graders():
    """The instructor's proof, run in CI: reference full marks, stubs zero, every mutant caught
    on its own functions only and with its own hint, no case passed by a constant or an input."""
    from mechgrade.engine.validate import validate_lesson

    report = validate_lesson("lesson27")
    assert report.reference_score == report.max_score == 100 and report.stub_score == 0
    bad = [(m.name, m.caught_by, m.leaked, m.hints_shown) for m in report.mutants if not m.ok]
    assert not bad
    assert not report.weak_cases
    assert report.ok


def test_weak_cases_are_found(lesson, monkeypatch):
    """A case whose expected output is all zeros would be passed by a constant: validate says so."""
    import torch

    from mechgrade.engine import validate

    real = AnswerKey.entry

    def zeroed(self, exercise, function, case):
        entry = real(self, exercise, function, case)
        if function.name == "sae_decode" and case.label == "public 1":
            return {"expected": torch.zeros_like(entry["expected"]), "mutants": {}}
        return entry

    monkeypatch.setattr(AnswerKey, "entry", zeroed)
    weak = validate.weak_cases("lesson27", "embedded")
    assert [(w.case, w.passed_by) for w in weak] == [("sae.sae_decode [public 1]", "zeros")]


def test_validate_command_reports_and_exits(monkeypatch):
    from click.testing import CliRunner

    from mechgrade.cli.main import cli
    from mechgrade.engine import validate

    fake = validate.ValidationReport(lesson="lesson27", model="embedded", reference_score=100, max_score=100, stub_score=0,
                                     reference_failures=[], weak_cases=[], mutants=[validate.MutantVerdict(
                                         name="m", functions=["f"], caught_by=[], leaked=[], hints_shown=[], expected_hint="h")])
    monkeypatch.setattr(validate, "validate_lesson", lambda *a, **k: fake)
    out = CliRunner().invoke(cli, ["validate", "lesson27"])
    assert out.exit_code == 1 and "NO" in out.output and "graders NOT proven" in out.output
