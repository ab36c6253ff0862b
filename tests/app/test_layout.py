"""The creator layout (issue 24): the porter panels (Weight mapping, Parity) stay out of the sidebar unless
Settings shows them under "Porting" or they are opened from elsewhere; Models stays. The player's crisp
default follows Settings."""

from __future__ import annotations

import dataclasses


def test_creator_layout_and_porting_section(make_studio, make_window):
    studio = make_studio(engine=None)
    win = make_window(studio)
    assert not studio.settings.show_porting
    assert win.sidebar_names() == ["generate", "queue", "history", "settings", "models"]
    assert win.panel_names()[-2:] == ["mapping", "parity"]  # they exist, hidden
    # Settings → Layout: the Porting section with both porter panels.
    win.settings.show_porting.setChecked(True)
    assert win.settings.save()
    assert win.sidebar_names() == ["generate", "queue", "history", "settings", "models", "mapping", "parity"]
    header = win.sidebar.item(win._row_of("models") + 1)
    assert header.text() == "PORTING" and not header.flags()  # a header, not selectable
    win.show_panel("parity")
    assert win.current_panel() == "parity" and win.stack.currentWidget() is win.parity
    # Switching it off hides the section and leaves its panel.
    win.settings.show_porting.setChecked(False)
    assert win.settings.save()
    assert "mapping" not in win.sidebar_names() and win.current_panel() == "models"
    # Opened from elsewhere (Models → Inspect mapping, View menu): the section shows for the session.
    win.show_panel("mapping")
    assert win.current_panel() == "mapping" and "parity" in win.sidebar_names()
    studio.save_settings(dataclasses.replace(studio.settings, num_gpus=1))  # another setting saved: still shown
    assert "mapping" in win.sidebar_names()
    # Clicking sidebar rows switches panels by name (the header row shifts the rows after it).
    win.sidebar.setCurrentRow(win._row_of("parity"))
    assert win.current_panel() == "parity"
    win.sidebar.setCurrentRow(win._row_of("models"))
    assert win.current_panel() == "models"
    # The View menu lists panels only (no header), Ctrl+1.. in sidebar order.
    texts = [a.text() for a in win.view_menu.actions()]
    assert texts == ["Generate", "Queue", "History", "Settings", "Models", "Weight mapping", "Parity"]
    assert win.view_menu.actions()[6].shortcut().toString() == "Ctrl+7"
    win.view_menu.actions()[0].trigger()
    assert win.current_panel() == "generate"


def test_crisp_default_follows_settings(make_studio, make_window):
    from app.widgets.video_player import VideoPlayer

    studio = make_studio(engine=None)
    win = make_window(studio)
    players = win.findChildren(VideoPlayer)
    assert len(players) >= 2 and all(p.view.crisp for p in players)
    win.settings.crisp.setChecked(False)
    assert win.settings.save()
    assert not any(p.view.crisp or p.crisp_box.isChecked() for p in players) and not VideoPlayer.crisp_default
    win.settings.crisp.setChecked(True)
    assert win.settings.save()
    assert all(p.view.crisp for p in players) and VideoPlayer.crisp_default
