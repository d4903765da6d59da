"""The VisPy viewport: :class:`SceneViewer` and the per-view palette shared with the widgets.

Importing this package imports VisPy but creates no canvas; :class:`SceneViewer` selects VisPy's
PySide6 backend on first use.
"""

from .colors import view_palette
from .protocol import Viewer, ViewerFactory
from .scene_viewer import CAMERA_MODES, SceneViewer, use_vispy_backend

__all__ = ["CAMERA_MODES", "SceneViewer", "Viewer", "ViewerFactory", "use_vispy_backend", "view_palette"]
