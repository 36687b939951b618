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
    # run_autograder grading the reference, public and hidden (benchmarks/autograder.py): 541-575 MB
    # on the embedded model (its worker peaks at 0.41 GB in the probe exercise); 2,018 MB on a
    # GPT-2-small-sized random checkpoint with its key cached. A margin on top of each.
    peak_mb={"embedded": 600, "gpt2": 2100},
    cpu_advice={"embedded": "CPU 0.5 (Gradescope's default): grading a correct submission took 34-54 s at 0.5 CPU in "
                            "768 MB (the README's \"Memory, CPU and time\")",
                "gpt2": "CPU 2 or more: on a GPT-2-small-sized model the reference's patch_residual_stream alone ran "
                        "past its 60 s limit on 2 busy cores here"},
)
