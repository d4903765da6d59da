"""ViewerState: typed display options, their signals, and one home for their defaults (issue 15)."""

from __future__ import annotations

import dataclasses

import pytest

from app.settings import DEFAULTS
from app.state import DISPLAY_DEFAULTS, SAVED_DISPLAY_OPTIONS, DisplayOptions, ViewerState


def test_typed_options_read_write_and_signal(qtbot) -> None:
    state = ViewerState()
    seen: list[str] = []
    state.selection_changed.connect(lambda: seen.append("selection"))
    state.style_changed.connect(lambda: seen.append("style"))
    assert state.display == DISPLAY_DEFAULTS and state.point_size == DISPLAY_DEFAULTS.point_size
    state.point_size = 4.5
    assert state.point_size == 4.5 and state.display.point_size == 4.5 and seen == ["style"]
    state.top_percent = 50.0
    assert seen == ["style", "selection"]
    state.top_percent = 50.0  # the same value: no signal (syncing a widget never loops)
    state.update(point_size=4.5, top_percent=50.0)
    assert seen == ["style", "selection"]
    state.update(show_axes=True, mask_sky=True)  # one signal of each kind for a mixed update
    assert len(seen) == 4 and sorted(seen[2:]) == ["selection", "style"]


def test_bad_names_and_values_are_refused(qtbot) -> None:
    state = ViewerState()
    with pytest.raises(KeyError):
        state.update(no_such_option=1)
    with pytest.raises(ValueError, match="color_mode"):
        state.color_mode = "purple"
    with pytest.raises(ValueError, match="source"):
        state.update(source="elsewhere")
    assert state.display == DISPLAY_DEFAULTS  # nothing half-applied


def test_display_defaults_live_in_one_place() -> None:
    """The settings file's defaults of the saved display options are the state's defaults."""
    names = {f.name for f in dataclasses.fields(DisplayOptions)}
    assert set(SAVED_DISPLAY_OPTIONS) <= names
    for name in SAVED_DISPLAY_OPTIONS:
        assert DEFAULTS[name] == getattr(DISPLAY_DEFAULTS, name), name
        assert type(DEFAULTS[name]) is type(getattr(DISPLAY_DEFAULTS, name)), name


def test_a_new_reconstruction_resets_playback(qtbot, synthetic_rec) -> None:
    state = ViewerState()
    state.set_reconstruction(synthetic_rec)
    state.timestep = 1
    state.set_reconstruction(synthetic_rec)
    assert state.timestep == -1
