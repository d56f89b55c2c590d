"""An embedkit encoder behind MTEB 2.x's `EncoderProtocol`, so `mteb.evaluate` can run it on any task.

MTEB hands over texts already prepared (documents as "title text", queries with any task instruction column
merged); the model's own instructions, max lengths and pooling come from its `embedkit.json`, as with
`embedkit eval`. Embeddings go through the same cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from mteb.models import ModelMeta
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ScoringFunction
from mteb.similarity_functions import cos_sim, dot_score, pairwise_cos_sim, pairwise_dot_score
from mteb.types import PromptType

from embedkit.retrieval.cache import EmbeddingCache
from embedkit.retrieval.embed import embed


def model_meta(encoder, model_dir: str | Path) -> ModelMeta:
    """MTEB metadata: results land under ``embedkit__<model dir name>/<embeddings fingerprint>``."""
    return ModelMeta.create_empty(overwrites={
        "name": f"embedkit/{Path(model_dir).resolve().name}",
        "revision": encoder.fingerprint,
        "embed_dim": encoder.dim,
        "max_tokens": max(encoder.spec.query_max_len, encoder.spec.passage_max_len),
        # Inner product is what the model was trained with; for normalised embeddings it is the cosine.
        "similarity_fn_name": ScoringFunction.COSINE if encoder.spec.normalized else ScoringFunction.DOT_PRODUCT,
        "use_instructions": bool(encoder.spec.query_instruction or encoder.spec.passage_instruction),
        "modalities": ["text"],
    })


class MtebEncoder(AbsEncoder):
    def __init__(self, encoder, model_dir: str | Path, cache: Optional[EmbeddingCache] = None, progress=None):
        self.model = encoder
        self.cache = cache
        self.progress = progress
        self.mteb_model_meta = model_meta(encoder, model_dir)

    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str,
               prompt_type: Optional[PromptType] = None, **kwargs: Any) -> np.ndarray:
        """Embeddings for every text the dataloader yields, in its order.

        Documents use the passage side (tower, instruction, max length); queries, and inputs of symmetric tasks
        that have no prompt type, use the query side.
        """
        texts = [text for batch in inputs for text in batch["text"]]
        side = "passage" if prompt_type == PromptType.document else "query"
        on_batch = None
        if self.progress is not None:
            what = "queries" if side == "query" else "passages"
            task = self.progress.add_task(f"{task_metadata.name}: encode {what}", total=len(texts))
            on_batch = lambda n: self.progress.advance(task, n)  # noqa: E731
        return np.asarray(embed(self.model, texts, side, self.cache, on_batch).vectors)

    def similarity(self, embeddings1, embeddings2):
        if self.model.spec.normalized:
            return cos_sim(embeddings1, embeddings2)
        return dot_score(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1, embeddings2):
        if self.model.spec.normalized:
            return pairwise_cos_sim(embeddings1, embeddings2)
        return pairwise_dot_score(embeddings1, embeddings2)
