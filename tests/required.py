"""Facilities some tests need, and what happens when one is missing: a skip, with the reason,
on a machine that lacks it; a failure where ``MECHGRADE_REQUIRE`` lists it (``.ci/run`` lists
them all) or ``CI=true``, so that CI can never be green with its security tests skipped.

Facilities: ``root``, ``bwrap`` (bubblewrap builds namespaces), ``chromium``, ``cgroup``
(a writable memory/cpu/pids cgroup), ``jupyter`` (a Python kernel nbclient can start).
"""

from __future__ import annotations

import os

import pytest

FACILITIES = ("root", "bwrap", "chromium", "cgroup", "jupyter")


def required() -> set[str]:
    """What ``MECHGRADE_REQUIRE`` (comma-separated; ``all`` for every facility) demands; ``CI=true``
    (what CI services set) demands them all."""
    names = {n.strip() for n in os.environ.get("MECHGRADE_REQUIRE", "").split(",") if n.strip()}
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return set(FACILITIES) if ci or "all" in names else names


def missing(facility: str, reason: str) -> None:
    """Call where ``facility`` turned out to be missing: fails the test if it is required
    here, skips it (saying why) otherwise."""
    if facility in required():
        pytest.fail(f"{reason}; it is required here (MECHGRADE_REQUIRE lists '{facility}', or CI=true), so this test must run here", pytrace=False)
    pytest.skip(reason)


def needs(facility: str, reason: str) -> pytest.MarkDecorator:
    """A mark that skips (saying ``reason``) where ``facility`` is missing. Checked at once: a
    required facility that is missing fails the module instead (a collection error)."""
    absent = not available(facility)
    if absent and facility in required():
        pytest.fail(f"{reason}; it is required here (MECHGRADE_REQUIRE lists '{facility}', or CI=true), so the tests that need it must run here", pytrace=False)
    return pytest.mark.skipif(absent, reason=reason)


def available(facility: str) -> bool:
    if facility == "root":
        return os.geteuid() == 0
    if facility == "bwrap":
        from mechgrade.sandbox import namespaces_work

        return namespaces_work()
    if facility == "chromium":
        from chromium import find_chromium

        return find_chromium() is not None
    if facility == "cgroup":
        from container import unsupported

        return not unsupported()
    if facility == "jupyter":
        import importlib.util

        return all(importlib.util.find_spec(m) is not None for m in ("nbclient", "ipykernel"))
    raise ValueError(f"unknown facility {facility!r}; one of {', '.join(FACILITIES)}")
