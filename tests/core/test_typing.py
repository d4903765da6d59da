"""mypy is clean on fast3r_core, with the configuration in pyproject.toml ([tool.mypy])."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def test_mypy_is_clean_on_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("mypy") is None:
        # mypy comes with the `test` extras: on CI a missing mypy is a broken set-up, not a skip
        if _on_ci():
            pytest.fail("CI: mypy is not installed (pip install -e '.[test]')")
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    from mypy import api

    # mypy resolves `packages = ["fast3r_core"]` against the working directory: this checkout's
    # sources, not whatever an installed copy points at
    monkeypatch.chdir(ROOT)
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, f"mypy found errors (run `mypy` from the repository root):\n{stdout}{stderr}"
