"""Structural detectors (no catalogue): each fires on the mistake it names and not on others."""

from __future__ import annotations

import torch

from mechgrade.engine.structure import structural_hint


def hint(got, expected, dims=None, atol=1e-5, rtol=1e-4):
    return structural_hint(got, expected, atol=atol, rtol=rtol, dims=dims) or ""


def test_complement_of_a_tensor_and_of_a_float():
    e = torch.tensor([[0.9, 0.2], [0.7, 0.05]])
    assert "1 - expected" in hint(1 - e, e, ["layer", "head"])
    assert "1 - expected" in hint(1 - 0.8125, 0.8125)
    assert "1 - expected" not in hint(torch.full((2,), 0.5), torch.full((2,), 0.5))


def test_shift_along_a_position_axis_names_the_axis():
    e = torch.arange(12.0).reshape(2, 6) ** 1.5  # [layer, pos]
    shifted = torch.cat([e[:, :1] * 0 + 7, e[:, :-1]], dim=1)
    assert "shifted by 1 along pos" in hint(shifted, e, ["layer", "pos"])
    assert "shifted" not in hint(shifted, e, ["layer", "head"])  # not a position axis


def test_output_short_by_a_position():
    e = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    assert "short along pos: you dropped the last" in hint(e[:, :-1], e, ["batch", "pos", "d_model"])
    assert "short along pos: you dropped the first" in hint(e[:, 1:], e, ["batch", "pos", "d_model"])
    assert "short" in hint({"blocks.0.hook_resid_pre": e[:, 1:]}, {"blocks.0.hook_resid_pre": e})


def test_right_structure_different_draw_for_tokens():
    gen = torch.Generator().manual_seed(0)
    half, other = torch.randint(0, 500, (3, 6), generator=gen), torch.randint(0, 500, (3, 6), generator=gen)
    bos = torch.full((3, 1), 511)
    expected = torch.cat([bos, half, half], 1)
    assert "random draw differs" in hint(torch.cat([bos, other, other], 1), expected)
    assert hint(torch.cat([bos, other, half], 1), expected) == ""  # no repeat: not the right structure
    assert hint(torch.cat([bos * 0, other, other], 1), expected) == ""  # BOS missing


def test_swapped_square_axes_zeros_and_nan_for_zero():
    e = torch.tensor([[0.15, 0.09], [0.08, 0.1]])
    assert "axes are swapped" in hint(e.T.clone(), e, ["head_from", "head_to"])
    assert "all zeros" in hint(torch.zeros(2, 2), e)
    r = torch.tensor([0.3, 0.0, -0.5])
    assert "NaN" in hint(torch.tensor([0.3, float("nan"), -0.5]), r)
    assert hint(torch.tensor([float("nan"), 0.0, -0.5]), r) == ""  # NaN where a value was due


def test_scale_needs_more_than_one_number_and_tuples_are_searched():
    assert "times" not in hint(torch.tensor(2.0), torch.tensor(1.0))  # any scalar is a multiple of any other
    e = (torch.tensor([1.0, 2.0]), torch.tensor([[0.5, -1.0]]))
    got = (e[0].clone(), -e[1])
    assert hint(got, e).startswith("output[1]: ") and "opposite sign" in hint(got, e)


def test_a_fixed_first_token_elsewhere():
    half = torch.tensor([[3, 9, 4]])
    expected = torch.cat([torch.tensor([[511]]), half, half], 1)
    assert "Position 0 must hold the fixed first token (id 511" in hint(torch.cat([half, half, torch.tensor([[511]])], 1), expected)


def noisy(e: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``e`` plus noise of its own size: a wrong answer no detector may explain."""
    return e + e.abs().max() * torch.randn(e.shape, generator=torch.Generator().manual_seed(seed))


E = torch.tensor([[0.9, -0.2, 0.4], [0.7, 0.05, -0.3]])  # [layer, head]


def test_no_detector_explains_noise():
    for seed in range(5):
        assert hint(noisy(E, seed), E, ["layer", "head"]) == ""
        assert hint((noisy(E, seed), noisy(E, seed + 9)), (E, E.clone())) == ""
    # One item wrong and unexplained, the others right: that much is said, no more.
    assert hint((noisy(E), E.clone()), (E, E.clone())).startswith("output[0] is wrong while every other item is right")


def test_reversed_along_an_axis_names_it():
    assert "reverse order along head" in hint(E.flip(1), E, ["layer", "head"])
    assert "reverse order along layer" in hint(E.flip(0), E, ["layer", "head"])


def test_a_missing_or_leaky_relu_and_an_extra_mask():
    e = torch.relu(E)
    leaky = torch.nn.functional.leaky_relu(E)
    assert "ReLU" in hint(leaky, e) and "negative there" in hint(leaky, e)
    assert "ReLU" in hint(E, e)  # no ReLU at all
    masked = E * (E.abs() > 0.35)
    assert "0 where the expected ones are not" in hint(masked, E)


def test_squares_and_square_roots():
    e = E.abs() + 0.1
    assert "squares of the expected" in hint(e**2, e)
    assert "square roots" in hint(e.sqrt(), e)


def test_percent_even_for_one_number_but_no_other_factor_for_one_number():
    assert "percentage" in hint(100 * E, E) and "percentage" in hint(81.25, 0.8125)
    assert hint(3 * 0.8125, 0.8125) == ""
    assert "times 3" in hint(3 * E, E)


def test_constant_offset_needs_more_than_one_number():
    assert "minus the same constant (1)" in hint(E - 1, E) and "baseline" in hint(E - 1, E)
    assert hint(0.8125 + 1, 0.8125) == ""


def test_near_miss_only_when_close_and_said_as_such():
    assert "close to the expected ones" in hint(E * (1 + 0.01 * torch.tensor([[1.0, -1, 0.5], [0.2, 1, -1]])), E)
    assert hint(E * (1 + 0.2 * torch.tensor([[1.0, -1, 0.5], [0.2, 1, -1]])), E) == ""


def test_part_of_the_batch_and_extra_positions():
    e = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1))
    assert "keeps only the first 1 of 2 entries along batch" in hint(e[:1], e, ["batch", "pos", "d_model"])
    tokens = torch.tensor([[50256, 3, 9, 3, 9]])
    assert "2 extra entries along pos" in hint(torch.cat([tokens, tokens[:, 1:3]], 1), tokens, ["batch", "pos"])


def test_a_squeezed_axis_and_every_pair_instead_of_one_per_example():
    e = torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(2))
    assert "lacks the batch axis of size 1" in hint(e[0], e, ["batch", "pos", "d_model"])
    v = torch.tensor([0.5, -1.5, 2.0])
    table = v[:, None] + torch.tensor([[0.0, 3, 1], [2, 0, 5], [4, 1, 0]])
    assert "table of every pair" in hint(table, v) and hint(table + 0.5, v) == ""


def test_n_versus_n_minus_one():
    e = torch.tensor([0.3, -0.7, 0.1, 0.9])
    assert "(n - 1) / n for n = 64" in hint(e * 63 / 64, e)
    assert "n / (n - 1) for n = 10" in hint(e * 10 / 9, e)
    assert "times 0.97" in hint(e * 0.97, e) and "n - 1" not in hint(e * 0.97, e)
    assert "n - 1" not in hint(0.8125 * 81 / 82, 0.8125)
