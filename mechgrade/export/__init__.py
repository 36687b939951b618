"""Exports for courses: the Gradescope autograder and the student starter bundle."""
