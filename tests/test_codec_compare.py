"""Plain-data encoding and the comparison messages, without any worker."""

from __future__ import annotations

import pytest
import torch

from mechgrade.engine.codec import EncodeError, encode, from_bytes, to_bytes
from mechgrade.engine.compare import compare
from mechgrade.engine.structure import structural_hint


def roundtrip(value):
    tree, tensors = encode(value)
    return from_bytes(to_bytes(tree, tensors))


def test_roundtrip_keeps_structure_types_and_dtypes():
    value = (torch.arange(6).reshape(2, 3), ["embed", "pos_embed"], {"a": torch.ones(2, dtype=torch.float64)}, 0.25, 3, None, float("nan"))
    out = roundtrip(value)
    assert type(out) is tuple and type(out[1]) is list and out[1] == ["embed", "pos_embed"]
    assert out[0].dtype == torch.int64 and torch.equal(out[0], value[0])
    assert out[2]["a"].dtype == torch.float64
    assert out[3] == 0.25 and out[4] == 3 and out[5] is None and out[6] != out[6]
    assert type(roundtrip(2.5)) is float


def test_parameters_and_grad_tensors_are_plain_after_encoding():
    p = torch.nn.Parameter(torch.ones(3))
    out = roundtrip((p, p * 2))
    assert type(out[0]) is torch.Tensor and not out[1].requires_grad


@pytest.mark.parametrize("value, needle", [
    (torch.ones(2).as_subclass(type("Sneaky", (torch.Tensor,), {})), "Sneaky"),
    (type("Forged", (), {"__eq__": lambda s, o: True})(), "Forged"),
    ({1: torch.ones(1)}, "keys are not all strings"),
    (type("F", (float,), {})(1.0), "F"),
    (torch.ones(2, dtype=torch.complex64), "complex64"),
])
def test_non_plain_values_are_refused(value, needle):
    with pytest.raises(EncodeError, match=needle):
        encode(value)


def test_compare_messages_name_the_problem_in_tl_dimension_names():
    expected = torch.tensor([[0.1, 0.2], [0.3, 0.9]])
    dims = ["layer", "head"]
    kw = dict(atol=1e-5, rtol=1e-4, dims=dims)
    assert compare(expected.clone(), expected, **kw).passed
    assert "should be a torch.Tensor of shape [2, 2] (layer, head), got a float" in compare(0.5, expected, **kw).message
    assert "dtype torch.float64, expected torch.float32" in compare(expected.double(), expected, **kw).message
    assert "has shape [4], expected [2, 2] (layer, head)" in compare(torch.zeros(4), expected, **kw).message
    nan = expected.clone()
    nan[1, 0] = float("nan")
    assert "contains nan at layer=1, head=0" in compare(nan, expected, **kw).message
    wrong = expected.clone()
    wrong[1, 1] = 0.5
    msg = compare(wrong, expected, **kw).message
    assert "1 of 4 entries" in msg and "largest at layer=1, head=1: got 0.5, expected 0.9" in msg


def test_compare_containers():
    kw = dict(atol=0, rtol=0)
    assert "missing keys ['b']" in compare({"a": 1}, {"a": 1, "b": 2}, **kw).message
    assert "should have 2 items, got 1" in compare((1,), (1, 2), **kw).message
    assert "output[1][0] is 'x', expected 'embed'" in compare((torch.ones(1), ["x"]), (torch.ones(1), ["embed"]), **kw).message


def test_structural_hints():
    expected = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    kw = dict(atol=1e-5, rtol=1e-4, dims=["layer", "head"])
    assert "permuted: you returned [head, layer]" in structural_hint(expected.T.contiguous(), expected, **kw)
    assert "opposite sign" in structural_hint(-expected, expected, **kw)
    assert "times 3" in structural_hint(3 * expected, expected, **kw)
    assert "plus the same constant (1)" in structural_hint(expected + 1, expected, **kw)
    assert structural_hint(expected + torch.randn(expected.shape, generator=torch.Generator().manual_seed(0)), expected, **kw) is None


def test_a_constant_factor_is_recognised_against_a_key_from_another_cpu():
    """The key may be off the true values by a fraction of the tolerance (another CPU rounds
    differently); three times the true values is then up to three times that off three times the key."""
    true = torch.tensor([[0.001, 0.06, 0.06], [0.95, 0.06, 0.06]], dtype=torch.float64)
    atol, rtol = 1e-5, 1e-4
    signs = torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]], dtype=torch.float64)
    key = (true + 0.5 * signs * (atol + rtol * true.abs())).float()
    assert compare(true.float(), key, atol=atol, rtol=rtol).passed
    assert "times 3" in structural_hint((3 * true).float(), key, atol=atol, rtol=rtol)
