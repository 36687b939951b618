"""Custom checks, one package per lesson (a lesson's plugin names its module)."""
