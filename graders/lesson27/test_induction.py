"""Graders for induction.py: one test per case in lesson.toml (points, visibility, numbers there)."""

from mechgrade.engine.grader import case_tests


globals().update(case_tests("lesson27", "induction.generate_repeated_tokens"))
globals().update(case_tests("lesson27", "induction.induction_scores"))
globals().update(case_tests("lesson27", "induction.prev_token_scores"))
