"""Plays an MP4 inside the app: frames decoded with ffmpeg (fastvideo.utils.media), no system multimedia
library needed for them.  Loop, play/pause, scrub slider, frame counter; a video with sound (LTX-2) plays its
audio track in step through QtMultimedia (app.widgets.sound_track), or says why it cannot."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from app.services.background import run_in_background
from app.widgets.export_menu import ExportButton
from app.widgets.frame_view import FrameView, frame_to_qimage
from app.widgets.sound_track import SoundTrack

MAX_FRAMES = 400  # longer videos play their first MAX_FRAMES frames (memory)
MAX_WIDTH = 1280  # frames are kept at most this wide for display


def _decode(path: str, with_audio: bool = True):
    from PySide6.QtCore import Qt as _Qt

    from fastvideo.utils.media import MediaError, audio_stream, read_video

    frames, fps = read_video(path, max_frames=MAX_FRAMES)
    images = [frame_to_qimage(f) for f in frames]
    if images and images[0].width() > MAX_WIDTH:
        images = [im.scaledToWidth(MAX_WIDTH, _Qt.TransformationMode.SmoothTransformation) for im in images]
    audio = None
    if with_audio:  # (one more ffmpeg probe: players that stay silent skip it)
        try:
            audio = audio_stream(path)
        except (MediaError, OSError, ValueError):
            audio = None
    return images, fps, audio


class VideoPlayer(QWidget):
    loaded = Signal(str)  # path, once its frames are ready
    failed = Signal(str)  # message

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = FrameView(self, "No video")
        self.play_button = QPushButton("Pause", self)
        self.play_button.setObjectName("playButton")
        self.play_button.setFixedWidth(72)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("scrubSlider")
        self.time_label = QLabel("", self)
        self.time_label.setObjectName("dimLabel")
        self.time_label.setMinimumWidth(96)
        self.loop_box = QCheckBox("Loop", self)
        self.loop_box.setChecked(True)
        self.crisp_box = QCheckBox("Crisp", self)
        self.crisp_box.setToolTip("Scale small videos up with nearest-neighbour (crisp pixels) instead of blurring")
        self.crisp_box.setChecked(VideoPlayer.crisp_default)
        self.view.crisp = VideoPlayer.crisp_default
        self.sound = SoundTrack(self)
        self.sound_box = QCheckBox("Sound", self)
        self.sound_box.setChecked(True)
        self.sound_box.hide()  # shown for videos that have an audio track
        self.audio: dict | None = None  # the video's audio stream (codec, sample_rate, channels), if any
        self.export_button = ExportButton(self, self)
        self.export_note = QLabel("", self)
        self.export_note.setObjectName("dimLabel")
        self.export_note.setWordWrap(True)
        self.export_note.hide()
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 4, 0, 0)
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.time_label)
        controls.addWidget(self.loop_box)
        controls.addWidget(self.crisp_box)
        controls.addWidget(self.sound_box)
        controls.addWidget(self.export_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view, 1)
        lay.addLayout(controls)
        lay.addWidget(self.export_note)
        self.frames: list = []
        self.fps = 16.0
        self.index = 0
        self.path: str | None = None
        self._token = 0
        self._was_playing = False
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._advance)
        self.play_button.clicked.connect(self.toggle)
        self.slider.sliderPressed.connect(self._scrub_start)
        self.slider.sliderReleased.connect(self._scrub_end)
        self.slider.valueChanged.connect(self.seek)
        self.crisp_box.toggled.connect(self.set_crisp)
        self.sound_box.toggled.connect(lambda on: self.sound.set_muted(not on))
        self.export_button.exported.connect(lambda p: self._note(f"Exported {p}"))
        self.export_button.failed.connect(lambda m: self._note(f"Export failed: {m}"))
        self._set_enabled(False)

    #: crisp pixels for new players (Settings → Player; the window keeps it current)
    crisp_default = True

    # ------------------------------------------------------------------ API
    def set_crisp(self, on: bool) -> None:
        self.view.crisp = bool(on)
        if self.crisp_box.isChecked() != bool(on):
            self.crisp_box.setChecked(bool(on))
        self.view.update()

    def _note(self, text: str) -> None:
        self.export_note.setText(text)
        self.export_note.setVisible(bool(text))

    def load(self, path: str | None) -> None:
        self.stop()
        self.sound.stop()
        self.sound.set_source(None)
        self.audio = None
        self.sound_box.hide()
        self.frames = []
        self.path = path
        self._token += 1
        token = self._token
        self._set_enabled(False)
        self._note("")
        if not path:
            self.view.set_frame(None)
            self.view.set_placeholder("No video")
            return
        if not Path(path).is_file():
            self.view.set_frame(None)
            self.view.set_placeholder(f"The video file is missing:\n{path}")
            self.failed.emit(f"{path}: file not found")
            return
        self.view.set_placeholder("Loading video…")
        self.view.set_frame(None)
        run_in_background(lambda: _decode(path), lambda r: self._on_decoded(token, path, r),
                          lambda e: self._on_error(token, e))

    def is_playing(self) -> bool:
        return self._timer.isActive()

    def play(self) -> None:
        if len(self.frames) > 1:
            if self.index >= len(self.frames) - 1 and not self.loop_box.isChecked():
                self.seek(0)
            self._timer.start()
            self.play_button.setText("Pause")
            if self.audio:
                self.sound.play_at(self.index / self.fps)

    def stop(self) -> None:
        self._timer.stop()
        self.sound.pause()
        self.play_button.setText("Play")

    def toggle(self) -> None:
        if self.is_playing():
            self.stop()
        else:
            self.play()

    def seek(self, index: int) -> None:
        if not self.frames:
            return
        self.index = max(0, min(int(index), len(self.frames) - 1))
        self.view.set_frame(self.frames[self.index])
        if self.slider.value() != self.index:
            self.slider.blockSignals(True)
            self.slider.setValue(self.index)
            self.slider.blockSignals(False)
        self.sound.seek(self.index / self.fps)
        self._update_label()

    # ------------------------------------------------------------------ internals
    def _set_enabled(self, on: bool) -> None:
        for w in (self.play_button, self.slider, self.loop_box, self.export_button):
            w.setEnabled(on)
        if not on:
            self.time_label.setText("")

    def _on_decoded(self, token: int, path: str, result) -> None:
        if token != self._token:
            return
        frames, fps, audio = result
        self.frames = frames
        self.fps = fps or 16.0
        self._set_audio(path, audio)
        self._timer.setInterval(int(1000 / max(1.0, min(self.fps, 60.0))))
        self.slider.setRange(0, max(0, len(frames) - 1))
        self._set_enabled(True)
        self.seek(0)
        self.play()
        self.loaded.emit(path)

    def _on_error(self, token: int, exc: BaseException) -> None:
        if token != self._token:
            return
        self.view.set_frame(None)
        self.view.set_placeholder(f"Cannot play this video:\n{exc}")
        self.failed.emit(str(exc))

    def _set_audio(self, path: str, audio: dict | None) -> None:
        """A video with sound: its track plays in step (or the Sound box says why it cannot)."""
        self.audio = audio
        self.sound_box.setVisible(bool(audio))
        if not audio:
            return
        self.sound.set_source(path)
        if self.sound.available:
            self.sound_box.setEnabled(True)
            self.sound_box.setToolTip(f"Play the video's sound ({audio.get('codec')}, {audio.get('sample_rate')} Hz,"
                                      f" {audio.get('channels')} channel(s)); untick to mute")
        else:
            self.sound_box.setEnabled(False)
            self.sound_box.setToolTip(self.sound.reason)

    def _advance(self) -> None:
        if not self.frames:
            return
        nxt = self.index + 1
        if nxt >= len(self.frames):
            if not self.loop_box.isChecked():
                self.stop()
                return
            nxt = 0
        self.seek(nxt)
        if self.audio:
            if nxt == 0:
                self.sound.play_at(0.0)  # the loop starts over: so does the sound
            else:
                self.sound.sync(nxt / self.fps)

    def _scrub_start(self) -> None:
        self._was_playing = self.is_playing()
        self.stop()

    def _scrub_end(self) -> None:
        if self._was_playing:
            self.play()

    def _update_label(self) -> None:
        n = len(self.frames)
        secs = self.index / self.fps if self.fps else 0
        total = n / self.fps if self.fps else 0
        self.time_label.setText(f"{self.index + 1}/{n} · {secs:4.1f}/{total:.1f} s")

    def hideEvent(self, event) -> None:  # noqa: N802
        self._was_visible_playing = self.is_playing()
        self._timer.stop()
        self.sound.pause()
        super().hideEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802
        if getattr(self, "_was_visible_playing", False):
            self.play()
        super().showEvent(event)
