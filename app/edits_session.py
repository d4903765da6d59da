"""EditsSession: the user's edits of the shown reconstruction, on Qt's undo stack.

The edits themselves are the core's frozen :class:`fast3r_core.edits.Edits`; every tool (measure,
scale, level, origin, crop, lasso) computes a new ``Edits`` with the core's operations and
:meth:`EditsSession.push` es it with a text for the Edit menu and the undo history. Undo and redo swap
whole ``Edits`` values, so they restore the exact state. Listeners (viewer, docks, status bar) follow
:attr:`EditsSession.changed`; the window stores the current edits in the reconstruction it saves
(``dataclasses.replace(rec, edits=session.edits)``).

The undo stack's clean state is "nothing to lose": clean when a result is shown (its edits are its
own) and when the window saves a project with the current edits (``QUndoStack.setClean``); the window
marks its title modified and asks before closing or replacing the result while it is not clean.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from fast3r_core.edits import Edits

__all__ = ["EditsSession"]


class _SetEdits(QUndoCommand):
    """One user edit: the edits before and after it."""

    def __init__(self, session: EditsSession, before: Edits, after: Edits, text: str) -> None:
        super().__init__(text)
        self._session = session
        self._before = before
        self._after = after

    def redo(self) -> None:
        self._session._set(self._after)

    def undo(self) -> None:
        self._session._set(self._before)


class EditsSession(QObject):
    """The current :class:`Edits` and the undo stack of the changes to them.

    Signals
    -------
    changed(Edits)
        The current edits changed (a push, an undo, a redo or :meth:`reset`).
    """

    changed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._edits = Edits()
        self.undo_stack = QUndoStack(self)
        self.generation = 0  #: counts :meth:`reset` calls: which result the edits belong to

    @property
    def edits(self) -> Edits:
        """The edits in force."""
        return self._edits

    @property
    def unsaved(self) -> bool:
        """The edits changed since the result was shown or last saved (the undo stack is not clean)."""
        return not self.undo_stack.isClean()

    def reset(self, edits: Edits | None = None, *, unsaved: bool = False) -> None:
        """Start over for a newly shown reconstruction: its stored edits, an empty undo history.

        ``unsaved``: the edits are not saved anywhere yet (edits carried into an Add Images result),
        so :attr:`unsaved` stays True until they are.
        """
        self.undo_stack.clear()  # clean: a shown result's own edits are saved with it
        if unsaved:
            self.undo_stack.resetClean()
        self.generation += 1
        self._set(Edits() if edits is None else edits, force=True)

    def push(self, new: Edits, text: str) -> None:
        """Make ``new`` the current edits as one undoable step named ``text`` (no-op when unchanged)."""
        if new == self._edits:
            return
        self.undo_stack.push(_SetEdits(self, self._edits, new, text))

    def _set(self, edits: Edits, *, force: bool = False) -> None:
        if edits == self._edits and not force:
            return
        self._edits = edits
        self.changed.emit(edits)
