"""ViewerState: what the viewport shows, written by widgets and read by the VisPy adapters.

Three tiers (napari's habit): fast3r_core holds the data (a frozen Reconstruction), this object holds
the display choices, widgets write into it and the viewer listens to its signals. Setting a value to
what it already is emits nothing, so syncing a widget from the state never loops.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from fast3r_core.result import PointSet, Reconstruction

__all__ = ["COLOR_MODES", "CONF_MODES", "CONF_NORMS", "ViewerState"]

COLOR_MODES = ("rgb", "confidence", "view")
CONF_MODES = ("top_percent", "threshold")
SOURCES = ("global", "local")
CONF_NORMS = ("global", "view")


class ViewerState(QObject):
    """Display state of one reconstruction.

    Signals
    -------
    reconstruction_changed() : a new result (or None) was set; everything must be rebuilt.
    selection_changed() : the set of shown points changed (confidence filter, views, source, sky, playback).
    style_changed() : colour mode, point size, background, axes or cameras visibility changed.
    highlight_changed(int) : the highlighted view (-1 for none).
    """

    reconstruction_changed = Signal()
    selection_changed = Signal()
    style_changed = Signal()
    highlight_changed = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rec: Reconstruction | None = None
        self._values: dict[str, Any] = {
            "source": "global",  # global head, or local pointmaps aligned to global
            "conf_mode": "top_percent",
            "top_percent": 90.0,  # keep the top p % of points by confidence
            "threshold": 1.5,  # absolute confidence threshold (conf > 1 always)
            "color_mode": "rgb",
            "conf_norm": "global",  # confidence colormap: "global" rank or per-"view" min-max of log(conf)
            "point_size": 2.0,  # pixels
            "background": "#202124",
            "show_axes": False,
            "show_cameras": True,
            "mask_sky": False,
            "show_high_conf_views": True,
            "show_low_conf_views": True,
            "view_conf_threshold": 1.5,  # a view is "high confidence" if its max conf >= this
            "timestep": -1,  # playback: show views 0..timestep; -1 = all
        }
        self._visible: np.ndarray = np.zeros(0, dtype=bool)
        self._highlight = -1

    # -- reconstruction ---------------------------------------------------------------------------
    @property
    def reconstruction(self) -> Reconstruction | None:
        return self._rec

    def set_reconstruction(self, rec: Reconstruction | None) -> None:
        self._rec = rec
        self._visible = np.ones(rec.n_views if rec is not None else 0, dtype=bool)
        self._highlight = -1
        self._values["timestep"] = -1
        self.reconstruction_changed.emit()
        self.selection_changed.emit()

    # -- generic values ---------------------------------------------------------------------------
    _SELECTION_KEYS = frozenset(
        {
            "source",
            "conf_mode",
            "top_percent",
            "threshold",
            "mask_sky",
            "show_high_conf_views",
            "show_low_conf_views",
            "view_conf_threshold",
            "timestep",
        }
    )

    def get(self, key: str) -> Any:
        return self._values[key]

    def set(self, key: str, value: Any) -> None:
        """Set one display value; emits selection_changed or style_changed if it changed."""
        if key not in self._values:
            raise KeyError(key)
        if key == "color_mode" and value not in COLOR_MODES:
            raise ValueError(f"color_mode must be one of {COLOR_MODES}")
        if key == "conf_mode" and value not in CONF_MODES:
            raise ValueError(f"conf_mode must be one of {CONF_MODES}")
        if key == "conf_norm" and value not in CONF_NORMS:
            raise ValueError(f"conf_norm must be one of {CONF_NORMS}")
        if key == "source" and value not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}")
        if self._values[key] == value:
            return
        self._values[key] = value
        (self.selection_changed if key in self._SELECTION_KEYS else self.style_changed).emit()

    # -- views ------------------------------------------------------------------------------------
    @property
    def visible_views(self) -> np.ndarray:
        """(V,) bool, read-only copy: the views whose points and frusta are shown (before playback)."""
        return self._visible.copy()

    def set_view_visible(self, view: int, visible: bool) -> None:
        if bool(self._visible[view]) == visible:
            return
        self._visible[view] = visible
        self.selection_changed.emit()

    def set_visible_views(self, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self._visible.shape:
            raise ValueError(f"mask must be {self._visible.shape}, got {mask.shape}")
        if np.array_equal(mask, self._visible):
            return
        self._visible = mask.copy()
        self.selection_changed.emit()

    @property
    def highlighted_view(self) -> int:
        return self._highlight

    def set_highlighted_view(self, view: int) -> None:
        if view == self._highlight:
            return
        self._highlight = view
        self.highlight_changed.emit(view)

    # -- derived ----------------------------------------------------------------------------------
    def point_set(self) -> PointSet | None:
        """The confidence-ordered points of the current source (all of them)."""
        return None if self._rec is None else self._rec.points(self._values["source"])

    def prefix_count(self) -> int:
        """How many of the confidence-ordered points the confidence filter keeps (a prefix)."""
        ps = self.point_set()
        if ps is None:
            return 0
        if self._values["conf_mode"] == "top_percent":
            return ps.count_top_percent(float(self._values["top_percent"]))
        return ps.count_above(float(self._values["threshold"]))

    def shown_mask(self) -> np.ndarray | None:
        """(n,) bool over the kept prefix ``point_set()[:prefix_count()]``: the points actually shown.

        A point is shown when its view is shown (:meth:`shown_views`) and, with ``mask_sky``, when it
        is not sky (:func:`fast3r_core.sky.sky_point_mask`). None when there is no reconstruction.
        """
        ps = self.point_set()
        if ps is None or self._rec is None:
            return None
        n = self.prefix_count()
        mask = self.shown_views()[ps.view[:n]]
        if self._values["mask_sky"]:
            from fast3r_core.sky import sky_point_mask

            mask &= ~sky_point_mask(self._rec, self._values["source"])[:n]
        return mask

    def shown_count(self) -> int:
        """Number of points the viewport shows (confidence filter, views, playback, sky)."""
        ps = self.point_set()
        if ps is None:
            return 0
        views = self.shown_views()
        if views.all() and not self._values["mask_sky"]:
            return self.prefix_count()
        mask = self.shown_mask()
        return 0 if mask is None else int(np.count_nonzero(mask))

    def shown_views(self) -> np.ndarray:
        """(V,) bool: visible, within the playback timestep, and of a shown confidence class."""
        rec = self._rec
        if rec is None:
            return np.zeros(0, dtype=bool)
        mask = self._visible.copy()
        t = int(self._values["timestep"])
        if t >= 0:
            mask[t + 1 :] = False
        confs = rec.conf if self._values["source"] == "global" else rec.conf_local
        high = np.array([float(c.max()) >= self._values["view_conf_threshold"] for c in confs])
        if not self._values["show_high_conf_views"]:
            mask &= ~high
        if not self._values["show_low_conf_views"]:
            mask &= high
        return mask
