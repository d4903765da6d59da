"""Widgets of the main window; each one reads and writes an :class:`app.state.ViewerState`."""

from __future__ import annotations

from app.widgets.banner import Banner
from app.widgets.confidence_panel import ConfidencePanel
from app.widgets.demo_note import DemoNote
from app.widgets.display_panel import DisplayPanel
from app.widgets.drop_hint import DropHint
from app.widgets.image_preview import ImagePreview
from app.widgets.model_manager import ModelManagerDialog, ask_license
from app.widgets.playback import PlaybackBar
from app.widgets.progress_panel import ProgressPanel
from app.widgets.render_dialog import RenderDialog, RenderOptions
from app.widgets.run_options import RunOptionsDialog
from app.widgets.views_dock import ViewsPanel

__all__ = [
    "Banner",
    "ConfidencePanel",
    "DemoNote",
    "DisplayPanel",
    "DropHint",
    "ImagePreview",
    "ModelManagerDialog",
    "PlaybackBar",
    "ProgressPanel",
    "RenderDialog",
    "RenderOptions",
    "RunOptionsDialog",
    "ViewsPanel",
    "ask_license",
]
