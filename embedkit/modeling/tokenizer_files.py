"""A tokenizer's files in an export dir, free of the paths of the machine that wrote them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embedkit.fsutil import write_json

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
# Keys PaddleNLP writes into tokenizer_config.json that name where it was loaded from, not the tokenizer.
_LOCAL_KEYS = ("name_or_path", "special_tokens_map_file", "_from_auto", "tokenizer_file")


def save_tokenizer(out: Path, tokenizer, **settings: Any) -> None:
    """``tokenizer.save_pretrained(out)``, then ``settings`` (e.g. ``padding_side``) set in its config."""
    tokenizer.save_pretrained(str(out))
    path = out / TOKENIZER_CONFIG_FILE
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in _LOCAL_KEYS:
        config.pop(key, None)
    write_json(path, {**config, **settings})
