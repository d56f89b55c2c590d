"""Paddle weight-only int8/int4 (embedkit.modeling.weight_only), checked on CPU.

Paddle's CPU build has weight_quantize (packing) but neither weight_only_linear nor weight_dequantize, so the
packing is checked against a numpy reference written from the definition (scales, integer values, and the element
order of the CUTLASS layout for SM75+ and for SM70), and the layer's arithmetic through a stand-in for
weight_only_linear built from that reference. `test_forward_matches_fp32_linear` runs the real kernel where Paddle
has one (a CUDA build on a GPU) and is skipped here. The GPU checks in require_weight_only_gpu are reached by
replacing Paddle's device queries.
"""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from embedkit.errors import UserError
from embedkit.modeling.weight_only import (
    WEIGHT_ONLY_INT4,
    WEIGHT_ONLY_INT8,
    WEIGHT_ONLY_TYPES,
    WeightOnlyLinear,
    pack_weight,
    quantize_linears,
    require_weight_only_gpu,
)

BITS = {WEIGHT_ONLY_INT8: 8, WEIGHT_ONLY_INT4: 4}
BOUND = {WEIGHT_ONLY_INT8: 127, WEIGHT_ONLY_INT4: 7}
# Cosine between a weight-only layer's outputs and the fp32 Linear's: int4 keeps 15 levels, int8 255.
MIN_COSINE = {WEIGHT_ONLY_INT8: 0.99, WEIGHT_ONLY_INT4: 0.97}
CASES = [(q, g) for q in (WEIGHT_ONLY_INT8, WEIGHT_ONLY_INT4) for g in (-1, 64, 128)]
TEXTS = ["weight only quantization keeps activations in half precision",
         "a tiny bert model for the weight only tests", "scales per output channel or per group of input rows",
         "the quick brown fox jumps over the lazy dog", "retrieval models embed queries and passages"]


# ---- the reference, from the definition ------------------------------------------------------------------------

def reference_scales(w: np.ndarray, quant_type: str, group_size: int) -> np.ndarray:
    """absmax / B over each output column (group_size -1) or each group of group_size input rows: [out] or [G, out]."""
    k, n = w.shape
    rows = k if group_size == -1 else group_size
    absmax = np.abs(w.astype(np.float32)).reshape(k // rows, rows, n).max(axis=1)
    scales = absmax / np.float32(BOUND[quant_type])
    return scales[0] if group_size == -1 else scales


def per_row_scales(scales: np.ndarray, k: int, group_size: int) -> np.ndarray:
    """The scale each weight element [k, n] is divided by."""
    scales = scales.astype(np.float32).reshape(-1, scales.shape[-1])
    return np.repeat(scales, k if group_size == -1 else group_size, axis=0)


def reference_integers(w: np.ndarray, scales: np.ndarray, quant_type: str, group_size: int) -> np.ndarray:
    """clip(round(w / s), -B, B), rounding halves away from zero (C's round, which Paddle's kernel uses)."""
    ratio = w.astype(np.float32) / per_row_scales(scales, w.shape[0], group_size)
    rounded = np.sign(ratio) * np.floor(np.abs(ratio) + 0.5)
    return np.clip(rounded, -BOUND[quant_type], BOUND[quant_type]).astype(np.int64)


def element_order(k: int, n: int, bits: int, arch: int = 80) -> np.ndarray:
    """``order`` with packed element j = q[k, n].flat[order[j]], in the CUTLASS mixed-GEMM layout for ``arch``.

    Read from what Paddle's CPU weight_quantize does, step by step, at element granularity (a 32-bit word holds
    e = 32 / bits elements, lowest bits first):
    1. rows are permuted within blocks of 8 * 16 / bits rows (row t of a block comes from 8*((t % e) // 2) + t % 2
       + 2*(t // e));
    2. the matrix is transposed to [n, k] (column-major for the GEMM);
    3. columns are interleaved I = 16 / bits at a time, in runs of T = 64 / e words: word v of column c goes to
       column c // I, word I*T*(v // T) + T*(c % I) + v % T;
    4. inside each word, int8 swaps elements 1 and 2, int4 reorders its nibbles 0, 2, 4, 6, 1, 3, 5, 7.
    SM70 (Volta) does step 4 alone: its weight stays row-major [k, n], though Paddle reports it as [n, k].
    """
    per_word = 32 // bits
    within = np.array([0, 2, 1, 3]) if bits == 8 else np.array([0, 2, 4, 6, 1, 3, 5, 7])
    if arch == 70:
        return np.arange(k * n).reshape(-1, per_word)[:, within].ravel()
    index = np.arange(k * n).reshape(k, n)
    block = 8 * 16 // bits
    t = np.arange(block)
    source_row = 8 * ((t % per_word) // 2) + t % 2 + 2 * (t // per_word)
    rows = index[(np.arange(k) // block) * block + source_row[np.arange(k) % block]]
    columns = rows.T  # [n, k]
    interleave, run = 16 // bits, 64 // per_word
    c = np.arange(n)[:, None]
    r = np.arange(k)[None, :]
    word = r // per_word
    target_word = ((c // interleave) * (k // per_word) * interleave + interleave * run * (word // run)
                   + run * (c % interleave) + word % run)
    order = np.empty(k * n, dtype=np.int64)
    order[(target_word * per_word + r % per_word).ravel()] = columns.ravel()
    return order.reshape(-1, per_word)[:, within].ravel()


def packed_elements(packed: np.ndarray, bits: int) -> np.ndarray:
    """The signed integers in a packed weight, in memory order (the +128 / +8 offset removed)."""
    raw = packed.astype(np.uint8).ravel()
    if bits == 8:
        return raw.astype(np.int64) - 128
    return np.stack([raw & 0xF, raw >> 4], axis=1).ravel().astype(np.int64) - 8


def dequantize(packed: np.ndarray, scales: np.ndarray, k: int, n: int, quant_type: str, group_size: int,
               arch: int = 80):
    """The [k, n] float32 weight a packed weight stands for: q * s, q put back in row-major order."""
    q = np.empty(k * n, dtype=np.int64)
    q[element_order(k, n, BITS[quant_type], arch)] = packed_elements(packed, BITS[quant_type])
    return q.reshape(k, n).astype(np.float32) * per_row_scales(scales, k, group_size)


def weight(k: int = 256, n: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, n)).astype(np.float16)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---- packing -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("quant_type,group_size", CASES)
def test_pack_weight_shapes_dtypes_and_scales(quant_type, group_size):
    w = weight()
    packed, scales = pack_weight(paddle.to_tensor(w), quant_type, group_size, arch=80)
    k, n = w.shape
    assert packed.dtype == paddle.int8
    assert list(packed.shape) == ([n, k] if quant_type == WEIGHT_ONLY_INT8 else [n // 2, k])
    assert scales.dtype == paddle.float16
    assert list(scales.shape) == ([n] if group_size == -1 else [k // group_size, n])
    np.testing.assert_array_equal(scales.numpy(), reference_scales(w, quant_type, group_size).astype(np.float16))


def test_pack_weight_casts_fp32_weights_and_keeps_bf16_scales():
    w = weight().astype(np.float32)
    packed, scales = pack_weight(paddle.to_tensor(w), WEIGHT_ONLY_INT8, 64, arch=80, dtype="bfloat16")
    assert scales.dtype == paddle.bfloat16
    # The reference in float32 from the bf16 weight the kernel sees, rounded to bf16 the way Paddle casts.
    seen = paddle.to_tensor(w).astype("bfloat16").astype("float32").numpy()
    expected = paddle.to_tensor(reference_scales(seen, WEIGHT_ONLY_INT8, 64)).astype("bfloat16")
    np.testing.assert_array_equal(scales.astype("float32").numpy(), expected.astype("float32").numpy())


@pytest.mark.parametrize("arch", [80, 70])
@pytest.mark.parametrize("quant_type,group_size", CASES)
def test_packed_integers_are_round_w_over_s_in_the_archs_layout(quant_type, group_size, arch):
    w = weight()
    packed, scales = pack_weight(paddle.to_tensor(w), quant_type, group_size, arch=arch)
    q = reference_integers(w, scales.numpy(), quant_type, group_size)
    order = element_order(*w.shape, BITS[quant_type], arch)
    np.testing.assert_array_equal(packed_elements(packed.numpy(), BITS[quant_type]), q.ravel()[order])


@pytest.mark.parametrize("arch", [80, 70])
@pytest.mark.parametrize("quant_type,group_size", CASES)
def test_dequantized_weight_is_within_one_step_of_the_original(quant_type, group_size, arch):
    w = weight()
    packed, scales = pack_weight(paddle.to_tensor(w), quant_type, group_size, arch=arch)
    restored = dequantize(packed.numpy(), scales.numpy(), *w.shape, quant_type, group_size, arch)
    step = per_row_scales(scales.numpy(), w.shape[0], group_size)
    assert np.all(np.abs(restored - w.astype(np.float32)) <= step)
    assert cosine(restored, w) > MIN_COSINE[quant_type]


@pytest.mark.parametrize("quant_type", [WEIGHT_ONLY_INT8, WEIGHT_ONLY_INT4])
def test_grouped_scales_fit_the_weight_closer_than_per_channel(quant_type):
    w = weight()
    w[:64] *= 8  # one group of input rows much larger than the rest: one scale per column has to cover it
    errors = {}
    for group_size in (-1, 64):
        packed, scales = pack_weight(paddle.to_tensor(w), quant_type, group_size, arch=80)
        restored = dequantize(packed.numpy(), scales.numpy(), *w.shape, quant_type, group_size)
        errors[group_size] = float(np.abs(restored[64:] - w[64:].astype(np.float32)).mean())
    assert errors[64] < errors[-1] / 4


# ---- the layer -----------------------------------------------------------------------------------------------------

def reference_weight_only_linear(calls: list):
    """A stand-in for paddle.nn.quant.weight_only_linear on CPU: x @ dequantize(packed) + bias, in x's dtype."""

    def run(x, weight, bias=None, weight_scale=None, weight_dtype="int8", arch=None, group_size=-1):
        quant_type = {"int8": WEIGHT_ONLY_INT8, "int4": WEIGHT_ONLY_INT4}[weight_dtype]
        assert arch == 80 and x.dtype == weight_scale.dtype
        assert bias is None or bias.dtype == x.dtype
        k, n = weight.shape[1], weight_scale.shape[-1]
        w = dequantize(weight.numpy(), weight_scale.astype("float32").numpy(), k, n, quant_type, group_size)
        out = x.astype("float32").numpy() @ w
        if bias is not None:
            out = out + bias.astype("float32").numpy()
        calls.append((weight_dtype, group_size))
        return paddle.to_tensor(out).astype(x.dtype)

    return run


@pytest.mark.parametrize("quant_type,group_size", CASES)
def test_weight_only_linear_tracks_the_fp32_linear(monkeypatch, quant_type, group_size):
    calls = []
    monkeypatch.setattr(paddle.nn.quant, "weight_only_linear", reference_weight_only_linear(calls))
    paddle.seed(0)
    linear = paddle.nn.Linear(256, 96)
    layer = WeightOnlyLinear.from_linear(linear, quant_type, group_size, arch=80)
    x = paddle.randn([3, 5, 256])
    y = layer(x)
    assert y.dtype == paddle.float32 and list(y.shape) == [3, 5, 96]
    assert calls == [(WEIGHT_ONLY_TYPES[quant_type][0], group_size)]
    assert cosine(y.numpy(), linear(x).numpy()) >= MIN_COSINE[quant_type]


@pytest.mark.parametrize("quant_type,group_size", CASES)
def test_forward_matches_fp32_linear(quant_type, group_size):
    """The real weight_only_linear, where Paddle has a kernel for it (a CUDA build on a supported GPU)."""
    if not paddle.device.is_compiled_with_cuda() or paddle.device.cuda.device_count() < 1:
        pytest.skip("paddle.nn.quant.weight_only_linear has no CPU kernel; this runs on a CUDA build with a GPU")
    arch = require_weight_only_gpu(quant_type, "gpu", group_size)
    paddle.seed(0)
    linear = paddle.nn.Linear(256, 96)
    layer = WeightOnlyLinear.from_linear(linear, quant_type, group_size, arch=arch)
    x = paddle.randn([4, 7, 256])
    assert cosine(layer(x).numpy(), linear(x).numpy()) >= MIN_COSINE[quant_type]


def test_weight_only_linear_has_no_cpu_kernel_here():
    """What the CPU build lacks, so the forward above is skipped (this test is skipped once Paddle has the kernel)."""
    if paddle.device.is_compiled_with_cuda():
        pytest.skip("CUDA build")
    packed, scales = pack_weight(paddle.to_tensor(weight()), WEIGHT_ONLY_INT8, arch=80)
    with pytest.raises(RuntimeError, match="not registered"):
        paddle.nn.quant.weight_only_linear(paddle.randn([2, 256]).astype("float16"), packed,
                                           weight_scale=scales, weight_dtype="int8", arch=80)


# ---- a tiny BERT ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    from embedkit.modeling.tiny import build_tiny_bert

    # Hidden 64 (not tiny.py's 32): Paddle packs only input sizes that are multiples of 64.
    return build_tiny_bert(tmp_path_factory.mktemp("weight-only") / "bert", TEXTS, hidden=64, layers=2, heads=2)


def linears(layer) -> dict[str, paddle.nn.Linear]:
    return {name: sub for name, sub in layer.named_sublayers() if isinstance(sub, paddle.nn.Linear)}


@pytest.mark.parametrize("quant_type,group_size", [(WEIGHT_ONLY_INT8, -1), (WEIGHT_ONLY_INT4, 64)])
def test_quantize_linears_replaces_exactly_the_backbones_linears(tiny_bert_dir, quant_type, group_size):
    from embedkit.modeling.embedder import load_embedder

    embedder, _ = load_embedder(tiny_bert_dir)
    before = linears(embedder)
    pooler = {name for name in before if ".pooler." in name}
    assert pooler == {"query_backbone.pooler.dense"}

    replaced = quantize_linears(embedder, quant_type, group_size, arch=80)

    assert set(replaced) == set(before) - pooler and len(replaced) == 2 * 6  # q, k, v, out, linear1, linear2
    after = dict(embedder.named_sublayers())
    assert set(linears(embedder)) == pooler and after["query_backbone.pooler.dense"] is before[
        "query_backbone.pooler.dense"]
    for name in replaced:
        layer, original = after[name], before[name]
        assert isinstance(layer, WeightOnlyLinear)
        assert (layer.in_features, layer.out_features) == tuple(original.weight.shape)
        np.testing.assert_array_equal(layer.bias.numpy(), original.bias.astype("float16").numpy())
        assert layer.quant_weight.dtype == paddle.int8
        assert layer.quant_type == quant_type and layer.group_size == group_size
    state = embedder.state_dict()
    assert "query_backbone.encoder.layers.0.linear1.quant_weight" in state
    assert "query_backbone.encoder.layers.0.linear1.weight" not in state


@pytest.mark.parametrize("quant_type,group_size", [(WEIGHT_ONLY_INT8, -1), (WEIGHT_ONLY_INT4, 64)])
def test_quantized_bert_embeds_like_the_fp32_one(tiny_bert_dir, monkeypatch, quant_type, group_size):
    from embedkit.modeling.embedder import load_embedder
    from embedkit.modeling.tokenize import pad_batch, tokenize

    calls = []
    monkeypatch.setattr(paddle.nn.quant, "weight_only_linear", reference_weight_only_linear(calls))
    embedder, tokenizer = load_embedder(tiny_bert_dir)
    embedder.eval()
    features = tokenize(tokenizer, TEXTS, max_len=32)
    batch = {k: paddle.to_tensor(v) for k, v in pad_batch(features, tokenizer.pad_token_id).items()}
    with paddle.no_grad():
        fp32 = embedder.embed(batch, "passage").numpy()
        quantize_linears(embedder, quant_type, group_size, arch=80)
        quantized = embedder.embed(batch, "passage").numpy()
    assert len(calls) == 2 * 6 and quantized.dtype == np.float32
    assert np.abs(quantized - fp32).max() > 0  # the quantized layers ran, not the fp32 ones
    for a, b in zip(fp32, quantized, strict=True):
        assert cosine(a, b) >= MIN_COSINE[quant_type]


def test_quantize_linears_covers_a_decoders_attention_and_mlp(monkeypatch):
    from paddlenlp.transformers import LlamaConfig, LlamaModel

    calls = []
    monkeypatch.setattr(paddle.nn.quant, "weight_only_linear", reference_weight_only_linear(calls))
    paddle.seed(0)
    model = LlamaModel(LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2))
    model.eval()
    ids = paddle.randint(1, 300, [2, 9])
    with paddle.no_grad():
        fp32 = model(input_ids=ids, return_dict=True).last_hidden_state.numpy()
        replaced = quantize_linears(model, WEIGHT_ONLY_INT8, arch=80)
        quantized = model(input_ids=ids, return_dict=True).last_hidden_state.numpy()
    projections = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                   "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
    assert replaced == [f"layers.{i}.{p}" for i in range(2) for p in projections] and not linears(model)
    assert len(calls) == 14 and cosine(fp32, quantized) >= MIN_COSINE[WEIGHT_ONLY_INT8]


# ---- refusals ------------------------------------------------------------------------------------------------------

def test_cpu_build_is_refused_naming_the_option():
    if paddle.device.is_compiled_with_cuda():
        pytest.skip("CUDA build")
    with pytest.raises(UserError) as caught:
        require_weight_only_gpu(WEIGHT_ONLY_INT8, "auto")
    message = str(caught.value)
    assert "--quant-type weight_only_int8 on Paddle needs a CUDA GPU" in message and "--engine openvino" in message


def test_cpu_device_is_refused_on_any_build():
    with pytest.raises(UserError, match="--quant-type weight_only_int4 .*--device cpu"):
        require_weight_only_gpu(WEIGHT_ONLY_INT4, "cpu")


@pytest.fixture
def fake_gpu(monkeypatch):
    """Paddle's device queries answering as a CUDA build with one GPU of the given capability."""

    def install(capability=(8, 0), count=1):
        monkeypatch.setattr(paddle.device, "is_compiled_with_cuda", lambda: True)
        monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: count)
        monkeypatch.setattr(paddle.device.cuda, "get_device_capability", lambda device=None: capability)

    return install


@pytest.mark.parametrize("capability,group_size,arch", [((8, 0), -1, 80), ((8, 6), 128, 86), ((9, 0), 64, 90),
                                                        ((7, 0), -1, 70), ((7, 5), -1, 75),
                                                        ((10, 0), 128, 100)])
def test_supported_gpu_returns_its_arch(fake_gpu, capability, group_size, arch):
    fake_gpu(capability)
    assert require_weight_only_gpu(WEIGHT_ONLY_INT4, "auto", group_size) == arch


@pytest.mark.parametrize("capability", [(6, 1), (8, 7), (10, 3), (12, 0)])
def test_unsupported_gpu_arch_is_refused(fake_gpu, capability):
    fake_gpu(capability)
    with pytest.raises(UserError, match=rf"SM{capability[0]}{capability[1]}"):
        require_weight_only_gpu(WEIGHT_ONLY_INT8, "gpu")


def test_no_visible_gpu_is_refused(fake_gpu):
    fake_gpu(count=0)
    with pytest.raises(UserError, match="none is visible"):
        require_weight_only_gpu(WEIGHT_ONLY_INT8, "auto")


def test_group_size_below_ampere_is_refused(fake_gpu):
    fake_gpu((7, 5))
    with pytest.raises(UserError, match="--group-size: group size 64 needs an SM80"):
        require_weight_only_gpu(WEIGHT_ONLY_INT4, "gpu", 64)


@pytest.mark.parametrize("group_size", [0, 32, 256])
def test_group_size_paddle_lacks_is_refused(group_size):
    with pytest.raises(UserError, match="--group-size"):
        require_weight_only_gpu(WEIGHT_ONLY_INT8, "gpu", group_size)


def test_unknown_quant_type_is_refused():
    with pytest.raises(UserError, match="--quant-type: 'int8' is not a Paddle weight-only type"):
        require_weight_only_gpu("int8", "gpu")


def test_group_size_that_does_not_divide_a_linear_is_refused_before_any_change():
    model = paddle.nn.Sequential(paddle.nn.Linear(128, 64), paddle.nn.Linear(64, 128))
    with pytest.raises(UserError, match=r"1: input size 64 is not a multiple of group size 128"):
        quantize_linears(model, WEIGHT_ONLY_INT4, 128, arch=80)
    assert all(isinstance(sub, paddle.nn.Linear) for sub in model.children())


def test_linear_paddle_cannot_pack_is_refused_instead_of_crashing():
    # Paddle's CPU packing corrupts the heap on an input size that is not a multiple of 64: never reach it.
    with pytest.raises(UserError, match=r"\[32, 32\] Linear cannot be packed"):
        quantize_linears(paddle.nn.Sequential(paddle.nn.Linear(32, 32)), WEIGHT_ONLY_INT8, arch=80)
    with pytest.raises(UserError, match="output size of 16"):
        pack_weight(paddle.randn([64, 40]), WEIGHT_ONLY_INT8)


def test_bf16_below_ampere_is_refused():
    with pytest.raises(UserError, match="bfloat16 needs an SM80"):
        quantize_linears(paddle.nn.Sequential(paddle.nn.Linear(64, 64)), WEIGHT_ONLY_INT8, arch=75, dtype="bfloat16")


def test_skip_leaves_the_named_linears_alone():
    model = paddle.nn.Sequential(paddle.nn.Linear(64, 64), paddle.nn.Linear(64, 64))
    assert quantize_linears(model, WEIGHT_ONLY_INT8, skip=(r"0",)) == ["1"]
    assert isinstance(model[0], paddle.nn.Linear) and isinstance(model[1], WeightOnlyLinear)
