"""The inference process's channel pieces in-process, over os.pipe(): heartbeats, the request reader,
printed output as log events, and the broken-channel signal (fastvideo.serve.channel)."""

from __future__ import annotations

import os
import threading
import time

from fastvideo.serve import channel
from fastvideo.serve import host as host_module
from fastvideo.serve import protocol as P
from fastvideo.serve.channel import Heartbeat, Outbox, RequestReader, forward_line, pump_output


def read_until(fd: int, done, timeout: float = 10.0) -> list[P.Message]:
    """Decode events from ``fd`` until ``done(messages)`` (or the time is up)."""
    dec, msgs = P.FrameDecoder(), []
    deadline = time.monotonic() + timeout
    while not done(msgs) and time.monotonic() < deadline:
        data = os.read(fd, 1 << 16)
        if not data:
            break
        msgs.extend(dec.feed(data))
    return msgs


def test_host_keeps_the_channel_names():
    assert host_module.Outbox is Outbox and host_module.capture_stdio is channel.capture_stdio
    assert host_module._LogHandler is channel.LogHandler and host_module._pump_output is pump_output


def test_heartbeat_numbers_its_beats_and_is_quiet_while_muted():
    r, w = os.pipe()
    out = Outbox(w, on_broken=lambda: None)
    stop, muted = threading.Event(), threading.Event()
    Heartbeat(out, 0.02, stop, muted, lambda: {"busy": False, "stage": None}).start()
    beats = read_until(r, lambda m: len(m) >= 3)
    assert [m.type for m in beats[:3]] == [P.EV_HEARTBEAT] * 3
    assert [m["seq"] for m in beats[:3]] == [1, 2, 3] and beats[0]["busy"] is False and "t" in beats[0].header
    muted.set()
    time.sleep(0.1)
    stop.set()
    out.close()
    os.close(r)


def test_request_reader_hands_on_requests_and_answers_failures():
    req_r, req_w = os.pipe()
    ev_r, ev_w = os.pipe()
    out = Outbox(ev_w, on_broken=lambda: None)
    stop = threading.Event()
    seen: list[str] = []

    def handle(msg: P.Message) -> None:
        seen.append(msg.type)
        if msg.type == P.REQ_PING and msg.get("id") == "bad":
            raise ValueError("broken ping")
        if msg.type == P.REQ_SHUTDOWN:
            stop.set()

    reader = RequestReader(req_r, out, handle, stop, lambda exc: {"error_type": type(exc).__name__,
                                                                   "message": str(exc)})
    reader.start()
    os.write(req_w, P.request(P.REQ_PING, "ok") + b"garbage" + P.request(P.REQ_PING, "bad"))
    events = read_until(ev_r, lambda m: any(e.type == P.EV_ERROR for e in m))
    error = next(e for e in events if e.type == P.EV_ERROR)
    assert error["reply_to"] == "bad" and error["error_type"] == "ValueError" and error["message"] == "broken ping"
    os.write(req_w, P.request(P.REQ_SHUTDOWN, "bye"))
    assert reader.done.wait(10) and reader.reason == "shutdown requested"
    assert seen == [P.REQ_PING, P.REQ_PING, P.REQ_SHUTDOWN]
    # Stdin closing ends a reader too.
    r2, w2 = os.pipe()
    reader2 = RequestReader(r2, out, handle, threading.Event(), lambda exc: {})
    reader2.start()
    os.close(w2)
    assert reader2.done.wait(10) and reader2.reason == "stdin closed"
    out.close()
    for fd in (req_r, req_w, ev_r, r2):
        os.close(fd)


def test_printed_output_becomes_log_events():
    out_r, out_w = os.pipe()
    ev_r, ev_w = os.pipe()
    out = Outbox(ev_w, on_broken=lambda: None)
    t = threading.Thread(target=pump_output, args=(out_r, out, None), daemon=True)
    t.start()
    os.write(out_w, b"loading weights\n\nWARNING: slow disk\npartial")
    os.close(out_w)  # the rest (no newline) still comes
    logs = read_until(ev_r, lambda m: len(m) >= 3)
    assert [(m["level"], m["message"]) for m in logs] == [
        ("info", "loading weights"), ("warning", "WARNING: slow disk"), ("info", "partial")]
    assert all(m["source"] == "output" for m in logs)
    forward_line(b"Traceback (most recent call last):", out, None)
    assert read_until(ev_r, lambda m: len(m) >= 1)[0]["level"] == "warning"
    out.close()
    os.close(ev_r)
    os.close(out_r)


def test_outbox_reports_a_broken_channel():
    r, w = os.pipe()
    os.close(r)  # the studio went away
    broken = threading.Event()
    out = Outbox(w, on_broken=broken.set)
    out.send({"type": P.EV_LOG, "level": "info", "message": "anyone?"})
    assert broken.wait(10)
    out.close(timeout=0.5)
    os.close(w)
