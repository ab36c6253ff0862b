"""The sound of the video the player shows (LTX-2's AAC track), in step with the frames.

The frames stay ours (decoded with ffmpeg, drawn by :class:`~app.widgets.frame_view.FrameView`); only the audio
goes through QtMultimedia's ``QMediaPlayer`` with a ``QAudioOutput``.  QtMultimedia is loaded lazily: on Linux it
needs PulseAudio's client library (Debian ``libpulse0``) and an audio output; without either the player stays
silent and :attr:`SoundTrack.reason` says why and what to install, instead of failing.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QUrl, Signal

#: the audio may drift this far from the frame on screen before it is moved back (ms)
MAX_DRIFT_MS = 120
INSTALL_HINT = "on Debian/Ubuntu: sudo apt install libpulse0"


class SoundTrack(QObject):
    """Plays the audio of one file in step with a frame clock: :meth:`play_at`, :meth:`pause`, :meth:`seek`,
    :meth:`sync` take the time of the frame on screen."""

    #: state changed (available / reason)
    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.player = None
        self.output = None
        self.reason = ""  # why there is no sound ("" when there can be)
        self.muted = False
        self._source = ""
        self._started = False

    # ------------------------------------------------------------------ setup
    def _ensure(self) -> bool:
        """Make the media player on first use; False (and :attr:`reason`) when the system cannot play sound."""
        if self.player is not None:
            return True
        if self.reason:
            return False
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
        except ImportError as exc:  # libpulse.so.0 missing, most often
            self.reason = f"No sound: Qt's multimedia library could not load ({exc}); {INSTALL_HINT}"
            self.changed.emit()
            return False
        if not QMediaDevices.audioOutputs():
            self.reason = "No sound: no audio output device (is a sound server running?)"
            self.changed.emit()
            return False
        self.output = QAudioOutput(self)
        self.output.setMuted(self.muted)
        self.player = QMediaPlayer(self)
        self.player.setAudioOutput(self.output)
        self.player.errorOccurred.connect(self._error)
        return True

    def _error(self, _error, message: str) -> None:
        self.reason = f"No sound: {message}"
        self.changed.emit()

    @property
    def available(self) -> bool:
        return self._ensure()

    # ------------------------------------------------------------------ API
    def set_source(self, path: str | None) -> None:
        """The file whose audio plays next (None: none); nothing plays until :meth:`play_at`."""
        self._source = path or ""
        self._started = False
        if self.player is not None:
            self.player.stop()
            self.player.setSource(QUrl.fromLocalFile(self._source) if self._source else QUrl())

    def play_at(self, seconds: float) -> None:
        if not self._source or not self._ensure():
            return
        if self.player.source().isEmpty():
            self.player.setSource(QUrl.fromLocalFile(self._source))
        self.player.setPosition(int(seconds * 1000))
        self.player.play()
        self._started = True

    def pause(self) -> None:
        if self.player is not None:
            self.player.pause()

    def stop(self) -> None:
        self._started = False
        if self.player is not None:
            self.player.stop()

    def seek(self, seconds: float) -> None:
        if self.player is not None and self._started:
            self.player.setPosition(int(seconds * 1000))

    def sync(self, seconds: float) -> None:
        """Called on every frame while playing: move the audio back to the frame if it drifted."""
        if self.player is None or not self._started:
            return
        if abs(self.player.position() - seconds * 1000) > MAX_DRIFT_MS:
            self.player.setPosition(int(seconds * 1000))

    def set_muted(self, muted: bool) -> None:
        self.muted = bool(muted)
        if self.output is not None:
            self.output.setMuted(self.muted)

    def is_playing(self) -> bool:
        if self.player is None:
            return False
        from PySide6.QtMultimedia import QMediaPlayer

        return self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState
