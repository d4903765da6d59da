"""Benchmark of lasso selection at full density on a ~2-million-point reconstruction (issue 18).

With a real SceneViewer in a window (software OpenGL is fine) and the app's CropSelectTools:

* candidates: every shown point (confidence prefix, views, edits' keep mask) in the edited world;
* projection of all candidates with the viewer's 4x4 screen matrix (:func:`app.selection.project_to_screen`),
  against VisPy's own transform chain (``tr.map``, what picking used) for time and agreement;
* the core's ``lasso_select`` on a 64-vertex polygon covering about a third of the view;
* the whole ``CropSelectTools.select_polygon`` (candidates + projection + test + highlight upload);
* delete: the push, the viewer's new keep mask and index buffer (``edit_points`` over every point).

Run under X (``xvfb-run -a -s "-screen 0 1280x1024x24" python bench/lasso.py`` with
``QT_QPA_PLATFORM=xcb``); writes bench/results/lasso.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._probe import matmul_gflops, write_json  # noqa: E402


def _best_ms(fn: Any, repeat: int) -> tuple[float, Any]:
    """(median ms, last result) of ``repeat`` calls."""
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000.0, 1), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--views", type=int, default=8, help="512x512 views (8 -> 2.1 M points)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default="lasso", help="name of the JSON in bench/results")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication.instance() or QApplication([])
    from app.crop_select import CropSelectTools
    from app.edits_session import EditsSession
    from app.selection import project_to_screen, select_in_polygon, selectable_points
    from app.state import ViewerState
    from app.viewer import SceneViewer
    from fast3r_core.edits import lasso_select
    from tests.core.recon_factory import make_synthetic_reconstruction

    results: dict[str, Any] = {"matmul_4096_fp32_gflops": round(matmul_gflops(), 1)}
    rec = make_synthetic_reconstruction(original_sizes=[(1024, 1024)] * args.views, long_side=512, seed=0)
    state = ViewerState()
    viewer = SceneViewer(state)
    viewer.native.resize(1280, 720)
    viewer.native.show()
    host = QWidget()
    session = EditsSession()
    tools = CropSelectTools(state, session, viewer, host)
    for _ in range(10):
        app.processEvents()
    state.set_reconstruction(rec)
    state.top_percent = 100.0
    app.processEvents()
    n = len(rec.global_points)
    results["n_points"] = n
    print(f"{n:,} points, matmul {results['matmul_4096_fp32_gflops']} GFLOP/s")

    results["candidates_ms"], cand = _best_ms(
        lambda: selectable_points(state, session.edits, tools._points), args.repeat
    )
    M = viewer.screen_matrix()
    results["project_matrix_ms"], (xy, _) = _best_ms(lambda: project_to_screen(M, cand.xyz), args.repeat)
    tr = viewer._points.get_transform("visual", "canvas")
    results["project_vispy_map_ms"], h = _best_ms(lambda: np.asarray(tr.map(cand.xyz)), 2)
    ref = h[:, :2] / h[:, 3:4]
    results["max_px_difference_matrix_vs_vispy"] = float(np.abs(ref - xy).max())

    w, hgt = viewer.canvas.size
    a = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    poly = np.c_[w / 2 + 0.12 * w * np.cos(a), hgt / 2 + 0.15 * hgt * np.sin(a) * (1 + 0.2 * np.cos(3 * a))]
    results["lasso_select_ms"], inside = _best_ms(lambda: lasso_select(xy, poly), args.repeat)
    results["selected"] = int(inside.sum())
    results["select_in_polygon_ms"], _ = _best_ms(lambda: select_in_polygon(cand, M, poly), args.repeat)
    results["tools_select_polygon_ms"], ids = _best_ms(lambda: tools.select_polygon(poly), args.repeat)
    t = time.perf_counter()
    tools.delete_selected()
    results["delete_and_viewer_update_ms"] = round((time.perf_counter() - t) * 1000.0, 1)
    assert viewer.shown_count == n - len(ids)
    for k, v in results.items():
        print(f"{k}: {v}")
    write_json(args.out, results)
    viewer.close()


if __name__ == "__main__":
    main()
