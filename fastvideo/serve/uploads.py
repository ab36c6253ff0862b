"""Input files a client on another host sends to the inference process (``put_file`` pieces)."""

from __future__ import annotations

import os
from typing import Any

from fastvideo.serve import protocol as P
from fastvideo.serve.channel import Outbox
from fastvideo.serve.engine import error_fields


class Uploads:
    """Input files a client on another host sends (``put_file`` pieces), kept in a private temp folder that
    is removed when the process exits.  ``token`` (32 hex digits, the client's choice) names the file; the
    client's file name is only a hint (its last component, plain characters)."""

    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self._dir: str | None = None
        self._open: dict[str, Any] = {}  # token -> [file, path, received, sha256]
        self._done: dict[str, str] = {}  # token -> path

    def put(self, msg: P.Message) -> None:
        import hashlib
        import re
        import tempfile

        rid, token = msg.get("id"), str(msg.get("token") or "")
        try:
            if not re.fullmatch(r"[0-9a-f]{32}", token):
                raise ValueError("put_file needs a token of 32 lowercase hex digits")
            entry = self._open.get(token)
            if entry is None:
                if token in self._done or int(msg.get("offset", -1)) != 0:
                    raise ValueError(f"put_file {token}: the first piece must start at offset 0 (and only once)")
                if self._dir is None:
                    self._dir = tempfile.mkdtemp(prefix="fastvideo-uploads-")
                name = re.sub(r"[^A-Za-z0-9_.\- ]+", "_", str(msg.get("name") or "input").replace("\\", "/")
                              .rsplit("/", 1)[-1]).strip(" .") or "input"
                os.makedirs(os.path.join(self._dir, token))
                path = os.path.join(self._dir, token, name[:120])
                entry = self._open[token] = [open(path, "wb"), path, 0, hashlib.sha256()]
            if int(msg.get("offset", -1)) != entry[2]:
                raise ValueError(f"put_file {token}: a piece at offset {msg.get('offset')}, expected {entry[2]}")
            entry[0].write(msg.payload)
            entry[2] += len(msg.payload)
            entry[3].update(msg.payload)
            if msg.get("last"):
                del self._open[token]
                entry[0].close()
                if entry[2] != msg.get("size") or entry[3].hexdigest() != msg.get("sha256"):
                    os.remove(entry[1])
                    raise ValueError(f"put_file {token}: the file did not arrive intact ({entry[2]} bytes)")
                self._done[token] = entry[1]
                self.outbox.send({"type": P.EV_FILE_STORED, "reply_to": rid, "token": token, "path": entry[1],
                                  "size": entry[2]})
        except (ValueError, OSError) as exc:
            bad = self._open.pop(token, None)
            if bad is not None:
                bad[0].close()
            self.outbox.send({"type": P.EV_ERROR, "reply_to": rid, **error_fields(exc)})

    def path(self, token: str) -> str:
        if token not in self._done:
            raise ValueError(f"no input file was stored under {token!r} (put_file first; it may have failed)")
        return self._done[token]

    def cleanup(self) -> None:
        import shutil

        for entry in self._open.values():
            entry[0].close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
