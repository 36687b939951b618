"""The HTML report without a browser: charts, the choice of pictures, failure notes, the writer."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from mechgrade.render.figures import figures
from mechgrade.render.svg import bars, color, colors, heatmap, png


def test_png_round_trips_through_pillow():
    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png(rgb))).convert("RGB")), rgb)


def test_vector_and_pixel_colours_agree():
    m = np.array([[-2.0, -0.5, 0.0], [0.3, 1.0, float("nan")]])
    for diverging in (False, True):
        rgb = colors(m, -2.0, 1.0, diverging)
        for (i, j), v in np.ndenumerate(m):
            assert "#%02x%02x%02x" % tuple(rgb[i, j]) == color(v, -2.0, 1.0, diverging)


def test_labels_are_escaped_and_values_are_tooltips():
    svg = heatmap([[0.25, 1.0]], rows=["<b>"], cols=["a&b", "c"], title="t<")
    assert "<b>" not in svg
    assert "&lt;b&gt;" in svg and "a&amp;b" in svg and "t&lt;" in svg
    assert "<title>&lt;b&gt;, c: 1</title>" in svg
    assert "<script" not in bars(["<script>"], {"expected": [1.0]})


def test_large_heatmap_is_an_embedded_png():
    svg = heatmap(np.zeros((20, 128)), rows=[str(i) for i in range(20)], cols=[str(i) for i in range(128)])
    assert svg.count("data:image/png;base64,") == 1 and svg.count("<rect") < 20


def test_a_wrong_matrix_gets_a_difference_map_and_a_right_one_does_not():
    expected = torch.tensor([[0.0, 0.1], [0.9, 0.0]])
    (right,) = figures("induction_scores", expected, expected.clone(), ["layer", "head"])
    (wrong,) = figures("induction_scores", expected, expected.flip(0), ["layer", "head"])
    assert not right.differs and len(right.panels) == 2
    assert wrong.differs and len(wrong.panels) == 3 and "yours - expected" in wrong.panels[2]
    assert ">L1<" in wrong.panels[0] and ">H1<" in wrong.panels[0]


def test_output_that_does_not_fit_is_described_not_drawn():
    expected = torch.zeros(2, 4)
    for got, says in ((None, "the call failed"), (torch.zeros(3), "shape [3]"), ("text", "a str")):
        (fig,) = figures("prev_token_scores", expected, got, ["layer", "head"])
        assert not fig.differs and len(fig.panels) == 2 and says in fig.panels[-1]


def test_attributions_are_bars_per_component_and_per_head():
    labels = ["embed", "pos_embed", "0_attn_out"]
    expected = (torch.tensor([[1.0, 3.0], [0.0, 0.0], [-1.0, -1.0]]), labels)
    got = (torch.tensor([[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]), labels)
    (fig,) = figures("component_logit_attribution", expected, got, [["component", "batch"], None])
    assert fig.differs and all(f">{name}<" in fig.panels[0] for name in labels)
    (heads,) = figures("head_logit_attribution", torch.ones(2, 4, 3), torch.ones(2, 4, 3), ["layer", "head", "batch"])
    assert not heads.differs and ">L1H3<" in heads.panels[0]


def test_loss_terms_are_labelled_bars():
    expected = (torch.tensor(3.0), torch.tensor(2.0), torch.tensor(10.0))
    got = (torch.tensor(2.0), torch.tensor(2.0), torch.tensor(0.0))
    (fig,) = figures("sae_loss", expected, got, [[], [], []], labels=["total", "reconstruction", "sparsity"])
    assert fig.differs and ">sparsity<" in fig.panels[0] and "sparsity, yours: 0" in fig.panels[0]


def test_tokens_mark_the_positions_that_differ():
    expected = torch.tensor([[511, 5, 6, 5, 6]])
    got = expected.clone()
    got[0, 3] = 9
    (fig,) = figures("generate_repeated_tokens", expected, got, ["batch", "pos"])
    assert fig.differs and fig.panels[0].count('class="bad"') == 1 and "position 3: yours 9, expected 5" in fig.panels[0]


def test_activations_table_flags_a_missing_hook():
    expected = {"hook_embed": torch.ones(1, 3, 4), "blocks.0.hook_resid_pre": torch.ones(1, 3, 4)}
    (fig,) = figures("get_activations", expected, {"hook_embed": torch.ones(1, 3, 4)}, None)
    assert fig.differs and fig.panels[0].count('class="bad"') == 1 and "missing" in fig.panels[0]


def test_probe_accuracy_compares_the_students_probe_with_the_expected_one(model):
    from mechgrade.exercises.lesson27.datasets import probe_dataset
    from mechgrade.exercises.lesson27.report import probe_accuracies

    params = {"n": 64, "seed": 0, "layer": 1}
    acts, labels = probe_dataset(model, **params)
    # The class-mean-difference probe separates the classes; a zero probe says "0" for everything.
    w = acts[labels == 1].mean(0) - acts[labels == 0].mean(0)
    good = (w, -(w @ (acts[labels == 1].mean(0) + acts[labels == 0].mean(0)) / 2))
    zero = (torch.zeros_like(w), torch.tensor(0.0))
    (fig,) = probe_accuracies(model, params, good, zero)
    assert fig.differs and "training prompts, yours: 0.5<" in fig.panels[0]
    (fig,) = probe_accuracies(model, params, good, (w[:3], torch.tensor(0.0)))
    assert not fig.differs and "yours" not in fig.panels[0]


def test_activations_of_a_failed_call_are_not_a_difference():
    (fig,) = figures("get_activations", {"hook_embed": torch.ones(1, 3, 4)}, None, None)
    assert not fig.differs and "missing" in fig.panels[0]


def test_a_model_that_cannot_be_measured_costs_only_its_section(tmp_path, monkeypatch):
    import mechgrade.exercises.lesson27.report as extras
    from mechgrade.engine.results import CaseResult, GradingResult
    from mechgrade.render.html import write_report

    def broken(spec, prompts):
        raise MemoryError("no room")

    monkeypatch.setattr(extras, "your_model", broken)  # the lesson's hook (mechgrade.extras)
    result = GradingResult(lesson="lesson27", model="embedded", workspace=".", cases=[CaseResult(
        exercise="sae", function="sae_loss", case="public 1", number="6.3.1", visibility="public", max_score=3,
        passed=False, status="failed", feedback="off by <one>")])
    html = write_report(result, {}, tmp_path / "r.html").read_text()
    assert 'id="ex-sae"' in html and "off by &lt;one&gt;" in html and "could not be measured here (MemoryError: no room)" in html
    assert 'id="ex-hooks"' not in html  # only the exercises that were graded


def test_a_student_bundle_report_says_why_it_has_no_model_section(tmp_path, monkeypatch):
    from mechgrade.engine.results import GradingResult
    from mechgrade.lessons import LessonPlugin
    from mechgrade.render.html import write_report

    monkeypatch.setattr(LessonPlugin, "has_reference", property(lambda self: False))  # as in a student bundle
    html = write_report(GradingResult(lesson="lesson27", model="embedded", workspace="."), {}, tmp_path / "r.html").read_text()
    assert "section is missing: The report&#39;s &#34;your model&#34; section needs the reference solutions" in html


def test_a_directory_or_a_missing_folder_is_one_sentence(tmp_path):
    import pytest

    from mechgrade.engine.results import GradingResult
    from mechgrade.render.html import ReportError, write_report

    result = GradingResult(lesson="lesson27", model="embedded", workspace=".")
    with pytest.raises(ReportError, match=r"it is a directory; give a file name such as report.html\.$"):
        write_report(result, {}, tmp_path, with_model=False)
    with pytest.raises(ReportError, match=r"the folder .*nope does not exist\.$"):
        write_report(result, {}, tmp_path / "nope" / "r.html", with_model=False)


def test_patching_map_comes_with_its_prompt_and_the_corrupted_position(model):
    from mechgrade.exercises.lesson27.report import corrupted_prompt

    (fig,) = corrupted_prompt(model, {"seq_len": 6, "m": 3, "batch": 1, "seed": 0}, None, None)
    chips = fig.panels[0].split("<span")[1:]
    assert len(chips) == 1 + 6 + 3  # BOS, the first copy, then m tokens of the second
    assert [i for i, c in enumerate(chips) if c.startswith(" class=bad")] == [4] and "pos 4 holds" in fig.caption


def test_a_difference_within_the_grading_tolerance_is_not_drawn_as_one():
    """The key was computed on another CPU: 5e-6 apart is a pass for train_linear_probe (atol 1e-4,
    rtol 1e-3), and its pictures must say the same; twice the tolerance is a difference."""
    expected = torch.tensor([[0.5, -0.25], [0.125, 1.0]])
    tol = {"atol": 1e-4, "rtol": 1e-3}
    (near,) = figures("induction_scores", expected, expected + 5e-6, ["layer", "head"], **tol)
    assert not near.differs and len(near.panels) == 2
    (far,) = figures("induction_scores", expected, expected + 2.2e-3, ["layer", "head"], **tol)
    assert far.differs and "yours - expected" in far.panels[2]
    probe = (torch.tensor([0.3, -0.2, 0.1]), torch.tensor([0.05]))
    weights, bias = figures("train_linear_probe", probe, tuple(t + 5e-6 for t in probe), [["d_model"], []], **tol)
    assert not weights.differs and not bias.differs and "yours - expected" not in weights.panels[0]
    acts = {"hook_embed": torch.ones(1, 3, 4)}
    (table,) = figures("get_activations", acts, {"hook_embed": torch.ones(1, 3, 4) + 5e-6}, None, atol=1e-5, rtol=1e-4)
    assert not table.differs and 'class="bad"' not in table.panels[0]


def test_a_transposed_output_is_drawn_beside_the_expected():
    expected = torch.tensor([[0.0, 0.1, 0.2, 0.3], [0.9, 0.0, 0.1, 0.0]])
    (fig,) = figures("induction_scores", expected, expected.T.contiguous(), ["layer", "head"], atol=1e-5, rtol=1e-4)
    assert fig.differs and fig.yours and len(fig.panels) == 2
    assert "yours, as returned: [head, layer]" in fig.panels[1] and "nothing to draw" not in fig.panels[1]


def test_a_failed_call_is_said_once_the_same_way_for_every_kind_of_output():
    kinds = [
        ("induction_scores", torch.zeros(2, 4), ["layer", "head"], None),
        ("sae_loss", (torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)), [[], [], []], ["total", "reconstruction", "sparsity"]),
        ("component_logit_attribution", (torch.ones(3, 2), ["embed", "pos_embed", "0_attn_out"]), [["component", "batch"], None], None),
        ("generate_repeated_tokens", torch.tensor([[511, 5, 5]]), ["batch", "pos"], None),
        ("get_activations", {"hook_embed": torch.ones(1, 3, 4)}, None, None),
        ("train_linear_probe", (torch.ones(3), torch.tensor([0.5])), [["d_model"], []], None),
        ("logit_diff", torch.ones(3), ["batch"], None),
    ]
    for name, expected, dims, labels in kinds:
        figs = figures(name, expected, None, dims, labels=labels)
        notes = "".join(str(p) for f in figs for p in f.panels).count("Yours is nothing (the call failed): nothing to draw")
        assert notes == 1 and not any(f.differs for f in figs), name


def test_a_rotated_bar_label_fits_inside_the_chart():
    import re

    svg = bars(["normalized_patching_metric"], {"expected": [0.5], "yours": [0.7]})
    x, y = (float(v) for v in re.search(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="end" transform="rotate\(-45', svg).groups())
    assert x - 0.71 * 6.5 * len("normalized_patching_metric") >= 0


def test_feedback_backticks_become_code_and_repeated_figures_are_drawn_once():
    from markupsafe import Markup

    from mechgrade.engine.results import CaseResult
    from mechgrade.render.figures import Figure
    from mechgrade.render.html import CaseView, _once, codespans

    assert codespans("run `mechgrade check x -e a<b>` again") == Markup("run <code>mechgrade check x -e a&lt;b&gt;</code> again")
    assert codespans("one ` tick") == Markup("one ` tick")

    def case(label):
        result = CaseResult(exercise="e", function="f", case=label, number="1", visibility="public", max_score=1, passed=False, status="failed")
        return CaseView(result, [Figure("attention of the top head", [Markup("<svg>big</svg>")], "caption"),
                                 Figure("f", [Markup(f"<svg>{label}</svg>")])])

    cases = [case("public 1"), case("public 2")]
    _once(cases)
    assert "<svg>big</svg>" in cases[0].figures[0].panels[0]
    assert "The same as in public 1 above." in cases[1].figures[0].panels[0] and "public 2" in cases[1].figures[1].panels[0]


def test_the_model_header_says_where_the_model_comes_from():
    from mechgrade.models.spec import provenance, resolve

    assert provenance("embedded", resolve("embedded")) == "embedded (shipped with mechgrade)"
