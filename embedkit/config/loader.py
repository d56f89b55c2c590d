"""Load a recipe YAML into a typed dataclass, reporting every problem as ``file:line: message``."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from embedkit.errors import UserError

T = TypeVar("T")
_NONE = type(None)


class RecipeLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``3e-5`` as a string; recipes mean a float, as YAML 1.2 and JSON do."""


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if tp is _NONE:
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, where: tuple[str | None, int | None], node: Any = None) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it in that type (int promotes to float)."""
    path, line = where
    origin = get_origin(tp)
    bad = UserError(f"{key}: expected {_type_name(tp)}, got {value!r}", path, line)
    if origin in (typing.Union, types.UnionType):
        for arm in get_args(tp):
            try:
                return _coerce(value, arm, key, where, node)
            except UserError:
                continue
        raise bad
    if tp is _NONE:
        if value is None:
            return None
        raise bad
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise bad
    if origin is list:
        if not isinstance(value, list):
            raise bad
        item_nodes = node.value if isinstance(node, yaml.SequenceNode) else [None] * len(value)
        return [
            _coerce(v, get_args(tp)[0], f"{key}[{i}]", (path, _line(n) or line), n)
            for i, (v, n) in enumerate(zip(value, item_nodes, strict=True))
        ]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return _build(tp, value, where[0], node, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise TypeError(f"unsupported schema type {tp!r}")


def _line(node: Any) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _mapping_nodes(node: Any) -> dict[str, tuple[Any, Any]]:
    """key -> (key node, value node) for a YAML mapping node."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: (k, v) for k, v in node.value}


def _build(cls: type[T], data: dict[str, Any], path: str | None, node: Any = None, prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    nodes = _mapping_nodes(node)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        key_node, value_node = nodes.get(key, (None, None))
        line = _line(key_node) or _line(node)
        if key not in known:
            hint = _closest(key, known)
            raise UserError(f"unknown key '{prefix}{key}'" + (f" (did you mean '{prefix}{hint}'?)" if hint else ""), path, line)
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}", (path, line), value_node)
    return cls(**kwargs)


def _closest(key: str, known: set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
    return match[0] if match else None


def from_dict(cls: type[T], data: dict[str, Any], path: str | None = None) -> T:
    return _build(cls, data, path)


def load_recipe(path: str | Path, cls: type[T]) -> T:
    path = Path(path)
    if not path.is_file():
        raise UserError("recipe file not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    try:
        node = yaml.compose(text, Loader=RecipeLoader)
        data = yaml.load(text, Loader=RecipeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path, mark.line + 1 if mark else None) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError("a recipe must be a mapping of option: value", path, 1)
    return _build(cls, data, str(path), node)


def apply_overrides(config: T, assignments: list[str]) -> T:
    """Apply ``key=value`` strings (dotted keys reach nested sections; values are parsed as YAML)."""
    for assignment in assignments:
        where = ("--set", None)
        if "=" not in assignment:
            raise UserError(f"expected key=value, got {assignment!r}", *where)
        dotted, raw = assignment.split("=", 1)
        try:
            value = yaml.load(raw, Loader=RecipeLoader) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        *parents, leaf = dotted.strip().split(".")
        target = config
        for i, part in enumerate(parents):
            if not dataclasses.is_dataclass(target) or part not in {f.name for f in dataclasses.fields(target)}:
                raise UserError(f"unknown key '{'.'.join(parents[: i + 1])}'", *where)
            target = getattr(target, part)
        if not dataclasses.is_dataclass(target) or leaf not in {f.name for f in dataclasses.fields(target)}:
            hint = _closest(leaf, {f.name for f in dataclasses.fields(target)}) if dataclasses.is_dataclass(target) else None
            raise UserError(f"unknown key '{dotted}'" + (f" (did you mean '{hint}'?)" if hint else ""), *where)
        tp = typing.get_type_hints(type(target))[leaf]
        if _accepts(tp, str) and not isinstance(value, (str, type(None))):
            value = raw  # "--set query_instruction_for_retrieval=123" means the text 123
        setattr(target, leaf, _coerce(value, tp, dotted, where))
    return config


def _accepts(tp: Any, simple: type) -> bool:
    if tp is simple:
        return True
    return any(_accepts(a, simple) for a in get_args(tp)) if get_origin(tp) in (typing.Union, types.UnionType) else False


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
