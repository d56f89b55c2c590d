"""The recipe against its base model, before any work starts: what the schema cannot know without the model.

Runs once the base model directory is known and before the model loads, the data is tokenised or the
before-training evaluation writes anything, so a recipe that cannot run fails in the first seconds, naming
its file and line.
"""

from __future__ import annotations

from pathlib import Path

from embedkit.config import TrainConfig
from embedkit.modeling.limits import model_limits


def check_against_model(config: TrainConfig, base_dir: Path) -> None:
    """Max lengths within the model's position embeddings; Matryoshka dims within its hidden size."""
    limits = model_limits(base_dir)
    if limits is None:
        return
    lengths = {"query_max_len": config.query_max_len, "passage_max_len": config.passage_max_len,
               "eval.max_length": config.eval.max_length}
    for key, length in lengths.items():
        problem = limits.length_problem(length)
        if problem is not None:
            raise config.error(key, problem)
    hidden = limits.hidden_size
    if config.use_matryoshka and hidden is not None:
        too_wide = [dim for dim in config.matryoshka_dims if dim > hidden]
        if too_wide:
            raise config.error("matryoshka_dims", f"{too_wide[0]} is larger than the model's hidden size {hidden} "
                                                  f"({limits.config_file}); use dims up to {hidden}")
