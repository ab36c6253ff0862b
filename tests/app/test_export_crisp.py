"""Export (issue 24): the current frame as PNG, a clip as GIF / WebP (with crisp nearest-neighbour scaling),
and small videos shown with crisp pixels instead of blurred."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.services.export import ExportError, export_clip, export_frame
from fastvideo.utils.media import write_video


def _video(tmp_path, n=6, h=16, w=24):
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i, :, : (i + 1) * 4] = (255, 0, 0)  # a red bar that grows each frame
        frames[i, h // 2:, :, 2] = 255
    return write_video(frames, tmp_path / "v.mp4", fps=8, metadata=None, lossless=True), frames


def test_export_frame_and_clips(tmp_path):
    path, frames = _video(tmp_path)
    png = export_frame(str(path), 2, tmp_path / "f.png", scale=4)
    im = np.asarray(Image.open(png).convert("RGB"))
    assert im.shape == (64, 96, 3)
    assert np.abs(im[::4, ::4].astype(int) - frames[2]).max() <= 3  # nearest-neighbour: 4x4 blocks of one pixel
    assert (im[0:4, 0:4] == im[0, 0]).all()
    gif = export_clip(str(path), tmp_path / "c.gif", start=1, end=4, scale=2)
    with Image.open(gif) as g:
        # 8 fps: 125 ms a frame, which GIF stores in 10 ms steps
        assert g.format == "GIF" and g.n_frames == 4 and g.size == (48, 32) and g.info["duration"] in (120, 130)
    webp = export_clip(str(path), tmp_path / "c.webp")
    with Image.open(webp) as w:
        assert w.format == "WEBP" and w.n_frames == 6 and w.size == (24, 16)
        w.seek(5)
        assert np.abs(np.asarray(w.convert("RGB")).astype(int) - frames[5]).max() <= 3  # lossless
    for bad, match in (((tmp_path / "c.mp4",), "gif or .webp"), ((tmp_path / "c.gif", 4, 2), "not a range"),
                       ((tmp_path / "c.gif", 0, 9), "6 frames"), ((tmp_path / "nope" / "c.gif",), "does not exist")):
        with pytest.raises(ExportError, match=match):
            export_clip(str(path), *bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.gif", "c.webp", "f.png", "v.mp4"]  # no temp files left


def test_player_exports_and_draws_crisp(qtbot, tmp_path):
    from PySide6.QtGui import QImage

    from app.widgets.video_player import VideoPlayer

    path, frames = _video(tmp_path)
    p = VideoPlayer()
    qtbot.addWidget(p)
    p.resize(400, 360)
    p.show()
    assert not p.export_button.isEnabled()
    p.load(str(path))
    qtbot.waitUntil(lambda: len(p.frames) == 6, timeout=10000)
    p.stop()
    p.seek(3)
    assert p.export_button.isEnabled() and p.crisp_box.isChecked() and p.view.crisp
    with qtbot.waitSignal(p.export_button.exported, timeout=10000) as sig:
        p.export_button.export_frame(str(tmp_path / "frame.png"), 2)
    assert sig.args == [str(tmp_path / "frame.png")] and "Exported" in p.export_note.text()
    assert Image.open(tmp_path / "frame.png").size == (48, 32)
    with qtbot.waitSignal(p.export_button.failed, timeout=10000) as sig:
        p.export_button.export_clip(str(tmp_path / "clip.avi"), 0, None)
    assert "gif or .webp" in sig.args[0] and "Export failed" in p.export_note.text()
    with qtbot.waitSignal(p.export_button.exported, timeout=10000):
        p.export_button.export_clip(str(tmp_path / "clip.gif"), 0, None, 3)
    assert Image.open(tmp_path / "clip.gif").n_frames == 6

    def grab() -> QImage:
        return p.view.grab().toImage()

    def edge_colours(img: QImage) -> int:
        row = img.height() // 2 - 40  # a row inside the red/black top half
        return len({img.pixelColor(x, row).rgb() for x in range(img.width())})

    crisp = grab()
    p.set_crisp(False)
    assert not p.crisp_box.isChecked()
    smooth = grab()
    # Crisp: only the frame's own colours (plus the background); smooth: blended edge colours too.
    assert edge_colours(crisp) <= 3 < edge_colours(smooth)
    p.crisp_box.setChecked(True)
    assert p.view.crisp
