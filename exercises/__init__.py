"""Lessons as data: one folder per lesson with its spec, case builders, datasets and templates."""

import importlib
from typing import Any, Callable


def load_builders(lesson: str) -> Callable[[Any, str, dict[str, Any]], dict[str, Any]]:
    """The lesson's ``build(model, builder_name, params) -> kwargs`` (trusted lesson code)."""
    return importlib.import_module(f"mechgrade.exercises.{lesson}.cases").build
