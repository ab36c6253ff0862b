"""Starting a worker rank in a fresh interpreter that never runs the caller's ``__main__``.

``multiprocessing``'s spawn start method re-imports the parent's main module in
every child (as ``__mp_main__``).  A user script without an
``if __name__ == "__main__":`` guard then runs again in each rank, tries to start
ranks of its own while bootstrapping and dies ("worker rank 0 died: exited with
code 1").  :class:`RankProcess` avoids that: it runs
``python -c "<import fastvideo.worker.launch; child_main(...)>"`` with the
parent's ``sys.path``, hands the rank its end of a socket pair (a
``multiprocessing.connection.Connection``, the same as ``Pipe(duplex=True)``)
and sends ``(spec, info, config)`` over it.  Only fastvideo modules are imported
in the child, so a script with or without the guard behaves the same.

The object offers what the executor uses of ``multiprocessing.Process``: ``pid``,
``sentinel`` (a file descriptor readable once the process has exited: the read end
of a pipe whose only write end the child holds), ``exitcode`` (negative signal
number when killed, like multiprocessing), ``is_alive``, ``join``, ``terminate``,
``kill``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection

_BOOT = (
    "import json, sys; "
    "sys.path[1:1] = [p for p in json.loads(sys.argv[3]) if p not in sys.path]; "
    "from fastvideo.worker.launch import child_main; "
    "child_main(int(sys.argv[1]), int(sys.argv[2]))"
)


class RankProcess:
    def __init__(self, payload: tuple, name: str):
        self.name = name
        parent_sock, child_sock = socket.socketpair()
        alive_r, alive_w = os.pipe()
        child_fd = child_sock.detach()
        try:
            path = [os.getcwd() if p == "" else p for p in sys.path]
            self._popen = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(child_fd), str(alive_w), json.dumps(path), name],
                pass_fds=(child_fd, alive_w), close_fds=True,
            )
        except BaseException:
            os.close(alive_r)
            parent_sock.close()
            raise
        finally:
            os.close(child_fd)
            os.close(alive_w)
        self.pid = self._popen.pid
        self.sentinel = alive_r
        self.conn = Connection(parent_sock.detach())
        try:
            self.conn.send(payload)
        except OSError:
            pass  # the child died at once; the sentinel and exitcode tell why

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def terminate(self) -> None:
        if self._popen.poll() is None:
            self._popen.terminate()

    def kill(self) -> None:
        if self._popen.poll() is None:
            self._popen.kill()

    def close(self) -> None:
        """Release the sentinel (after the process has been joined)."""
        if self.sentinel is not None:
            os.close(self.sentinel)
            self.sentinel = None


def child_main(conn_fd: int, alive_fd: int) -> None:
    """The child's side: receive (spec, info, config) and run the rank."""
    os.set_inheritable(conn_fd, False)
    os.set_inheritable(alive_fd, False)  # held open until exit, never passed on: the parent's sentinel
    conn = Connection(conn_fd)
    try:
        spec, info, config = conn.recv()
    except (EOFError, OSError):
        os._exit(3)  # the parent went away before sending the rank's spec
    from fastvideo.worker.worker import worker_main

    worker_main(spec, info, config, conn)
