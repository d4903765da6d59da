"""Fixtures of the app tests: isolated settings/logs/cache, a tiny model, sample images, a stand-in viewer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.tiny import make_tiny_model, write_views


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings, logs, model cache and video frames inside the test's temporary folder."""
    monkeypatch.setenv("FAST3R_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("FAST3R_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("FAST3R_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight Fast3R folder (config.json + model.safetensors)."""
    return make_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 4 small PNGs."""
    folder = tmp_path_factory.mktemp("images") / "scene"
    write_views(folder, 4)
    return folder


@pytest.fixture
def synthetic_rec(tmp_path: Path):
    """A known synthetic Reconstruction with real image files (no model)."""
    from tests.core.recon_factory import make_synthetic_reconstruction

    return make_synthetic_reconstruction(4, image_dir=tmp_path / "photos")


class FakeViewer:
    """Stand-in of app.viewer.SceneViewer for offscreen tests (no OpenGL): records calls.

    Implements :class:`app.viewer.protocol.Viewer` and nothing more (``calls`` aside):
    ``tests/app/test_viewer_protocol.py`` fails when the two part ways, so that no test passes against
    a method the real viewer lacks.
    """

    #: Public members that exist for the tests only (not part of the viewer protocol).
    TEST_ONLY = frozenset({"calls", "TEST_ONLY"})

    def __init__(self, state, parent=None) -> None:
        from PySide6.QtCore import QObject, Signal
        from PySide6.QtWidgets import QWidget

        class _Sig(QObject):
            view_clicked = Signal(int)
            point_clicked = Signal(object)
            selection_drawn = Signal(object)
            crop_box_dragged = Signal(object)

        self._sig = _Sig()
        self.view_clicked = self._sig.view_clicked
        self.point_clicked = self._sig.point_clicked
        self.selection_drawn = self._sig.selection_drawn
        self.crop_box_dragged = self._sig.crop_box_dragged
        self._state = state
        self._native = QWidget(parent)
        self.calls: list[tuple] = []

    @property
    def native(self):
        return self._native

    @property
    def idle_budget(self) -> int:
        return 0  # every shown point, as on a GPU

    def reset_view(self) -> None:
        self.calls.append(("reset_view", (), {}))

    def fit_to_scene(self) -> None:
        self.calls.append(("fit_to_scene", (), {}))

    def set_camera_mode(self, mode: str) -> None:
        self.calls.append(("set_camera_mode", (mode,), {}))

    def fly_to_view(self, view: int, duration_ms: int = 600) -> None:
        # recorded as the window calls it (the default duration left out)
        kwargs = {} if duration_ms == 600 else {"duration_ms": duration_ms}
        self.calls.append(("fly_to_view", (view,), kwargs))

    def render_image(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        self.calls.append(("render_image", (width, height), {}))
        img = np.zeros((height or 120, width or 160, 4), dtype=np.uint8)
        img[..., 0] = 200
        img[..., 3] = 255
        return img

    def render_turntable(self, path, *, frames=60, fps=20, size=(1280, 720), progress=None) -> None:
        self._write_anim(path, frames, size, progress)

    def render_playback(self, path, *, fps=2, size=(1280, 720), progress=None) -> None:
        n = self._state.reconstruction.n_views if self._state.reconstruction is not None else 1
        self._write_anim(path, n, size, progress)

    def _write_anim(self, path, frames, size, progress) -> None:
        import imageio.v3 as iio

        w, h = size
        stack = np.zeros((frames, h, w, 3), dtype=np.uint8)
        for i in range(frames):
            stack[i, :, : w * (i + 1) // frames, 1] = 255
            if progress is not None:
                progress(i + 1, frames)
        iio.imwrite(path, stack, extension=Path(path).suffix)

    def set_edits(self, edits) -> None:
        self.calls.append(("set_edits", (edits,), {}))

    def set_pick_mode(self, on: bool) -> None:
        self.calls.append(("set_pick_mode", (on,), {}))

    def set_overlay(self, overlay) -> None:
        self.calls.append(("set_overlay", (overlay,), {}))

    def set_edit_tool(self, tool: str) -> None:
        self.calls.append(("set_edit_tool", (tool,), {}))

    def set_crop_gizmo(self, box) -> None:
        self.calls.append(("set_crop_gizmo", (box,), {}))

    def show_selection(self, xyz: np.ndarray, rgb: np.ndarray | None = None) -> None:
        self.calls.append(("show_selection", (np.asarray(xyz).copy(),), {}))

    def screen_matrix(self) -> np.ndarray:
        """A fixed orthographic view down the z axis: pixel = (100 X + 200, 100 Y + 150)."""
        return np.array([[100.0, 0, 0, 200], [0, 100.0, 0, 150], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])

    def close(self) -> None:
        self.calls.append(("close", (), {}))


@pytest.fixture
def make_window(qtbot, tiny_model: Path) -> Iterator[Callable[..., object]]:
    """Factory of hidden MainWindows with a FakeViewer and the tiny model chosen (closed at teardown)."""
    from app.main_window import MainWindow

    made: list[MainWindow] = []

    def factory(**kwargs: object) -> MainWindow:
        kwargs.setdefault("viewer_factory", FakeViewer)
        kwargs.setdefault("interactive", False)
        win = MainWindow(**kwargs)
        win.controller.set_model(str(tiny_model))
        win.controller.set_size(224)
        qtbot.addWidget(win)
        made.append(win)
        return win

    yield factory
    for win in made:
        win.controller.shutdown()
