"""Renderers of the results model (terminal, JSON); each reads ``GradingResult`` only."""
