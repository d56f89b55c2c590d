"""Weight-only int8/int4 quantization of a backbone's Linear layers on Paddle (the GPU path of `embedkit quantize`).

Each ``paddle.nn.Linear`` (weight W [in, out], bias b [out]) becomes a `WeightOnlyLinear` that keeps W as
integers q with one scale per output column (or per group of ``group_size`` input rows and output column):

    s[g, j] = max_{i in group g} |W[i, j]| / B          B = 127 (int8), 7 (int4); symmetric, no zero point
    q[i, j] = clip(round(W[i, j] / s[g(i), j]), -B, B)
    y       = x @ (q * s) + b                            computed by paddle.nn.quant.weight_only_linear

Activations stay fp16/bf16: only the weights shrink (int8 halves an fp16 weight, int4 quarters it), which is what
makes memory-bound GPU matmuls faster. The integer matrix is stored in the layout of the CUTLASS mixed-precision
GEMM Paddle calls, which depends on the GPU's SM architecture (``arch``): ``paddle.nn.quant.weight_quantize``
returns it already permuted, transposed to [out, in] (int4: two values per byte, [out / 2, in]) and offset to
unsigned (+128 for int8, +8 for int4). A packed weight is therefore only valid for the arch it was packed for.

What runs where (Paddle 3.3.1):

* ``weight_quantize`` has a CPU kernel for float16 and bfloat16 weights, for every ``group_size`` (-1, 64, 128)
  and arch 70-100 (SM75-100 share one layout; SM70 keeps [in, out] row-major). `pack_weight` always packs on
  CPU: in the Paddle sources read for this (weight_quantize_kernel_gpu_impl.h), the GPU kernel computes
  per-channel scales only, whatever ``group_size`` says, while the CPU kernel implements the grouped ones. For
  int8 at arch 80 the CPU layout was compared, off-line, with the index formula of Paddle's GPU permutation
  kernel: identical. int4 was not compared.
* ``weight_only_linear`` and ``weight_dequantize`` have no CPU kernel: `WeightOnlyLinear.forward` needs a CUDA
  build and a GPU. It is written to Paddle's documented API and has not been run here (no GPU).
* The CPU ``weight_quantize`` kernel corrupts the heap (the process aborts) for an input size that is not a
  multiple of 64, and Paddle's shape check requires an output size divisible by 16: `check_linear_shape` refuses
  such Linears before any is packed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Optional

import paddle
from paddle import nn

from embedkit.errors import UserError

WEIGHT_ONLY_INT8 = "weight_only_int8"
WEIGHT_ONLY_INT4 = "weight_only_int4"
# quant type -> (weight_only_linear's weight_dtype, the largest magnitude an integer takes)
WEIGHT_ONLY_TYPES: dict[str, tuple[str, int]] = {WEIGHT_ONLY_INT8: ("int8", 127), WEIGHT_ONLY_INT4: ("int4", 7)}
PER_CHANNEL = -1
GROUP_SIZES = (PER_CHANNEL, 64, 128)  # what weight_quantize / weight_only_linear accept (-1: one scale per column)

# The SM archs Paddle documents for weight_quantize / weight_only_linear (70, 75, 80, 86, 89, 90, 92, 100) that
# its CPU weight_quantize kernel, which packs every weight here, accepts: it rejects 92. Any other GPU (Pascal,
# Jetson's SM87, consumer Blackwell's SM120) has no kernel layout and is refused.
SUPPORTED_ARCHS = (70, 75, 80, 86, 89, 90, 100)
# Grouped scales (CUTLASS's fine-grained scale GEMM) and bf16 tensor-core math start at Ampere (SM80); Volta and
# Turing get per-channel scales and fp16 only. Paddle documents neither limit: this is the conservative reading.
GROUPED_MIN_ARCH = 80
BF16_MIN_ARCH = 80
COMPUTE_DTYPES = ("float16", "bfloat16")
# Input sizes the CPU packing handles (it overruns its buffers otherwise) and output sizes Paddle's shape check
# accepts; see the module docstring.
IN_FEATURES_MULTIPLE = 64
OUT_FEATURES_MULTIPLE = 16
# Left as they are by default: BERT-family poolers (dense + tanh on [CLS]); embedkit pools token states itself
# (embedkit.modeling.pooling), so the pooler is not on the embedding path and quantizing it gains nothing.
DEFAULT_SKIP = (r"(.+\.)?pooler(\..+)?",)

_CPU_ALTERNATIVE = "on CPU use --engine openvino (NNCF weight compression)"


def check_quant_type(quant_type: str) -> tuple[str, int]:
    """(weight_only_linear's ``weight_dtype``, the integer bound B) for ``quant_type``; a UserError otherwise."""
    if str(quant_type) not in WEIGHT_ONLY_TYPES:
        raise UserError(f"{quant_type!r} is not a Paddle weight-only type (choose from "
                        f"{', '.join(WEIGHT_ONLY_TYPES)})", "--quant-type")
    return WEIGHT_ONLY_TYPES[str(quant_type)]


def check_group_size(group_size: int, arch: Optional[int] = None) -> int:
    """``group_size`` if weight_only_linear accepts it (on ``arch``, when given); a UserError naming the option."""
    if group_size not in GROUP_SIZES:
        raise UserError(f"group size {group_size} is not one Paddle's weight_only_linear takes "
                        f"(64 or 128; left out or -1: one scale per output channel)", "--group-size")
    if group_size != PER_CHANNEL and arch is not None and arch < GROUPED_MIN_ARCH:
        raise UserError(f"group size {group_size} needs an SM{GROUPED_MIN_ARCH}+ GPU (Ampere or newer); this GPU is "
                        f"SM{arch}: leave --group-size out for per-channel scales", "--group-size")
    return group_size


def require_weight_only_gpu(quant_type: str, device="auto", group_size: int = PER_CHANNEL) -> int:
    """The SM arch (major * 10 + minor) weight-only ``quant_type`` will be packed for; a UserError (exit 2) otherwise.

    Refused up front, before a model is loaded: an unknown type or group size, a CPU-only Paddle build,
    ``device="cpu"``, no visible GPU, and a GPU whose arch is not in `SUPPORTED_ARCHS` (or below SM80 with a group
    size). ``device`` is a `Device`/`DeviceChoice` value (``auto``, ``cpu``, ``gpu``); the arch is that of the
    current CUDA device (``paddle.device.cuda.get_device_capability``).

    Unverified: written to Paddle's documented API on a machine without a GPU. The tests reach the GPU branches by
    replacing ``is_compiled_with_cuda``, ``device_count`` and ``get_device_capability``.
    """
    check_quant_type(quant_type)
    check_group_size(group_size)
    needs = f"--quant-type {quant_type} on Paddle needs a CUDA GPU"
    if str(device) == "cpu":
        raise UserError(f"{needs}, not --device cpu; {_CPU_ALTERNATIVE}", "--quant-type")
    if not paddle.device.is_compiled_with_cuda():
        raise UserError(f"{needs} and this Paddle build is CPU-only; {_CPU_ALTERNATIVE}", "--quant-type")
    if paddle.device.cuda.device_count() < 1:
        raise UserError(f"{needs} and none is visible (CUDA_VISIBLE_DEVICES?); {_CPU_ALTERNATIVE}", "--quant-type")
    major, minor = paddle.device.cuda.get_device_capability()
    arch = int(major) * 10 + int(minor)
    if arch not in SUPPORTED_ARCHS:
        supported = ", ".join(f"SM{a}" for a in SUPPORTED_ARCHS)
        raise UserError(f"--quant-type {quant_type}: Paddle's weight_only_linear has no kernel layout for this GPU "
                        f"(SM{arch}); it supports {supported}", "--quant-type")
    check_group_size(group_size, arch)
    return arch


def check_compute_dtype(dtype: str, arch: int) -> str:
    """``dtype`` if weight_only_linear computes in it on ``arch`` (float16 anywhere, bfloat16 on SM80+)."""
    if dtype not in COMPUTE_DTYPES:
        raise UserError(f"weight-only layers compute in {' or '.join(COMPUTE_DTYPES)}, not {dtype}")
    if dtype == "bfloat16" and arch < BF16_MIN_ARCH:
        raise UserError(f"bfloat16 needs an SM{BF16_MIN_ARCH}+ GPU; this GPU is SM{arch}: use float16")
    return dtype


def check_linear_shape(name: str, in_features: int, out_features: int, quant_type: str,
                       group_size: int = PER_CHANNEL) -> None:
    """Refuse (UserError) a Linear [in, out] Paddle cannot pack as ``quant_type`` with ``group_size``.

    The input size must be a multiple of 64 (the CPU packing's tile; other sizes overrun its buffers) and split into
    whole groups (grouped scales are per ``group_size`` input rows), the output size must be a multiple of 16.
    """
    if in_features % IN_FEATURES_MULTIPLE or out_features % OUT_FEATURES_MULTIPLE:
        raise UserError(f"{name}: a [{in_features}, {out_features}] Linear cannot be packed for Paddle's "
                        f"weight_only_linear (input size must be a multiple of {IN_FEATURES_MULTIPLE}, output size of "
                        f"{OUT_FEATURES_MULTIPLE})", "--quant-type")
    if group_size != PER_CHANNEL and in_features % group_size:
        # Every packable input size is a multiple of 64, so 64 (or per channel) always fits.
        raise UserError(f"{name}: input size {in_features} is not a multiple of group size {group_size}, so "
                        f"{quant_type}'s groups of {group_size} input rows do not tile it; use --group-size 64, or "
                        f"leave it out for per-channel scales", "--group-size")


def pack_weight(weight: paddle.Tensor, quant_type: str, group_size: int = PER_CHANNEL, arch: int = 80,
                dtype: str = "float16") -> tuple[paddle.Tensor, paddle.Tensor]:
    """(packed integer weight, scales) of a Linear weight [in, out], on CPU, for ``arch``'s weight_only_linear.

    ``weight`` is cast to ``dtype`` (float16 or bfloat16: the only types weight_quantize takes, and the type the
    activations and scales must share in weight_only_linear) and copied to CPU, where Paddle's weight_quantize
    kernel implements grouped scales. Shapes:

    * packed: int8 [out, in] for int8; int8 [out / 2, in] for int4 (two 4-bit values a byte), in the arch's
      CUTLASS layout (permuted and offset, not a plain transpose of q);
    * scales: ``dtype`` [out] per channel, [in / group_size, out] grouped; s = absmax / 127 (int8) or / 7 (int4).
    """
    check_quant_type(quant_type)
    check_group_size(group_size)
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"arch {arch} is not one of {SUPPORTED_ARCHS}")
    if weight.ndim != 2:
        raise ValueError(f"a Linear weight is 2-D [in, out], got shape {list(weight.shape)}")
    in_features, out_features = weight.shape
    check_linear_shape("weight", in_features, out_features, quant_type, group_size)
    source = weight.detach().cpu().astype(dtype)
    return paddle.nn.quant.weight_quantize(source, algo=quant_type, arch=arch, group_size=group_size)


class WeightOnlyLinear(nn.Layer):
    """y = x @ dequantized(W) + b with W kept as a packed int8/int4 matrix (see the module docstring).

    Holds the packed weight, its scales and the bias (``dtype``) as non-trainable buffers, so they move with the
    layer (``.to``), appear in its state dict, and are never handed to an optimizer. ``forward`` casts its input to
    ``dtype`` and the result back to the input's dtype, so a layer dropped into an fp32 backbone keeps the rest of it
    in fp32. Casting the layer afterwards (``Layer.to(dtype=...)``, ``astype``) would cast the scales and bias too
    and break that agreement: cast the backbone before quantizing. GPU only (weight_only_linear has no CPU kernel);
    unverified here.
    """

    def __init__(self, quant_weight: paddle.Tensor, quant_scale: paddle.Tensor, bias: Optional[paddle.Tensor],
                 in_features: int, out_features: int, quant_type: str, group_size: int = PER_CHANNEL,
                 arch: int = 80, dtype: str = "float16"):
        super().__init__()
        self.weight_dtype, _ = check_quant_type(quant_type)
        self.quant_type = quant_type
        self.in_features, self.out_features = in_features, out_features
        self.group_size, self.arch, self.compute_dtype = group_size, arch, dtype
        self.register_buffer("quant_weight", quant_weight)
        self.register_buffer("quant_scale", quant_scale)
        self.register_buffer("bias", bias.astype(dtype) if bias is not None else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, quant_type: str, group_size: int = PER_CHANNEL, arch: int = 80,
                    dtype: str = "float16") -> WeightOnlyLinear:
        """The weight-only version of ``linear``, its tensors on ``linear``'s device (packed on CPU, then copied)."""
        in_features, out_features = linear.weight.shape
        packed, scales = pack_weight(linear.weight, quant_type, group_size, arch, dtype)
        place = linear.weight.place
        bias = linear.bias.detach() if linear.bias is not None else None
        return cls(packed.to(place), scales.to(place), bias, in_features, out_features, quant_type, group_size,
                   arch, dtype)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        input_dtype = x.dtype
        if x.dtype != self.quant_scale.dtype:
            x = x.astype(self.quant_scale.dtype)
        # AMP would otherwise be free to recast x; the kernel needs x, scales and bias in one dtype.
        with paddle.amp.auto_cast(enable=False):
            out = paddle.nn.quant.weight_only_linear(x, self.quant_weight, bias=self.bias,
                                                     weight_scale=self.quant_scale, weight_dtype=self.weight_dtype,
                                                     arch=self.arch, group_size=self.group_size)
        return out if out.dtype == input_dtype else out.astype(input_dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, {self.quant_type}, "
                f"group_size={self.group_size}, arch={self.arch}, dtype={self.compute_dtype}")


def quantizable_linears(layer: nn.Layer, skip: Sequence[str] = DEFAULT_SKIP) -> list[tuple[str, nn.Linear]]:
    """(name, Linear) for every ``paddle.nn.Linear`` under ``layer`` whose name no ``skip`` regex full-matches."""
    patterns = [re.compile(pattern) for pattern in skip]
    return [(name, sub) for name, sub in layer.named_sublayers()
            if isinstance(sub, nn.Linear) and not any(p.fullmatch(name) for p in patterns)]


def quantize_linears(layer: nn.Layer, quant_type: str, group_size: int = PER_CHANNEL, arch: int = 80,
                     skip: Sequence[str] = DEFAULT_SKIP, dtype: str = "float16") -> list[str]:
    """Replace, in place, every Linear of ``layer`` (a backbone, or an Embedder) by a `WeightOnlyLinear`.

    Linears whose sublayer name full-matches a ``skip`` regex (default: the pooler) stay as they are. Every Linear's
    shape is checked first (`check_linear_shape`), so a refusal leaves ``layer`` untouched rather than half
    quantized. Returns the replaced sublayer names, in ``named_sublayers`` order. Packing runs on CPU on any machine;
    running the result needs a GPU of ``arch``.
    """
    check_quant_type(quant_type)
    check_group_size(group_size, arch)
    check_compute_dtype(dtype, arch)
    targets = quantizable_linears(layer, skip)
    for name, linear in targets:
        check_linear_shape(name, *linear.weight.shape, quant_type, group_size)
    for name, linear in targets:
        parent_name, _, attribute = name.rpartition(".")
        parent = layer
        for part in parent_name.split(".") if parent_name else ():
            parent = getattr(parent, part)
        # setattr on a Layer re-registers the sublayer under the same name, so state_dict keys follow it.
        setattr(parent, attribute, WeightOnlyLinear.from_linear(linear, quant_type, group_size, arch, dtype))
    return [name for name, _ in targets]
