"""Graders for dla.py: one test per case in lesson.toml (points, visibility, numbers there)."""

from mechgrade.engine.grader import case_tests


globals().update(case_tests("lesson27", "dla.logit_diff_direction"))
globals().update(case_tests("lesson27", "dla.component_logit_attribution"))
globals().update(case_tests("lesson27", "dla.head_logit_attribution"))
