"""The Measurements dock: every measurement of the edits with its length; rename, delete, set the scale.

Reads the :class:`~app.edits_session.EditsSession` (refilled on every change: an undo too) and acts
through the window's :class:`~app.edit_tools.EditTools`, so that every change is one undoable step.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.edit_tools import EditTools
from fast3r_core.edits import Edits, format_length
from fast3r_core.errors import EditsError

__all__ = ["MeasurementsPanel"]


class MeasurementsPanel(QWidget):
    """A table of the measurements (name, length); the name cell is editable (rename).

    Signals
    -------
    scale_requested(str) : "Set Scale..." was pressed with this measurement selected ("" for none).
    """

    scale_requested = Signal(str)

    def __init__(self, tools: EditTools, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tools = tools
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Name", "Length"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected measurement (undoable)")
        self.scale_button = QPushButton("Set Scale...")
        self.scale_button.setToolTip("Give the selected measurement its real length")
        buttons = QHBoxLayout()
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.scale_button)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        self._filling = False
        self.delete_button.clicked.connect(self.delete_selected)
        self.scale_button.clicked.connect(lambda: self.scale_requested.emit(self.selected_name()))
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        tools.session.changed.connect(self.refresh)
        self.refresh(tools.session.edits)

    def names(self) -> list[str]:
        """The measurements' names, in the table's order."""
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]

    def lengths(self) -> list[str]:
        """The length column as shown (e.g. "1.234 m")."""
        return [self.table.item(r, 1).text() for r in range(self.table.rowCount())]

    def selected_name(self) -> str:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else ""

    def refresh(self, edits: Edits) -> None:
        """Fill the table from ``edits`` (keeps the selected measurement selected)."""
        keep = self.selected_name()
        self._filling = True
        try:
            self.table.setRowCount(len(edits.measurements))
            for r, m in enumerate(edits.measurements):
                name = QTableWidgetItem(m.name)
                name.setData(Qt.ItemDataRole.UserRole, m.name)
                length = QTableWidgetItem(format_length(edits, m.distance(edits)))
                length.setFlags(length.flags() & ~Qt.ItemFlag.ItemIsEditable)
                length.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, 0, name)
                self.table.setItem(r, 1, length)
                if m.name == keep:
                    self.table.selectRow(r)
        finally:
            self._filling = False
        self._update_buttons()

    def delete_selected(self) -> None:
        name = self.selected_name()
        if name:
            self.tools.delete_measurement(name)

    def _update_buttons(self) -> None:
        has = bool(self.selected_name())
        self.delete_button.setEnabled(has)
        self.scale_button.setEnabled(self.table.rowCount() > 0)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 0:
            return
        old = item.data(Qt.ItemDataRole.UserRole)
        new = item.text().strip()
        try:
            self.tools.rename_measurement(old, new)
        except EditsError as exc:
            self.tools.message.emit(str(exc))
            self.refresh(self.tools.session.edits)  # back to the old name
