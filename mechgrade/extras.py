"""What a lesson may add to the report and to ``mechgrade models --inspect``: the hooks of its
``extras`` module (``LessonPlugin.extras``), each optional. They run in the trusted process on
the model and on plain data (the student's decoded output), never on student code; a hook that
raises costs only its own picture or section.

- ``FIGURES: dict[str, Callable[[model, params, expected, got], list[Figure]]]``: more pictures
  for one function's cases, keyed 'exercise.function' (``got`` is None when the call failed).
- ``your_model(model, prompts: list[str]) -> ModelSection``: the report's "your model" section,
  measured on the model the lesson ran on (``prompts``: the lesson's public text prompts).
- ``inspect(model) -> list[str]``: lines that ``mechgrade models --inspect`` prints about the
  model for this lesson (e.g. which heads do what the lesson is about).

A lesson that provides none gets the exercises' own pictures (``render.figures``, chosen by
each output's jaxtyping dims), and a "your model" section with the model's architecture.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

from markupsafe import Markup


@runtime_checkable
class ModelSection(Protocol):
    """The lesson's part of the report's "your model" section."""

    def html(self) -> Markup:
        """The section's body (after the architecture line): self-contained HTML, no script."""

    def figures(self, dims: Any, expected: Any, got: Any, *, atol: float, rtol: float) -> list:
        """More pictures for any output with these jaxtyping ``dims`` (e.g. an attention pattern
        beside every [layer, head] score), drawn with what the section measured."""


def hook(lesson_id: str, name: str) -> Callable[..., Any] | dict | None:
    """The lesson's ``name`` hook, or None when it provides none."""
    from mechgrade import lessons

    module = lessons.get(lesson_id).extras_module()
    return getattr(module, name, None) if module is not None else None
