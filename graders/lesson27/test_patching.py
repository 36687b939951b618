"""Graders for patching.py: one test per case in lesson.toml (points, visibility, numbers there)."""

from mechgrade.engine.grader import case_tests


globals().update(case_tests("lesson27", "patching.logit_diff"))
globals().update(case_tests("lesson27", "patching.normalized_patching_metric"))
globals().update(case_tests("lesson27", "patching.patch_residual_stream"))
