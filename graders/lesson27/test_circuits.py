"""Graders for circuits.py: one test per case in lesson.toml (points, visibility, numbers there)."""

from mechgrade.engine.grader import case_tests


globals().update(case_tests("lesson27", "circuits.head_ablation_scores"))
globals().update(case_tests("lesson27", "circuits.composition_score"))
globals().update(case_tests("lesson27", "circuits.k_composition_scores"))
globals().update(case_tests("lesson27", "circuits.ov_copying_scores"))
