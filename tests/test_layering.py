"""The layering of the code: the import contracts of pyproject.toml hold, and the app uses only the core's
public names (``fast3r_core``'s own, or those a public module lists in its ``__all__``)."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str | None:
    """The lint-imports program of this Python's environment, else one on the PATH, else None."""
    beside = Path(sys.executable).with_name("lint-imports")
    return str(beside) if beside.exists() else shutil.which("lint-imports")


def test_import_contracts_hold() -> None:
    exe = _lint_imports()
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    # the checkout's packages, not an installed copy, are the ones analysed
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _core_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, core module, imported names) of every fast3r_core import in a file (names [] for
    ``import fast3r_core.x``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "fast3r_core":
                out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "fast3r_core")
    return out


def test_the_app_uses_only_public_core_names() -> None:
    problems = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        where = path.relative_to(ROOT)
        for line, module, names in _core_imports(path):
            parts = module.split(".")
            private = any(p.startswith("_") for p in parts)
            if private or parts[1:2] in (["cli"], ["model"]):  # the packages with their modules
                problems.append(f"{where}:{line}: imports {module}")
                continue
            public = getattr(importlib.import_module(module), "__all__", None)
            if public is None:
                problems.append(f"{where}:{line}: {module} declares no __all__")
                continue
            hidden = [n for n in names if n not in public]
            problems.extend(f"{where}:{line}: {module}.{n} is not in its __all__" for n in hidden)
    assert not problems, "\n".join(problems)
