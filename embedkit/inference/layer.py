"""The Layer that gets exported: one side of an Embedder, pooling and normalisation included."""

from __future__ import annotations

import paddle


class SideEmbedding(paddle.nn.Layer):
    """``inputs`` (dict of [B, T] int64 arrays) -> [B, H] embeddings, exactly as ``Embedder.embed(inputs, side)``."""

    def __init__(self, embedder, side: str):
        super().__init__()
        self.embedder = embedder
        self.side = side

    def forward(self, inputs):
        return self.embedder.embed(inputs, self.side)
