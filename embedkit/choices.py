"""The closed sets of values embedkit's options take, defined once for the CLI, the schemas and the code.

Each is a ``StrEnum``, so a member is its value (``Pooling.MEAN == "mean"``, ``f"{Pooling.MEAN}" == "mean"``),
serialises as that value in JSON, and Typer rejects anything else at parse time, before a model is loaded.
Member names are the values upper-cased, ``-`` as ``_`` (``Engine.PADDLE_INFERENCE``).
"""

from __future__ import annotations

from enum import StrEnum


class Choice(StrEnum):
    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(member.value for member in cls)


def _choice(name: str, values: tuple[str, ...], doc: str) -> type[Choice]:
    choice = Choice(name, {value.upper().replace("-", "_"): value for value in values})
    choice.__doc__ = doc
    return choice


def _with_auto(name: str, concrete: type[Choice], doc: str) -> type[Choice]:
    """``auto``, then ``concrete``'s values: what a user may ask for, with one source for both."""
    return _choice(name, ("auto", *concrete.values()), doc)


Pooling = _choice("Pooling", ("cls", "mean", "last", "last_8", "latent_attention"),
                  "How token states become one embedding (embedkit.modeling.pooling).")
Side = _choice("Side", ("query", "passage"), "Which side of retrieval a text is encoded as.")
PaddingSide = _choice("PaddingSide", ("right", "left"), "Where a batch's padding goes.")
Engine = _choice("Engine", ("paddle", "paddle-inference", "onnx", "openvino"), "A concrete inference engine.")
EngineChoice = _with_auto("EngineChoice", Engine, "An engine, or ``auto``: the fastest one measured for this device.")
Device = _choice("Device", ("cpu", "gpu"), "Where a model runs.")
DeviceChoice = _with_auto("DeviceChoice", Device, "A device, or ``auto``: the GPU when Paddle sees one.")
Precision = _choice("Precision", ("fp32", "bf16", "fp16", "int8"),
                    "The numeric precision an engine computes embeddings in (part of the embedding identity).")
PrecisionChoice = _choice("PrecisionChoice", ("auto", "fp32", "bf16"),
                          "A precision, or ``auto``: bf16 where the engine and the CPU have it.")
IndexKind = _choice("IndexKind", ("flat", "ivf", "hnsw"), "Exact or approximate faiss search.")
IndexDtype = _choice("IndexDtype", ("float32", "float16", "int8", "binary"),
                     "How a search index stores document vectors (embedkit.retrieval.quantized_index).")
FineTuneType = _choice("FineTuneType", ("sft", "lora", "bitfit"), "Which parameters training updates.")
ExportFormat = _choice("ExportFormat", ("sentence-transformers", "onnx", "openvino"),
                       "What `embedkit export` writes a model as.")
EncodingFormat = _choice("EncodingFormat", ("float", "base64"),
                         "How `embedkit serve` returns a vector (OpenAI's encoding_format).")
PruneMetric = _choice("PruneMetric", ("bi", "angular"),
                      "How much a layer changes its input: ``bi`` 1 - cos (ShortGPT's Block Influence), "
                      "``angular`` arccos/π.")
Reduce = _choice("Reduce", ("mean", "sum"), "How per-token layer scores become one score per layer.")
Selection = _choice("Selection", ("bi", "eval"),
                    "How the layers to remove are chosen: the N lowest scores, or greedily by retrieval quality.")
QuantType = _choice("QuantType", ("int8", "weight_only_int8", "weight_only_int4"),
                    "What `embedkit quantize` makes of a model: int8 weights and activations, or int8/int4 weights "
                    "only (the original example's --quant_type names).")
