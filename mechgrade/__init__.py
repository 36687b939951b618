"""mechgrade: auto-graded mechanistic interpretability exercises on TransformerLens.

Importing this package is cheap (no torch): the CLI's ``--help`` and ``list`` rely on it.
"""

__version__ = "0.1.0"


def check(lesson: str, function, *helpers, model: str | None = None):
    """Grade ``function``, defined in your notebook, on ``lesson``'s public cases in an isolated
    process (never called here); shows as a table. ``helpers`` are sent along with it.
    See ``mechgrade.interactive`` (imported only now: importing mechgrade stays torch-free)."""
    from mechgrade.interactive import check as check_function

    return check_function(lesson, function, *helpers, model=model)


def case_inputs(lesson: str, function: str, case: str = "public 1", *, model=None) -> dict:
    """The exact keyword arguments of one public case, rebuilt here, so that you can rerun it:
    ``induction_scores(**case_inputs("lesson27", "induction.induction_scores", "public 1"))``.
    See ``mechgrade.reproduce`` (imported only now)."""
    from mechgrade.reproduce import case_inputs as build

    return build(lesson, function, case, model=model)
