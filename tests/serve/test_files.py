"""Files over the protocol, for a client on another host (the studio's remote engine, docs/protocol.md):
input images sent with ``put_file`` and named by token in ``generate``'s ``uploads``, and the finished
video streamed back (``stream_video``: ``file_chunk`` pieces, ``file_end`` with SHA-256) -- through the real
inference process and engine on a tiny I2V model."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import subprocess

import numpy as np

from fastvideo.serve import protocol as P


def _put(h, token: str, data: bytes, *, name="in.png", pieces=2, sha=None, skip_offset=0) -> str:
    """Send ``data`` as ``put_file`` pieces; returns the last piece's request id."""
    cut = len(data) // pieces
    parts = [data[i * cut:(i + 1) * cut if i < pieces - 1 else len(data)] for i in range(pieces)]
    offset, rid = 0, None
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        h._ids += 1
        rid = f"t{h._ids}"
        fields = dict(token=token, name=name, offset=offset + (skip_offset if i else 0), size=len(data), last=last)
        if last:
            fields["sha256"] = sha or hashlib.sha256(data).hexdigest()
        h.proc.stdin.write(P.request(P.REQ_PUT_FILE, rid, part, **fields))
        offset += len(part)
    h.proc.stdin.flush()
    return rid


def test_input_upload_and_streamed_video_on_the_real_engine(host_factory, tmp_path):
    from fastvideo.testing.tiny import make_tiny_model
    from fastvideo.utils.media import ffmpeg_exe

    model = make_tiny_model(tmp_path / "tiny-i2v", task="i2v", seed=0)
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    image = tmp_path / "client-side" / "in.png"
    image.parent.mkdir()
    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48", "-i", "-",
                    str(image)], input=frame.tobytes(), check=True)
    data = image.read_bytes()
    h = host_factory("--heartbeat", "0.5")
    token = secrets.token_hex(16)
    rid = _put(h, token, data, name="../../secret/in.png", pieces=3)
    stored = h.wait_for(lambda m: m.get("reply_to") == rid, timeout=30)
    assert stored.type == P.EV_FILE_STORED, stored.header
    remote_image = stored["path"]
    assert os.path.basename(remote_image) == "in.png" and open(remote_image, "rb").read() == data
    assert os.path.dirname(os.path.dirname(remote_image)) != str(image.parent)  # the engine's own temp folder
    h.send(P.REQ_GENERATE, job_id="1", model_path=str(model), stream_video=True, uploads={"image_path": token},
           params={"prompt": "a cat", "image_path": "/not/on/this/host.png", "output_path": str(tmp_path / "out"),
                   "width": 64, "height": 48, "num_frames": 5, "num_inference_steps": 2})
    result = h.wait_type(P.EV_RESULT, P.EV_ERROR, timeout=120)
    assert result.type == P.EV_RESULT, result.header
    assert result["settings"]["image_path"] == remote_image
    chunks = [m for m in h.all if m.type == P.EV_FILE_CHUNK]
    end = next(m for m in h.all if m.type == P.EV_FILE_END)
    video = b"".join(m.payload for m in chunks)
    assert [m["offset"] for m in chunks] == [sum(len(c.payload) for c in chunks[:i]) for i in range(len(chunks))]
    assert video == open(result["video_path"], "rb").read() and end["sha256"] == hashlib.sha256(video).hexdigest()
    assert h.all.index(end) < h.all.index(result)
    h.proc.stdin.close()  # the client goes away: the engine exits and removes the uploads
    assert h.proc.wait(30) == 0
    assert not os.path.exists(remote_image)


def test_bad_uploads_are_refused(host_factory, tmp_path):
    h = host_factory("--heartbeat", "0.5", "--engine", "fake_engine")
    data = os.urandom(5000)
    cases = {
        "token": _put(h, "not-a-token", data),
        "gap": _put(h, secrets.token_hex(16), data, skip_offset=7),
        "checksum": _put(h, secrets.token_hex(16), data, sha="0" * 64),
    }
    for what, rid in cases.items():
        err = h.wait_for(lambda m, rid=rid: m.get("reply_to") == rid and m.type == P.EV_ERROR, timeout=30)
        assert re.search({"token": "32 lowercase hex", "gap": "expected", "checksum": "did not arrive intact"}[what],
                         err["message"]), (what, err.header)
    h.send(P.REQ_GENERATE, job_id="2", model_path=str(tmp_path), uploads={"image_path": secrets.token_hex(16)},
           params={"prompt": "x"})
    err = h.wait_type(P.EV_ERROR, timeout=30)
    assert err["job_id"] == "2" and "no input file was stored" in err["message"], err.header
