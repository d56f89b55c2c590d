"""The encoders ("towers") of an embedder as pruning sees them, and the pruned embedder written to disk.

A one-encoder model has one ``shared`` tower serving queries and passages; a two-tower model has ``query`` and
``passage`` towers, each pruned on its own layer list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedkit.choices import Side
from embedkit.modeling.architectures import layer_list, with_layers
from embedkit.modeling.embedder import Embedder

SHARED = "shared"


@dataclass(frozen=True)
class Tower:
    name: str
    backbone: Any
    sides: tuple[Side, ...]

    @property
    def num_layers(self) -> int:
        return len(layer_list(self.backbone))


def towers_of(embedder: Embedder) -> list[Tower]:
    if embedder.passage_backbone is None:
        return [Tower(SHARED, embedder.query_backbone, (Side.QUERY, Side.PASSAGE))]
    return [Tower("query", embedder.query_backbone, (Side.QUERY,)),
            Tower("passage", embedder.passage_backbone, (Side.PASSAGE,))]


def without_layers(towers: list[Tower], removed: dict[str, list[int]]) -> list[Tower]:
    """New towers with ``removed[tower.name]`` (0-based) taken out; the given towers stay as they are."""
    return [Tower(t.name, with_layers(t.backbone, [i for i in range(t.num_layers) if i not in removed[t.name]]),
                  t.sides) for t in towers]


def save_embedder(towers: list[Tower], spec, tokenizer, out_dir: Path) -> None:
    """The towers as an embedkit model dir (config, weights, tokenizer, ``embedkit.json`` with ``spec``)."""
    by_name = {t.name: t.backbone for t in towers}
    query = by_name.get(SHARED, by_name.get("query"))
    Embedder(query, spec, by_name.get("passage")).save_pretrained(out_dir, tokenizer)


def parameter_count(towers: list[Tower]) -> tuple[int, int]:
    """(parameters, bytes) over the towers' weights."""
    count = size = 0
    for tower in towers:
        for param in tower.backbone.parameters():
            numel = int(param.numel())
            count += numel
            size += numel * param.element_size()
    return count, size
