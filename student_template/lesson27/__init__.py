"""Lesson 27 stubs: each function raises NotImplementedError until you write it."""
