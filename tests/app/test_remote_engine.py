"""The remote engine: the studio's inference process started through a real OpenSSH server on 127.0.0.1.

The test starts its own ``sshd`` (Debian's openssh-server; scripts/ci-system-deps.sh installs it) on a free
port, with a host key, an authorized client key and a known_hosts file it generates, for the current user,
from a config file in a temp folder: no /etc/ssh config or system service is used or changed.  (As root,
sshd insists on its privilege-separation folder /run/sshd; the test creates that empty folder when it is
missing, as the package's service would.)  Skipped when sshd is not installed.

Through ``ssh -o BatchMode=yes ... user@127.0.0.1 -- <python> -m fastvideo.serve`` the studio's job runner:

* generates a video with progress and previews; the video is written in the "remote" outputs folder,
  streamed back in the protocol (chunks + sha256) into the local outputs folder, and the job's result
  points at the local copy, byte-identical;
* cancels a running job (it ends ``cancelled``, the engine stays usable);
* loses the connection mid-job (the server side of the SSH session killed): the job is marked failed
  with "the connection ... was lost" within seconds, and the remote inference process exits.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.services.remote import FileReceiver, RemoteEngine, TransferError, safe_video_name
from tests.app.studio_wait import wait_until

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server/client not installed (apt-get install openssh-server openssh-client)")
    psutil = pytest.importorskip("psutil")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {(d / 'host_key.pub').read_text()}")
    user = getpass.getuser()
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", f"PidFile {d / 'sshd.pid'}", "UsePAM no", "StrictModes no",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password", f"AllowUsers {user}", ""]))
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("sshd did not start: " + (d / "sshd.log").read_text()[-2000:]) from None
                time.sleep(0.1)
        options = (f"-F /dev/null -i {d / 'client_key'} -o IdentitiesOnly=yes -o UserKnownHostsFile={d / 'known_hosts'} "
                   "-o StrictHostKeyChecking=yes")
        yield {"port": port, "user": user, "options": options, "dir": d, "proc": proc}
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):  # sessions still open: ours
            try:
                child.kill()
            except psutil.Error:
                pass
        proc.terminate()
        proc.wait(10)
        log.close()


def _engine(sshd, remote_out: Path, **kw) -> RemoteEngine:
    return RemoteEngine(host="127.0.0.1", user=sshd["user"], port=sshd["port"], python=sys.executable,
                        outputs=str(remote_out), ssh_options=sshd["options"], **kw)


@pytest.fixture
def remote_runner(sshd, tmp_path, qtbot):
    from app.services.jobs_db import JobsDB
    from app.services.runner import JobRunner
    from app.services.worker_client import WorkerClient

    db = JobsDB(tmp_path / "jobs.sqlite3")
    client = WorkerClient(remote=_engine(sshd, tmp_path / "remote-outputs"), heartbeat_interval=0.25,
                          hang_timeout=60, extra_args=["--test-hooks"])
    runner = JobRunner(db, client)
    seen = {"progress": [], "previews": 0, "states": {}, "notes": []}
    runner.job_progress.connect(lambda job, step, total, *_: seen["progress"].append((job, step, total)))
    runner.job_preview.connect(lambda *_: seen.__setitem__("previews", seen["previews"] + 1))
    runner.job_state.connect(lambda job, state: seen["states"].__setitem__(job, state))
    runner.notify.connect(lambda text, level: seen["notes"].append(text))
    yield runner, db, client, seen
    runner.shutdown(5)
    db.close()


def _params(out: Path, steps: int) -> dict:
    return {"width": 64, "height": 64, "num_frames": 9, "num_inference_steps": steps, "guidance_scale": 3.0,
            "seed": 7, "fps": 8, "output_path": str(out), "save_video": True, "preview": True}


def _finished(seen, job_id):
    return seen["states"].get(job_id) in ("done", "failed", "cancelled")


def test_generate_over_ssh_streams_the_video_back(remote_runner, tiny_model, tmp_path, qtbot):
    runner, db, client, seen = remote_runner
    local_out = tmp_path / "local-outputs"
    job_id = runner.submit(prompt="a red fox in the snow", model_path=str(tiny_model), params=_params(local_out, 3))
    wait_until(qtbot, lambda: _finished(seen, job_id), 150, "the remote job")
    job = db.get(job_id)
    assert job.state == "done", job.error
    assert client.remote is not None and client.hello and client.hello["pid"] != client.pid()  # a remote process
    local = Path(job.result["video_path"])
    remote = Path(job.result["remote_video_path"])
    assert local.parent == local_out and remote.parent == tmp_path / "remote-outputs"
    data = local.read_bytes()
    assert data == remote.read_bytes() and hashlib.sha256(data).hexdigest() == job.result["video_sha256"]
    assert [s for j, s, _ in seen["progress"] if j == job_id] == [1, 2, 3] and seen["previews"] >= 1
    assert not list(local_out.glob(".incoming-*"))  # no temp file left

    # Cancel reaches the remote engine; the job ends cancelled and the same process takes the next job.
    pid = client.hello["pid"]
    first = {}

    def cancel_at_first_step(job, step, total, *_):
        if job == cancel_id and not first:
            first["step"] = step
            runner.cancel(job)

    runner.job_progress.connect(cancel_at_first_step)
    cancel_id = runner.submit(prompt="a boat", model_path=str(tiny_model), params=_params(local_out, 400))
    wait_until(qtbot, lambda: _finished(seen, cancel_id), 120, "the cancelled job")
    runner.job_progress.disconnect(cancel_at_first_step)
    assert db.get(cancel_id).state == "cancelled" and client.hello["pid"] == pid
    assert len(list(local_out.glob("*.mp4"))) == 1


def test_a_dropped_connection_fails_the_job_and_the_remote_process_exits(remote_runner, sshd, tiny_model, tmp_path,
                                                                           qtbot):
    import psutil

    runner, db, client, seen = remote_runner
    dropped = {}

    def drop_at_first_step(job, step, total, *_):
        if not dropped:
            dropped["remote_pid"] = client.hello["pid"]
            for child in psutil.Process(sshd["proc"].pid).children(recursive=True):
                if child.pid != dropped["remote_pid"] and "sshd" in child.name():
                    child.kill()  # the SSH session's server side: the connection is gone
            dropped["t"] = time.monotonic()

    runner.job_progress.connect(drop_at_first_step)
    job_id = runner.submit(prompt="a boat", model_path=str(tiny_model), params=_params(tmp_path / "out", 400))
    wait_until(qtbot, lambda: _finished(seen, job_id), 120, "the job to fail")
    latency = time.monotonic() - dropped["t"]
    job = db.get(job_id)
    assert job.state == "failed" and "connection to" in job.error and "lost" in job.error, job.error
    print(f"dropped connection reported after {latency:.2f} s: {job.error.splitlines()[0]}")
    assert latency < 30
    end = time.monotonic() + 15
    while _alive(dropped["remote_pid"]) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _alive(dropped["remote_pid"]), "the remote inference process outlived its connection"
    assert client.state == "stopped"


def test_bad_settings_and_unreachable_hosts_are_reported(sshd, tmp_path, qtbot):
    from app.services.worker_client import WorkerClient

    assert "host" in RemoteEngine(host="").problem()
    assert "Not a host" in RemoteEngine(host="-oProxyCommand=x").problem()
    assert "Not a user" in RemoteEngine(host="gpu", user="a b").problem()
    program, args = RemoteEngine(host="gpu", user="me", port=2222, python="/opt/fv env/bin/python").command(
        ["--heartbeat", "1"])
    assert "BatchMode=yes" in args and args[args.index("-p") + 1] == "2222" and "me@gpu" in args
    assert args[-1] == "'/opt/fv env/bin/python' -m fastvideo.serve --heartbeat 1"  # quoted for the remote shell

    # A key the server does not accept: BatchMode fails at once with ssh's own message (no prompt, no hang).
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    engine = RemoteEngine(host="127.0.0.1", user=sshd["user"], port=sshd["port"], python=sys.executable,
                          ssh_options=sshd["options"].replace(str(sshd["dir"] / "client_key"), str(other)))
    client = WorkerClient(remote=engine, heartbeat_interval=0.25)
    reasons = []
    client.crashed.connect(reasons.append)
    client.start()
    wait_until(qtbot, lambda: reasons, 30, "the refused connection")
    assert "connection to" in reasons[0] and "Permission denied" in reasons[0], reasons[0]
    client.remote = RemoteEngine(host="127.0.0.1", user=sshd["user"], port=sshd["port"],
                                 python=str(tmp_path / "no-such-python"), ssh_options=sshd["options"])
    client.start()
    wait_until(qtbot, lambda: len(reasons) == 2, 30, "the missing remote Python")
    assert "no-such-python" in reasons[1] and "was not found on" in reasons[1], reasons[1]


def test_file_receiver_checks_every_piece(tmp_path):
    data = os.urandom(3000)
    sha = hashlib.sha256(data).hexdigest()
    rx = FileReceiver()
    rx.chunk("1", {"offset": 0, "size": 3000, "name": "../../etc/passwd"}, data[:1000], tmp_path)
    rx.chunk("1", {"offset": 1000, "size": 3000}, data[1000:], tmp_path)
    path = rx.finish("1", {"size": 3000, "sha256": sha})
    assert path.parent == tmp_path and path.name == "passwd.mp4" and path.read_bytes() == data
    rx.chunk("2", {"offset": 0, "size": 3000, "name": "passwd.mp4"}, data, tmp_path)
    assert rx.finish("2", {"size": 3000, "sha256": sha}).name == "passwd_1.mp4"  # never overwrites
    rx.chunk("3", {"offset": 0, "size": 3000, "name": "x.mp4"}, data, tmp_path)
    with pytest.raises(TransferError, match="did not arrive intact"):
        rx.finish("3", {"size": 3000, "sha256": "0" * 64})
    rx.chunk("4", {"offset": 0, "size": 3000, "name": "x.mp4"}, data[:10], tmp_path)
    with pytest.raises(TransferError, match="gap"):
        rx.chunk("4", {"offset": 20, "size": 3000}, data[20:30], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd.mp4", "passwd_1.mp4"]  # temp files removed
    assert safe_video_name("a b/c:d?.MP4") == "c_d_.mp4" and safe_video_name("") == "video.mp4"


def test_settings_engine_section(make_studio, qtbot, tmp_path):
    """Settings → Engine: remote fields shown only for a remote host, problems at their field, the saved
    choice reaches the inference process's launch (ssh, --ray-address) and the Generate form stops checking
    model folders locally."""
    from app.panels.generate_form import GenerateForm
    from app.panels.settings import SettingsPanel

    studio = make_studio(None)
    panel = SettingsPanel(studio)
    qtbot.addWidget(panel)
    panel.show()
    e = panel.engine
    assert not e.remote_box.isVisible() and studio.client.remote is None
    e.engine.setCurrentIndex(e.engine.findData("remote"))
    assert e.remote_box.isVisible()
    e.host.setText("-oProxyCommand=evil")
    assert panel.collect() is None and "Not a host" in e.rows["host"].error.text()
    e.host.setText("gpu-box")
    e.user.setText("me")
    e.python.setText("/opt/fv/bin/python")
    e.backend.setCurrentIndex(e.backend.findData("ray"))
    e.ray_address.setText("head:6379")
    panel.default_model.setEditText("/models/on/the/gpu-box")  # not a folder here: fine for a remote engine
    assert panel.save(), panel.status.text()
    s = studio.settings
    assert (s.engine, s.remote_host, s.remote_user, s.executor_backend) == ("remote", "gpu-box", "me", "ray")
    assert s.pipeline_options()["distributed_executor_backend"] == "ray"
    assert studio.client.remote.target == "me@gpu-box" and studio.client.extra_args[-2:] == ["--ray-address",
                                                                                            "head:6379"]
    program, args = studio.client.remote.command(["--heartbeat", "1"])
    assert args[-1].startswith("/opt/fv/bin/python -m fastvideo.serve")
    assert GenerateForm(remote_models=True).model_status("/models/on/the/gpu-box") == ("unknown", None)
    assert GenerateForm().model_status("/models/on/the/gpu-box")[0] == "problem"
    e.engine.setCurrentIndex(e.engine.findData("local"))
    assert panel.save() is False  # back to this computer: the default model must exist here again


def test_image_to_video_over_ssh_sends_the_input_image(remote_runner, tiny_i2v, tmp_path, qtbot):
    """An I2V job's local input image is sent to the remote engine first (put_file) and used from there."""
    import numpy as np
    from PIL import Image

    runner, db, client, seen = remote_runner
    image = tmp_path / "my image.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(image)
    params = {**_params(tmp_path / "local-outputs", 2), "width": 64, "height": 48, "num_frames": 5,
              "image_path": str(image)}
    job_id = runner.submit(prompt="a cat", model_path=str(tiny_i2v), params=params, task="i2v")
    wait_until(qtbot, lambda: _finished(seen, job_id), 150, "the remote I2V job")
    job = db.get(job_id)
    assert job.state == "done", job.error
    used = job.result["settings"]["image_path"]
    assert used != str(image) and "fastvideo-uploads-" in used and os.path.basename(used) == "my image.png"
    assert Path(job.result["video_path"]).parent == tmp_path / "local-outputs"
