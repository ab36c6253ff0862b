"""Prompt history (issue 24): autocomplete from past prompts in the prompt box, and a searchable list."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog

from app.widgets.prompt_history import PromptHistoryDialog


def _queue(studio, model, *prompts):
    for p in prompts:
        studio.runner.submit(prompt=p, model_path=str(model), params={"seed": 1})


def test_recent_prompts(make_studio, fake_model):
    studio = make_studio(engine=None)
    studio.db.paused = True
    _queue(studio, fake_model, "a lighthouse at dusk", "a cat on a sofa", "a lighthouse at dusk", "50%_off sign")
    db = studio.db
    assert db.recent_prompts() == ["50%_off sign", "a lighthouse at dusk", "a cat on a sofa"]  # newest use first
    assert db.recent_prompts("LIGHT dusk") == ["a lighthouse at dusk"]
    assert db.recent_prompts("%_") == ["50%_off sign"]  # LIKE wildcards are literal
    assert db.recent_prompts("", limit=1) == ["50%_off sign"]


def test_autocomplete_and_search(make_studio, make_window, fake_model, qtbot, monkeypatch):
    studio = make_studio(engine=None)
    studio.db.paused = True
    _queue(studio, fake_model, "a red circle moving right", "a blue square moving left", "a lighthouse at dusk")
    win = make_window(studio)
    g = win.generate
    h = g.prompt_history
    g.prompt.setPlainText("moving")
    assert h.suggest() == ["a blue square moving left", "a red circle moving right"]
    assert h.completer.popup().isVisible() and h.model.stringList()[0] == "a blue square moving left"
    h.completer.activated[str].emit("a red circle moving right")  # what choosing a row in the popup does
    assert g.prompt.toPlainText() == "a red circle moving right" and not h.completer.popup().isVisible()
    g.prompt.setPlainText("mo")
    assert h.suggest() == []  # fewer than 3 characters: nothing
    assert len(h.suggest(force=True)) == 3  # Ctrl+Space: every past prompt
    g.prompt.setPlainText("a lighthouse at dusk")
    assert h.suggest() == []  # the prompt itself is not suggested
    # Typing in the focused box opens the popup by itself.
    win.activateWindow()
    g.prompt.setFocus()
    g.prompt.clear()
    qtbot.waitUntil(g.prompt.hasFocus, timeout=5000)
    qtbot.keyClicks(g.prompt, "squ")
    qtbot.waitUntil(lambda: h.completer.popup().isVisible(), timeout=5000)
    assert h.model.stringList() == ["a blue square moving left"]
    h.completer.popup().hide()
    # The searchable list.
    dialog = PromptHistoryDialog(studio.db.recent_prompts)
    qtbot.addWidget(dialog)
    assert dialog.list.count() == 3
    dialog.search.setText("dusk")
    assert dialog.list.count() == 1 and dialog.chosen() == "a lighthouse at dusk" and "1 prompt match" in dialog.count.text()
    monkeypatch.setattr(PromptHistoryDialog, "exec", lambda self: (self.search.setText("circle"),
                                                                   QDialog.DialogCode.Accepted)[1])
    assert h.open_dialog() == "a red circle moving right"
    assert g.prompt.toPlainText() == "a red circle moving right"
