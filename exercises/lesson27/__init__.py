"""Lesson 27, "What interpretability researchers actually do"."""
