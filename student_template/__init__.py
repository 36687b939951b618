"""Starter code for students: stubs with the reference signatures."""
