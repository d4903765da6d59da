"""docs/gpu.md states what the code does: the numbers and names it quotes are the code's."""

from __future__ import annotations

import re
from pathlib import Path

from fast3r_core.chunking.plan import BUDGET_FRACTION
from fast3r_core.model import layers

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "gpu.md").read_text(encoding="utf-8")


def test_the_files_the_doc_names_exist():
    paths = set(re.findall(r"`((?:bench|tests|fast3r_core|docs|resources)/[\w/.]+?)(?::\w+)?`", DOC))
    assert {"bench/gpu_check.py", "tests/gpu_emulation.py", "tests/core/test_gpu_path.py"} <= paths
    for p in paths - {"bench/results/gpu_check.json"}:  # written by the script on a GPU machine
        assert (ROOT / p).exists(), p


def test_the_numbers_the_doc_quotes_are_the_codes():
    assert "SCORE_BLOCK_BYTES` = 2^30" in DOC and layers.SCORE_BLOCK_BYTES == 2**30
    assert '`MATERIALISING_DEVICES` =\n  {"mps"}' in DOC and layers.MATERIALISING_DEVICES == {"mps"}
    assert f"plans chunks for {round(BUDGET_FRACTION * 100)} % of the free memory" in DOC
    assert "compute capability >= 8.0" in DOC
    assert "cache_enabled=False" in DOC


def test_the_doc_lists_the_three_first_gpu_measurements_and_the_script_runs_them():
    section = DOC.split("## What to measure on the first real GPU", 1)[1]
    assert section.count("\n1. **") == 1 and "\n2. **" in section and "\n3. **" in section
    script = (ROOT / "bench" / "gpu_check.py").read_text(encoding="utf-8")
    for check in ("check_memory", "check_attention", "check_accuracy"):
        assert f"def {check}(" in script
