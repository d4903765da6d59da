"""Start Fast3R Studio: ``python main.py [INPUT] [--model NAME] [--size 512|224] [--screenshot FILE]``.

Also the ``fast3r-studio`` script and ``python -m app``. With INPUT (a folder, images, a video or a .f3r
project) the window opens it and starts the reconstruction at once. Without INPUT and without
``--model``, the first bundled sample scene opens with the bundled demo model when both are installed;
otherwise the empty window shows where to drop photos.

``--screenshot FILE`` saves a PNG of the whole window once the result is shown (or of the error dialog,
then the exit code is 1) and quits: for tests and the documentation.

torch is never imported here: the model loads on the worker thread, and when there is something to
open it starts loading there before the window is built (``FAST3R_PRELOAD=0`` turns that off, for
bench/startup.py's A/B).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

log = logging.getLogger("app")

#: Exit codes of --screenshot runs.
EXIT_OK, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fast3r-studio",
        description="Fast3R Studio: unposed photos to a 3D point cloud and camera poses.",
    )
    p.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="a folder, image files, a video or a .f3r project"
    )
    p.add_argument("--model", help="registered model name (demo, fast3r-vitl-512), folder or weights file")
    p.add_argument("--size", type=int, choices=(512, 224), help="model resolution (default: last used, 512)")
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda", "mps"), help="device (default: last used, auto)"
    )
    p.add_argument(
        "--screenshot", metavar="FILE", help="save a PNG of the window once the result is shown, quit"
    )
    p.add_argument(
        "--screenshot-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="give up after S seconds (default 600)",
    )
    p.add_argument("--theme", choices=("dark", "light"), help="colour theme (default: last used, dark)")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output on stderr (-vv: debug)"
    )
    p.add_argument("--version", action="version", version=_version())
    return p


def _version() -> str:
    from fast3r_core import __version__

    return f"fast3r-studio {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; returns the exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)

    from app.logging_setup import install_excepthook, setup_logging

    setup = setup_logging(args.verbose)
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app import APP_NAME, ORG_NAME

    QApplication.setApplicationName(APP_NAME)
    QApplication.setOrganizationName(ORG_NAME)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)

    from app.viewer import use_vispy_backend

    use_vispy_backend()  # VisPy on PySide6, its logger at WARNING

    from app.controller import Controller, first_sample
    from app.main_window import MainWindow
    from app.settings import Settings
    from app.state import ViewerState
    from app.theme import apply_theme
    from fast3r_core import is_cached, resources_dir

    icon = resources_dir() / "icons" / "fast3r-studio.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    settings = Settings()
    apply_theme(app, args.theme or settings.get("theme"))
    if args.theme:
        settings.set("theme", args.theme)

    screenshot = args.screenshot is not None
    state = ViewerState()
    controller = Controller(state, settings)
    if args.model:
        model = args.model
        if os.path.exists(os.path.expanduser(model)):
            model = str(Path(model).expanduser().resolve())
        controller.set_model(model)
    if args.size:
        controller.set_size(args.size)
    if args.device:
        controller.set_device(args.device)
    inputs = [str(Path(p).expanduser()) for p in args.inputs]
    if not inputs and not args.model:
        sample = first_sample()
        if sample is not None and is_cached("demo"):
            controller.set_model("demo")
            inputs = [str(sample)]
            log.info("no input given: opening the sample %s with the demo model", sample)

    if inputs and _model_is_local(controller.model) and os.environ.get("FAST3R_PRELOAD") != "0":
        # import torch and load the weights on the worker thread while the window is built and shown:
        # the run that follows finds the model loaded (never a download: that needs the window's UI)
        controller.preload_model()
    try:
        window = MainWindow(controller, settings, interactive=not screenshot)
    except Exception as exc:  # a bug: say so, stop the worker thread, exit non-zero
        log.exception("the main window could not be built")
        controller.shutdown()
        if not screenshot:
            where = setup.where()
            QMessageBox.critical(
                None, "Fast3R Studio cannot start", f"{type(exc).__name__}: {exc}\n\n{where}"
            )
        setup.close()
        return EXIT_ERROR

    def show_error(title: str, text: str) -> None:
        QMessageBox.critical(window if window.isVisible() else None, title, text)

    install_excepthook(show_error)
    window.show()
    _log_when_exposed(window)
    _log_first_result(window)

    exit_code = {"code": EXIT_OK}
    if screenshot:
        _arm_screenshot(window, args.screenshot, args.screenshot_timeout, exit_code, bool(inputs))
    if inputs:
        # after the event loop starts, so that the window is painted first
        QTimer.singleShot(0, lambda: window.open_paths(inputs))
    else:
        # import torch on the worker thread while the user chooses photos: the first run starts sooner
        QTimer.singleShot(1000, controller.host.warm_up)
    QTimer.singleShot(300, _import_light_modules)  # what the first drop needs, before the user drops

    code = app.exec()
    setup.close()
    return exit_code["code"] if screenshot else int(code)


def _log_when_exposed(window: object) -> None:
    """Log, once, how long after the process started the window became visible (bench/startup.py reads it)."""
    import time

    import psutil
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QWidget

    assert isinstance(window, QWidget)
    handle = window.windowHandle()
    started = psutil.Process().create_time()

    class _ExposeWatcher(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Expose and handle.isExposed():
                log.info("window visible %.2f s after launch", time.time() - started)
                handle.removeEventFilter(self)
            return False

    if handle is None:  # not a native window (should not happen after show())
        return
    watcher = _ExposeWatcher(window)  # parented: lives as long as the window
    handle.installEventFilter(watcher)


def _model_is_local(model: str) -> bool:
    """The model can be loaded without a download: a local folder or file, or a cached registered one."""
    from fast3r_core import MODELS, is_cached

    if os.path.exists(os.path.expanduser(model)):
        return True
    try:
        return model in MODELS and is_cached(model)
    except Exception:  # a broken cache: the run will say what is wrong
        return False


def _log_first_result(window: object) -> None:
    """Log, once, how long after the process started the first result was shown (bench/startup.py)."""
    import time

    import psutil

    from app.main_window import MainWindow

    assert isinstance(window, MainWindow)
    started = psutil.Process().create_time()
    done = {"logged": False}

    def shown(_rec: object) -> None:
        if not done["logged"]:
            done["logged"] = True
            log.info("first result shown %.2f s after launch", time.time() - started)

    window.controller.result_ready.connect(shown)


def _import_light_modules() -> None:
    """Import, on the GUI thread while it is idle, the small modules the first drop and run use."""
    import psutil  # noqa: F401  (the memory estimate)
    from PIL import Image

    import fast3r_core

    fast3r_core.import_run_modules()
    Image.init()  # the image format plugins (headers are read for the memory estimate)


def _arm_screenshot(
    window: object, path: str, timeout: float, exit_code: dict[str, int], has_input: bool
) -> None:
    """Save the window to ``path`` once a result (or an error dialog) is shown, then quit."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    assert isinstance(window, MainWindow)
    done = {"saved": False}

    def save(code: int) -> None:
        if done["saved"]:
            return
        done["saved"] = True
        QApplication.processEvents()
        ok = window.save_window_screenshot(path)
        exit_code["code"] = code if ok else EXIT_ERROR
        window.close()
        QApplication.quit()

    # let the viewport draw the new scene (a few frames) before grabbing
    window.controller.result_ready.connect(lambda _rec: QTimer.singleShot(1500, lambda: save(EXIT_OK)))
    window.controller.failed.connect(lambda _info: QTimer.singleShot(800, lambda: save(EXIT_ERROR)))
    if not has_input:
        QTimer.singleShot(1500, lambda: save(EXIT_OK))

    def give_up() -> None:
        log.error("--screenshot: no result after %.0f s", timeout)
        save(EXIT_TIMEOUT)

    QTimer.singleShot(round(timeout * 1000), give_up)


if __name__ == "__main__":
    sys.exit(main())
