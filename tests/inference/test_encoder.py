"""Encoder behaviour that eval relies on: order, instructions, empty input, progress, identity."""

from __future__ import annotations

import numpy as np
import pytest
from inference_support import MIXED_TEXTS

from embedkit.inference import Encoder


@pytest.fixture
def encoder(tiny_bert):
    return Encoder.from_model_dir(tiny_bert, engine="onnx", batch_size=3)


def test_order_is_restored_whatever_the_batching(encoder):
    together = encoder.encode_passages(MIXED_TEXTS)
    one_by_one = np.stack([encoder.encode_passages([t])[0] for t in MIXED_TEXTS])
    assert np.abs(together - one_by_one).max() <= 1e-5
    assert encoder.dim == 32 and together.dtype == np.float32


def test_progress_callback_counts_every_text(encoder):
    seen = []
    encoder.encode_passages(MIXED_TEXTS, on_batch=seen.append)
    assert sum(seen) == len(MIXED_TEXTS) and max(seen) <= 3


def test_empty_input_gives_an_empty_matrix(encoder):
    assert encoder.encode_queries([]).shape == (0, 32)


def test_instructions_apply_to_their_side_only(tiny_bert):
    plain = Encoder.from_model_dir(tiny_bert, engine="onnx")
    prefixed = Encoder.from_model_dir(tiny_bert, engine="onnx", overrides={"query_instruction": "query: "})
    assert np.abs(plain.encode_queries(["cells"]) - prefixed.encode_queries(["cells"])).max() > 1e-3
    assert np.array_equal(plain.encode_passages(["cells"]), prefixed.encode_passages(["cells"]))
    assert plain.fingerprint != prefixed.fingerprint


def test_the_fingerprint_names_engine_and_precision_too(tiny_bert):
    dygraph = Encoder.from_model_dir(tiny_bert, engine="paddle")
    onnx = Encoder.from_model_dir(tiny_bert, engine="onnx")
    assert (dygraph.identity.engine, onnx.identity.engine) == ("paddle", "onnx")
    assert dygraph.precision == onnx.precision == "fp32"
    assert dygraph.fingerprint != onnx.fingerprint
    assert dygraph.identity.weights == onnx.identity.weights
    assert Encoder.from_model_dir(tiny_bert, engine="onnx").fingerprint == onnx.fingerprint


def test_a_precision_the_engine_lacks_is_refused(tiny_bert):
    from embedkit.errors import UserError

    with pytest.raises(UserError, match="--precision.*fp32 only"):
        Encoder.from_model_dir(tiny_bert, engine="onnx", precision="bf16")


def test_max_length_truncates(tiny_bert):
    long_text = MIXED_TEXTS[-1]
    short = Encoder.from_model_dir(tiny_bert, engine="onnx", overrides={"passage_max_len": 8})
    full = Encoder.from_model_dir(tiny_bert, engine="onnx", overrides={"passage_max_len": 256})
    assert np.abs(short.encode_passages([long_text]) - full.encode_passages([long_text])).max() > 1e-3


def test_cpu_batches_are_capped_in_tokens(tiny_bert):
    from embedkit.inference.runtime import CPU_TOKENS_PER_BATCH

    encoder = Encoder.from_model_dir(tiny_bert, engine="onnx", device="cpu", batch_size=64,
                                     overrides={"passage_max_len": 512})
    assert all(t.max_tokens == CPU_TOKENS_PER_BATCH for t in encoder.towers.values())
    tower = encoder.towers["shared"]
    shapes, forward = [], tower.forward
    tower.forward = lambda batch: shapes.append(batch["input_ids"].shape) or forward(batch)
    long_texts = [" ".join([text] * 40) for text in MIXED_TEXTS[1:]]  # each over 150 tokens
    capped = encoder.encode_passages(long_texts)
    assert max(rows * width for rows, width in shapes) <= CPU_TOKENS_PER_BATCH < len(long_texts) * shapes[0][1]
    tower.max_tokens = None
    assert np.abs(capped - encoder.encode_passages(long_texts)).max() <= 1e-5
