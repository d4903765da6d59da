"""The viewer protocol holds: the real viewer and the tests' stand-in have the same API (issue 15)."""

from __future__ import annotations

import inspect
from typing import Any

from app.viewer import SceneViewer
from app.viewer.protocol import Viewer
from tests.app.conftest import FakeViewer


def _public_members(cls: type) -> set[str]:
    """Public names a class defines (methods, properties, annotated attributes), its bases' included."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or klass.__module__.startswith(("PySide6", "shiboken6", "typing")):
            continue
        names |= set(vars(klass)) | set(getattr(klass, "__annotations__", {}))
    return {n for n in names if not n.startswith("_")}


def _protocol_members() -> set[str]:
    return {n for n in _public_members(Viewer) if n not in ("FrameProgress",)}


def _signature(cls: type, name: str) -> Any:
    """(parameter name, kind, default) of a method, or "property" / "attribute"."""
    member = inspect.getattr_static(cls, name, None)
    if isinstance(member, property):
        return "property"
    if member is None or not callable(member) or type(member).__name__ == "Signal":
        return "attribute"
    params = inspect.signature(member).parameters.values()
    return [(p.name, p.kind, p.default) for p in params]


def _instance_attributes(fake: FakeViewer) -> set[str]:
    return {n for n in vars(fake) if not n.startswith("_")}


def test_the_fake_viewer_has_exactly_the_protocol(qtbot) -> None:
    from app.state import ViewerState

    protocol = _protocol_members()
    assert {"native", "view_clicked", "render_image", "fly_to_view", "close"} <= protocol
    fake = FakeViewer(ViewerState())
    qtbot.addWidget(fake.native)
    fake_names = (_public_members(FakeViewer) | _instance_attributes(fake)) - FakeViewer.TEST_ONLY
    assert not hasattr(FakeViewer, "__getattr__"), "the fake must not accept any method name"
    assert fake_names - protocol == set(), "the fake has members the viewer protocol lacks"
    assert protocol - fake_names == set(), "the fake lacks members of the viewer protocol"
    for name in protocol - {"view_clicked"}:
        assert _signature(FakeViewer, name) == _signature(Viewer, name), name


def test_the_scene_viewer_implements_the_protocol() -> None:
    members = _public_members(SceneViewer)
    missing = _protocol_members() - members
    assert missing == set(), f"SceneViewer lacks {sorted(missing)}"
    for name in _protocol_members() - {"view_clicked"}:
        assert _signature(SceneViewer, name) == _signature(Viewer, name), name


def test_the_signature_check_notices_a_difference() -> None:
    """The comparison is not vacuous: another parameter, or another default, is a difference."""

    class Other:
        def fly_to_view(self, view: int, duration_ms: int = 100) -> None: ...
        def render_image(self, width: int | None = None) -> None: ...

    assert _signature(Other, "fly_to_view") != _signature(Viewer, "fly_to_view")
    assert _signature(Other, "render_image") != _signature(Viewer, "render_image")
