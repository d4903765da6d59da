"""ViewerState: what the viewport shows, written by widgets and read by the VisPy adapters.

Three tiers (napari's habit): fast3r_core holds the data (a frozen Reconstruction), this object holds
the display choices, widgets write into it and the viewer listens to its signals. Setting a value to
what it already is emits nothing, so syncing a widget from the state never loops.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.edited_points import EditedPoints
from fast3r_core.edits import Edits
from fast3r_core.point_set import PointSet, PointSource
from fast3r_core.result import Reconstruction

__all__ = [
    "COLOR_MODES",
    "CONF_MODES",
    "CONF_NORMS",
    "DISPLAY_DEFAULTS",
    "SAVED_DISPLAY_OPTIONS",
    "DisplayOptions",
    "ViewerState",
]

COLOR_MODES = ("rgb", "confidence", "view")
CONF_MODES = ("top_percent", "threshold")
SOURCES = ("global", "local")
CONF_NORMS = ("global", "view")


@dataclass(frozen=True)
class DisplayOptions:
    """The display choices of the viewport, with their defaults (the one place that holds them: the
    settings file's defaults of the saved ones, :data:`SAVED_DISPLAY_OPTIONS`, come from here).

    Attributes
    ----------
    source : "global" (the global head's points) or "local" (local pointmaps aligned to global).
    conf_mode : "top_percent" (keep the top ``top_percent`` % by confidence) or "threshold".
    top_percent : float, 0..100.
    threshold : float, absolute confidence threshold (confidence is always > 1).
    color_mode : "rgb", "confidence" or "view".
    conf_norm : confidence colormap: the "global" rank, or per-"view" min-max of log(conf).
    point_size : float, pixels.
    background : str, "#rrggbb".
    show_axes, show_cameras, mask_sky : bool.
    show_high_conf_views, show_low_conf_views : bool, show views whose max confidence is at least /
        below ``view_conf_threshold``.
    view_conf_threshold : float.
    timestep : int, playback: show views 0..timestep; -1 = all.
    """

    source: PointSource = "global"
    conf_mode: str = "top_percent"
    top_percent: float = 90.0
    threshold: float = 1.5
    color_mode: str = "rgb"
    conf_norm: str = "global"
    point_size: float = 2.0
    background: str = "#202124"
    show_axes: bool = False
    show_cameras: bool = True
    mask_sky: bool = False
    show_high_conf_views: bool = True
    show_low_conf_views: bool = True
    view_conf_threshold: float = 1.5
    timestep: int = -1

    def __post_init__(self) -> None:
        for name, choices in (
            ("color_mode", COLOR_MODES),
            ("conf_mode", CONF_MODES),
            ("conf_norm", CONF_NORMS),
            ("source", SOURCES),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}")


#: The defaults of every display option.
DISPLAY_DEFAULTS = DisplayOptions()

#: Display options saved in the settings between sessions.
SAVED_DISPLAY_OPTIONS: tuple[str, ...] = (
    "color_mode",
    "point_size",
    "background",
    "show_axes",
    "show_cameras",
    "conf_mode",
    "top_percent",
    "threshold",
    "mask_sky",
    "source",
)

#: Options that change which points are shown (the others change only how they look).
_SELECTION_OPTIONS = frozenset(
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

T = TypeVar("T")


class _Option(Generic[T]):
    """A typed display option of :class:`ViewerState`: reads the current :class:`DisplayOptions`,
    writes through :meth:`ViewerState.update` (validation, signals)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Option[T]: ...
    @overload
    def __get__(self, obj: ViewerState, owner: type | None = None) -> T: ...
    def __get__(self, obj: ViewerState | None, owner: type | None = None) -> T | _Option[T]:
        if obj is None:
            return self
        value: T = getattr(obj.display, self._name)
        return value

    def __set__(self, obj: ViewerState, value: T) -> None:
        obj.update(**{self._name: value})


class ViewerState(QObject):
    """Display state of one reconstruction.

    The display options are typed attributes (``state.point_size = 3.0``; see
    :class:`DisplayOptions`); :meth:`update` sets several at once (and takes them by name, for the
    settings file).

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

    source: _Option[PointSource] = _Option()
    conf_mode: _Option[str] = _Option()
    top_percent: _Option[float] = _Option()
    threshold: _Option[float] = _Option()
    color_mode: _Option[str] = _Option()
    conf_norm: _Option[str] = _Option()
    point_size: _Option[float] = _Option()
    background: _Option[str] = _Option()
    show_axes: _Option[bool] = _Option()
    show_cameras: _Option[bool] = _Option()
    mask_sky: _Option[bool] = _Option()
    show_high_conf_views: _Option[bool] = _Option()
    show_low_conf_views: _Option[bool] = _Option()
    view_conf_threshold: _Option[float] = _Option()
    timestep: _Option[int] = _Option()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rec: Reconstruction | None = None
        self._display = DISPLAY_DEFAULTS
        self._visible: np.ndarray = np.zeros(0, dtype=bool)
        self._highlight = -1
        self._edits = Edits()
        self._edited = EditedPoints()  # cached ids and keep mask of the current points under the edits

    # -- reconstruction ---------------------------------------------------------------------------
    @property
    def reconstruction(self) -> Reconstruction | None:
        return self._rec

    def set_reconstruction(self, rec: Reconstruction | None) -> None:
        self._rec = rec
        self._visible = np.ones(rec.n_views if rec is not None else 0, dtype=bool)
        self._highlight = -1
        self._display = dataclasses.replace(self._display, timestep=-1)
        self.reconstruction_changed.emit()
        self.selection_changed.emit()

    # -- the user's edits ---------------------------------------------------------------------------
    @property
    def edits(self) -> Edits:
        """The user's edits in force (the window's edits session sets them): their crop box and deleted
        points are left out of :meth:`shown_mask` and :meth:`shown_count`, as the viewport does."""
        return self._edits

    def set_edits(self, edits: Edits) -> None:
        if edits == self._edits:
            return
        drops_points = edits.filters_points or self._edits.filters_points
        self._edits = edits
        if drops_points:
            self.selection_changed.emit()

    # -- display options --------------------------------------------------------------------------
    @property
    def display(self) -> DisplayOptions:
        """All display options (an immutable snapshot)."""
        return self._display

    def update(self, **changes: Any) -> None:
        """Set display options by name; emits selection_changed and/or style_changed once if any
        changed (nothing when every value is what it already is, so syncing a widget never loops).

        Raises KeyError for an unknown name, ValueError for a value outside its choices.
        """
        known = {f.name for f in dataclasses.fields(DisplayOptions)}
        unknown = set(changes) - known
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        new = dataclasses.replace(self._display, **changes)
        changed = {k for k in changes if getattr(new, k) != getattr(self._display, k)}
        if not changed:
            return
        self._display = new
        if changed & _SELECTION_OPTIONS:
            self.selection_changed.emit()
        if changed - _SELECTION_OPTIONS:
            self.style_changed.emit()

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
        return None if self._rec is None else self._rec.points(self.source)

    def prefix_count(self) -> int:
        """How many of the confidence-ordered points the confidence filter keeps (a prefix)."""
        ps = self.point_set()
        if ps is None:
            return 0
        if self.conf_mode == "top_percent":
            return ps.count_top_percent(float(self.top_percent))
        return ps.count_above(float(self.threshold))

    def shown_mask(self) -> np.ndarray | None:
        """(n,) bool over the kept prefix ``point_set()[:prefix_count()]``: the points actually shown.

        A point is shown when its view is shown (:meth:`shown_views`), the user's edits keep it (crop
        box, deleted points: :attr:`edits`) and, with ``mask_sky``, when it is not sky
        (:func:`fast3r_core.sky.sky_point_mask`). None when there is no reconstruction.
        """
        ps = self.point_set()
        if ps is None or self._rec is None:
            return None
        n = self.prefix_count()
        mask = self.shown_views()[ps.view[:n]]
        if self.mask_sky:
            from fast3r_core.sky import sky_point_mask

            mask &= ~sky_point_mask(self._rec, self.source)[:n]
        keep = self._edited.keep(self._rec, self.source, self._edits)
        if keep is not None:
            mask &= keep[:n]
        return mask

    def point_ids(self) -> np.ndarray:
        """(N,) int64 ids (:func:`fast3r_core.edits.point_ids`) of all of ``point_set()``'s points."""
        if self._rec is None:
            return np.zeros(0, np.int64)
        return self._edited.ids(self._rec, self.source)

    def shown_count(self) -> int:
        """Number of points the viewport shows (confidence filter, views, playback, sky)."""
        ps = self.point_set()
        if ps is None:
            return 0
        views = self.shown_views()
        if views.all() and not self.mask_sky and not self._edits.filters_points:
            return self.prefix_count()
        mask = self.shown_mask()
        return 0 if mask is None else int(np.count_nonzero(mask))

    def shown_views(self) -> np.ndarray:
        """(V,) bool: visible, within the playback timestep, and of a shown confidence class."""
        rec = self._rec
        if rec is None:
            return np.zeros(0, dtype=bool)
        mask = self._visible.copy()
        t = int(self.timestep)
        if t >= 0:
            mask[t + 1 :] = False
        confs = rec.conf if self.source == "global" else rec.conf_local
        high = np.array([float(c.max()) >= self.view_conf_threshold for c in confs])
        if not self.show_high_conf_views:
            mask &= ~high
        if not self.show_low_conf_views:
            mask &= high
        return mask
