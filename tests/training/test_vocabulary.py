"""The built-in shapes model ships the words it was trained on (``vocabulary.json``), ``fastvideo train``'s
export writes them, and a prompt that uses none of them gets a warning (issue 24)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from fastvideo.builtin import SHIPPED, VOCABULARY_FILE, load_vocabulary, vocabulary_warning


def test_shipped_vocabulary_is_what_the_training_data_uses():
    from fastvideo.training.data import COLOURS, DIRECTIONS, SHAPES, caption_corpus
    from fastvideo.training.export import vocabulary_record

    shipped = json.loads((SHIPPED / VOCABULARY_FILE).read_text())
    assert shipped == vocabulary_record()  # regenerate: python -c "...export import write_vocabulary..."
    assert set(COLOURS) | {"grey"} | set(SHAPES) | set(DIRECTIONS) <= set(shipped["keywords"])
    corpus_words = {w for line in caption_corpus() for w in re.findall(r"[a-z]+", line)}
    assert set(shipped["keywords"]) <= corpus_words and set(shipped["words"]) == corpus_words
    assert not {"a", "the", "on", "to"} & set(shipped["keywords"])  # filler words never silence the warning


def test_export_writes_the_vocabulary(tmp_path):
    from fastvideo.training.data import caption_corpus
    from fastvideo.training.export import export_model, vocabulary_record
    from fastvideo.training.models import TINY, build_modules
    from fastvideo.training.text import make_tokenizer

    tok = make_tokenizer(tmp_path / "tok", caption_corpus())
    modules = build_modules(TINY, 400, 0)
    out = export_model(tmp_path / "model", modules, tok, latent_rgb={"factors": [[0.0] * 3] * 16, "bias": [0.0] * 3})
    assert json.loads((out / VOCABULARY_FILE).read_text()) == vocabulary_record()
    assert load_vocabulary(out)["keywords"] == vocabulary_record()["keywords"]


def test_warning_only_when_the_prompt_uses_none_of_its_words(tmp_path):
    warning = vocabulary_warning(SHIPPED, "a cat playing the piano")
    assert warning and "none of its words" in warning and "circle" in warning and "red" in warning
    for prompt in ("a red circle moves to the right on a blue background", "Gray squares", "something moving left",
                   "a cat on a purple background", "TRIANGLES!"):
        assert vocabulary_warning(SHIPPED, prompt) is None, prompt
    assert vocabulary_warning(SHIPPED, "   ") is None
    assert vocabulary_warning(None, "a cat playing the piano") == warning  # None / "builtin": the shipped model
    assert vocabulary_warning("builtin", "a cat playing the piano") == warning
    # Models without a vocabulary (any real model) and unreadable files: never a warning.
    assert vocabulary_warning(tmp_path, "a cat playing the piano") is None
    (tmp_path / VOCABULARY_FILE).write_text("{not json")
    assert vocabulary_warning(tmp_path, "a cat playing the piano") is None
    assert vocabulary_warning("org/some-repo-id", "a cat") is None


def test_the_warning_is_torch_free():
    code = ("import sys; from fastvideo.builtin import vocabulary_warning; "
            "assert vocabulary_warning(None, 'a cat playing the piano'); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'transformers')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_cli_warns_on_stderr(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fastvideo", "generate", "--prompt", "a cat playing the piano",
                           "--num-frames", "5", "--steps", "1", "--seed", "3", "--quiet", "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "warning: this model only knows coloured shapes" in proc.stderr
    assert "warning" not in proc.stdout and "random" not in proc.stderr  # --seed given: no random seed line
