"""Graders for superposition.py: one test per case in lesson.toml (points, visibility, numbers there).

The toy model's training recipe (Adam on copies, one fixed batch per step) fixes its weights,
so they are compared by value: two implementations of the recipe agree to about 1e-6.
"""

from mechgrade.engine.grader import case_tests


globals().update(case_tests("lesson27", "superposition.generate_sparse_features"))
globals().update(case_tests("lesson27", "superposition.toy_model_forward"))
globals().update(case_tests("lesson27", "superposition.importance_weighted_loss"))
globals().update(case_tests("lesson27", "superposition.train_toy_model"))
globals().update(case_tests("lesson27", "superposition.feature_dimensionality"))
