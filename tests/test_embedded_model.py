"""The shipped embedded model has the canonical induction circuit the lesson teaches,
measured with the lesson's own definitions (the reference implementation)."""

from __future__ import annotations

import pytest

from mechgrade.exercises.lesson27.report.inspect import half_losses
from mechgrade.exercises.lesson27.report.model import head_scores

LENGTHS = range(8, 65)


def test_previous_token_head_in_layer_0(model):
    prev, _ = head_scores(model, 32)
    assert float(prev[0].max()) >= 0.5


def test_induction_head_in_layer_1_at_every_length_from_8_to_64(model):
    weak = {}
    for seq_len in LENGTHS:
        _, ind = head_scores(model, seq_len)
        if float(ind[1].max()) < 0.5:
            weak[seq_len] = round(float(ind[1].max()), 3)
    assert not weak, f"induction score below 0.5 at lengths {weak}"


@pytest.mark.parametrize("seq_len", [8, 16, 32, 64])
def test_repeated_half_is_predicted(model, seq_len):
    first, second = half_losses(model, seq_len)
    assert second < 0.5 * first, (first, second)


@pytest.mark.parametrize("seq_len", [8, 32, 64])
def test_circuit_is_canonical_by_ablation(model, seq_len):
    """Zero-ablating either head of the circuit undoes most of the repeated half's advantage."""
    prev, ind = head_scores(model, seq_len)
    prev_head = (0, int(prev[0].argmax()))
    ind_head = (1, int(ind[1].argmax()))
    first, second = half_losses(model, seq_len)
    gap = first - second
    for head in (prev_head, ind_head):
        _, ablated = half_losses(model, seq_len, ablate=head)
        assert ablated - second >= 0.75 * gap, (head, first, second, ablated)
