"""The grading engine: answer key, isolated student worker, comparisons, results."""
