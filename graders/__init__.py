"""Pytest graders, one package per lesson."""
