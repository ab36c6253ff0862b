"""Faults: a hostile or broken model folder (issue 20).

A model folder is data: the names it uses to reach files (model_index.json components,
shard index weight maps, tokenizer file names) must be plain names inside the folder, and a
folder that wants its own Python run (auto_map ...) is refused before transformers is called,
so no "[y/N]" prompt can appear and no code from the folder runs.  Symlinks inside a folder
(the Hugging Face cache layout) keep working.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fastvideo.configs.registry import resolve_model
from fastvideo.errors import FastVideoError, ModelNotFoundError
from fastvideo.hub.names import CustomCodeError, UnsafeModelFolderError, safe_name
from fastvideo.models.loader.checkpoint import read_headers, weight_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model(tiny_t2v, tmp_path) -> Path:
    """A private copy of the tiny T2V model, under tmp_path/a/b/model (so '../../x' stays in tmp_path)."""
    dest = tmp_path / "a" / "b" / "model"
    shutil.copytree(tiny_t2v, dest)
    return dest


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# ------------------------------------------------------------------------- the one name check
@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "sub/../x", "../../x", "/tmp/elsewhere", "a\\b",
                                  "C:x", "C:\\x", "x\x00y", "NUL", "con.json", "vae ", 5, None, ["vae"]])
def test_safe_name_refuses_anything_but_a_plain_name(name):
    with pytest.raises(UnsafeModelFolderError, match="plain name") as err:
        safe_name(name, "component", "/m/model_index.json")
    assert isinstance(err.value, ModelNotFoundError) and isinstance(err.value, FastVideoError)
    assert "/m/model_index.json" in str(err.value) and repr(name) in str(err.value)


@pytest.mark.parametrize("name", ["vae", "text_encoder_2", "diffusion_pytorch_model-00001-of-00003.safetensors",
                                  "spiece.model", "..hidden", "a.b-c_d"])
def test_safe_name_accepts_plain_names(name):
    assert safe_name(name, "file", "x") == name


# ------------------------------------------------------------------------- model_index.json keys
@pytest.mark.parametrize("bad", ["ABS", "../../x", "sub/../x"])
def test_component_name_that_is_a_path_is_refused(model, tmp_path, bad):
    # The target exists and holds a loadable VAE, so only the name check stops it.
    if bad == "ABS":
        target = tmp_path / "elsewhere"
        bad = str(target)
    elif bad == "../../x":
        target = model.parent.parent / "x"
    else:
        (model / "sub").mkdir()
        target = model / "x"
    shutil.copytree(model / "vae", target)
    _edit_json(model / "model_index.json", **{bad: ["diffusers", "AutoencoderKLWan"]})
    with pytest.raises(UnsafeModelFolderError) as err:
        resolve_model(str(model))
    msg = str(err.value)
    assert str(model / "model_index.json") in msg and repr(bad) in msg
    assert "plain name" in msg and "fix or remove this entry" in msg.lower()


def test_component_from_a_module_in_the_folder_is_custom_code(model):
    (model / "mine").mkdir()
    (model / "mine" / "config.json").write_text("{}")
    _edit_json(model / "model_index.json", mine=["my_pipeline_module", "MyModel"])
    with pytest.raises(CustomCodeError, match="needs custom code.*'my_pipeline_module'.*not supported"):
        resolve_model(str(model))


def test_custom_pipeline_class_name_is_custom_code(model):
    _edit_json(model / "model_index.json", _class_name=["pipeline_mine", "MyPipeline"])
    with pytest.raises(CustomCodeError, match="needs custom code"):
        resolve_model(str(model))


# ------------------------------------------------------------------------- shard index weight_map
def _shard_to(model: Path, shard_name: str, where: Path) -> Path:
    """Move the transformer weights to ``where`` and write an index naming them as ``shard_name``."""
    comp = model / "transformer"
    src = comp / "diffusion_pytorch_model.safetensors"
    keys = sorted(read_headers(src))
    where.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(src, where)
    (comp / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {k: shard_name for k in keys}}))
    return comp


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_weight_map_outside_the_folder_is_refused(model, tmp_path, kind):
    if kind == "relative":
        name, where = "../../evil.safetensors", model / "transformer" / ".." / ".." / "evil.safetensors"
    else:
        where = tmp_path / "evil.safetensors"
        name = str(where)
    comp = _shard_to(model, name, where)
    index = comp / "diffusion_pytorch_model.safetensors.index.json"
    for call in (lambda: resolve_model(str(model)), lambda: weight_files(comp)):
        with pytest.raises(UnsafeModelFolderError) as err:
            call()
        msg = str(err.value)
        assert str(index) in msg and repr(name) in msg and "shard file" in msg


def test_tokenizer_file_outside_the_folder_is_refused(model, tmp_path):
    secret = tmp_path / "secret.model"
    shutil.copy(model / "tokenizer" / "spiece.model", secret)
    _edit_json(model / "tokenizer" / "tokenizer_config.json", vocab_file=str(secret))
    with pytest.raises(UnsafeModelFolderError, match=r"tokenizer_config.json: vocab_file .*absolute path"):
        resolve_model(str(model))


def test_unknown_tokenizer_class_is_never_looked_up(model):
    _edit_json(model / "tokenizer" / "tokenizer_config.json", tokenizer_class="Trainer")
    with pytest.raises(UnsafeModelFolderError, match="tokenizer_class 'Trainer' is not a tokenizer class"):
        resolve_model(str(model))


# ------------------------------------------------------------------------- code in the folder
EVIL_MODULE = '''
import os, pathlib
pathlib.Path(os.environ["FV_TEST_MARKER"]).write_text("code from the model folder ran")
from transformers import T5Tokenizer


class EvilTokenizer(T5Tokenizer):
    pass
'''

LOAD = '''
import sys
from fastvideo.models.loader.component_loader import load_component
try:
    load_component(sys.argv[1], "tokenizer")
except Exception as exc:
    print("ERROR", type(exc).__name__, exc)
    sys.exit(3)
print("LOADED")
'''


def _custom_code_tokenizer(model: Path) -> None:
    (model / "tokenizer" / "tokenization_evil.py").write_text(EVIL_MODULE)
    _edit_json(model / "tokenizer" / "tokenizer_config.json", tokenizer_class="EvilTokenizer",
               auto_map={"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]})


def _closed_stdin():  # POSIX only: start the child with fd 0 closed
    os.close(0)


@pytest.mark.parametrize("stdin", ["answers y", "closed"])
def test_tokenizer_with_auto_map_never_runs_or_prompts(model, tmp_path, stdin):
    if stdin == "closed" and os.name != "posix":
        pytest.skip("closing fd 0 in the child is POSIX-only")
    _custom_code_tokenizer(model)
    marker = tmp_path / "marker.txt"
    env = dict(os.environ, FV_TEST_MARKER=str(marker), HF_MODULES_CACHE=str(tmp_path / "hf_modules"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    kwargs = {"input": "y\ny\n"} if stdin == "answers y" else {"stdin": None, "preexec_fn": _closed_stdin}
    proc = subprocess.run([sys.executable, "-c", LOAD, str(model)], capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=300, **kwargs)
    out = proc.stdout + proc.stderr
    assert not marker.exists(), f"code from the model folder ran:\n{out}"
    assert proc.returncode == 3, out
    assert "ERROR CustomCodeError" in proc.stdout
    assert "needs custom code (auto_map in tokenizer_config.json" in proc.stdout
    assert "running code from a model folder is not supported" in proc.stdout
    assert "[y/N]" not in out and "Do you wish to run the custom code" not in out
    assert not (tmp_path / "hf_modules").exists() or not any((tmp_path / "hf_modules").rglob("*.py"))


def test_auto_map_is_refused_when_the_model_is_resolved(model):
    _custom_code_tokenizer(model)
    with pytest.raises(CustomCodeError, match=r"tokenizer_config.json: this model needs custom code"):
        resolve_model(str(model))


def test_auto_map_in_an_encoder_config_is_refused(model):
    _edit_json(model / "text_encoder" / "config.json", auto_map={"AutoModel": "modeling_evil.EvilModel"})
    with pytest.raises(CustomCodeError, match=r"text_encoder/config.json.*auto_map in config.json"):
        resolve_model(str(model))


# ------------------------------------------------------------------------- symlinks stay allowed
def test_symlinked_component_and_blobs_still_load(model, tmp_path):
    """The Hugging Face cache layout: component folders and weight files are symlinks to blobs elsewhere."""
    from fastvideo.models.loader.component_loader import load_component

    blobs = tmp_path / "blobs"
    blobs.mkdir()
    shutil.move(model / "vae", blobs / "vae-snapshot")
    (model / "vae").symlink_to(blobs / "vae-snapshot", target_is_directory=True)
    comp = _shard_to(model, "diffusion_pytorch_model-00001-of-00001.safetensors", blobs / "0123abcd")
    (comp / "diffusion_pytorch_model-00001-of-00001.safetensors").symlink_to(blobs / "0123abcd")

    info = resolve_model(str(model))
    assert "vae" in info.components
    vae = load_component(str(model), "vae")
    assert sum(p.numel() for p in vae.parameters()) > 0
    assert weight_files(comp) == [comp / "diffusion_pytorch_model-00001-of-00001.safetensors"]
    dit = load_component(str(model), "transformer")
    assert sum(p.numel() for p in dit.parameters()) > 0
    tok = load_component(str(model), "tokenizer")
    assert len(tok("a red circle")["input_ids"]) > 0
