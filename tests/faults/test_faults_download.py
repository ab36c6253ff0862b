"""Fault: a hub (or HF_ENDPOINT mirror) lists file names that lead outside the download folder.

Each unsafe name must fail the whole download with :class:`UnsafeFileNameError` before anything
(file, partial file, folder) is created, from the API, the CLI and the studio's download service.

The last tests pin down what the installed ``huggingface_hub`` does itself (so the transfer stays
ours): it rejects ``..``/absolute/drive names, but one file at a time (other files of the repo are
already written when ``snapshot_download`` meets the bad one), it does not keep partial data across
an interruption (every retry after giving up starts from byte 0) and it does not check the sha256
of LFS files.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastvideo.hub import UnsafeFileNameError, download_repo, plan_download
from fastvideo.hub.download import DownloadPlan, RepoFile, check_file_names, unsafe_name_reason
from fastvideo.testing.hub_server import LocalHub

REPO = "fault-org/evil"
WEIGHTS = "vae/diffusion_pytorch_model.safetensors"  # LFS (served through the "CDN" redirect)

# name listed by the hub -> where a naive join would put it, relative to the target folder
UNSAFE = {
    "absolute": None,  # filled per test: an absolute path inside tmp_path (never the real /tmp)
    "dotdot": "../../x",
    "nested-dotdot": "sub/../../../x",
    "backslash": "..\\x",
    "drive": "C:/x",
}


@pytest.fixture(autouse=True)
def _no_ambient_hub_config(no_ambient_hub_config):
    """No token, endpoint or offline flag from the developer's environment (tests/conftest.py)."""


@pytest.fixture
def repo_folder(tmp_path):
    d = tmp_path / "src" / "evil"
    (d / "vae").mkdir(parents=True)
    (d / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    (d / "vae" / "config.json").write_text('{"a": 1}')
    (d / WEIGHTS).write_bytes(os.urandom(200_000))
    (tmp_path / "src" / "payload").write_bytes(b"pwned\n" * 1000)
    return d


@pytest.fixture
def hub(repo_folder):
    with LocalHub(max_lifetime=120) as h:
        h.add_repo(REPO, repo_folder)
        yield h


@pytest.fixture
def work(tmp_path):
    """tmp_path/work/d1/d2/target: `../../x` from the target (or its partial folder) stays under work/."""
    target = tmp_path / "work" / "d1" / "d2" / "target"
    target.parent.mkdir(parents=True)
    return target


def _name(case: str, tmp_path: Path) -> str:
    return (tmp_path / "work" / "abs" / "x").as_posix() if case == "absolute" else UNSAFE[case]


def _files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() or p.is_symlink())


def _assert_nothing_written(work_root: Path, target: Path) -> None:
    assert _files_under(work_root) == [], "nothing anywhere: no file, no partial file, inside or outside"
    assert not target.exists() or not any(target.iterdir())


@pytest.mark.parametrize("case", list(UNSAFE))
def test_api_rejects_unsafe_name_before_writing(case, hub, work, tmp_path):
    name = _name(case, tmp_path)
    hub.add_file(REPO, name, tmp_path / "src" / "payload")
    hub.reset_counters()

    with pytest.raises(UnsafeFileNameError) as err:
        download_repo(REPO, work, endpoint=hub.url)
    assert err.value.filename == name
    msg = str(err.value)
    assert repr(name) in msg and "unsafe file name" in msg and "Nothing was downloaded" in msg
    _assert_nothing_written(tmp_path / "work", work)
    assert hub.bytes_served() == 0 and all("/resolve/" not in r.path for r in hub.requests)

    # the plan itself (what the studio's service and --dry-run use) refuses, whatever the patterns
    with pytest.raises(UnsafeFileNameError):
        plan_download(REPO, endpoint=hub.url, allow_patterns="vae/*")


@pytest.mark.parametrize("case", list(UNSAFE))
def test_cli_exits_nonzero_with_message(case, hub, work, tmp_path, capsys):
    from fastvideo.entrypoints.cli.main import main

    name = _name(case, tmp_path)
    hub.add_file(REPO, name, tmp_path / "src" / "payload")
    args = ["download", "--repo-id", REPO, "--local-dir", str(work), "--endpoint", hub.url]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "unsafe file name" in err and repr(name) in err
    assert "Traceback" not in err
    assert main(args + ["--dry-run"]) == 1
    assert main(args + ["--json"]) == 1
    assert '"error": "UnsafeFileNameError"' in capsys.readouterr().out
    _assert_nothing_written(tmp_path / "work", work)


def test_cli_subprocess_exit_code(hub, work, tmp_path):
    hub.add_file(REPO, "sub/../../../x", tmp_path / "src" / "payload")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "hf")
    proc = subprocess.run([sys.executable, "-m", "fastvideo", "download", "--repo-id", REPO, "--local-dir",
                           str(work), "--endpoint", hub.url], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 1, proc.stderr
    assert "unsafe file name 'sub/../../../x'" in proc.stderr and "Traceback" not in proc.stderr
    _assert_nothing_written(tmp_path / "work", work)


def test_symlink_inside_target_leading_outside_is_refused(hub, work, tmp_path):
    outside = tmp_path / "work" / "outside"
    outside.mkdir()
    work.mkdir()
    (work / "vae").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeFileNameError, match="symlink"):
        download_repo(REPO, work, endpoint=hub.url)
    assert _files_under(outside) == []
    assert [p.name for p in work.iterdir()] == ["vae"]


def test_safe_names_still_download(hub, repo_folder, work):
    out = download_repo(REPO, work, endpoint=hub.url)
    assert (out / WEIGHTS).read_bytes() == (repo_folder / WEIGHTS).read_bytes()


@pytest.mark.parametrize("name", ["", "a//b", "a/", "./a", "a/./b", "a\x00b", "a\nb", "\\\\host\\share\\x",
                                  "D:x", "vae/C:x", ".fastvideo-partial/x", ".fastvideo-download.json"])
def test_more_unsafe_names_and_etags(name):
    assert unsafe_name_reason(name) is not None
    plan = DownloadPlan(REPO, "main", "0" * 40, "http://h", (RepoFile(name, 1, "ab" * 20),))
    with pytest.raises(UnsafeFileNameError):
        check_file_names(plan)


def test_unsafe_etag_is_refused():
    for name in ["vae/config.json", "a..b/c", ".gitattributes", "x/..."]:
        assert unsafe_name_reason(name) is None
    plan = DownloadPlan(REPO, "main", "0" * 40, "http://h", (RepoFile("w.bin", 1, "../../../../x/y"),))
    with pytest.raises(UnsafeFileNameError, match="etag"):  # the etag names the partial file
        check_file_names(plan)


def test_studio_service_reports_it(hub, work, tmp_path):
    from app.services.downloads import Download

    hub.add_file(REPO, "../../x", tmp_path / "src" / "payload")
    job = Download(REPO, work, endpoint=hub.url)
    job.start()
    assert job.wait(60)
    assert job.state == "failed"
    kind, title, message = job.error
    assert kind == "UnsafeFileNameError" and title == "Unsafe file name in the repo"
    assert "'../../x'" in message
    _assert_nothing_written(tmp_path / "work", work)


# ------------------------------------------------------------- what huggingface_hub does itself
def test_hf_hub_download_guards_names_one_file_at_a_time(hub, tmp_path):
    """huggingface_hub (2.x) refuses ``..``/absolute/drive names per file, but ``snapshot_download``
    checks each name only when it reaches that file: the repo's other files are already written."""
    import huggingface_hub
    from huggingface_hub import hf_hub_download, snapshot_download

    for case in ("dotdot", "absolute", "drive"):
        with pytest.raises(ValueError):
            hf_hub_download(REPO, _name(case, tmp_path), local_dir=tmp_path / "work" / "one",
                            endpoint=hub.url, cache_dir=tmp_path / "hf")
    assert _files_under(tmp_path / "work") == []

    hub.add_file(REPO, "sub/../../../x", tmp_path / "src" / "payload")  # listed last
    local = tmp_path / "work" / "snap"
    with pytest.raises(ValueError):
        snapshot_download(REPO, local_dir=local, endpoint=hub.url, cache_dir=tmp_path / "hf", max_workers=1)
    written = [f for f in _files_under(local) if not f.startswith(".cache/")]
    assert written, f"huggingface_hub {huggingface_hub.__version__} now checks all names first: " \
                    "reconsider using snapshot_download"
    assert "model_index.json" in written  # a half-written folder that looks like a model


def test_hf_hub_download_does_not_resume_or_verify(hub, repo_folder, tmp_path, monkeypatch):
    """After its in-call retries, hf_hub_download(local_dir=...) deletes the partial data (a new
    run starts from byte 0, our download_repo continues), and it accepts LFS content whose sha256
    differs from the hub's (our download_repo raises IntegrityError)."""
    import httpx2
    import huggingface_hub.file_download as fd
    from huggingface_hub import hf_hub_download

    from fastvideo.hub import IntegrityError

    monkeypatch.setattr(fd.time, "sleep", lambda s: None)  # its fixed 1 s retry waits (nothing else sleeps)
    size = (repo_folder / WEIGHTS).stat().st_size
    local = tmp_path / "work" / "lib"
    hub.fail_after(REPO, WEIGHTS, 100_000, times=50)
    with pytest.raises(httpx2.TransportError):  # the connection dropped more often than it retries
        hf_hub_download(REPO, WEIGHTS, local_dir=local, endpoint=hub.url, cache_dir=tmp_path / "hf")
    left = [f for f in _files_under(local) if f.endswith(".incomplete")]
    assert left == [], "huggingface_hub now keeps partial data: reconsider using it for the transfer"
    hub.fail_after(REPO, WEIGHTS, 0, times=0)
    hub.reset_counters()
    hf_hub_download(REPO, WEIGHTS, local_dir=local, endpoint=hub.url, cache_dir=tmp_path / "hf")
    assert hub.bytes_served(REPO, WEIGHTS) == size  # from byte 0 again
    assert all(r.range is None for r in hub.requests)

    # same size, other bytes than the listing's sha256 (the server reads the file when asked)
    expected = hashlib.sha256((repo_folder / WEIGHTS).read_bytes()).hexdigest()
    (repo_folder / WEIGHTS).write_bytes(b"\0" * size)
    (local / WEIGHTS).unlink()
    hf_hub_download(REPO, WEIGHTS, local_dir=local, endpoint=hub.url, cache_dir=tmp_path / "hf",
                    force_download=True)
    assert hashlib.sha256((local / WEIGHTS).read_bytes()).hexdigest() != expected  # accepted silently
    with pytest.raises(IntegrityError, match="sha256"):
        download_repo(REPO, tmp_path / "work" / "ours", endpoint=hub.url, allow_patterns=WEIGHTS)
