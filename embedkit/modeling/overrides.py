"""Spec fields from the embedding options commands share (``--pooling``, ``--passage-max-len``, ...).

A plain checkpoint has no ``embedkit.json``; these options supply what it lacks, or change it for an experiment.
``--max-length`` sets both sides at once (as a recipe's ``eval.max_length`` does); ``--query-max-len`` and
``--passage-max-len`` set one side and win over it.
"""

from __future__ import annotations

from typing import Any, Optional

from embedkit.errors import UserError


def embedding_overrides(pooling: Optional[str] = None, normalize: Optional[bool] = None,
                        query_instruction: Optional[str] = None, passage_instruction: Optional[str] = None,
                        max_length: Optional[int] = None, query_max_len: Optional[int] = None,
                        passage_max_len: Optional[int] = None) -> dict[str, Any]:
    """The EmbedderSpec fields the given options set (options left at None set nothing)."""
    fields = {
        "pooling": pooling,
        "normalized": normalize,
        "query_instruction": query_instruction,
        "passage_instruction": passage_instruction,
        "passage_max_len": passage_max_len if passage_max_len is not None else max_length,
        "query_max_len": query_max_len if query_max_len is not None else max_length,
    }
    for key, flag in (("passage_max_len", "--passage-max-len"), ("query_max_len", "--query-max-len")):
        if fields[key] is not None and fields[key] < 1:
            raise UserError(f"max length must be positive, got {fields[key]}", flag)
    return {k: v for k, v in fields.items() if v is not None}
