"""Graders for sae.py: one test per case in lesson.toml (points, visibility, numbers there)."""

from mechgrade.engine.grader import case_tests


globals().update(case_tests("lesson27", "sae.sae_encode"))
globals().update(case_tests("lesson27", "sae.sae_decode"))
globals().update(case_tests("lesson27", "sae.sae_loss"))
globals().update(case_tests("lesson27", "sae.train_sae"))
globals().update(case_tests("lesson27", "sae.feature_label_correlation"))
