"""Graders for hooks.py: one test per case in lesson.toml (points, visibility, numbers there)."""

from mechgrade.engine.grader import case_tests


globals().update(case_tests("lesson27", "hooks.get_activations"))
