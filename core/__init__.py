"""mechgrade: auto-graded mechanistic interpretability exercises on TransformerLens.

Importing this package is cheap (no torch): the CLI's ``--help`` and ``list`` rely on it.
"""

__version__ = "0.1.0"
