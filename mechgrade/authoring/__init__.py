"""The authoring kit: ``mechgrade new lesson`` (a lesson package that validates out of the box)
and ``mechgrade new stubs`` (a lesson's stubs from its reference). docs/authoring.md is the guide."""
