"""Dependency rules: the core never loads Qt/VisPy, and light imports do not load torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

GUI_MODULES = ("PySide6", "vispy", "pyqtgraph", "superqt", "app")


def _loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        "import fast3r_core",
        "import fast3r_core.inference, fast3r_core.weights, fast3r_core.images, fast3r_core.cli",
        "import fast3r_core.poses, fast3r_core.metrics, fast3r_core.result, fast3r_core.export",
        "import fast3r_core.pipeline",
    ],
)
def test_core_never_imports_gui_toolkits(code):
    loaded = _loaded_after(code)
    assert not loaded & set(GUI_MODULES), f"{code} loaded {loaded & set(GUI_MODULES)}"


@pytest.mark.parametrize(
    "code",
    [
        "import fast3r_core",
        "import fast3r_core.forward_memory, fast3r_core.model",
        "import fast3r_core.result, fast3r_core.export",
        "import fast3r_core.weights",
        "import fast3r_core.preflight, fast3r_core.logs, fast3r_core.sky",
    ],
)
def test_light_modules_do_not_import_torch(code):
    """The GUI imports these at start-up; torch is loaded later, on the worker thread."""
    assert "torch" not in _loaded_after(code)


def test_run_options_module_is_light():
    """The GUI thread builds a run's ReconstructOptions: their module loads no numpy/cv2/scipy/torch."""
    heavy = {"numpy", "cv2", "scipy", "torch"}
    assert not _loaded_after("import fast3r_core.options") & heavy
    assert not _loaded_after("from fast3r_core import ReconstructOptions") & heavy


def test_model_load_and_run_import_neither_dynamo_nor_sympy(tmp_path):
    """Loading a model (built on the meta device) and a run never import torch._dynamo or sympy: the
    first costs as much again as ``import torch``, the second (pulled in by ``Module.to_empty`` on meta
    tensors) 0.2 s, both on the way to the app's first result (issue 17.8b)."""
    script = (
        "import sys, logging\n"
        "from pathlib import Path\n"
        "from tests.tiny import make_tiny_model, write_views\n"
        "from fast3r_core.weights import load_model\n"
        "from fast3r_core.pipeline import reconstruct\n"
        "from fast3r_core.options import ReconstructOptions\n"
        f"model = load_model(make_tiny_model(Path({str(tmp_path / 'model')!r})), 'cpu')\n"
        "after_load = sorted({'torch._dynamo', 'sympy'} & set(sys.modules))\n"
        f"write_views(Path({str(tmp_path / 'views')!r}), 3)\n"
        f"reconstruct([{str(tmp_path / 'views')!r}], model, ReconstructOptions(size=224))\n"
        "print(after_load, sorted({'torch._dynamo', 'sympy'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[] []"


def test_the_default_run_path_does_not_import_scipy():
    """scipy.optimize costs ~0.3 s to import: a default run (pipeline, poses with one shared focal) never
    needs it, so it is imported only by the per-view focal refinement (issue 17.8b)."""
    assert "scipy" not in _loaded_after("import fast3r_core.pipeline, fast3r_core.poses")
