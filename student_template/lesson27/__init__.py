"""Lesson 27 reference solutions: one module per topic, same signatures as the stubs."""
