"""Faults in writing outputs (issue 20): concurrent runs into one folder, failed encodes,
``--output`` as a file, rejected requests, settings that are not valid JSON.

Every failure must leave the output folder exactly as it was (no final name, no temporary
file, no sidecar, no reserved placeholder); every success writes a video and its own sidecar.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from fastvideo import InvalidRequest, VideoGenerator
from fastvideo.utils import media
from fastvideo.utils.media import MediaError, read_metadata, read_video

TINY = dict(height=32, width=32, num_frames=5, num_inference_steps=2)
FRAMES = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its content."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(folder.rglob("*"))} if folder.exists() else {}


def fake_encoder(tmp_path: Path, body: str) -> str:
    """An executable standing in for ffmpeg; ``$REAL`` is the real one."""
    script = tmp_path / "fake-ffmpeg"
    script.write_text(f"#!/bin/sh\nREAL='{media.ffmpeg_exe()}'\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


# ---------------------------------------------------------------- 1. concurrent runs into one folder

@pytest.fixture(scope="module")
def second_generator(tiny_t2v):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v))
    yield gen
    gen.shutdown()


def test_two_parallel_runs_same_prompt_same_folder_get_their_own_files(t2v_generator, second_generator, tmp_path,
                                                                       monkeypatch):
    # Both runs pick their file name at the same moment: the stem is computed, then both wait for each other.
    barrier = threading.Barrier(2)
    real_stem = media.safe_stem

    def stem_in_lockstep(*args, **kwargs):
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        return real_stem(*args, **kwargs)

    monkeypatch.setattr(media, "safe_stem", stem_in_lockstep)
    results, errors = {}, []

    def run(gen, seed):
        try:
            results[seed] = gen.generate_video("same prompt", **TINY, seed=seed, output_path=str(tmp_path))
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(g, s)) for g, s in ((t2v_generator, 11), (second_generator, 22))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    paths = {seed: Path(r["video_path"]) for seed, r in results.items()}
    assert paths[11] != paths[22]
    assert {p.name for p in paths.values()} == {"same_prompt.mp4", "same_prompt_1.mp4"}
    for seed, path in paths.items():
        frames, _ = read_video(path)
        assert frames.shape == (5, 32, 32, 3)
        assert json.loads(path.with_suffix(".json").read_text())["seed"] == seed  # its own sidecar
        assert read_metadata(path)["seed"] == seed
    assert sorted(os.listdir(tmp_path)) == ["same_prompt.json", "same_prompt.mp4", "same_prompt_1.json",
                                            "same_prompt_1.mp4"]  # no temporary files left


def test_many_writers_same_stem_never_share_a_name(tmp_path):
    out, errors = [], []

    def write(i):
        try:
            out.append((i, media.write_generation(FRAMES, tmp_path, "clip", fps=8, metadata={"seed": i})))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len({p for _, p in out}) == 6
    for i, path in out:
        assert json.loads(path.with_suffix(".json").read_text()) == {"seed": i}
        assert read_metadata(path) == {"seed": i}
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


# ---------------------------------------------------------------- 2. a failed encode never gets the final name

def test_disk_full_midway_leaves_the_folder_as_before(t2v_generator, tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("earlier work")
    before = listing(tmp_path)
    real_pipe = media._pipe_frames

    def pipe_then_disk_full(stream, frames):
        real_pipe(stream, frames[:2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(media, "_pipe_frames", pipe_then_disk_full)
    with pytest.raises(MediaError, match="could not write the video: no space left on device"):
        t2v_generator.generate_video("a red fox", **TINY, output_path=str(tmp_path))
    assert listing(tmp_path) == before
    # The folder did not exist: it is not left behind either.
    with pytest.raises(MediaError, match="no space left on device"):
        media.write_generation(FRAMES, tmp_path / "new" / "sub", "clip", metadata={"seed": 1})
    assert listing(tmp_path) == before


def test_encoder_exit_status_is_checked(tmp_path, monkeypatch):
    exe = fake_encoder(tmp_path, 'cat >/dev/null\necho "fake: boom" >&2\nexit 1')
    monkeypatch.setattr(media, "ffmpeg_exe", lambda: exe)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match=r"could not write the video .*exit code 1.*fake: boom"):
        media.write_generation(FRAMES, out, "clip", metadata={"seed": 1})
    assert listing(out) == {}


def test_encoder_that_reports_no_space_says_so(tmp_path, monkeypatch):
    exe = fake_encoder(tmp_path, 'cat >/dev/null\necho "av_interleaved_write_frame(): No space left on device" >&2\n'
                                 'exit 1')
    monkeypatch.setattr(media, "ffmpeg_exe", lambda: exe)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match="could not write the video: no space left on device"):
        media.write_generation(FRAMES, out, "clip", metadata={"seed": 1})
    assert listing(out) == {}


def test_truncated_file_from_a_successful_encoder_is_not_kept(tmp_path, monkeypatch):
    # ffmpeg "succeeds" but the file is cut short (moov atom not found when read).
    body = ('"$REAL" "$@" || exit $?\nfor last; do :; done\n'
            'if [ "$last" != "-" ]; then truncate -s 300 "$last"; fi\nexit 0')
    exe = fake_encoder(tmp_path, body)
    monkeypatch.setattr(media, "ffmpeg_exe", lambda: exe)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match="could not write the video"):
        media.write_generation(FRAMES, out, "clip", metadata={"seed": 1})
    assert listing(out) == {}
    with pytest.raises(MediaError, match="could not write the video"):
        media.write_video(FRAMES, out / "exact.mp4", metadata={"seed": 1})
    assert listing(out) == {}


def test_short_write_is_caught_by_the_frame_count(tmp_path, monkeypatch):
    real_pipe = media._pipe_frames
    monkeypatch.setattr(media, "_pipe_frames", lambda stream, frames: real_pipe(stream, frames[:2]))
    with pytest.raises(MediaError, match="2 of 5 frames"):
        media.write_generation(FRAMES, tmp_path, "clip", metadata={"seed": 1})
    assert listing(tmp_path) == {}


# ---------------------------------------------------------------- 3. --output as a file or a folder

def test_output_path_to_an_mp4_file_writes_exactly_that_file(t2v_generator, tmp_path):
    target = tmp_path / "new" / "name.mp4"
    r = t2v_generator.generate_video("a cat", **TINY, seed=3, output_path=str(target))
    assert Path(r["video_path"]) == target and target.is_file() and not target.is_dir()
    assert json.loads((tmp_path / "new" / "name.json").read_text())["seed"] == 3
    assert sorted(os.listdir(tmp_path / "new")) == ["name.json", "name.mp4"]
    before = listing(tmp_path)
    with pytest.raises(InvalidRequest, match="already exists.*another file name.*folder") as exc:
        t2v_generator.generate_video("a cat", **TINY, seed=4, output_path=str(target))
    assert exc.value.field == "output_path"
    assert listing(tmp_path) == before  # not replaced, no name_1.mp4
    # A folder whose name ends in .mp4 is still a folder.
    (tmp_path / "clips.mp4").mkdir()
    r = t2v_generator.generate_video("a dog", **TINY, output_path=str(tmp_path / "clips.mp4"))
    assert Path(r["video_path"]) == tmp_path / "clips.mp4" / "a_dog.mp4"


def test_an_existing_sidecar_is_not_replaced_either(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(MediaError, match="already exists"):
        media.write_generation(FRAMES, tmp_path / "x.mp4", "ignored", metadata={"seed": 1})
    assert listing(tmp_path) == {"x.json": b"{}"}


def test_cli_output_file_and_folder(tiny_t2v, tmp_path, capsys):
    from fastvideo.entrypoints.cli.main import main

    args = ["generate", "--model", str(tiny_t2v), "--prompt", "a red circle", "--num-frames", "5", "--height", "32",
            "--width", "32", "--steps", "2", "--seed", "5", "--quiet"]
    assert main([*args, "--output", str(tmp_path / "x.mp4")]) == 0
    assert capsys.readouterr().out.split()[0] == str(tmp_path / "x.mp4")
    assert (tmp_path / "x.mp4").is_file() and json.loads((tmp_path / "x.json").read_text())["seed"] == 5
    before = listing(tmp_path)
    assert main([*args, "--output", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "folder" in err
    assert listing(tmp_path) == before
    assert main([*args, "--output", str(tmp_path / "folder")]) == 0
    assert capsys.readouterr().out.split()[0] == str(tmp_path / "folder" / "a_red_circle.mp4")
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "already exists" in " ".join(capsys.readouterr().out.split())


# ---------------------------------------------------------------- 4. rejected requests create nothing

@pytest.mark.parametrize("bad", [dict(prompt="   "), dict(height=70), dict(num_frames=6)])
@pytest.mark.parametrize("out", ["new/deeper", "new/deeper/file.mp4"])
def test_rejected_request_creates_no_output_folder(t2v_generator, tmp_path, bad, out):
    with pytest.raises(InvalidRequest):
        t2v_generator.generate_video(**{"prompt": "ok", **TINY, **bad}, output_path=str(tmp_path / out))
    assert not (tmp_path / "new").exists()


def test_cancelled_run_creates_no_output_folder(t2v_generator, tmp_path):
    from fastvideo import GenerationCancelled

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(GenerationCancelled):
        t2v_generator.generate_video("ok", **TINY, output_path=str(tmp_path / "new"), cancel_event=cancel)
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------- 5. the sidecar is always valid JSON

@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_settings_that_are_not_json_fail_clearly_and_write_nothing(tmp_path, value):
    with pytest.raises(MediaError, match="not valid JSON"):
        media.write_video(FRAMES, tmp_path / "v.mp4", metadata={"guidance_scale": value})
    assert listing(tmp_path) == {}
    with pytest.raises(MediaError, match="not valid JSON"):
        media.write_generation(FRAMES, tmp_path / "sub", "clip", metadata={"guidance_scale": value})
    assert listing(tmp_path) == {}


def test_replacing_write_video_keeps_the_old_file_when_it_fails(tmp_path, monkeypatch):
    old = media.write_video(FRAMES, tmp_path / "v.mp4", metadata={"seed": 1})
    before = listing(tmp_path)
    monkeypatch.setattr(media, "_pipe_frames", lambda stream, frames: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(MediaError, match="no space left"):
        media.write_video(FRAMES, old, metadata={"seed": 2})
    assert listing(tmp_path) == before


def test_frames_are_counted_without_progress_frame_lines(tmp_path, monkeypatch):
    # ffmpeg 7.0 (imageio-ffmpeg 0.6-0.7) prints no "frame=" progress line for a stream copy; a video it wrote
    # whole must still be counted and kept (it was refused as "truncated or unreadable" on such a machine).
    exe = fake_encoder(tmp_path, '"$REAL" "$@" | grep -v "^frame="\nexit 0')
    monkeypatch.setattr(media, "ffmpeg_exe", lambda: exe)
    out = tmp_path / "out"
    out.mkdir()
    path = media.write_video(FRAMES, out / "clip.mp4", metadata={"seed": 1})
    assert media._count_frames(path, path) == len(FRAMES)
