"""`Encoder`: queries and passages in, embeddings out, through whichever engine is fastest here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from embedkit.choices import Side
from embedkit.inference.engines import Device, Engine
from embedkit.inference.export import ExportInfo
from embedkit.inference.runtime import LoadedModel, load_tower_forwards, tower_name
from embedkit.modeling.encode import encode_texts
from embedkit.modeling.model_config import read_model_config


class Encoder:
    """Encodes queries and passages with a model's spec: its instructions, max lengths, pooling and towers.

    Texts are tokenised once, batched by length (longest first; on CPU also capped in padded tokens, see
    runtime.cpu_tokens_per_batch) and returned in input order as float32 [N, dim] arrays, L2-normalised
    when the spec says so.
    """

    def __init__(self, model: LoadedModel, batch_size: int = 32):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.spec = model.spec
        self.towers = model.towers
        self.identity = model.identity
        self.batch_size = batch_size
        first = next(iter(self.towers.values()))
        self.engine: Engine = first.engine
        self.device: Device = first.device
        self.precision: str = model.identity.precision
        self.dim: int = int(read_model_config(first.tower.weights_dir)["hidden_size"])

    @property
    def fingerprint(self) -> str:
        """Names the embeddings this encoder gives (see embedkit.inference.identity)."""
        return self.identity.digest

    @classmethod
    def from_model_dir(cls, path: str | Path, engine: str = "auto", overrides: Optional[dict] = None,
                       batch_size: int = 32, device: str = "auto", threads: Optional[int] = None,
                       tensorrt: bool = False, precision: str = "auto") -> Encoder:
        """Load (and on first use export) the model in ``path``.

        ``engine``: auto, paddle, paddle-inference, onnx or openvino. ``overrides``: spec fields to set (pooling,
        normalized, instructions, max lengths...), for plain checkpoints or experiments. ``device``: auto,
        cpu or gpu; ``tensorrt`` applies to paddle-inference on a GPU; ``precision``: auto or one the engine has.
        """
        return cls(load_tower_forwards(path, engine, overrides, device, threads=threads, tensorrt=tensorrt,
                                       max_batch_size=batch_size, precision=precision), batch_size)

    @property
    def exports(self) -> dict[str, Optional[ExportInfo]]:
        return {name: t.export for name, t in self.towers.items()}

    def encode(self, texts: Sequence[str], side: Side, on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray:
        """Embeddings [len(texts), dim]; ``on_batch(n)`` is called after each batch of n texts."""
        if side not in Side.values():
            raise ValueError(f"side must be 'query' or 'passage', not {side!r}")
        if len(texts) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        tower = self.towers[tower_name(self.spec, side)]
        instruction = self.spec.query_instruction if side == "query" else self.spec.passage_instruction
        max_len = self.spec.query_max_len if side == "query" else self.spec.passage_max_len
        return encode_texts(texts, tower.tokenizer, tower.forward, max_len, instruction, self.batch_size,
                            self.spec.padding_side, on_batch, tower.max_tokens, self.spec.appends_eos())

    def encode_queries(self, texts: Sequence[str], on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray:
        return self.encode(texts, "query", on_batch)

    def encode_passages(self, texts: Sequence[str], on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray:
        return self.encode(texts, "passage", on_batch)
