"""The preview and video players on their own."""

from __future__ import annotations

import numpy as np

from app.widgets.preview_player import PreviewPlayer
from app.widgets.video_player import VideoPlayer
from fastvideo.utils.media import write_video


def test_preview_player_animates_and_newest_replaces(qtbot):
    p = PreviewPlayer()
    qtbot.addWidget(p)
    p.show()
    frames = np.stack([np.full((6, 8, 3), 40 * i, np.uint8) for i in range(4)])
    p.set_frames(frames, step=1, total=10, fps=30)
    seen = set()
    qtbot.waitUntil(lambda: seen.add(p.index) or len(seen) == 4, timeout=3000)  # it loops through all frames
    p.set_frames(frames[:2], step=2, total=10)
    assert len(p.frames) == 2 and p.updates == 2 and p.step == 2
    p.clear("Preview is off")
    assert not p.view.has_image() and p.frames == []


def test_video_player_loop_scrub_and_missing_file(qtbot, tmp_path):
    frames = np.stack([np.full((32, 48, 3), 20 * i, np.uint8) for i in range(6)])
    path = write_video(frames, tmp_path / "v.mp4", fps=24)
    v = VideoPlayer()
    qtbot.addWidget(v)
    v.show()
    with qtbot.waitSignal(v.loaded, timeout=10000):
        v.load(str(path))
    assert len(v.frames) == 6 and v.is_playing() and v.fps == 24
    v.loop_box.setChecked(False)
    qtbot.waitUntil(lambda: not v.is_playing(), timeout=3000)  # stops at the end without loop
    assert v.index == 5 and v.play_button.text() == "Play"
    v.slider.setValue(2)
    assert v.index == 2 and "3/6" in v.time_label.text()
    v.play()
    assert v.is_playing()
    v.loop_box.setChecked(True)
    qtbot.wait(400)
    assert v.is_playing()  # loops
    with qtbot.waitSignal(v.failed, timeout=3000):
        v.load(str(tmp_path / "gone.mp4"))
    assert not v.play_button.isEnabled()
