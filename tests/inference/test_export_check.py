"""The export check is per precision: fp32 graphs match dygraph within 1e-4, reduced precision by a cosine floor."""

from __future__ import annotations

import numpy as np
import pytest

from embedkit.inference.export import COSINE_FLOORS, TOLERANCE, ExportMismatchError, check_against_dygraph
from embedkit.modeling.loading import load_tokenizer
from embedkit.modeling.spec import EmbedderSpec

DIM = 16


def reference(batch: dict[str, np.ndarray]) -> np.ndarray:
    """Deterministic unit vectors from the token ids (stands in for the dygraph model)."""
    ids = batch["input_ids"].astype(np.float64)
    basis = np.random.default_rng(0).standard_normal((ids.shape[1], DIM))
    out = np.tanh(ids @ basis / 100.0)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def perturbed(scale: float):
    """Reference plus noise of ``scale`` per component (relative, fixed seed): a graph of lower precision."""
    def forward(batch):
        want = reference(batch)
        return want + scale * np.random.default_rng(1).standard_normal(want.shape).astype(np.float32)

    return forward


@pytest.fixture
def check(tiny_bert):
    tokenizer = load_tokenizer(tiny_bert)
    return lambda forward, precision: check_against_dygraph(forward, reference, tokenizer, EmbedderSpec(), 64, "onnx",
                                                            precision)


def test_fp32_passes_an_exact_graph_and_records_both_measures(check):
    result = check(reference, "fp32")
    assert result.max_abs_diff == 0.0 and result.min_cosine == pytest.approx(1.0)
    assert result.to_dict()["tolerance"] == TOLERANCE and "cosine_floor" not in result.to_dict()


def test_fp32_refuses_a_graph_off_by_more_than_the_tolerance(check):
    with pytest.raises(ExportMismatchError, match="fp32 export differs"):
        check(perturbed(1e-3), "fp32")


def test_bf16_passes_bf16_sized_errors_that_fp32_refuses(check):
    result = check(perturbed(1e-3), "bf16")
    assert result.max_abs_diff > TOLERANCE
    assert COSINE_FLOORS["bf16"] <= result.min_cosine < 1.0
    assert result.to_dict()["cosine_floor"] == COSINE_FLOORS["bf16"]


def test_bf16_refuses_a_graph_below_its_cosine_floor(check):
    with pytest.raises(ExportMismatchError, match=r"min cosine 0\.9[0-9]* \(floor 0\.9999\)"):
        check(perturbed(0.05), "bf16")


def test_a_nan_graph_never_passes(check):
    with pytest.raises(ExportMismatchError):
        check(lambda batch: reference(batch) * np.nan, "fp32")
