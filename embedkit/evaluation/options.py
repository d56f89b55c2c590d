"""Settings of an evaluation run, shared by `embedkit eval`, the trainer's before/after table and checkpoint sweeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from embedkit.retrieval.search import SearchSettings


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
