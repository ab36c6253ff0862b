"""The studio's player plays a video's sound (LTX-2 writes an AAC track) in step with its frames.

* No sound server (the usual test run): a video with sound shows a disabled *Sound* box that says why; a silent
  video shows none.
* A private PulseAudio server with a null sink (Debian ``pulseaudio``; ``.ci/run`` installs it): the real player,
  in its own process, plays a 440 Hz tone video; what reaches the sink is recorded from its monitor with
  ``parec`` and must be that tone (not silence); muting (untick *Sound*) brings silence.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from studio_wait import wait_until

from fastvideo.utils.media import write_video

RATE = 24000


def _video(path: Path, sound: bool, seconds: float = 3.0, fps: int = 8) -> Path:
    n = int(seconds * fps)
    frames = np.zeros((n, 32, 32, 3), dtype=np.uint8)
    frames[..., 0] = np.linspace(0, 255, n, dtype=np.uint8)[:, None, None]
    audio = None
    if sound:
        t = np.arange(int(seconds * RATE)) / RATE
        audio = np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
    return write_video(frames, path, fps=fps, sidecar=False, audio=audio, sample_rate=RATE if sound else None)


def test_sound_box_without_a_sound_server(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/no-server")
    from app.widgets.video_player import VideoPlayer

    player = VideoPlayer()
    qtbot.addWidget(player)
    loaded = []
    player.loaded.connect(loaded.append)
    player.load(str(_video(tmp_path / "silent.mp4", sound=False)))
    wait_until(qtbot, lambda: loaded, 60, "silent video")
    assert player.audio is None and not player.sound_box.isVisibleTo(player)
    player.load(str(_video(tmp_path / "tone.mp4", sound=True)))
    wait_until(qtbot, lambda: len(loaded) == 2, 60, "video with sound")
    assert player.audio == {"codec": "aac", "sample_rate": RATE, "channels": 2}
    assert player.sound_box.isVisibleTo(player)
    if player.sound.available:  # a sound server after all (a desktop session): then it plays
        assert player.sound_box.isEnabled()
    else:
        assert not player.sound_box.isEnabled() and player.sound_box.toolTip().startswith("No sound")


PLAY = textwrap.dedent("""
    import sys, time
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from app.widgets.video_player import VideoPlayer
    p = VideoPlayer()
    p.show()
    p.load(sys.argv[1])
    deadline = time.monotonic() + 60
    while not p.frames and time.monotonic() < deadline:
        app.processEvents(); time.sleep(0.01)
    assert p.audio and p.sound.available and p.sound_box.isEnabled(), p.sound.reason
    mute_after = float(sys.argv[2])
    # the clock starts once the sound really plays (a loaded machine may take a while to open the stream)
    while not (p.sound.is_playing() and p.sound.player.position() > 200) and time.monotonic() < deadline:
        app.processEvents(); time.sleep(0.005)
    assert p.sound.is_playing(), "the sound never started"
    start = time.monotonic()
    print("playing", flush=True)
    while time.monotonic() - start < 2 * mute_after:
        app.processEvents(); time.sleep(0.005)
        if time.monotonic() - start > mute_after and p.sound_box.isChecked():
            print("position", p.sound.player.position(), "index", p.index, flush=True)
            p.sound_box.setChecked(False)
            print("muted", flush=True)
""")


def _rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float64) / 32768
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


@pytest.mark.skipif(not (shutil.which("pulseaudio") and shutil.which("parec")),
                    reason="needs PulseAudio (Debian pulseaudio, pulseaudio-utils) for a null audio sink")
def test_the_player_plays_the_sound_in_a_real_audio_server(tmp_path):
    root = Path(__file__).resolve().parents[2]
    runtime = tmp_path / "pulse-runtime"
    runtime.mkdir(mode=0o700)
    socket = runtime / "native"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path), "PULSE_SERVER": f"unix:{socket}",
           "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(root)}
    server = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
         "-L", "module-null-sink sink_name=fv_null", "-L", f"module-native-protocol-unix socket={socket}",
         "-L", "module-always-sink"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "PulseAudio did not start"
            time.sleep(0.2)
        video = _video(tmp_path / "tone.mp4", sound=True, seconds=6.0)
        raw = (tmp_path / "recorded.s16").open("wb")  # a file, not a pipe: a full pipe would stall parec
        rec = subprocess.Popen(["parec", "-d", "fv_null.monitor", "--format=s16le", "--rate=24000", "--channels=1",
                                "--latency-msec=20"], env=env, stdout=raw)
        try:
            play = subprocess.Popen([sys.executable, "-c", PLAY, str(video), "2.0"], env=env, cwd=root,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = play.communicate(timeout=120)
        finally:
            time.sleep(0.5)
            rec.send_signal(signal.SIGINT)  # parec flushes what it recorded and exits
            rec.wait(timeout=10)
            raw.close()
            pcm = (tmp_path / "recorded.s16").read_bytes()
        assert play.returncode == 0, err[-3000:]
        assert "playing" in out and "muted" in out
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16)
        # the loudest second is the tone: 0.5 amplitude -> RMS 0.35 (AAC and resampling aside); muted: silence
        second = RATE
        levels = [_rms(samples[i:i + second].tobytes()) for i in range(0, len(samples) - second, second // 4)]
        print(f"\nrecorded {len(samples) / RATE:.1f} s; RMS per second (every 0.25 s): "
              + " ".join(f"{v:.3f}" for v in levels) + f"\n{out.strip()}")
        assert max(levels) > 0.05, "no tone reached the audio server"
        assert levels[-1] < 0.01, "muting left sound playing"
        start = int(np.argmax(np.abs(samples.astype(np.int32)))) // second * second
        loud = samples[start:start + second].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(loud))
        peak_hz = float(np.argmax(spectrum[1:]) + 1) * RATE / len(loud)
        assert abs(peak_hz - 440) < 10, peak_hz  # the video's tone, not noise
    finally:
        server.terminate()
        server.wait(timeout=10)
