"""Start Fast3R Studio: ``python main.py [INPUT] [--model NAME] [--size 512|224] [--screenshot FILE]``.

Also the ``fast3r-studio`` script and ``python -m app``. With INPUT (a folder, images, a video or a .f3r
project) the window opens it and starts the reconstruction at once. Without INPUT and without
``--model``, the first bundled sample scene opens with the bundled demo model when both are installed;
otherwise the empty window shows where to drop photos.

``--screenshot FILE`` saves a PNG of the whole window once the result is shown (or of the error dialog,
then the exit code is 1) and quits: for tests and the documentation.

torch is never imported here: the model loads on the worker thread. When there is something to open,
torch's libraries are mapped there while the window is built, and torch is imported and the model
loaded there as soon as the window is on screen, the run queued right behind (``FAST3R_PRELOAD=0``
turns the preload off, ``=early`` starts it before the window is built: bench/startup.py's A/B).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
    settings.start_session()  # a masks folder / intrinsics file chosen last time was for those photos
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

    # the model loads on the worker thread in parallel with the window (never a download: that needs the
    # window's UI). Order: torch's libraries are mapped at once (no GIL held: the window is built on the
    # other core meanwhile); torch is imported and the weights loaded once the window is on screen (the
    # import holds the GIL for about a second, which would delay the window); the sample's run is
    # queued right behind, so that it starts when both are ready. FAST3R_PRELOAD=0: no preload;
    # =early: the whole load starts before the window is built (bench/startup.py's A/B).
    preload_mode = os.environ.get("FAST3R_PRELOAD", "1")
    preload = bool(inputs) and preload_mode != "0" and _model_is_local(controller.model)
    if preload:
        controller.host.prefetch()
        if preload_mode == "early":
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
    _log_first_result(window)

    exit_code = {"code": EXIT_OK}
    if screenshot:
        _arm_screenshot(window, args.screenshot, args.screenshot_timeout, exit_code, bool(inputs))

    def on_screen() -> None:
        if preload and preload_mode != "early":
            controller.preload_model()
        if inputs:
            window.open_paths(inputs)
        else:
            # import torch on the worker thread while the user chooses photos: the first run starts sooner
            QTimer.singleShot(1000, controller.host.warm_up)

    _when_exposed(window, on_screen)
    QTimer.singleShot(300, _import_light_modules)  # what the first drop needs, before the user drops

    code = app.exec()
    return _finish(controller, setup, exit_code["code"] if screenshot else int(code))


def _finish(controller: Any, setup: Any, code: int) -> int:
    """Stop the worker after the event loop and return ``code``; when the worker does not stop within
    its bound (it has not noticed its cancel), end the process at once with ``code`` instead of
    working on with no window (a QThread destroyed while it runs would abort the interpreter anyway)."""
    controller.shutdown()  # at once when the window's close already stopped the worker
    if controller.worker_running:
        log.error("the worker is still computing after the window closed: exiting without it")
        setup.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    setup.close()
    return code


#: Start anyway when the window has not been exposed this long after show() (ms): a window shown
#: minimized or on a platform that sends no Expose must still open its inputs.
EXPOSE_FALLBACK_MS = 3000


def _when_exposed(window: object, then: Callable[[], None]) -> None:
    """Call ``then`` once, right after the window first appears on screen (its first Expose has been
    handled, so it is painted), or after :data:`EXPOSE_FALLBACK_MS` at the latest. Logs how long after
    the process started the window became visible (bench/startup.py reads it)."""
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QWidget

    from app.logging_setup import since_launch

    assert isinstance(window, QWidget)
    handle = window.windowHandle()
    done = {"called": False}

    def go() -> None:
        if not done["called"]:
            done["called"] = True
            then()

    class _ExposeWatcher(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Expose and handle.isExposed():
                log.info("window visible %.2f s after launch", since_launch())
                handle.removeEventFilter(self)
                QTimer.singleShot(0, go)  # after this Expose has been handled: the window is painted
            return False

    QTimer.singleShot(EXPOSE_FALLBACK_MS, go)
    if handle is None:  # not a native window (should not happen after show())
        QTimer.singleShot(0, go)
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
    """Log, once, how long after the process started the first result was handed to the viewer, and
    when the viewer then finished its first frame of it (bench/startup.py reads both)."""
    from app.logging_setup import since_launch
    from app.main_window import MainWindow

    assert isinstance(window, MainWindow)
    done = {"shown": False, "drawn": False}
    canvas = getattr(window.viewer, "canvas", None)  # the VisPy canvas (not in tests' stand-in viewers)

    def drawn(_event: object = None) -> None:
        if not done["drawn"]:
            done["drawn"] = True
            log.info("first frame with the result drawn %.2f s after launch", since_launch())

    def shown(_rec: object) -> None:
        if done["shown"]:
            return
        done["shown"] = True
        log.info("first result shown %.2f s after launch", since_launch())
        if canvas is not None:
            canvas.events.draw.connect(drawn, position="last")  # after the scene has drawn itself

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
