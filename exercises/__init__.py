"""Lesson data packages (spec, case builders, datasets, templates, mutants, keys), one per lesson."""
