"""The sidebar's layout: panels by name (section headers are rows without a panel), the creator layout
that hides the porter panels, and the player's crisp-pixels default -- both from Settings.

Creator layout (Settings → Layout off, the default): Generate, Queue, History, Settings, Models. With
*Show the porting panels* on, a **Porting** section follows with Weight mapping and Parity. Opening a
porter panel from elsewhere (the Models panel's Inspect mapping / Parity…, the View menu) shows the
section for the rest of the session.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QListWidgetItem

from app.widgets.video_player import VideoPlayer

#: the panels of the Porting section (hidden in the creator layout)
PORTING_PANELS = ("mapping", "parity")
SECTION_ROLE = Qt.ItemDataRole.UserRole + 1


class SidebarLayoutMixin:
    """For :class:`app.window.MainWindow` (``sidebar``, ``stack``, ``panels``, ``studio``)."""

    _porting_forced = False
    _porting_setting: bool | None = None
    _crisp_setting: bool | None = None

    def _add_section(self, title: str) -> QListWidgetItem:
        """A section header row (no panel: not selectable)."""
        item = QListWidgetItem(title.upper())
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        item.setData(SECTION_ROLE, title)
        font = QFont(self.sidebar.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.8))
        font.setBold(True)
        item.setFont(font)
        item.setForeground(QBrush(QColor("#7c8591")))
        self.sidebar.addItem(item)
        return item

    def _row_of(self, name: str) -> int:
        for i in range(self.sidebar.count()):
            if self.sidebar.item(i).data(Qt.ItemDataRole.UserRole) == name:
                return i
        return -1

    def _row_changed(self, row: int) -> None:
        item = self.sidebar.item(row) if row >= 0 else None
        name = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if name in self.panels:
            self.stack.setCurrentWidget(self.panels[name])
            self._panel_shown(name)

    def sidebar_names(self) -> list[str]:
        """The panels the sidebar shows now, in order (hidden rows left out)."""
        return [self.sidebar.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.sidebar.count())
                if self.sidebar.item(i).data(Qt.ItemDataRole.UserRole) and not self.sidebar.isRowHidden(i)]

    def porting_visible(self) -> bool:
        return bool(self.studio.settings.show_porting or self._porting_forced)

    def apply_layout(self) -> None:
        """Show or hide the Porting section (its header and panels) as Settings and this session ask."""
        show = self.porting_visible()
        for i in range(self.sidebar.count()):
            item = self.sidebar.item(i)
            if item.data(SECTION_ROLE) == "Porting" or item.data(Qt.ItemDataRole.UserRole) in PORTING_PANELS:
                self.sidebar.setRowHidden(i, not show)
        if not show and self.current_panel() in PORTING_PANELS:
            self.show_panel("models")

    def _reveal(self, name: str) -> None:
        """A porter panel asked for by name: show its section for this session."""
        if name in PORTING_PANELS and not self.porting_visible():
            self._porting_forced = True
            self.apply_layout()

    def _apply_settings_layout(self, settings) -> None:
        if self._porting_setting and not settings.show_porting:  # switched off in Settings: hide it again
            self._porting_forced = False
        self._porting_setting = settings.show_porting
        self.apply_layout()
        if settings.crisp_small_videos != self._crisp_setting:  # follow the setting when it changes
            self._crisp_setting = settings.crisp_small_videos
            VideoPlayer.crisp_default = settings.crisp_small_videos
            for player in self.findChildren(VideoPlayer):
                player.set_crisp(settings.crisp_small_videos)
