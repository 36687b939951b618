"""`mechgrade check --report`: the HTML report of a real grading run, opened in a real headless
Chromium (skipped, saying why, where Chromium is not installed)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from chromium import Chromium, find_chromium
from mechgrade.cli.main import cli
from mechgrade.engine.mutants import load_catalogue, write_mutant_workspace

EXERCISES = ["hooks", "induction", "circuits", "patching", "dla", "probe", "superposition", "sae"]
MUTANT = "induction-off-by-one"  # induction_scores reads the diagonal one key too far left


class _Reports(dict):
    """name -> (report, CLI result) of one `check --report` run, made on first use."""

    def __init__(self, tmp_path_factory, workspaces):
        super().__init__()
        self.tmp, self.workspaces = tmp_path_factory, workspaces

    def __missing__(self, name: str):
        report = self.tmp.mktemp("reports") / f"{name}.html"
        args = ["check", "lesson27", "--path", str(self.workspaces[name]()), "--report", str(report),
                "--results", str(report.with_suffix(".json"))]
        self[name] = (report, CliRunner().invoke(cli, args))
        return self[name]


@pytest.fixture(scope="module")
def reports(tmp_path_factory, reference_ws, stub_ws, shifted_key) -> _Reports:
    """'reference', 'stubs', and 'mutant' (the reference with one catalogued mistake), graded
    against the shipped key shifted within tolerance, as another CPU would have computed it."""
    mutant = next(m for m in load_catalogue("lesson27").mutants if m.name == MUTANT)
    return _Reports(tmp_path_factory, {
        "reference": lambda: reference_ws, "stubs": lambda: stub_ws,
        "mutant": lambda: write_mutant_workspace("lesson27", mutant, tmp_path_factory.mktemp("mutant"))})


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if binary is None:
        from required import missing

        missing("chromium", "Chromium is not installed (Debian: apt-get install -y chromium); the report's browser tests need it")
    chromium = Chromium(binary)
    yield chromium
    chromium.close()


def test_report_is_written_after_the_grade(reports):
    for name, expected_exit in (("reference", 0), ("mutant", 1), ("stubs", 1)):
        report, run = reports[name]
        assert run.exit_code == expected_exit, run.output
        assert "Total:" in run.output and f"Report: {report}" in run.output
        assert run.output.index("Total:") < run.output.index("Report:")
        html = report.read_text()
        assert not any(s in html for s in ("<script", "<link", 'src="http', "url(")), "the report must be self-contained"
        assert all(f'id="ex-{e}"' in html for e in EXERCISES) and 'id="your-model"' in html
    # The README's figure for the report's size is the measured one.
    low, high = (int(n) for n in re.search(r"the file is\s+(\d+)-(\d+) KB", README.read_text()).groups())
    sizes = {name: reports[name][0].stat().st_size / 1000 for name in ("reference", "mutant", "stubs")}
    assert all(low <= kb <= high for kb in sizes.values()), sizes


README = Path(__file__).parents[1] / "README.md"


def _open(browser, report: Path):
    page = browser.page()
    page.load(report.as_uri())
    return page


def _check_page(page, report: Path) -> None:
    assert page.console_errors == []
    assert [u for u in page.requests if not u.startswith("data:")] == [report.as_uri()]
    visible = page.evaluate("""[...document.querySelectorAll('section.exercise, #your-model')].map(s => {
        const r = s.getBoundingClientRect(), st = getComputedStyle(s);
        return [s.id, r.height > 50 && r.width > 300 && st.display !== 'none' && st.visibility === 'visible'];
    })""")
    assert visible == [[f"ex-{e}", True] for e in EXERCISES] + [["your-model", True]]
    # A case within the grader's tolerance is never drawn as different (the key is from another CPU).
    outlined = page.evaluate("""[...document.querySelectorAll('details.case')].filter(d => !d.classList.contains('failed')
        && !d.classList.contains('error') && d.querySelector('figure.differs, td.bad, tr.bad')).map(d => d.dataset.case)""")
    assert outlined == [], f"passing cases drawn as different: {outlined}"
    # Every label fits inside its chart (a rotated one used to run off the left edge), once the page is opened up.
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    clipped = page.evaluate("""[...document.querySelectorAll('figure svg')].flatMap(svg => {
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll('text')].filter(t => { const r = t.getBoundingClientRect();
            return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1); })
          .map(t => t.textContent); })""")
    assert clipped == [], f"labels cut off by their chart: {clipped}"
    assert page.evaluate("[...document.querySelectorAll('pre.feedback, p.hint')].filter(e => e.innerText.includes('`')).length") == 0
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    colours = shot.getcolors(maxcolors=1 << 16)
    assert shot.size[1] > 2000 and (colours is None or len(colours) > 50), "the screenshot is blank"


def test_reference_report_in_chromium(browser, reports):
    report, _ = reports["reference"]
    page = _open(browser, report)
    # Nothing to fix: every exercise is collapsed to its heading, and the page is short.
    assert page.evaluate("[...document.querySelectorAll('details.exercise-body')].map(d => d.open)") == [False] * len(EXERCISES)
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 6000, height
    _check_page(page, report)
    assert page.evaluate("document.querySelectorAll('section.exercise.passed').length") == len(EXERCISES)
    assert page.evaluate("document.querySelectorAll('figure.differs, details.case.failed').length") == 0
    # The model section names the embedded model's circuit (README: L0H0 previous-token, L1H0 induction).
    text = page.evaluate("document.getElementById('your-model').innerText")
    assert "previous-token head is L0H0" in text and "induction head is L1H0" in text
    assert "embedded (shipped with mechgrade)" in text and "embedded (embedded)" not in text


def test_wrong_exercise_shows_its_failure_and_the_difference(browser, reports):
    report, _ = reports["mutant"]
    page = _open(browser, report)
    opened = page.evaluate("[...document.querySelectorAll('section.exercise')].map(s => [s.id, s.querySelector('details.exercise-body').open])")
    assert opened == [[f"ex-{e}", e == "induction"] for e in EXERCISES]  # only the exercise with a failure is open
    _check_page(page, report)
    status = page.evaluate("[...document.querySelectorAll('section.exercise')].map(s => [s.id, s.classList.contains('passed')])")
    assert status == [[f"ex-{e}", e != "induction"] for e in EXERCISES]
    failed = page.evaluate("""[...document.querySelectorAll('details.case.failed')].map(d => {
        const diff = d.querySelector('figure.differs');
        return {number: d.dataset.case, open: d.open, text: d.innerText,
                diff: diff ? diff.getBoundingClientRect().height : 0, diffmap: !!(diff && diff.textContent.includes('yours - expected'))};
    })""")
    assert [f["number"] for f in failed] == ["2.2.1", "2.2.2"]  # induction_scores' public cases
    for f in failed:
        assert f["open"] and "FAIL" in f["text"] and "Off by one on the induction diagonal" in f["text"]
        assert f["diff"] > 50 and f["diffmap"]
    # The mutant ranks another head first: the two heads' attention maps are drawn once, for the first case.
    assert "expected top head L1H0" in failed[0]["text"] and "your top head" in failed[0]["text"]
    assert "expected top head" not in failed[1]["text"] and "The same map as in public 1 above." in failed[1]["text"]


def test_a_fresh_workspace_says_every_call_failed_and_draws_only_the_expected(browser, reports):
    report, _ = reports["stubs"]
    page = _open(browser, report)
    _check_page(page, report)
    cases = page.evaluate("""[...document.querySelectorAll('details.case')].map(d => [d.open, d.classList.contains('failed'),
        d.querySelectorAll('figure.differs').length, d.querySelectorAll('svg, table').length > 0, d.innerText.includes('is not implemented yet')])""")
    assert len(cases) == 52  # every public case of the lesson
    assert all(c == [True, True, 0, True, True] for c in cases), cases


def test_a_report_into_a_missing_folder_is_one_sentence_before_grading(reference_ws, reports, tmp_path):
    plain = tmp_path / "results.json"
    run = CliRunner().invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "-e", "sae", "--results", str(plain),
                                   "--report", str(tmp_path / "missing" / "report.html")])
    assert run.exit_code == 2 and "Traceback" not in run.output and "Total:" not in run.output
    assert f"the folder {tmp_path / 'missing'} does not exist" in run.output
    # results.json is the same with a report as without: the values never enter the results model.
    run = CliRunner().invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "-e", "sae", "--results", str(plain)])
    assert "Total: 11 / 11" in run.output
    with_report = json.loads(reports["reference"][0].with_suffix(".json").read_text())
    assert [t for t in with_report["tests"] if t["tags"][0] == "sae"] == json.loads(plain.read_text())["tests"]


def test_hidden_cases_show_status_but_never_values(reference_ws, tmp_path):
    report = tmp_path / "hidden.html"
    run = CliRunner().invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "-e", "sae", "--hidden", "--report", str(report)])
    assert run.exit_code == 0, run.output
    html = report.read_text()
    cases = {number: html.split(f'data-case="{number}"')[1].split("</details>")[0] for number in ("8.1.1", "8.1.3", "8.3.3")}
    assert "<svg" in cases["8.1.1"]
    for number in ("8.1.3", "8.3.3"):  # hidden: sae_encode's and sae_loss's third cases
        assert "PASS" in cases[number] and "Values of hidden cases are not shown." in cases[number]
        assert "<svg" not in cases[number] and "<table" not in cases[number]
