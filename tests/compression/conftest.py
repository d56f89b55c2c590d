"""Fixtures for the prune tests: tiny BERT and LLaMA models with pass-through layers, texts, a BEIR dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prune_support import build_bert, build_llama, demo_texts, write_beir, write_texts


@pytest.fixture(scope="session")
def model_templates(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("prune-models")
    return {"bert": build_bert(root / "bert"), "llama": build_llama(root / "llama")}


@pytest.fixture
def models(model_templates, tmp_path) -> dict[str, Path]:
    """Fresh copies per test (exports beside a model start empty)."""
    return {name: Path(shutil.copytree(path, tmp_path / "models" / name)) for name, path in model_templates.items()}


@pytest.fixture
def texts_file(tmp_path) -> Path:
    return write_texts(tmp_path / "calibration.txt", demo_texts(24))


@pytest.fixture
def beir_dir(tmp_path) -> Path:
    return write_beir(tmp_path / "beir")
