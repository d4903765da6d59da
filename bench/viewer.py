"""Benchmark of the viewport on a synthetic ~5-million-point reconstruction (software OpenGL is fine).

Measures, with a real SceneViewer in a window:

* upload: ``state.set_reconstruction`` (pack colours, upload every point once, frusta, fit).
* prefix path: ``state.top_percent = p`` until the new draw count is set and the GL command queue
  is flushed (``glFinish``), the confidence slider's cost without view/sky masks (target < 50 ms).
* masked path: hiding one view (computes and uploads the index buffer of the surviving points), then
  slider moves while that mask is active (a count change again).
* frame time while rotating (azimuth steps, one ``canvas.render()`` each: a synchronous frame at the
  window size including the read-back, so slightly pessimistic) with the level
  of detail on (the viewer's default budget for this renderer, 150 k on llvmpipe; target < 150 ms),
  with a 300 k budget, and off (all points).
* resting frames (the camera at rest, after the idle timer): on a software renderer capped at
  ``idle_budget`` points (:data:`app.viewer.lod.SOFTWARE_IDLE_BUDGET`), against every point (the
  behaviour before issue 17.9); then slider moves at rest under the cap (index uploads counted: the
  subsets are cached, so a slider move is a count change).
* a 4096x4096 fp32 matmul (GFLOP/s), because this host's speed swings from run to run.

Run under X (``xvfb-run -a -s "-screen 0 1280x1024x24" python bench/viewer.py`` with
``QT_QPA_PLATFORM=xcb``); writes bench/results/viewer.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._probe import matmul_gflops, peak_rss_gib, write_json  # noqa: E402


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def _frames(times: list[float], drawn: int, **extra: int) -> dict[str, Any]:
    """Figures of a series of frames: median and max in ms, points drawn, and ``extra``."""
    return {
        **extra,
        "drawn": drawn,
        "frame_ms_median": _ms(statistics.median(times)),
        "frame_ms_max": _ms(max(times)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--views", type=int, default=19, help="512x512 views (19 -> 4.98 M points)")
    parser.add_argument("--frames", type=int, default=12, help="frames per rotation measurement")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 720), help="window size")
    parser.add_argument("--out", default="viewer", help="name of the JSON in bench/results")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from vispy import gloo
    from vispy.gloo import gl

    from app.state import ViewerState
    from app.viewer import SceneViewer
    from app.viewer import scene_viewer as scene_viewer_module
    from tests.core.recon_factory import make_synthetic_reconstruction

    results: dict[str, Any] = {
        "host": {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}
    }
    results["matmul_4096_fp32_gflops"] = round(matmul_gflops(), 1)
    print(f"matmul 4096 fp32: {results['matmul_4096_fp32_gflops']} GFLOP/s")

    rec = make_synthetic_reconstruction(original_sizes=[(1024, 1024)] * args.views, long_side=512, seed=0)
    t = time.perf_counter()
    n = len(rec.global_points)
    results["n_points"] = n
    results["point_set_build_s"] = round(time.perf_counter() - t, 3)

    state = ViewerState()
    viewer = SceneViewer(state)
    viewer.native.resize(*args.size)
    viewer.native.show()
    for _ in range(10):
        app.processEvents()
    results["gl_renderer"] = str(gl.glGetParameter(gl.GL_RENDERER))
    print(f"{n:,} points, renderer {results['gl_renderer']}")

    def settle() -> None:
        viewer.canvas.context.flush_commands()
        gl.glFinish()

    settle()
    t = time.perf_counter()
    state.set_reconstruction(rec)
    results["set_reconstruction_ms"] = _ms(time.perf_counter() - t)
    viewer._on_idle()  # what the idle timer does: full density
    t = time.perf_counter()
    viewer.canvas.render()  # the first draw uploads the vertex buffers
    settle()
    results["first_frame_ms"] = _ms(time.perf_counter() - t)
    print(
        f"set_reconstruction (pack + queue all points): {results['set_reconstruction_ms']} ms, "
        f"first frame (upload + draw 5 M): {results['first_frame_ms']} ms"
    )

    def slider_times(values: list[float]) -> list[float]:
        out = []
        for p in values:
            settle()  # do not count the previous frame's rasterisation
            t0 = time.perf_counter()
            state.top_percent = float(p)
            settle()
            out.append(time.perf_counter() - t0)
        return out

    percents = [float(p) for p in np.linspace(95, 10, 18)]
    prefix = slider_times(percents)
    results["slider_prefix_ms"] = {"median": _ms(statistics.median(prefix)), "max": _ms(max(prefix))}
    print(f"slider, prefix path (count only): {results['slider_prefix_ms']}")

    viewer._on_idle()  # as after the idle timer: full density, no level of detail
    hide = []
    for view in [
        v for v in (3, 7, 11) if v < rec.n_views
    ]:  # each hide computes the surviving points' index and uploads it
        state.set_visible_views(np.arange(rec.n_views) != 99)
        settle()
        t = time.perf_counter()
        state.set_view_visible(view, False)
        settle()
        hide.append(time.perf_counter() - t)
    results["hide_view_mask_upload_ms"] = {"median": _ms(statistics.median(hide)), "max": _ms(max(hide))}
    masked = slider_times(percents[::-1])
    results["slider_masked_ms"] = {"median": _ms(statistics.median(masked)), "max": _ms(max(masked))}
    print(
        f"hide a view (mask index + upload): {results['hide_view_mask_upload_ms']} ms; "
        f"slider with the mask: {results['slider_masked_ms']}"
    )
    state.set_visible_views(np.ones(rec.n_views, bool))
    state.top_percent = 100.0
    settle()

    def rotation_frames(budget: int) -> tuple[list[float], int]:
        viewer.point_budget = budget
        settle()
        viewer.idle_ms = 10_000  # stay "moving" for the whole measurement
        cam = viewer.camera
        times, drawn = [], 0
        for i in range(args.frames + 2):
            cam.azimuth = cam.azimuth + 3.0
            t0 = time.perf_counter()
            viewer.canvas.render()  # one full frame at the window size, read back (synchronous)
            if i >= 2:  # the first frames build/upload the subset index
                times.append(time.perf_counter() - t0)
            drawn = viewer.drawn_count
        viewer._on_idle()  # back to full density (what the idle timer does)
        viewer.idle_ms = 200
        return times, drawn

    results["default_budget"] = viewer.point_budget
    for budget in sorted({viewer.point_budget, 300_000}):
        lod_times, lod_drawn = rotation_frames(budget)
        key = "rotate_lod_on" if budget == results["default_budget"] else f"rotate_lod_{budget}"
        results[key] = _frames(lod_times, lod_drawn, budget=budget)
        print(f"rotating, LOD budget {budget}: {results[key]}")
    idle_default = viewer.idle_budget
    viewer.idle_budget = 0  # LOD off: every point, also in the frames after the idle timer
    full_times, full_drawn = rotation_frames(0)
    viewer.point_budget = results["default_budget"]
    viewer.idle_budget = idle_default
    results["rotate_lod_off"] = {
        "drawn": full_drawn,
        "frame_ms_median": _ms(statistics.median(full_times)),
        "frame_ms_max": _ms(max(full_times)),
    }
    print(f"rotating, LOD off: {results['rotate_lod_off']}")

    # -- resting frames (issue 17.9): what a pause in a drag, Reset Camera or a slider stop draws ------
    def resting_frames(idle_budget: int) -> tuple[list[float], int]:
        viewer.idle_budget = idle_budget
        times, drawn = [], 0
        for i in range(max(3, args.frames // 3) + 1):
            viewer.camera.azimuth = viewer.camera.azimuth + 3.0
            viewer._on_idle()  # the camera rests: what the idle timer does
            settle()
            t0 = time.perf_counter()
            viewer.canvas.render()
            if i:  # the first frame builds/uploads the capped subset's index
                times.append(time.perf_counter() - t0)
            drawn = viewer.drawn_count
        return times, drawn

    software_idle = viewer.idle_budget
    for label, budget in (("resting_uncapped", 0), ("resting_capped", software_idle)):
        if label == "resting_capped" and not budget:
            continue  # a GPU: the resting frame draws every point
        rest, rest_drawn = resting_frames(budget)
        results[label] = _frames(rest, rest_drawn, idle_budget=budget)
        print(f"resting frame, idle budget {budget or 'none'}: {results[label]}")

    # slider moves under the caps (each marks the view as moving): a count change of a cached subset
    uploads = 0
    real_index = gloo.IndexBuffer

    def counting_index(*a: Any, **kw: Any) -> Any:
        nonlocal uploads
        uploads += 1
        return real_index(*a, **kw)

    scene_viewer_module.gloo.IndexBuffer = counting_index  # type: ignore[misc]
    try:
        viewer.idle_ms = 10_000_000  # a slider move marks the view as moving: keep it there
        for sweep in ("first", "second"):  # the first builds each level's subset once
            uploads = 0
            capped = slider_times(percents)
            results[f"slider_while_capped_{sweep}_sweep_ms"] = {
                "median": _ms(statistics.median(capped)),
                "max": _ms(max(capped)),
                "index_uploads": uploads,
            }
            print(f"slider moves, capped, {sweep} sweep: {results[f'slider_while_capped_{sweep}_sweep_ms']}")
    finally:
        scene_viewer_module.gloo.IndexBuffer = real_index  # type: ignore[misc]
        viewer.idle_ms = 200
    state.top_percent = 100.0
    viewer._on_idle()

    t = time.perf_counter()
    img = viewer.render_image(1920, 1080)
    results["render_image_1920x1080_ms"] = _ms(time.perf_counter() - t)
    results["render_image_nonblank"] = bool((img[..., :3] != img[0, 0, :3]).any())
    print(f"render_image 1920x1080 (full density): {results['render_image_1920x1080_ms']} ms")

    results["window"] = list(args.size)
    results["peak_rss_gib"] = round(peak_rss_gib(), 2)
    viewer.close()
    path = write_json(args.out, results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
