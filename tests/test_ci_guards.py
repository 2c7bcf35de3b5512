"""CI can't go green with the browser tests left out: without Chromium they fail under CI
(and only skip on a developer's machine), and `-m "not e2e"` leaves out all of tests/e2e.
(.ci/run also reads the JUnit report and fails if a browser test was skipped under CI.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import require_chromium

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_chromium_fails_the_browser_tests_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("CHROMIUM_PATH", "/nonexistent/chromium")

    with pytest.raises(pytest.fail.Exception, match="under CI the browser tests must run"):
        require_chromium()


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_missing_chromium_skips_the_browser_tests_with_the_reason_outside_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("CHROMIUM_PATH", "/nonexistent/chromium")

    with pytest.raises(pytest.skip.Exception, match="no Chromium at /nonexistent/chromium"):
        require_chromium()


def test_deselecting_e2e_leaves_out_every_browser_test() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "-m", "not e2e", "tests/e2e"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert "::" not in result.stdout, result.stdout
    assert " deselected" in result.stdout, result.stdout
