"""The edit tools of the window: measure, pick the floor, set the origin, level, scale, measurements.

Each tool turns what the user picks in the viewport (:class:`~app.edit_types.PickedPoint`, edited
world) into a new :class:`~fast3r_core.edits.Edits` with the core's operations and pushes it on the
:class:`~app.edits_session.EditsSession` (one undoable step each). The tools never touch the viewer's
data: the viewer follows the session (``set_edits``) and shows :meth:`EditTools.overlay` (the
measurements and the points picked so far).

Modes (one at a time; Esc or the same action again leaves it):

* ``"measure"``: two clicks -> a named measurement;
* ``"floor"``: three clicks on the floor -> the world is levelled so that they are horizontal (Z up);
* ``"origin"``: one click -> that point becomes the origin.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.edit_types import EditOverlay, OverlaySegment, PickedPoint
from app.edits_session import EditsSession
from app.state import ViewerState
from fast3r_core.edits import (
    Edits,
    Measurement,
    add_measurement,
    apply_to_points,
    cameras_up,
    format_length,
    level_auto,
    level_from_points,
    remove_measurement,
    scale_from_cameras,
    scale_from_distance,
    set_display_unit,
    set_origin,
    to_metres,
    unique_measurement_name,
)
from fast3r_core.errors import EditsError

if TYPE_CHECKING:
    from app.viewer.protocol import Viewer

__all__ = ["MODES", "EditTools"]

log = logging.getLogger(__name__)

#: Tool modes: clicks each needs, and what the status bar asks for.
MODES: dict[str, tuple[int, str]] = {
    "measure": (2, "Measure: click two points (Esc to stop)"),
    "floor": (3, "Pick Floor: click three points on the floor (Esc to stop)"),
    "origin": (1, "Set Origin: click the point that becomes the origin (Esc to stop)"),
}

#: At most this many points go into the automatic levelling's plane search (it samples 20 000).
LEVEL_MAX_POINTS = 400_000


def _vec(p: np.ndarray) -> tuple[float, float, float]:
    return (float(p[0]), float(p[1]), float(p[2]))


class EditTools(QObject):
    """The window's edit tools on an :class:`EditsSession`.

    Signals
    -------
    mode_changed(str) : the active tool ("" for none).
    message(str) : a one-line status message (what to click next, what was done, an error).
    """

    mode_changed = Signal(str)
    message = Signal(str)

    def __init__(
        self, session: EditsSession, state: ViewerState, viewer: Viewer, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.state = state
        self.viewer = viewer
        self._mode = ""
        self._picks: list[tuple[float, float, float]] = []
        viewer.point_clicked.connect(self.add_pick)
        session.changed.connect(self._on_edits)

    # -- modes ------------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """The active tool: "", "measure", "floor" or "origin"."""
        return self._mode

    @property
    def picks(self) -> list[tuple[float, float, float]]:
        """Edited-world points picked so far by the active tool."""
        return list(self._picks)

    def set_mode(self, mode: str) -> None:
        """Start a tool (a key of :data:`MODES`), or stop with ""; the picks so far are dropped."""
        if mode and mode not in MODES:
            raise ValueError(f"unknown edit tool {mode!r}")
        if mode and self.state.reconstruction is None:
            mode = ""
        self._picks = []
        changed = mode != self._mode
        self._mode = mode
        self.viewer.set_pick_mode(bool(mode))
        self._show_overlay()
        if mode:
            self.message.emit(MODES[mode][1])
        if changed:
            self.mode_changed.emit(mode)

    def toggle_mode(self, mode: str) -> None:
        """Start ``mode``, or stop it when it is the active one (the actions are checkable)."""
        self.set_mode("" if self._mode == mode else mode)

    def add_pick(self, picked: PickedPoint) -> None:
        """A point was clicked in the active tool; the tool acts once it has all its points."""
        if not self._mode:
            return
        self._picks.append(picked.xyz)
        need = MODES[self._mode][0]
        if len(self._picks) < need:
            self._show_overlay()
            self.message.emit(f"{MODES[self._mode][1]}: {len(self._picks)} of {need}")
            return
        picks, self._picks = self._picks, []
        try:
            self._finish(self._mode, picks)
        except EditsError as exc:
            self.message.emit(str(exc))
        self._show_overlay()

    def _finish(self, mode: str, picks: list[tuple[float, float, float]]) -> None:
        e = self.session.edits
        if mode == "measure":
            name = unique_measurement_name(e)
            new = add_measurement(e, name, picks[0], picks[1])
            self.session.push(new, f"Measure {name}")
            self.message.emit(f"{name}: {format_length(new, new.measurement(name).distance(new))}")
        elif mode == "floor":
            rec = self.state.reconstruction
            hint = None if rec is None else cameras_up(e, rec.cam_to_world)
            self.session.push(level_from_points(e, *picks, up_hint=hint), "Level from Floor")
            self.message.emit("Levelled from the floor: Z is up")
            self.set_mode("")
        elif mode == "origin":
            self.session.push(set_origin(e, picks[0]), "Set Origin")
            self.message.emit("Origin set")
            self.set_mode("")

    # -- operations -------------------------------------------------------------------------------
    def level_automatically(self) -> None:
        """Level the world from the cameras' up, refined by the dominant floor plane (Z up)."""
        rec = self.state.reconstruction
        if rec is None:
            return
        ps = rec.points("global")
        step = max(1, len(ps) // LEVEL_MAX_POINTS)
        try:
            new = level_auto(self.session.edits, rec.cam_to_world, ps.xyz[::step], ps.conf[::step])
        except EditsError as exc:
            self.message.emit(str(exc))
            return
        self.session.push(new, "Level Automatically")
        self.message.emit("Levelled: Z is up")

    def scale_from_measurement(self, name: str, distance: float, unit: str) -> None:
        """Scale the world so that measurement ``name`` is ``distance`` ``unit`` long."""
        e = self.session.edits
        m = e.measurement(name)
        a, b = apply_to_points(e, np.array([m.a, m.b], np.float64))
        new = set_display_unit(scale_from_distance(e, a, b, to_metres(distance, unit)), unit)
        self.session.push(new, f"Scale from {name}")
        self.message.emit(f"Scale set: {name} is {format_length(new, new.measurement(name).distance(new))}")

    def scale_from_views(self, i: int, j: int, distance: float, unit: str) -> None:
        """Scale the world so that the centres of views ``i`` and ``j`` are ``distance`` ``unit`` apart."""
        rec = self.state.reconstruction
        if rec is None:
            return
        e = self.session.edits
        new = scale_from_cameras(e, rec.cam_to_world, i, j, to_metres(distance, unit))
        self.session.push(set_display_unit(new, unit), f"Scale from Views {i} and {j}")
        self.message.emit(f"Scale set: views {i} and {j} are {distance:g} {unit} apart")

    def delete_measurement(self, name: str) -> None:
        self.session.push(remove_measurement(self.session.edits, name), f"Delete {name}")

    def rename_measurement(self, old: str, new: str) -> None:
        """Rename a measurement (:class:`EditsError` if ``new`` is taken or not a valid name)."""
        e = self.session.edits
        new = new.strip()  # as the core keeps names; a blank name is then refused by Measurement
        if old == new:
            return
        if any(m.name == new for m in e.measurements):
            raise EditsError(f"there is already a measurement named {new!r}")
        meas = tuple(Measurement(new, m.a, m.b) if m.name == old else m for m in e.measurements)
        self.session.push(dataclasses.replace(e, measurements=meas), f"Rename {old} to {new}")

    # -- what is drawn ----------------------------------------------------------------------------
    def overlay(self) -> EditOverlay:
        """The measurements (edited world, with their lengths) and the points picked so far."""
        e = self.session.edits
        segs = []
        for m in e.measurements:
            a, b = apply_to_points(e, np.array([m.a, m.b], np.float64))
            segs.append(OverlaySegment(_vec(a), _vec(b), f"{m.name} {format_length(e, m.distance(e))}"))
        return EditOverlay(segments=tuple(segs), markers=tuple(self._picks))

    def _show_overlay(self) -> None:
        self.viewer.set_overlay(self.overlay())

    def _on_edits(self, edits: Edits) -> None:
        self._picks = []  # picked in the world as it was: an undo or redo may have moved it
        self.viewer.set_edits(edits)
        self._show_overlay()
