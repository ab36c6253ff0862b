"""Tiny official / Diffusers twins (same seed) and their conversions, built once per session."""

from __future__ import annotations

import pytest

SEED = 3


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def official_t2v(tiny_root):
    from fastvideo.testing.tiny import make_tiny_model

    return make_tiny_model(tiny_root / "official_t2v", task="t2v", layout="official", seed=SEED)


@pytest.fixture(scope="session")
def official_i2v(tiny_root):
    from fastvideo.testing.tiny import make_tiny_model

    return make_tiny_model(tiny_root / "official_i2v", task="i2v", layout="official", seed=SEED)


@pytest.fixture(scope="session")
def twin_t2v(tiny_root):
    from fastvideo.testing.tiny import make_tiny_model

    return make_tiny_model(tiny_root / "twin_t2v", task="t2v", layout="diffusers", seed=SEED)


@pytest.fixture(scope="session")
def twin_i2v(tiny_root):
    from fastvideo.testing.tiny import make_tiny_model

    return make_tiny_model(tiny_root / "twin_i2v", task="i2v", layout="diffusers", seed=SEED)


@pytest.fixture(scope="session")
def converted_t2v(official_t2v, tiny_root):
    from fastvideo.conversion.wan import convert_official_to_diffusers

    return convert_official_to_diffusers(official_t2v, tiny_root / "converted_t2v")


@pytest.fixture(scope="session")
def converted_i2v(official_i2v, twin_i2v, tiny_root):
    from fastvideo.conversion.wan import convert_official_to_diffusers

    return convert_official_to_diffusers(official_i2v, tiny_root / "converted_i2v", model_type="i2v",
                                         image_encoder_from=twin_i2v)
