"""Load a recipe YAML into its validated schema, and apply ``--set key=value`` overrides checked the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from embedkit.config.validation import Schema, Source, parse_yaml_value, read_yaml, source_of, takes_text, validate
from embedkit.errors import UserError

T = TypeVar("T", bound=Schema)
SET_FLAG = "--set"


def load_recipe(path: str | Path, cls: type[T]) -> T:
    path = Path(path)
    if not path.is_file():
        raise UserError("recipe file not found", path)
    data, source = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError("a recipe must be a mapping of option: value", path, 1)
    return validate(cls, data, source)


def apply_overrides(config: T, assignments: list[str]) -> T:
    """``config`` with ``key=value`` strings applied (dotted keys reach nested sections; values are parsed as
    YAML), validated as a whole once all are set, so overrides that only make sense together may be given in any
    order; a problem is reported against ``--set``."""
    if not assignments:
        return config
    data = config.model_dump()
    positions = {}
    for order, assignment in enumerate(assignments):
        if "=" not in assignment:
            raise UserError(f"expected key=value, got {assignment!r}", SET_FLAG)
        dotted, raw = assignment.split("=", 1)
        loc = tuple(dotted.strip().split("."))
        target = data
        for part in loc[:-1]:
            target = target.setdefault(part, {})  # an unknown section is then reported as an unknown key
            if not isinstance(target, dict):
                raise UserError(f"unknown key '{dotted}': {part} is not a section", SET_FLAG)
        value = parse_yaml_value(raw)
        if takes_text(type(config), loc) and not isinstance(value, (str, type(None))):
            value = raw  # "--set query_instruction_for_retrieval=123" means the text 123
        target[loc[-1]] = value
        positions[loc] = order
    return validate(type(config), data, Source(SET_FLAG, positions, has_lines=False, below=source_of(config)))


def to_dict(config: Schema) -> dict[str, Any]:
    """Plain values (choices as their strings), as JSON and YAML can hold them."""
    return config.model_dump(mode="json")
