"""Make docs/screenshot-crop.png and docs/screenshot-lasso.png: the crop box and a lasso selection on the
first bundled sample scene, reconstructed by the demo model, in the whole window.

Run under X: ``QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" python -m
tests.gl.make_edit_screenshots [--out docs]``. The crop is a real drag of the +x face handle and the
lasso real mouse events on the canvas (as in tests/app/test_crop_lasso.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger("make_edit_screenshots")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--width", type=int, default=1024, help="width of the saved PNGs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tmp = Path(tempfile.mkdtemp(prefix="fast3r-shots-"))
    for key in ("FAST3R_CONFIG_DIR", "FAST3R_LOG_DIR"):
        os.environ[key] = str(tmp / key.lower())
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from app.controller import Controller, first_sample
    from app.main_window import MainWindow
    from app.settings import Settings
    from app.state import ViewerState
    from app.theme import apply_theme
    from app.viewer.crop_gizmo import face_handles
    from tests.app.test_crop_lasso import _drag

    settings = Settings()
    apply_theme(app, "dark")
    state = ViewerState()
    controller = Controller(state, settings)
    controller.set_model("demo")
    win = MainWindow(controller, settings, interactive=False)
    win.resize(1280, 800)
    win.show()
    sample = first_sample()
    assert sample is not None, "no bundled sample"
    loop = QEventLoop()
    controller.result_ready.connect(lambda _rec: QTimer.singleShot(500, loop.quit))
    QTimer.singleShot(0, lambda: win.open_paths([str(sample)]))
    QTimer.singleShot(600_000, loop.quit)
    loop.exec()
    if state.reconstruction is None:
        log.error("no result")
        return 1

    def settle(ms: int = 400) -> None:
        end = QEventLoop()
        QTimer.singleShot(ms, end.quit)
        end.exec()

    def save(name: str) -> None:
        img = win.grab_window().scaledToWidth(args.width, Qt.TransformationMode.SmoothTransformation)
        path = args.out / name
        img.save(str(path), "PNG")
        # 256 colours: a third of the bytes, no visible loss on a dark user interface
        Image.open(path).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)
        log.info("saved %s (%d KiB)", path, path.stat().st_size // 1024)

    viewer = win.viewer
    canvas = viewer.native
    tools = win.crop_select
    win.demo_note.hide()  # the notes about the demo model and its poses: not what these pictures show
    win.banner.clear()
    settle()

    # crop: drag two face handles inwards (real mouse events), each by a share of the box on screen
    tools.set_tool("crop")
    # first the numeric box (Tools > Crop Box Numeric): the middle 96 % of the points on each axis,
    # which leaves out the demo model's stray points; then frame what is left
    ps = state.reconstruction.global_points
    lo, hi = np.percentile(ps.xyz[: state.prefix_count()], [2, 98], axis=0)
    dlg = tools.open_crop_dialog()
    assert dlg is not None
    dlg.set_values(tuple(lo), tuple(hi))
    dlg.accept()
    viewer.fit_to_scene()
    pose = viewer.current_pose()  # type: ignore[attr-defined]
    pose.distance *= 1.25  # step back: the whole box and its handles in the picture
    viewer._set_pose(pose)  # type: ignore[attr-defined]
    settle()
    # then drag the top face (-y: OpenCV axes, y down) down through the purple background
    face = 2
    box = viewer._crop_select.gizmo.box  # type: ignore[attr-defined]
    M = viewer.screen_matrix()
    h = np.c_[face_handles(box)[0], np.ones(6)] @ M.T
    xy = h[:, :2] / h[:, 3:4]
    start, opposite = xy[face], xy[face ^ 1]
    _drag(canvas, np.round([start + (opposite - start) * t for t in np.linspace(0.0, 0.3, 8)]))
    settle()
    save("screenshot-crop.png")
    win.edits_session.undo_stack.undo()
    tools.set_tool("navigate")

    # lasso: a loop around the middle of the view; the outline is shown again for the picture
    tools.set_tool("lasso")
    w, hgt = canvas.width(), canvas.height()
    a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    loop_path = np.c_[
        w * (0.47 + 0.1 * np.cos(a)), hgt * (0.5 + 0.13 * np.sin(a) * (1 + 0.25 * np.cos(2 * a)))
    ]
    _drag(canvas, np.vstack([loop_path, loop_path[:1]]))
    viewer._crop_select._lasso.show(loop_path)  # type: ignore[attr-defined]
    win.statusBar().showMessage(
        f"{tools.selected_ids.size:,} points selected (Del deletes, Ctrl+Shift+K keeps)"
    )
    viewer.canvas.update()  # type: ignore[attr-defined]
    settle()
    save("screenshot-lasso.png")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
