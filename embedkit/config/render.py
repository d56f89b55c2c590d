"""Show a resolved recipe: every option with its final value, as YAML a recipe could be written in."""

from __future__ import annotations

from typing import Any

import yaml

from embedkit.config.loader import to_dict


def recipe_to_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)
