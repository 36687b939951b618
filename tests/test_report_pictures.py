"""The report's pictures for circuits, superposition and SAE features (issue 14)."""

from __future__ import annotations

import math

import numpy as np
import torch

from mechgrade.exercises.lesson27 import report
from mechgrade.reference.lesson27 import circuits, sae, superposition
from mechgrade.render.pictures import arrows, feature_arrows
from mechgrade.spec import load_lesson


def case_params(target: str, label: str = "public 1") -> dict:
    _, function = load_lesson("lesson27").functions[target]
    return next(c for c in function.cases if c.label == label).params


def test_arrows_draw_one_arrow_per_column_with_escaped_labels():
    pentagon = np.array([[math.cos(2 * math.pi * k / 5) for k in range(5)], [math.sin(2 * math.pi * k / 5) for k in range(5)]])
    svg = arrows(pentagon, title="t<", labels=[f"<f{i}>" for i in range(5)])
    assert svg.count("<polygon") == 5 and "&lt;f0&gt;" in svg and "<f0>" not in svg and "t&lt;" in svg
    wrong = feature_arrows("w", pentagon, pentagon[:, ::-1].copy(), "")
    assert wrong.differs and len(wrong.panels) == 2
    assert not feature_arrows("w", pentagon, None, "").differs
    assert "d_hidden = 2 only" in feature_arrows("w", np.zeros((3, 4)), None, "").panels[0]


def test_toy_model_extra_draws_the_trained_columns(model):
    p = case_params("superposition.train_toy_model")
    W0 = torch.randn(2, 5, generator=torch.Generator().manual_seed(0)) * 0.5
    expected = superposition.train_toy_model(W0, torch.zeros(5), torch.ones(5), 0.05, steps=50)
    (fig,) = report.toy_model_arrows(model, p, expected, (expected[0] * -1, expected[1]))
    assert fig.differs and fig.panels[0].count("<polygon") == 5


def test_sae_extra_reports_the_targets_and_the_label_bars(model):
    p = case_params("sae.train_sae")
    from mechgrade.exercises.lesson27.cases import sae_train_inputs

    kwargs = sae_train_inputs(model, p)
    expected = sae.train_sae(**kwargs)
    (fig,) = report.sae_label_bars(model, p, expected, expected)
    assert "features vs the label" == fig.title and "this token repeats an earlier one" in fig.caption
    assert "mean L0 5." in fig.caption and "best |r| 0.9" in fig.caption and "Yours:" in fig.caption
    (alone,) = report.sae_label_bars(model, p, expected, None)
    assert "Yours:" not in alone.caption


def test_ov_copying_bars_name_every_head(model):
    expected = circuits.ov_copying_scores(model, torch.arange(64))
    (fig,) = report.ov_copying_bars(model, {}, expected, expected.flip(0))
    assert ">L1H3<" in fig.panels[0] and fig.differs
