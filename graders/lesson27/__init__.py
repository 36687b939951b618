"""Lesson 27's custom checks (the spec names them; every other case is graded from the spec alone)."""
