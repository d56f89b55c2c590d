"""In-context examples in training (bge-en-icl): each query prefixed with (query, positive) pairs of its batch.

What FlagEmbedding's ICL training dataset (``finetune/embedder/decoder_only/icl``) does, and what is kept here:

- Every pair of the batch offers one example: its query framed by its instruction, cut to
  ``example_query_max_len`` tokens (the frame counts, as FlagEmbedding counts it; here the frame itself is
  never cut, only the query text), and the positive sampled for it this epoch, cut to
  ``example_passage_max_len`` tokens (raw text, no passage instruction). A cut text is the decoded prefix of
  its tokens, as there; an uncut one is left as written.
- Each query draws how many examples it gets, uniformly from 0..k (FlagEmbedding: 0..5, k = 5), or exactly k
  with ``random_count: false``, after a ``use_probability`` draw (FlagEmbedding: always); the examples are a
  random ordered sample of the *other* pairs of the batch (never its own), fewer when the batch has fewer.
- Examples are formatted by `embedkit.modeling.prompts.icl_example` and put before the query's instruction
  by `~embedkit.modeling.prompts.icl_template`, the formatter the eval-time fixed examples use; the query is
  then tokenised by `embedkit.modeling.tokenize.tokenize` like every other query (truncated on the right to
  ``query_max_len``, the ``\\n<response>`` suffix kept whole).
- Length budget: examples are taken in order until the next would not fit beside the query's own tokens in
  ``query_max_len`` (counted example by example); FlagEmbedding instead stops at ``query_max_len − 512``
  tokens of examples, which leaves no room at all for query lengths under 512 (the recipes' 128).

Draws are seeded by (seed, epoch, example index): the same examples on every rerun and after a resume, as long
as the batches are the same.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from embedkit.config.schema import IclConfig
from embedkit.modeling.prompts import icl_example, icl_template, split_template
from embedkit.modeling.tokenize import tokenize


def example_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The generator of example ``index``'s in-context draws in ``epoch`` (string seeds hash with SHA-512)."""
    return random.Random(f"embedkit-icl/{seed}/{epoch}/{index}")


def choose_examples(own: int, batch_size: int, config: IclConfig, rng: random.Random) -> list[int]:
    """Batch positions of the examples for the query at ``own``, in prompt order; never ``own`` itself."""
    k = config.examples_per_query
    if k == 0 or rng.random() >= config.use_probability:
        return []
    count = rng.randint(0, k) if config.random_count else k
    others = [j for j in range(batch_size) if j != own]
    return rng.sample(others, min(count, len(others)))


class InBatchExamples:
    """Query token ids with in-context examples from the batch, for `EmbedCollator`.

    Items carry ``key`` (epoch, index), ``query`` (cached token ids), ``query_text``, ``query_instruction`` and
    ``positive_text`` (`embedkit.training.dataset.TrainDataset` with texts kept).
    """

    def __init__(self, tokenizer, config: IclConfig, query_max_len: int, append_eos: bool, seed: int):
        self.tokenizer = tokenizer
        self.config = config
        self.query_max_len = query_max_len
        self.append_eos = append_eos
        self.seed = seed
        self.placed = 0  # examples put before a query
        self.dropped = 0  # chosen examples that did not fit in query_max_len

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _cut(self, text: str, max_len: int) -> str:
        ids = self._ids(text)
        return text if len(ids) <= max_len else self.tokenizer.decode(ids[:max(max_len, 0)])

    def example(self, item: dict) -> str:
        """The item's pair as an example, cut to the example lengths and framed by its own instruction."""
        instruction = item["query_instruction"]
        frame = len(self._ids(split_template(instruction)[0]))
        query = self._cut(item["query_text"], self.config.example_query_max_len - frame)
        passage = self._cut(item["positive_text"], self.config.example_passage_max_len)
        return icl_example(instruction, query, passage)

    def __call__(self, items: Sequence[dict]) -> list[np.ndarray]:
        chosen = [choose_examples(i, len(items), self.config, example_rng(self.seed, *item["key"]))
                  for i, item in enumerate(items)]
        needed = sorted({j for picks in chosen for j in picks})
        examples = {j: self.example(items[j]) for j in needed}
        lengths = {j: len(self._ids(text)) for j, text in examples.items()}
        queries = []
        for item, picks in zip(items, chosen, strict=True):
            room = self.query_max_len - len(item["query"])
            kept = []
            for j in picks:
                if lengths[j] > room:
                    break
                room -= lengths[j]
                kept.append(j)
            self.placed += len(kept)
            self.dropped += len(picks) - len(kept)
            if not kept:
                queries.append(item["query"])
                continue
            instruction = icl_template(item["query_instruction"], [examples[j] for j in kept])
            ids = tokenize(self.tokenizer, [item["query_text"]], self.query_max_len, instruction,
                           self.append_eos)[0]["input_ids"]
            queries.append(np.asarray(ids, dtype=np.int32))
        return queries
