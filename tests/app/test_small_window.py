"""Issue 17 item 12: at 1024 x 640 the window lays out with no control cut off or drawn over another.

The window is loaded with a result, a run's progress panel, a banner and long status texts (the widest
the centre and the docks get), then resized to 1024 x 640. Every visible control must be inside the
window and inside its own dock (or the centre, the toolbar, the status bar), show its whole text (combo
entries, buttons, labels that neither wrap nor elide), and not overlap a sibling.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QDockWidget,
    QLabel,
    QProgressBar,
    QStyle,
    QStyleOptionComboBox,
    QTabBar,
    QWidget,
)
from superqt import QElidingLabel

SMALL = (1024, 640)
CONTROL_TYPES = (
    QAbstractButton,
    QComboBox,
    QAbstractSpinBox,
    QAbstractSlider,
    QLabel,
    QProgressBar,
    QTabBar,
    QAbstractScrollArea,
)


def _rect_in(win: QWidget, w: QWidget) -> QRect:
    return QRect(w.mapTo(win, QPoint(0, 0)), w.size())


def _inside_scroll_area(w: QWidget) -> bool:
    """``w`` is part of a scroll area's contents (scrolled to, or an item view's own parts)."""
    p = w.parentWidget()
    while p is not None:
        if isinstance(p, QAbstractScrollArea):
            return True
        p = p.parentWidget()
    return False


def _controls(win: QWidget) -> list[QWidget]:
    """The visible controls of the window, a scroll area's inner parts left out (checked separately)."""
    out = []
    for w in win.findChildren(QWidget):
        if not isinstance(w, CONTROL_TYPES) or not w.isVisible() or w.window() is not win:
            continue
        if isinstance(w, QLabel) and not w.text() and w.pixmap().isNull():
            continue
        # the sliders' value labels and the spin boxes' line edits belong to their control
        if isinstance(w.parentWidget(), (QAbstractSpinBox, QComboBox)):
            continue
        if _inside_scroll_area(w) and not _in_controls_scroll(win, w):
            continue
        home = _container(win, w)
        if isinstance(home, QDockWidget) and home.visibleRegion().isEmpty():
            continue  # a dock behind another one's tab (Qt moves it off the window)
        out.append(w)
    return out


def _in_controls_scroll(win: QWidget, w: QWidget) -> bool:
    return win.controls_scroll.widget().isAncestorOf(w)


def _cut_by(w: QWidget, win: QWidget) -> QWidget | None:
    """The first parent of ``w`` (up to the window) whose rectangle does not hold all of ``w``."""
    p = w.parentWidget()
    while p is not None:
        if not p.rect().contains(QRect(w.mapTo(p, QPoint(0, 0)), w.size())):
            return p
        if p is win:
            return None
        p = p.parentWidget()
    return None


def _container(win: QWidget, w: QWidget) -> QWidget:
    """The dock, or the window's part (centre, toolbar, status bar, menu bar), that holds ``w``."""
    p = w
    while p.parentWidget() is not win:
        p = p.parentWidget()
    return p


def _combo_texts_fit(combo: QComboBox) -> list[str]:
    """The entries of ``combo`` that would not fit its text field."""
    opt = QStyleOptionComboBox()
    combo.initStyleOption(opt)
    field = combo.style().subControlRect(
        QStyle.ComplexControl.CC_ComboBox, opt, QStyle.SubControl.SC_ComboBoxEditField, combo
    )
    fm = combo.fontMetrics()
    return [
        combo.itemText(i)
        for i in range(combo.count())
        if fm.horizontalAdvance(combo.itemText(i)) > field.width()
    ]


def _fill(win, synthetic_rec) -> None:
    """The widest content: a result, a run's progress, the memory estimate, a banner, long statuses."""
    win.controller._show(synthetic_rec)
    win.progress_panel.set_running(True, "Loading the model...")
    win.progress_panel.setVisible(True)
    win.progress_panel.set_memory_text("memory: 23.4 GiB per pass (12 passes)", warn=True)
    win.banner.show_message(
        "Unreliable pose for 7 views (1, 2, 3, 4, 5, 6, 7): few of their points fit the estimated "
        "camera (see the Pose column).",
        "warning",
    )
    win.timing_label.setText("last run 19.4 s (model load 15.6 s, images 0.1 s, inference 2.7 s) " * 2)


def test_the_window_lays_out_at_1024_x_640(qtbot, make_window, synthetic_rec) -> None:
    win = make_window()
    win.resize(1440, 900)
    win.show()
    qtbot.waitExposed(win)
    _fill(win, synthetic_rec)
    qtbot.wait(50)
    # nothing shown asks for more than the small window (else the window grows by itself)
    hint = win.minimumSizeHint()
    assert hint.width() <= SMALL[0] and hint.height() <= SMALL[1], hint
    win.resize(*SMALL)
    qtbot.wait(250)  # the compact dock layout is applied after the resize
    win.grab().save(os.environ.get("F3R_SHOT_DIR", "/tmp") + "/small-filled.png")
    assert (win.width(), win.height()) == SMALL

    window_rect = win.rect()
    containers = {
        c
        for c in (win.views_dock, win.controls_dock, win.preview_dock, win.centralWidget())
        if c.isVisible() and not c.visibleRegion().isEmpty()
    }
    controls = _controls(win)
    assert win.display_panel.sky_check in controls and win.views_panel.table in controls
    for w in controls:
        name = f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}"
        r = _rect_in(win, w)
        assert window_rect.contains(r), name
        home = _container(win, w)
        for other in containers - {home}:
            assert not r.intersects(other.geometry()), f"{name} is under {other.objectName()}"
        if _in_controls_scroll(win, w):
            # scrolls vertically only: no control is cut at the side
            viewport = _rect_in(win, win.controls_scroll.viewport())
            assert viewport.left() <= r.left() and r.right() <= viewport.right(), name
        else:
            assert _cut_by(w, win) is None, f"{name} is cut off by {_cut_by(w, win)}"
        if isinstance(w, QComboBox):
            assert _combo_texts_fit(w) == [], name
        elif isinstance(w, QAbstractButton) and not isinstance(w.parentWidget(), QTabBar):
            assert w.width() >= w.minimumSizeHint().width(), name
        elif isinstance(w, QLabel) and not w.wordWrap() and not isinstance(w, QElidingLabel):
            assert w.width() >= w.minimumSizeHint().width(), name

    # siblings do not overlap (the group boxes' titles, the form rows, the status bar's labels)
    by_parent: dict[int, list[QWidget]] = {}
    for w in controls:
        by_parent.setdefault(id(w.parentWidget()), []).append(w)
    for group in by_parent.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                assert not a.geometry().intersects(b.geometry()), (a.objectName() or a, b)


def test_a_run_does_not_widen_a_small_window(qtbot, make_window, synthetic_rec) -> None:
    """The progress panel's labels take shares of the row: a run never makes the window grow."""
    win = make_window()
    win.show()
    win.resize(*SMALL)
    qtbot.waitExposed(win)
    _fill(win, synthetic_rec)
    win.progress_panel.stage_label.setText("Inference 12/12 views (pass 11/12), a long stage name")
    win.progress_panel.time_label.setText("1234 s elapsed, about 4321 s left, and some more")
    qtbot.wait(100)
    assert (win.width(), win.height()) == SMALL
    panel = win.progress_panel
    assert panel.cancel_button.width() >= panel.cancel_button.minimumSizeHint().width()
    assert panel.stage_label.text().startswith("Inference 12/12")  # the whole text, shown elided


def _name_room(win) -> int:
    """Width in px of the Views list's name column."""
    panel = win.views_panel
    return panel.table.columnWidth(panel.COL_NAME)


def test_the_intrinsics_column_does_not_take_the_names_room(qtbot, make_window, synthetic_rec) -> None:
    """A result with known intrinsics shows the Intr. column: the Views dock grows by its width (in a
    large window and, after a small one, when the window is large again), so the names keep theirs."""
    import dataclasses

    import numpy as np

    win = make_window()
    win.resize(1440, 900)
    win.show()
    win.controller._show(synthetic_rec)
    qtbot.wait(100)
    win.resizeDocks([win.views_dock], [win.VIEWS_WIDTH], Qt.Orientation.Horizontal)  # the usual width
    qtbot.wait(100)
    plain = _name_room(win)
    assert win.views_panel.extra_width() == 0
    known = np.zeros(synthetic_rec.n_views, bool)
    known[0] = True
    win.controller._show(dataclasses.replace(synthetic_rec, intrinsics_known=known))
    qtbot.wait(100)
    assert win.views_panel.extra_width() > 30
    assert _name_room(win) >= plain - 2
    win.resize(*SMALL)
    qtbot.wait(250)
    assert win.views_dock.width() <= SMALL[0] // 3 + 2
    win.resize(1440, 900)
    qtbot.wait(250)
    assert _name_room(win) >= plain - 2


def test_the_first_window_fits_the_screen() -> None:
    """No saved geometry: 1440 x 900 on a large screen, 90 % of a 1280 x 800 one (not larger than it)."""
    from PySide6.QtCore import QSize

    from app.main_window import first_window_size

    assert first_window_size(QSize(2560, 1400)) == QSize(1440, 900)
    assert first_window_size(QSize(1280, 770)) == QSize(1152, 693)
