"""Structural detectors (no catalogue): each fires on the mistake it names and not on others."""

from __future__ import annotations

import torch

from mechgrade.engine.compare import structural_hint


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
