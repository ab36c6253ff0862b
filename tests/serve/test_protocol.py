"""Framing round trips, preview payloads, garbage and partial frames."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from fastvideo.serve import protocol as P


def test_round_trip_header_and_payload():
    data = P.encode({"type": "log", "message": "héllo ✓", "n": 3}, b"\x00\x01\x02")
    msgs = P.FrameDecoder().feed(data)
    assert len(msgs) == 1
    assert msgs[0].header == {"type": "log", "message": "héllo ✓", "n": 3}
    assert msgs[0].payload == b"\x00\x01\x02"


def test_preview_travels_as_raw_bytes():
    frames = np.random.default_rng(0).integers(0, 255, size=(5, 12, 20, 3), dtype=np.uint8)
    data = P.encode_preview(frames, job_id="7", step=2, total=8)
    # The pixels are not in the JSON header.
    header_len = int.from_bytes(data[4:8], "big")
    header = json.loads(data[12:12 + header_len])
    assert header["shape"] == [5, 12, 20, 3] and header["dtype"] == "uint8"
    assert len(data) == 12 + header_len + frames.nbytes
    (msg,) = P.FrameDecoder().feed(data)
    assert msg.type == "preview" and msg["job_id"] == "7"
    np.testing.assert_array_equal(P.decode_preview(msg), frames)


def test_preview_rejects_bad_frames_and_bad_payload():
    with pytest.raises(P.ProtocolError):
        P.encode_preview(np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(P.ProtocolError):
        P.encode_preview(np.zeros((1, 4, 4, 3), np.float32))
    msg = P.Message({"type": "preview", "shape": [1, 4, 4, 3], "dtype": "uint8"}, b"\x00" * 10)
    with pytest.raises(P.ProtocolError, match="needs 48"):
        P.decode_preview(msg)


def test_partial_frames_byte_by_byte():
    frames = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    stream = P.encode({"type": "a"}) + P.encode_preview(frames, job_id="1") + P.encode({"type": "b", "x": 1})
    dec = P.FrameDecoder()
    out = []
    for i in range(len(stream)):
        out += dec.feed(stream[i:i + 1])
    assert [m.type for m in out] == ["a", "preview", "b"]
    assert dec.pending == 0 and dec.skipped_bytes == 0
    np.testing.assert_array_equal(P.decode_preview(out[1]), frames)


def test_random_chunking():
    rng = random.Random(1)
    msgs = [P.encode({"type": "t", "i": i}, bytes(rng.randrange(256) for _ in range(rng.randrange(50))))
            for i in range(200)]
    stream = b"".join(msgs)
    dec = P.FrameDecoder()
    out = []
    pos = 0
    while pos < len(stream):
        n = rng.randrange(1, 300)
        out += dec.feed(stream[pos:pos + n])
        pos += n
    assert [m["i"] for m in out] == list(range(200))


def test_garbage_between_frames_is_skipped_and_reported():
    stream = (b"garbage printed by a library\n" + P.encode({"type": "one"}) + b"FV\x00junk" +
              P.encode({"type": "two"}) + b"FVS")
    dec = P.FrameDecoder()
    out = dec.feed(stream)
    assert [m.type for m in out] == ["one", "two"]
    assert dec.skipped_bytes == len(b"garbage printed by a library\n") + len(b"FV\x00junk")
    assert dec.errors and "garbage" in dec.errors[0]
    # The trailing partial magic is kept: it may be the start of the next frame.
    assert dec.pending == 3
    assert [m.type for m in dec.feed(P.encode({"type": "three"})[3:])] == ["three"]


def test_bad_json_and_bad_lengths_are_dropped():
    bad_json = P.MAGIC + (5).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"{nope"
    no_type = P.MAGIC + (2).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"{}"
    huge = P.MAGIC + (P.MAX_HEADER_BYTES + 1).to_bytes(4, "big") + (0).to_bytes(4, "big")
    dec = P.FrameDecoder()
    out = dec.feed(bad_json + P.encode({"type": "ok1"}) + no_type + huge + P.encode({"type": "ok2"}))
    assert [m.type for m in out] == ["ok1", "ok2"]
    assert len(dec.errors) >= 3


def test_encode_validates_header():
    with pytest.raises(P.ProtocolError):
        P.encode({"no": "type"})
    with pytest.raises(P.ProtocolError):
        P.request("not_a_request")
    (msg,) = P.FrameDecoder().feed(P.request(P.REQ_GENERATE, "r1", job_id="3", params={"seed": np.int64(5)}))
    assert msg.header == {"type": "generate", "id": "r1", "job_id": "3", "params": {"seed": 5}}


def test_protocol_module_is_torch_and_qt_free():
    import subprocess
    import sys

    code = ("import sys, fastvideo.serve.protocol, fastvideo.serve; "
            "bad = [m for m in ('torch', 'PySide6') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
