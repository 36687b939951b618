"""Answer keys record where they were computed (mechgrade, torch and TransformerLens versions,
the weights' fingerprint); a key computed elsewhere is said in one line and, where the reference
is here, each entry is recomputed before its first use, once (the user cache keeps the result)."""

from __future__ import annotations

import torch
import pytest

from mechgrade.engine import key as key_module
from mechgrade.engine.codec import encode, from_bytes, to_bytes
from mechgrade.engine.key import AnswerKey, Provenance
from mechgrade.export.files import public_key

CASES = ("2.2.1", "2.3.1")  # induction.induction_scores [public 1], induction.prev_token_scores [public 1]


@pytest.fixture(scope="module")
def cases(lesson):
    return [(e, f, c) for e, f, c in lesson.iter_cases() if c.number in CASES]


@pytest.fixture(scope="module")
def true_entries(cases, lesson, tmp_path_factory):
    """The two cases' entries as this machine computes them (read from the shipped key where it holds them)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MECHGRADE_CACHE_DIR", str(tmp_path_factory.mktemp("true-key-cache")))
        key = AnswerKey(lesson, "embedded")
        return {c.number: key.entry(e, f, c) for e, f, c in cases}


@pytest.fixture
def elsewhere(lesson, tmp_path, monkeypatch):
    """Where this test's "shipped" key lies (a scratch file), with an empty user cache, and a
    counter of the entries recomputed: write(entries, provenance) puts a key file there."""
    monkeypatch.setenv("MECHGRADE_CACHE_DIR", str(tmp_path / "cache"))
    shipped = tmp_path / "shipped.safetensors"
    monkeypatch.setattr(AnswerKey, "shipped_path", property(lambda self: shipped))
    computed = []
    real = AnswerKey._compute

    def counting(self, exercise, function, case):
        computed.append(case.number)
        return real(self, exercise, function, case)

    monkeypatch.setattr(AnswerKey, "_compute", counting)

    def write(entries, provenance):
        shipped.write_bytes(to_bytes(*encode(entries), provenance=provenance))

    here = AnswerKey(lesson, "embedded").provenance
    return write, computed, here


def other(here: Provenance, **changes) -> dict:
    return here.model_copy(update=changes).model_dump()


def tampered(entry: dict) -> dict:
    expected = entry["expected"]
    assert isinstance(expected, torch.Tensor)
    return {"expected": expected + 1.0, "mutants": entry["mutants"]}


def test_provenance_is_written_and_read_back_and_survives_the_public_key(lesson, tmp_path, monkeypatch, true_entries):
    monkeypatch.setenv("MECHGRADE_CACHE_DIR", str(tmp_path / "cache"))
    key = AnswerKey(lesson, "embedded")
    assert key.provenance.torch == torch.__version__ and key.provenance.weights in key.id
    key.entries = dict(true_entries)
    key.dirty = True
    key.persist()
    for path in (key.cache_path, key.save(tmp_path / "exported.safetensors")):
        entries, recorded = from_bytes(path.read_bytes(), with_provenance=True)
        assert Provenance.model_validate(recorded) == key.provenance and set(entries) == set(CASES)
    entries, recorded = from_bytes(public_key(key.cache_path.read_bytes(), lesson), with_provenance=True)
    assert Provenance.model_validate(recorded) == key.provenance and set(entries) == set(CASES)
    # A file from before provenance still loads: no record.
    assert from_bytes(to_bytes(*encode({"a": 1})), with_provenance=True) == ({"a": 1}, None)


def test_a_key_with_the_same_provenance_is_used_as_it_is(lesson, cases, elsewhere, true_entries):
    write, computed, here = elsewhere
    write({n: tampered(e) for n, e in true_entries.items()}, here.model_dump())
    key = AnswerKey(lesson, "embedded")
    for e, f, c in cases:
        assert torch.equal(key.entry(e, f, c)["expected"], true_entries[c.number]["expected"] + 1.0)
    assert computed == [] and key.notices == []


@pytest.mark.parametrize("recorded", ["torch 2.12.0", "none"])
def test_a_key_computed_elsewhere_is_said_once_and_verified_once(lesson, cases, elsewhere, true_entries, recorded):
    write, computed, here = elsewhere
    write(true_entries, other(here, torch="2.12.0") if recorded != "none" else None)
    key = AnswerKey(lesson, "embedded")
    assert len(key.notices) == 1
    notice = key.notices[0]
    if recorded == "none":
        assert notice.startswith("The answer key does not record where it was computed (here: mechgrade ")
    else:
        assert notice == (f"The answer key was computed with torch 2.12.0 (here: torch {here.torch.split('+')[0]}); "
                          "each entry is checked against the reference on this machine before it is used.")
    for e, f, c in cases:
        key.entry(e, f, c)
        key.entry(e, f, c)  # used twice, verified once
    assert sorted(computed) == sorted(CASES)
    assert len(key.notices) == 1  # within tolerance: nothing more to say
    key.persist()
    # The next run finds the verified entries in the user cache, under this machine's provenance.
    again = AnswerKey(lesson, "embedded")
    assert again.notices == [] and not again.unverified
    for e, f, c in cases:
        assert torch.equal(again.entry(e, f, c)["expected"], true_entries[c.number]["expected"])
    assert sorted(computed) == sorted(CASES)


def test_a_stored_value_beyond_tolerance_is_replaced_and_named(lesson, cases, elsewhere, true_entries):
    write, computed, here = elsewhere
    bad = "2.2.1"  # induction_scores; prev_token_scores stays as computed
    write({n: tampered(e) if n == bad else e for n, e in true_entries.items()},
          other(here, torch="2.12.0", transformer_lens="4.0.0"))
    key = AnswerKey(lesson, "embedded")
    assert "computed with torch 2.12.0 and TransformerLens 4.0.0 (here: torch" in key.notices[0]
    assert key.fill(cases)  # what `check` does first: verifies every selected case
    for e, f, c in cases:
        assert torch.allclose(key.entry(e, f, c)["expected"], true_entries[c.number]["expected"], atol=f.atol, rtol=f.rtol)
    assert len(key.notices) == 2
    assert "induction.induction_scores [public 1] was outside the tolerance of this machine's reference" in key.notices[1]
    assert "prev_token_scores" not in key.notices[1]
    assert sorted(computed) == sorted(CASES)


def test_a_student_bundle_keeps_the_entries_and_says_the_one_line(lesson, cases, elsewhere, true_entries, monkeypatch):
    write, computed, here = elsewhere
    monkeypatch.setattr(key_module, "has_reference", lambda lesson_id: False)
    write({n: tampered(e) for n, e in true_entries.items()}, other(here, torch="2.12.0"))
    key = AnswerKey(lesson, "embedded")
    assert key.notices == [f"The answer key was computed with torch 2.12.0 (here: torch {here.torch.split('+')[0]}); "
                           "values are compared within each case's tolerance."]
    assert not key.fill(cases)
    for e, f, c in cases:
        assert torch.equal(key.entry(e, f, c)["expected"], true_entries[c.number]["expected"] + 1.0)
    assert computed == [] and len(key.notices) == 1
