"""Models panel: installed models, hub downloads (interrupted, resumed after a restart), conversion,
hub-ready folders.  Downloads run against ``fastvideo.testing.hub_server.LocalHub``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from studio_wait import wait_until

from app.itemmodels.models_list import ModelsTableModel, scan_models
from app.panels.models import ModelsPanel
from fastvideo.hub.download import MANIFEST_NAME, PARTIAL_DIR
from fastvideo.testing.hub_server import LocalHub

REPO = "fastvideo-test/tiny-t2v"
BIG = "transformer/diffusion_pytorch_model.safetensors"


@pytest.fixture(autouse=True)
def _no_ambient_hub_config(no_ambient_hub_config):
    """No token, endpoint or offline flag from the developer's environment (tests/conftest.py)."""


@pytest.fixture(scope="module")
def tiny_official(tmp_path_factory):
    from fastvideo.testing.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("official") / "tiny-official", task="t2v", layout="official",
                           seed=0)


@pytest.fixture
def hub(tiny_model):
    with LocalHub(max_lifetime=120) as h:
        h.add_repo("gated-org/locked", tiny_model, gated=True)
        h.add_repo(REPO, tiny_model)  # last: the "CDN" serves the shared LFS blobs under this repo
        yield h


@pytest.fixture
def panel_factory(make_studio, qtbot):
    studio = make_studio(engine=None)
    made = []

    def make(root: Path) -> ModelsPanel:
        p = ModelsPanel(studio, models_root=root)
        qtbot.addWidget(p)
        p.resize(1100, 800)
        p.show()
        wait_until(qtbot, lambda: p.scan_count >= 1, 10, "first scan")
        made.append(p)
        return p

    yield make
    for p in made:
        p.shutdown()


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.relative_to(folder).as_posix().startswith(".fastvideo")}


def _wait_download(qtbot, panel, timeout=30):
    wait_until(qtbot, lambda: panel.download is not None and not panel.download.is_active(), timeout, "download")
    qtbot.wait(50)  # the queued finished/failed signal lands


def test_installed_models_table(panel_factory, tiny_model, tiny_official, tmp_path, qtmodeltester):
    root = tmp_path / "models"
    shutil.copytree(tiny_official, root / "official_weights" / "wan-official")
    shutil.copytree(tiny_model, root / "converted_weights" / "wan-converted")
    half = root / "org--half"  # a download that stopped half way
    half.mkdir(parents=True)
    (half / MANIFEST_NAME).write_text(json.dumps({"repo_id": "org/half", "complete": False, "files": {"a": {}}}))
    panel = panel_factory(root)

    by_name = {e.name: e for e in panel.entries()}
    assert set(by_name) == {"wan-official", "wan-converted", "org--half"}
    conv, off, half_e = by_name["wan-converted"], by_name["wan-official"], by_name["org--half"]
    assert (conv.layout, conv.family, conv.task, conv.loads) == ("Diffusers", "wan", "t2v/v2v", True)
    assert {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"} <= set(conv.components)
    assert conv.size == sum(len(b) for b in _tree(tiny_model).values())
    assert (off.layout, off.task, off.loads, off.loads_text) == ("official", "t2v", False, "convert first")
    assert (half_e.layout, half_e.loads_text, half_e.repo_id) == ("incomplete", "download unfinished", "org/half")
    qtmodeltester.check(panel.model)
    qtmodeltester.check(panel.proxy)

    # Selecting rows drives the buttons: official -> Convert, unfinished download -> Resume, Diffusers -> inspect.
    got = []
    panel.inspect_requested.connect(got.append)
    panel.select_path(conv.path)
    assert panel.inspect_button.isEnabled() and panel.parity_button.isEnabled()
    panel.inspect_button.click()
    assert got == [str(conv.path)]
    panel.select_path(off.path)
    assert panel.convert_sel_button.isEnabled() and panel.inspect_button.isEnabled()  # inspect: a conversion preview
    assert not panel.parity_button.isEnabled() and not panel.generate_button.isEnabled()
    panel.convert_sel_button.click()
    assert panel.convert_source_edit.text() == str(off.path) and panel.convert_name_edit.text() == "wan-official"
    panel.select_path(half_e.path)
    assert panel.resume_button.isEnabled()
    # sorting by size (bytes, not text) and filtering
    panel.table.sortByColumn(4, panel.table.horizontalHeader().sortIndicatorOrder().DescendingOrder)
    assert panel.proxy.index(0, 0).data() == "wan-converted"
    panel.filter_edit.setText("official")
    assert panel.proxy.rowCount() == 1
    assert scan_models(tmp_path / "nothing-here") == []
    assert isinstance(panel.model, ModelsTableModel)


def test_download_interrupted_then_resumed_after_restart(panel_factory, hub, tiny_model, tmp_path, qtbot):
    root = tmp_path / "models"
    panel = panel_factory(root)
    big_size = (tiny_model / BIG).stat().st_size
    hub.fail_after(REPO, BIG, big_size // 3, times=1)  # the connection drops a third into the transformer
    panel.repo_edit.setText(REPO)
    panel.endpoint_edit.setText(hub.url)
    dest = root / "fastvideo-test--tiny-t2v"
    assert panel.local_dir_edit.text() == str(dest)
    progress = []
    panel.start_download(retries=0, min_interval=0.0)
    panel.download.progress.connect(progress.append)
    assert panel.cancel_download_button.isEnabled() and not panel.download_button.isEnabled()
    _wait_download(qtbot, panel)
    assert panel.download.state == "failed"
    assert panel.download_error.isVisible() and "Offline" in panel.download_error.text()
    assert "kept" in panel.download_error.text()
    assert panel.plan_label.text().startswith(f"{REPO}@")
    assert any(p.file == BIG and 0 < p.file_bytes < p.file_total for p in progress)  # per-file progress
    assert any(p.speed > 0 for p in progress) and progress[-1].bytes_total == sum(
        len(b) for b in _tree(tiny_model).values())
    finished_before = {k for k in json.loads((dest / MANIFEST_NAME).read_text())["files"]}
    assert "text_encoder/model.safetensors" in finished_before and BIG not in finished_before
    partial = list((dest / PARTIAL_DIR).rglob("*.part"))
    assert len(partial) == 1 and partial[0].stat().st_size == big_size // 3
    assert not (dest / "model_index.json").exists()  # never looks like a model half way

    # The CLI sees the same state (same code): finished files are marked done.
    from fastvideo.entrypoints.cli.main import main as cli

    assert cli(["download", "--repo-id", REPO, "--local-dir", str(dest), "--endpoint", hub.url, "--dry-run"]) == 0

    # "Restart": a fresh panel finds the unfinished download and resumes it.
    panel.shutdown()
    hub.reset_counters()
    again = panel_factory(root)
    entry = again.entry("fastvideo-test--tiny-t2v")
    assert entry is not None and entry.layout == "incomplete" and entry.download_complete is False
    again.select_path(dest)
    again.resume_button.click()
    assert again.repo_edit.text() == REPO and again.endpoint_edit.text() == hub.url
    _wait_download(qtbot, again)
    assert again.download.state == "done", again.download.error
    assert _tree(dest) == _tree(tiny_model)
    served = hub.files_served(REPO)
    assert not (set(served) & finished_before)  # finished files were not fetched again
    assert served[BIG] == big_size - big_size // 3  # the partial file continued with a Range request
    assert again.total_bar.value() == 1000 and "100.0%" in again.total_label.text()
    wait_until(qtbot, lambda: (e := again.entry("fastvideo-test--tiny-t2v")) is not None and e.loads, 10, "rescan")


def test_download_errors_and_cancel(panel_factory, hub, tmp_path, qtbot):
    panel = panel_factory(tmp_path / "models")
    panel.endpoint_edit.setText(hub.url)

    def attempt(repo: str, **options) -> str:
        panel.repo_edit.setText(repo)
        panel.start_download(**options)
        _wait_download(qtbot, panel)
        return panel.download_error.text()

    assert "Unknown repo" in attempt("nobody/nothing")
    text = attempt("gated-org/locked")
    assert "Gated model" in text and "accept the license" in text
    served = hub.bytes_served()
    assert "Not enough disk space" in attempt(REPO, disk_margin=1 << 60)
    assert hub.bytes_served() == served  # checked before any transfer
    panel.repo_edit.setText("not a repo id")
    panel.download_button.click()
    assert "owner/name" in panel.download_error.text() and panel.download is not None
    # offline: nothing listens there
    panel.endpoint_edit.setText("http://127.0.0.1:9")
    assert "Offline" in attempt(REPO, retries=0)

    # cancel mid-transfer: data kept, the panel says how to continue
    panel.endpoint_edit.setText(hub.url)
    hub.set_rate(60_000)
    panel.repo_edit.setText(REPO)
    panel.start_download(min_interval=0.0)
    wait_until(qtbot, lambda: panel.download.last is not None and panel.download.last.bytes_done > 0, 20, "bytes")
    panel.cancel_download_button.click()
    _wait_download(qtbot, panel)
    hub.set_rate(None)
    assert panel.download.state == "cancelled"
    assert "Resume continues" in panel.total_label.text() and panel.download_button.isEnabled()
    assert (Path(panel.local_dir_edit.text()) / MANIFEST_NAME).is_file()


def test_convert_official_then_assemble_hub_folder(panel_factory, tiny_official, tiny_model, tmp_path, qtbot):
    root = tmp_path / "models"
    panel = panel_factory(root)
    steps = []
    panel.convert_source_edit.setText(str(tiny_official))
    panel.convert_name_edit.setText("tiny-conv")
    panel.convert_button.click()
    proc = panel.conversion
    assert proc is not None and panel.cancel_convert_button.isEnabled()
    proc.progress.connect(lambda d, t, f: steps.append((d, t, f)))
    wait_until(qtbot, lambda: proc.state != "running", 60, "conversion")
    assert proc.state == "done", proc.lines[-5:]
    out = root / "converted_weights" / "tiny-conv"
    assert (out / "model_index.json").is_file() and (out / "transformer" / "config.json").is_file()
    assert steps and steps[-1][0] == steps[-1][1] and steps[-1][2] == "model_index.json"
    assert panel.convert_bar.value() == panel.convert_bar.maximum() > 0
    assert "Converted into" in panel.convert_label.text()
    wait_until(qtbot, lambda: (e := panel.entry("tiny-conv")) is not None and e.loads, 10, "rescan")
    # the converted weights are the tiny model's (same seed) bit for bit
    assert (out / BIG).read_bytes() == (tiny_model / BIG).read_bytes()

    # converting again without Overwrite: the converter's own message, nothing changed
    panel.convert_button.click()
    wait_until(qtbot, lambda: panel.conversion.state != "running", 60, "second conversion")
    assert panel.conversion.state == "failed" and "Conversion failed" in panel.convert_label.text()

    # hub-ready folder: the converted transformer + the rest of a base model
    assert panel.hub_source_edit.text() == str(out)  # filled in after the conversion
    assert panel.hub_component.currentText() == "transformer"
    panel.hub_base_edit.setText(str(tiny_model))
    hub_out = tmp_path / "hub-ready"
    panel.hub_output_edit.setText(str(hub_out))
    panel.hub_repo_edit.setText("me/tiny-wan")
    panel.hub_button.click()
    wait_until(qtbot, lambda: not panel.assembling, 20, "assemble")
    assert "Hub-ready folder written" in panel.hub_label.text(), panel.hub_label.text()
    assert (hub_out / "README.md").read_text().startswith("---\nlibrary_name: diffusers")
    assert "me/tiny-wan" in (hub_out / "README.md").read_text()
    assert "*.safetensors filter=lfs" in (hub_out / ".gitattributes").read_text()
    got = _tree(hub_out)
    assert got[BIG] == (out / BIG).read_bytes()
    vae = "vae/diffusion_pytorch_model.safetensors"
    assert got[vae] == (tiny_model / vae).read_bytes()
    # again without overwrite: refused, the folder is untouched
    panel.hub_button.click()
    wait_until(qtbot, lambda: not panel.assembling, 20, "assemble again")
    assert "Could not assemble" in panel.hub_label.text() and "Overwrite" in panel.hub_label.text()
