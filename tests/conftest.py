"""Shared test helpers."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "demo" / "scifact-mini"
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("GLOG_minloglevel", "2")
# Caches (converted weights, embeddings, exports) go to a fresh dir per test session, never the user's.
os.environ["EMBEDKIT_HOME"] = tempfile.mkdtemp(prefix="embedkit-test-home-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def embedkit_home(tmp_path, monkeypatch) -> Path:
    """Each test gets its own EMBEDKIT_HOME, so no test sees another's caches, exports or downloads."""
    home = tmp_path / "embedkit-home"
    monkeypatch.setenv("EMBEDKIT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_qwen2_template(tmp_path_factory) -> Path:
    """A tiny decoder embedder (see tests/inference/inference_support.py), built once for every test dir."""
    from tests.inference.inference_support import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("qwen2") / "model")


@pytest.fixture
def tiny_qwen2(tiny_qwen2_template, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_qwen2_template, tmp_path / "tiny-qwen2"))


@pytest.fixture(scope="session")
def tiny_hf_bert(tmp_path_factory) -> Path:
    """A Hugging Face (torch safetensors) BERT, 2 layers, hidden 32, vocabulary from the demo corpus: what
    sentence-transformers loads and what embedkit loads through PaddleNLP's ``convert_from_torch``."""
    import paddle  # noqa: F401  (before torch)
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from embedkit.modeling.tiny import build_vocab

    out = tmp_path_factory.mktemp("tiny-hf") / "model"
    out.mkdir()
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        texts = [json.loads(next(handle))["text"] for _ in range(60)]
    (out / "vocab.txt").write_text("\n".join(build_vocab(texts)) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(build_vocab(texts)), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=512)
    BertModel(config).save_pretrained(out, safe_serialization=True)
    BertTokenizerFast(str(out / "vocab.txt"), do_lower_case=True).save_pretrained(out)
    return out


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run `embedkit ARGS...` in-process through the real entry point (exit codes and error mapping included)."""
    from embedkit import cli

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["embedkit", *map(str, args)])
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
