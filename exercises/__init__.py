"""Lessons as data: one folder per lesson with its spec, case builders, datasets and templates."""
