"""fastvideo.hub.download against a local hub server (tests/hub/conftest.py)."""

import json
import shutil
import threading
import time
from collections import namedtuple

import pytest

from fastvideo.hub import (
    DiskSpaceError,
    DownloadCancelled,
    GatedRepoError,
    HubOfflineError,
    RepoNotFoundError,
    RevisionNotFoundError,
    download_repo,
    plan_download,
    read_manifest,
)
from fastvideo.testing.hub_server import LocalHub

REPO = "fastvideo-test/tiny-t2v"  # served by the `hub` fixture (conftest.py)

VAE = "vae/diffusion_pytorch_model.safetensors"  # ~0.9 MB, LFS (served via the "CDN" redirect)
TOKENIZER = "tokenizer/tokenizer.json"  # ~0.3 MB, regular file (served by /resolve/ itself)


def _sizes(folder):
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*")
            if p.is_file() and not p.relative_to(folder).as_posix().startswith(".fastvideo")}


def test_plan_lists_files_with_sizes_and_etags(hub, tiny_t2v):
    plan = plan_download(REPO, endpoint=hub.url)
    assert plan.commit == hub.commit(REPO)
    assert {f.path: f.size for f in plan.files} == _sizes(tiny_t2v)
    assert plan.files[-1].path == "model_index.json"  # last: marks the folder complete
    vae = next(f for f in plan.files if f.path == VAE)
    assert vae.lfs and vae.etag == vae.sha256 and len(vae.sha256) == 64
    tok = next(f for f in plan.files if f.path == TOKENIZER)
    assert not tok.lfs and len(tok.etag) == 40
    assert [f.path for f in plan.select("vae/*").files] == ["vae/config.json", VAE]


def test_full_download_loads_and_second_run_fetches_nothing(tree, hub, tiny_t2v, tmp_path):
    from fastvideo.configs.registry import resolve_model

    out = download_repo(REPO, tmp_path / "m", endpoint=hub.url)
    assert tree(out) == tree(tiny_t2v)
    total = sum(_sizes(tiny_t2v).values())
    assert hub.bytes_served(REPO) == total
    manifest = read_manifest(out)
    assert manifest["complete"] and manifest["commit"] == hub.commit(REPO)
    assert set(manifest["files"]) == set(_sizes(tiny_t2v))
    assert not (out / ".fastvideo-partial").exists()
    # CDN requests (LFS) carry no auth; ranges not needed on a clean run
    assert all(r.range is None for r in hub.requests)

    info = resolve_model(out)
    assert info.pipeline_name == "WanPipeline"

    hub.reset_counters()
    download_repo(REPO, out, endpoint=hub.url)
    assert hub.bytes_served(REPO) == 0
    assert [r.method for r in hub.requests] == ["GET"]  # only the metadata


def test_progress_events(hub, tiny_t2v, tmp_path):
    hub.set_rate(3_000_000)  # ~0.6 s for the 1.8 MB repo
    events = []
    download_repo(REPO, tmp_path / "m", endpoint=hub.url, progress=events.append)
    total = sum(_sizes(tiny_t2v).values())
    assert events[0].kind == "start" and events[-1].kind == "done"
    assert all(e.bytes_total == total and e.files_total == len(_sizes(tiny_t2v)) for e in events)
    done = [e.bytes_done for e in events]
    assert done == sorted(done) and done[-1] == total
    assert [e.files_done for e in events] == sorted(e.files_done for e in events)
    assert events[-1].files_done == events[-1].files_total and events[-1].fraction == 1.0
    middle = [e for e in events if e.kind in ("progress", "file_done")]
    assert len(middle) >= 3
    for e in middle:
        assert e.file and 0 <= e.file_bytes <= e.file_total
    assert any(e.speed > 0 and e.eta is not None and e.eta > 0 for e in middle)
    assert 1e6 < events[-1].speed < 1e7  # moving average near the throttled rate
    # bounded rate: throttled events are >= 0.1 s apart
    times = [e.elapsed for e in middle]
    assert all(b - a >= 0.099 for a, b in zip(times, times[1:]))
    assert len(events) <= 10 * events[-1].elapsed + 3


def test_dropped_connection_resumes_from_offset(tree, hub, tiny_t2v, tmp_path):
    size = (tiny_t2v / VAE).stat().st_size
    hub.fail_after(REPO, VAE, 300_000)
    hub.fail_after(REPO, TOKENIZER, 100_000)
    events = []
    out = download_repo(REPO, tmp_path / "m", endpoint=hub.url, progress=events.append, backoff=0.01)
    assert tree(out) == tree(tiny_t2v)
    # resumed, not restarted: every byte served once
    assert hub.bytes_served(REPO, VAE) == size
    assert hub.bytes_served(REPO, TOKENIZER) == (tiny_t2v / TOKENIZER).stat().st_size
    ranges = [r.range for r in hub.requests if r.range]
    assert ranges == ["bytes=100000-", "bytes=300000-"]
    assert sum(e.kind == "retry" for e in events) == 2


def test_retries_exhausted_keeps_partial_then_resumes(tree, hub, tiny_t2v, tmp_path):
    size = (tiny_t2v / VAE).stat().st_size
    hub.fail_after(REPO, VAE, 100_000, times=10)
    with pytest.raises(HubOfflineError, match="back online") as exc:
        download_repo(REPO, tmp_path / "m", endpoint=hub.url, retries=2, backoff=0.01)
    assert "300.0 KB" in str(exc.value) or "293.0 KB" in str(exc.value)
    parts = list((tmp_path / "m" / ".fastvideo-partial").rglob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size == 300_000
    finished = set(read_manifest(tmp_path / "m")["files"])
    assert finished and VAE not in finished
    served = hub.files_served(REPO)

    hub.fail_after(REPO, VAE, 0, times=0)  # network back
    out = download_repo(REPO, tmp_path / "m", endpoint=hub.url)
    assert tree(out) == tree(tiny_t2v)
    assert hub.bytes_served(REPO, VAE) == size
    for name in finished:  # not fetched again
        assert hub.files_served(REPO)[name] == served[name]


def test_cancel_then_resume_without_refetching(tree, hub, tiny_t2v, tmp_path):
    total = sum(_sizes(tiny_t2v).values())
    hub.set_rate(4_000_000)
    cancel = threading.Event()

    def progress(e):
        if e.bytes_done > 0.6 * total:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        download_repo(REPO, tmp_path / "m", endpoint=hub.url, progress=progress, cancel_event=cancel,
                      min_interval=0.0)
    first = hub.files_served(REPO)
    finished = set(read_manifest(tmp_path / "m")["files"])
    assert finished and len(finished) < len(_sizes(tiny_t2v))
    assert not (tmp_path / "m" / "model_index.json").exists()

    hub.set_rate(None)
    events = []
    out = download_repo(REPO, tmp_path / "m", endpoint=hub.url, progress=events.append)
    assert tree(out) == tree(tiny_t2v)
    after = hub.files_served(REPO)
    for name in finished:
        assert after[name] == first[name], name
    # the file cut by the cancel continued from its offset (slack: bytes in flight when cancelled)
    assert total <= hub.bytes_served(REPO) <= total + 256 * 1024
    assert events[0].bytes_done >= sum(_sizes(tiny_t2v)[n] for n in finished)


def test_gated_repo(tree, hub, tiny_t2v, tmp_path, monkeypatch):
    hub.add_repo("org/gated", tiny_t2v, gated=True, tokens={"hf_ok"})
    with pytest.raises(GatedRepoError, match="accept the license.*HF_TOKEN") as exc:
        plan_download("org/gated", endpoint=hub.url)
    assert f"{hub.url}/org/gated" in str(exc.value)
    with pytest.raises(GatedRepoError, match="no access yet"):
        download_repo("org/gated", tmp_path / "g", endpoint=hub.url, token="hf_wrong")
    assert hub.bytes_served("org/gated") == 0

    monkeypatch.setenv("HF_TOKEN", "hf_ok")  # the library's usual token source
    hub.reset_counters()
    out = download_repo("org/gated", tmp_path / "g", endpoint=hub.url)
    assert tree(out) == tree(tiny_t2v)
    heads = [r for r in hub.requests if r.method == "HEAD" and "/org/gated/" in r.path]
    cdn = [r for r in hub.requests if r.path.startswith("/lfs-cdn/")]
    assert heads and all(r.authorization == "Bearer hf_ok" for r in heads)
    assert cdn and all(r.authorization is None for r in cdn)  # no token to another origin


def test_unknown_repo_and_private_repo(hub, tiny_t2v, tmp_path):
    with pytest.raises(RepoNotFoundError, match="check the repo id"):
        plan_download("nobody/nothing", endpoint=hub.url)
    hub.add_repo("org/private", tiny_t2v, private=True, tokens={"hf_ok"})
    with pytest.raises(RepoNotFoundError, match="HF_TOKEN"):
        download_repo("org/private", tmp_path / "p", endpoint=hub.url)
    assert len(plan_download("org/private", endpoint=hub.url, token="hf_ok").files) > 5


def test_unknown_revision_and_pinned_revision(hub, tiny_t2v, tmp_path):
    with pytest.raises(RevisionNotFoundError, match="no revision 'v9'.*branch, tag or commit"):
        plan_download(REPO, revision="v9", endpoint=hub.url)
    plan = plan_download(REPO, revision=hub.commit(REPO), endpoint=hub.url)
    assert plan.commit == hub.commit(REPO)


def test_offline_error(tiny_t2v, tmp_path):
    stopped = LocalHub()
    with stopped:
        stopped.add_repo(REPO, tiny_t2v)
        url = stopped.url
    t0 = time.monotonic()
    with pytest.raises(HubOfflineError, match="no network: cannot reach .*resumes.*back online"):
        download_repo(REPO, tmp_path / "m", endpoint=url)
    assert time.monotonic() - t0 < 5
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_offline_mode_flag(hub, tmp_path, monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)  # HF_HUB_OFFLINE=1 (read by the library at import)
    with pytest.raises(HubOfflineError, match="HF_HUB_OFFLINE"):
        plan_download(REPO, endpoint=hub.url)


def test_disk_space_checked_before_any_transfer(hub, tmp_path, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 5_000_000, 5_000_000))
    with pytest.raises(DiskSpaceError, match=r"needs 1\.\d MB more .* only 4\.8 MB is free") as exc:
        download_repo(REPO, tmp_path / "m", endpoint=hub.url)
    assert exc.value.free == 5_000_000 and exc.value.needed > 100 * 2**20
    assert hub.bytes_served() == 0
    assert not [r for r in hub.requests if "/resolve/" in r.path or "/lfs-cdn/" in r.path]
    # with a small margin it fits
    download_repo(REPO, tmp_path / "m", endpoint=hub.url, disk_margin=1_000_000)


def test_manifest_is_valid_json_after_each_file(hub, tmp_path):
    seen = []

    def progress(e):
        if e.kind == "file_done":
            seen.append(json.loads((tmp_path / "m" / ".fastvideo-download.json").read_text()))

    download_repo(REPO, tmp_path / "m", endpoint=hub.url, progress=progress, min_interval=0.0)
    assert [len(m["files"]) for m in seen] == list(range(1, len(seen) + 1))
    assert not list((tmp_path / "m").glob(".fastvideo-download.json.*"))
