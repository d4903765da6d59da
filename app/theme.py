"""Light and dark themes: Qt's Fusion style with a palette, and matching pyqtgraph colours."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["THEMES", "apply_theme", "plot_colors"]

THEMES = ("dark", "light")

_DARK = {
    QPalette.ColorRole.Window: "#2b2d30",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1f2023",
    QPalette.ColorRole.AlternateBase: "#2b2d30",
    QPalette.ColorRole.ToolTipBase: "#3c3f41",
    QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.PlaceholderText: "#8a8a8a",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#3a3c40",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Link: "#6ab0ff",
    QPalette.ColorRole.Highlight: "#3d7bd9",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Mid: "#4a4d52",
    QPalette.ColorRole.Dark: "#1a1b1d",
    QPalette.ColorRole.Light: "#505357",
}

_current = "light"


def apply_theme(app: QApplication, name: str) -> None:
    """Switch the whole application to the "dark" or "light" theme (Fusion style)."""
    global _current
    if name not in THEMES:
        raise ValueError(f"theme must be one of {THEMES}, got {name!r}")
    app.setStyle("Fusion")
    if name == "dark":
        pal = QPalette()
        for role, color in _DARK.items():
            pal.setColor(role, QColor(color))
        for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
            pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    else:
        pal = app.style().standardPalette()
    app.setPalette(pal)
    _current = name


def current_theme() -> str:
    return _current


def plot_colors() -> dict[str, str]:
    """Colours for pyqtgraph plots in the current theme: background, foreground, bars, line."""
    if _current == "dark":
        return {
            "background": "#1f2023",
            "foreground": "#c8c8c8",
            "bars": "#5a8fd8",
            "kept": "#7fc97f",
            "line": "#ffb74d",
        }
    return {
        "background": "#ffffff",
        "foreground": "#303030",
        "bars": "#6a9ad8",
        "kept": "#3f9f3f",
        "line": "#e07000",
    }
