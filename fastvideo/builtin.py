"""The built-in default model: what runs when no model is chosen.

If the project ships a trained small model (``resources/models/<name>/``, see the
docs), that is the default.  Otherwise a tiny random-weight Wan model is made once
in the models folder (``<models>/builtin/tiny-wan-t2v``): it exercises every code
path but its videos are noise.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_NAME = "builtin"
SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "models" / "fastvideo-shapes-t2v"


def shipped_model() -> Path | None:
    """The trained model shipped with the project; ``FASTVIDEO_BUILTIN_MODEL`` points elsewhere
    (the packaged studio sets it to the copy inside its bundle)."""
    import os

    override = os.environ.get("FASTVIDEO_BUILTIN_MODEL")
    for path in ([Path(override)] if override else []) + [SHIPPED]:
        if (path / "model_index.json").is_file():
            return path
    return None


def default_model_path(create: bool = True) -> Path:
    """The default model folder (made on first use when nothing is shipped)."""
    shipped = shipped_model()
    if shipped is not None:
        return shipped
    from fastvideo.configs.registry import models_dir

    path = models_dir() / "builtin" / "tiny-wan-t2v"
    if not (path / "model_index.json").is_file() and create:
        from fastvideo.testing.tiny import make_tiny_model

        make_tiny_model(path, task="t2v", seed=0, overwrite=True)
    return path


def resolve_model_arg(model: str | None) -> str:
    """``None`` or ``"builtin"`` -> the default model's folder; anything else unchanged."""
    if model in (None, "", BUILTIN_NAME):
        return str(default_model_path())
    return model


VOCABULARY_FILE = "vocabulary.json"  # written by fastvideo.training.export for the shapes model
_ALIASES = {"gray": "grey", "rightward": "right", "rightwards": "right", "leftward": "left", "leftwards": "left",
            "upwards": "upward", "downwards": "downward", "moving": "moves", "sliding": "slides",
            "travelling": "travels", "traveling": "travels"}


def load_vocabulary(model_path) -> dict | None:
    """The model's ``vocabulary.json`` (the words a small model was trained on), or None if it has none.

    ``model_path`` None / ``""`` / ``"builtin"`` means the shipped model.  Torch-free: the studio calls it.
    """
    import json

    if model_path in (None, "", BUILTIN_NAME):
        model_path = shipped_model()
        if model_path is None:
            return None
    try:
        data = json.loads((Path(model_path) / VOCABULARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("keywords"), list) or not data["keywords"]:
        return None
    return data


def _known(word: str, keywords: set[str]) -> bool:
    word = _ALIASES.get(word, word)
    return word in keywords or (word.endswith("s") and word[:-1] in keywords) or \
        (word.endswith("es") and word[:-2] in keywords)


def vocabulary_warning(model_path, prompt: str) -> str | None:
    """A warning when ``prompt`` uses none of the words the model was trained on, else None.

    Only models that ship a ``vocabulary.json`` (the built-in shapes model) can warn; for any other model,
    and for an empty prompt, this is None.  Torch-free and fast (one small JSON file): the studio's Generate
    panel can call it as the prompt changes; ``fastvideo generate`` prints it on stderr.
    """
    import re

    if not prompt or not prompt.strip():
        return None
    vocab = load_vocabulary(model_path)
    if vocab is None:
        return None
    keywords = {str(w).lower() for w in vocab["keywords"]}
    if any(_known(w, keywords) for w in re.findall(r"[a-z]+", prompt.lower())):
        return None

    def listed(key: str) -> str:
        return ", ".join(str(v) for v in vocab.get(key) or [])

    parts = [f"{name} ({listed(key)})" for name, key in (("colours", "backgrounds"), ("shapes", "shapes"),
                                                         ("directions", "directions")) if vocab.get(key)]
    example = vocab.get("example") or "a red circle moves to the right on a blue background"
    return ("this model only knows coloured shapes moving on plain backgrounds, and the prompt uses none of its "
            f"words, so expect an unrelated shapes clip. It knows {'; '.join(parts)}. "
            f'Try for example "{example}".')


if __name__ == "__main__":  # ``python -m fastvideo.builtin``: make sure it exists, print its folder
    print(default_model_path())
