"""Lesson 27, "What interpretability researchers actually do".

Registered through the ``mechgrade.lessons`` entry point (pyproject.toml), like any lesson. It
keeps the project's top-level layout: its data here, its solutions in ``reference/lesson27``,
its stubs in ``student_template/lesson27``, its one custom check in ``graders/lesson27``.
"""

from mechgrade.lessons import LessonPlugin

LESSON = LessonPlugin(
    id="lesson27",
    data=__name__,
    reference="mechgrade.reference.lesson27",
    stubs="mechgrade.student_template.lesson27",
    checks="mechgrade.graders.lesson27.checks",
    extras="mechgrade.exercises.lesson27.report",
)
