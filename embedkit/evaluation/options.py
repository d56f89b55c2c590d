"""Settings of an evaluation run, shared by `embedkit eval`, the trainer's before/after table and checkpoint sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from embedkit.errors import UserError
from embedkit.retrieval.search import SearchSettings, check_settings

# The deepest metric cut-off but the last (NDCG@100, MRR@100, MAP@100, Recall@100): a rescored run must reach it.
RESCORE_MIN_DEPTH = 100


@dataclass
class EvalOptions:
    split: str = "test"
    top_k: int = 1000
    batch_size: int = 32
    engine: str = "auto"
    precision: str = "auto"
    # EmbedderSpec fields to set for a plain checkpoint or an experiment: pooling, normalized,
    # query_instruction, passage_instruction, query_max_len, passage_max_len.
    overrides: dict[str, Any] = field(default_factory=dict)
    search: SearchSettings = field(default_factory=SearchSettings)
    use_cache: bool = True
    # Matryoshka: also evaluate embeddings truncated to each of these dims.
    dims: list[int] = field(default_factory=list)
    # None: do what MTEB does for the dataset (see embedkit.evaluation.datasets).
    ignore_identical_ids: Optional[bool] = None
    output_dir: Optional[Path] = None
    show_progress: bool = True

    @classmethod
    def from_config(cls, config, **changes: Any) -> EvalOptions:
        """Options from a recipe's ``eval:`` section (`embedkit.config.EvalConfig`)."""
        overrides = {}
        if config.max_length is not None:
            overrides = {"query_max_len": config.max_length, "passage_max_len": config.max_length}
        return cls(split=config.split, top_k=config.top_k, batch_size=config.batch_size, engine=config.engine,
                   overrides=overrides, **changes)


def check_search(options: EvalOptions, dims: Sequence[int] = ()) -> None:
    """Refuse search settings that cannot run, or would cut the run short of the metrics, before encoding.

    ``dims``: the embedding dims that will be indexed (the model's and any Matryoshka ``--dims``). A rescored
    run holds ``min(top_k, rescore)`` documents per query, so ``rescore`` must reach ``min(top_k, 100)``: the
    metrics at 100 then rank the same depth a float32 run gives them, and only the @1000 metrics are computed
    on the top ``rescore`` (the report's ``depth`` says so).
    """
    search = options.search
    check_settings(search, dims)
    need = min(options.top_k, RESCORE_MIN_DEPTH)
    if search.rescore is not None and search.rescore < need:
        cut = "--top-k" if need == options.top_k else "the metrics at 100 (NDCG@100, Recall@100, MRR@100, MAP@100)"
        raise UserError(f"{search.rescore} candidates per query are fewer than the {need} documents {cut} rank: "
                        f"give --rescore {need} or more", "--rescore")
