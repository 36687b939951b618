"""The mechgrade command line: one small module per command."""
