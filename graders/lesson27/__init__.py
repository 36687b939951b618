"""Lesson 27 graders."""
