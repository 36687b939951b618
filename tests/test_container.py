"""The exported autograder inside Gradescope's default container: a cgroup limited to 768 MB
(page cache counted, as Docker counts it) and half a CPU. The reference keeps full marks with no
OOM kill; the worst submissions of issue 13 get a valid results.json within the time limit,
with a reason on every case and zero only for what they broke.

Uses the session's one exported zip and one setup.sh (conftest.py). Runs as root with a
writable cgroup (v1 or v2); skipped, with the reason, elsewhere. Affordable on purpose: the
worst cases share runs, and the deadline is exercised with a short --time-limit-min.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mechgrade.export.container import ContainerLimits, read_limits, recommended_mb, student_allowance
from mechgrade.workspace import module_sources

from container import Limits, evict_page_cache, unsupported
from worst_cases import ALLOCATE, DAEMON, FORK_BOMB, LOOP, SLEEP, everywhere, functions, notebook_ignoring_its_alarm, with_bodies

DEFAULT_MB, HALF_CPU = 768, 0.5
PIDS = 512  # protects the shared machine from the fork bomb; Gradescope's own cap is not documented


@pytest.fixture(scope="module")
def limited(autograder):
    """A function running run_autograder under given limits: (results.json, the cgroup's Run)."""
    why = unsupported()
    if why:
        from required import missing

        missing("cgroup", f"no writable cgroup: {why}")

    def run(files: dict[str, str], *, mem_mb: int = DEFAULT_MB, cpus: float = HALF_CPU, folder: str = "", cold: bool = False):
        autograder.stage(files, folder)
        if cold:  # as in a fresh container: the cgroup pays for reading torch & co. again
            evict_page_cache(autograder.root / "runtime", autograder.root / "source")
        with Limits(mem_mb, cpus, pids=PIDS) as cgroup:
            done = cgroup.run(autograder.command, env=autograder.env, cwd=autograder.root)  # not this repository: its pytest config
        assert done.returncode == 0, done.stderr[-2000:]
        return autograder.results(), done

    return run


@pytest.fixture(scope="module")
def short_zip(tmp_path_factory) -> Path:
    from mechgrade.export.gradescope import export_gradescope

    out = tmp_path_factory.mktemp("short") / "short.zip"
    export_gradescope("lesson27", out, time_limit_min=2)
    return out


@pytest.fixture
def short_limit(autograder, short_zip):
    """Swap in the run_autograder and autograder.json of an export with --time-limit-min 2
    (grading stops at 60 s) for one test; the assignment's timeout in seconds."""
    import zipfile

    source = autograder.root / "source"
    names = ("run_autograder", "autograder.json")
    saved = {n: (source / n).read_bytes() for n in names}
    with zipfile.ZipFile(short_zip) as zf:
        for n in names:
            (source / n).write_bytes(zf.read(n))
    try:
        yield 120
    finally:
        for n, data in saved.items():
            (source / n).write_bytes(data)


def by_module(data: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for t in data["tests"]:
        out.setdefault(t["tags"][0], []).append(t)
    return out


def points(tests: list[dict]) -> tuple[float, float]:
    return sum(t["score"] for t in tests), sum(t["max_score"] for t in tests)


# -- reading the container ------------------------------------------------------------------------
def test_limits_are_read_from_cgroup_v2_and_v1_files(tmp_path):
    v2 = tmp_path / "v2"
    (v2 / "grader").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu memory pids")
    (v2 / "memory.max").write_text("max")
    (v2 / "cpu.max").write_text("50000 100000")
    (v2 / "grader" / "memory.max").write_text(str(768 << 20))
    (v2 / "grader" / "cpu.max").write_text("max 100000")
    proc = tmp_path / "cgroup2"
    proc.write_text("0::/grader\n")
    assert read_limits(proc, v2) == ContainerLimits(memory_mb=768, cpus=0.5)

    v1 = tmp_path / "v1"
    for d in ("memory/docker/abc", "cpu/docker/abc"):
        (v1 / d).mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712")
    (v1 / "memory" / "docker" / "abc" / "memory.limit_in_bytes").write_text(str(1536 << 20))
    (v1 / "cpu" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000")
    proc.write_text("12:pids:/docker/abc\n5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    assert read_limits(proc, v1) == ContainerLimits(memory_mb=1536, cpus=1.0)
    proc.write_text("")
    assert read_limits(proc, v1) == ContainerLimits()


def test_the_student_allowance_is_cut_to_fit_the_container():
    assert student_allowance("embedded", {}, 256, ContainerLimits()) == 256  # no limit found: as exported
    assert 64 <= student_allowance("embedded", {}, 256, ContainerLimits(memory_mb=768)) < 256
    assert student_allowance("embedded", {}, 256, ContainerLimits(memory_mb=4096)) == 256
    assert student_allowance("gpt2", {}, 2048, ContainerLimits(memory_mb=768)) is None
    # A lesson's own measurement wins over the defaults: a heavier lesson does not fit 768 MB.
    assert student_allowance("embedded", {"embedded": 900}, 256, ContainerLimits(memory_mb=768)) is None
    assert recommended_mb("embedded", {"embedded": 900}) > recommended_mb("embedded", {}) == 768


# -- the exported autograder in a limited cgroup -------------------------------------------------
def test_reference_gets_full_marks_in_the_default_container(limited, lesson):
    """Cold page cache, as in a fresh container: 100/100, no OOM kill, well inside 10 minutes."""
    data, run = limited(module_sources(lesson, solutions=True), cold=True)
    assert data["score"] == 100, [t["output"] for t in data["tests"] if t["score"] < t["max_score"]][:2]
    assert run.oom_kills == 0
    assert run.seconds < 540, run.seconds


def test_a_container_too_small_for_the_model_says_which_setting_to_raise(limited, lesson):
    data, run = limited(module_sources(lesson, solutions=True), mem_mb=512)
    assert data["score"] == 0 and data["tests"] == []
    assert "this container has 512 MB" in data["output"] and "raise the assignment's autograder memory" in data["output"]
    assert data["output"].count(". ") <= 2, data["output"]


def test_worst_cases_cost_only_what_they_broke(limited, lesson, autograder):
    """One submission, one worst case per module: an import that never returns (hooks), every
    function sleeping plus a spinning daemon (induction), an allocation that never stops
    (patching.patch_residual_stream), a fork bomb (dla.head_logit_attribution); the rest is correct."""
    ref = module_sources(lesson, solutions=True)
    files = {
        **ref,
        "hooks.py": ref["hooks.py"] + "\n" + LOOP + "\n",
        "induction.py": with_bodies(with_bodies(ref["induction.py"], functions("induction"), SLEEP), ["generate_repeated_tokens"], DAEMON),
        "patching.py": with_bodies(ref["patching.py"], ["patch_residual_stream"], ALLOCATE),
        "dla.py": with_bodies(ref["dla.py"], ["head_logit_attribution"], FORK_BOMB),
    }
    data, run = limited(files)
    assert run.seconds < 540, run.seconds
    bomb_damage = [t["name"] for t in data["tests"] if not t["name"].startswith("dla.head_logit_attribution")
                   and ("could not start" in t["output"] or "ran out of memory or was killed" in t["output"])]
    # Once seen in 1 of 2 runs, before the worker had a process limit (RLIMIT_NPROC, issue 12):
    # the bomb filled memory and the re-boots after it died too.
    assert not bomb_damage, f"the fork bomb also cost {len(bomb_damage)} other cases, e.g. {bomb_damage[0]}"
    modules = by_module(data)
    lost = [(t["name"], t["output"][:400]) for m in ("probe", "sae") for t in modules[m] if t["score"] < t["max_score"]]
    assert not lost, lost
    assert points(modules["hooks"])[0] == 0 and points(modules["induction"])[0] == 0
    assert all("hooks.py did not finish importing within 20 s" in t["output"] for t in modules["hooks"])
    assert all("did not return within 20 s" in t["output"] for t in modules["induction"])
    reasons = {t["name"].split(" [")[0]: t["output"] for t in data["tests"] if t["score"] < t["max_score"]}
    assert "memory" in reasons.pop("patching.patch_residual_stream").lower()
    assert "dla.head_logit_attribution" in reasons, "the fork bomb scored"
    bomb = reasons.pop("dla.head_logit_attribution")
    assert set(reasons) == {"hooks.get_activations", *(f"induction.{f}" for f in functions("induction"))}, (set(reasons), bomb)
    assert points(modules["patching"])[1] - points(modules["patching"])[0] == sum(
        c.points for e, f, c in lesson.iter_cases(hidden=True) if f.name == "patch_residual_stream")


def test_every_function_looping_forever_is_cut_off_at_the_deadline(limited, short_limit, lesson):
    """Time limit 2 min (grading stops at 60 s): the run ends in time, every case scores 0 with a
    reason, the cases never reached say they were not run, and why."""
    loops = everywhere(LOOP)
    data, run = limited(loops)
    assert run.seconds < short_limit - 20, run.seconds
    assert data["score"] == 0 and len(data["tests"]) == sum(1 for _ in lesson.iter_cases(hidden=True))
    kinds = Counter("timeout" if "did not return within" in t["output"] else "not run" if "not run: the time allowed" in t["output"]
                    else "stopped" if "still running when the time allowed" in t["output"] else t["output"][:80] for t in data["tests"])
    assert set(kinds) <= {"timeout", "not run", "stopped"}, kinds
    assert kinds["timeout"] + kinds["stopped"] >= 1 and kinds["not run"] >= 1, kinds


def test_a_notebook_cell_that_ignores_its_alarm_costs_one_boot(limited, short_limit):
    """The worker's boot hangs in the cell: it is stopped, and every case gets the reason (here
    the short deadline comes first; with 10 minutes it is the 180 s boot limit)."""
    data, run = limited(notebook_ignoring_its_alarm())
    assert run.seconds < short_limit - 20, run.seconds
    assert data["score"] == 0 and data["tests"]
    assert all("running the graded cells of work.ipynb" in t["output"] and "cell 3" in t["output"] for t in data["tests"]), data["tests"][0]["output"]


def test_export_prints_the_memory_cpu_and_timeout_to_set(tmp_path):
    import zipfile

    from click.testing import CliRunner

    from mechgrade.cli.main import cli

    out = tmp_path / "a.zip"
    result = CliRunner().invoke(cli, ["export", "gradescope", "lesson27", "-o", str(out), "--time-limit-min", "15"])
    assert result.exit_code == 0, result.output
    assert "memory 768 MB or more (student code then gets 100 MB; a bigger container gives it more, up to --mem-mb 256)" in result.output
    assert "CPU 0.5" in result.output and "timeout 15 min (grading stops at 840 s" in result.output
    with zipfile.ZipFile(out) as zf:
        assert json.loads(zf.read("autograder.json"))["time_limit_s"] == 900
        assert "timeout --kill-after=5 875 " in zf.read("run_autograder").decode()
    refused = CliRunner().invoke(cli, ["export", "gradescope", "lesson27", "-o", str(out), "--time-limit-min", "1"])
    assert refused.exit_code == 2 and "time-limit-min" in refused.output
