"""Recipes: typed schemas, YAML loading with line numbers, and ``--set key=value`` overrides."""

from embedkit.config.loader import apply_overrides, load_recipe
from embedkit.config.schema import DistillConfig, EvalConfig, LoraConfig, TrainConfig

__all__ = ["TrainConfig", "EvalConfig", "LoraConfig", "DistillConfig", "load_recipe", "apply_overrides"]
