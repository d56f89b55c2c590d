"""The public Python API: embedkit.load / evaluate / train."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "demo" / "scifact-mini"


def corpus_texts() -> list[str]:
    from embedkit.data import load_retrieval, passage_text

    return [passage_text(doc) for doc in load_retrieval(DEMO_DATA, "test").corpus.values()]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from embedkit.modeling.tiny import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("api") / "model", corpus_texts()[:200])


def test_import_embedkit_does_not_import_paddle():
    code = "import sys, embedkit; print(embedkit.__version__, 'paddle' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False"


def test_load_encodes_normalised_queries_and_passages(tiny_model):
    import embedkit

    model = embedkit.load(tiny_model)
    queries = model.encode_queries(["what do cells do", "x"])
    passages = model.encode_passages(["Cells divide.", "Tides follow the Moon.", "a"])
    assert queries.shape == (2, model.dim) and passages.shape == (3, model.dim)
    assert queries.dtype == passages.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    from embedkit.inference.engines import resolve_engine, resolve_precision

    assert model.engine == resolve_engine("auto", "cpu") and model.precision == resolve_precision(model.engine)


def test_load_takes_spec_fields_for_plain_checkpoints(tiny_model):
    import embedkit

    unnormalised = embedkit.load(tiny_model, engine="paddle", pooling="cls", normalized=False)
    vectors = unnormalised.encode_passages(["Cells divide.", "Tides follow the Moon."])
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert unnormalised.spec.pooling == "cls"


def test_load_encode_passages_equals_the_vectors_eval_cached(tiny_model, run_cli, embedkit_home):
    import embedkit

    result = run_cli("eval", tiny_model, "--data", DEMO_DATA, "--json")
    assert result.exit_code == 0, result.stderr
    entries = [d for d in (embedkit_home / "embeddings").iterdir()
               if json.loads((d / "meta.json").read_text())["side"] == "passage"]
    assert len(entries) == 1
    cached = np.load(entries[0] / "embeddings.npy")
    fresh = embedkit.load(tiny_model).encode_passages(corpus_texts())
    assert cached.shape == fresh.shape
    assert np.abs(cached - fresh).max() <= 1e-6


def test_evaluate_returns_the_report_eval_prints(tiny_model, run_cli):
    import embedkit

    report = embedkit.evaluate(tiny_model, DEMO_DATA, engine="paddle", batch_size=64)
    cli = json.loads(run_cli("eval", tiny_model, "--data", DEMO_DATA, "--engine", "paddle", "--json").stdout)
    assert report.main_score == pytest.approx(cli["mean"]["ndcg_at_10"])
    assert report.datasets[0].num_docs == 800 and report.precision == "fp32"


def test_train_runs_a_recipe_with_settings(tmp_path):
    import embedkit

    result = embedkit.train(REPO / "recipes" / "tiny-cpu.yaml", model_name_or_path="tiny-bert",
                            output_dir=str(tmp_path / "run"), max_steps=2, overrides=["logging_steps=1"])
    assert result.global_step == 2 and (tmp_path / "run" / "embedkit.json").is_file()
    assert embedkit.load(tmp_path / "run", engine="paddle").encode_queries(["q"]).shape[0] == 1
