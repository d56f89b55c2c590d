"""Read a YAML or JSON file and check it against a pydantic model, reporting the first problem as
``file:line: key: message`` (nested keys dotted, list items indexed, a did-you-mean for unknown keys).

Recipes, ``embedkit.json``, the download registry and the download manifest all go through here, so their
errors read alike. A :class:`Source` remembers the line of every key, which is how pydantic's errors (which
know only the key path) get a line, and how checks made later, against the model (see
``embedkit.training.preflight``), still point at the line that set the value.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Optional, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, Strict, ValidationError

from embedkit.errors import UserError

Loc = tuple[Union[str, int], ...]
M = TypeVar("M", bound="Schema")

# Strict: a recipe's `use_matryoshka: 'yes'` or `query_max_len: "64"` is a mistake to report, not to coerce.
# Enum fields are the exception (annotate them `Annotated[E, LAX]`): strict mode would accept only members,
# and files and --set give the values ("mean").
LAX = Strict(False)


class YamlLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``3e-5`` as a string; embedkit's files mean a float, as YAML 1.2 and JSON do."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclasses.dataclass(frozen=True, eq=False)
class Source:
    """Where a document's values were written: a path, and per key path its line (or, without lines, the order
    of ``--set`` assignments). ``below``: the source of every value not set here (a recipe under --set)."""

    path: Optional[str]
    positions: dict[Loc, int] = dataclasses.field(default_factory=dict)
    has_lines: bool = True
    below: Optional[Source] = None
    root: Loc = ()  # this source describes the part of the document at ``root`` (one registry entry)

    def __eq__(self, other: object) -> bool:
        # Held by each validated model, which pydantic compares: two recipes with the same values are equal
        # wherever they were read from.
        return isinstance(other, Source)

    def scoped(self, at: Loc) -> Source:
        return dataclasses.replace(self, root=self.root + at)

    def where(self, loc: Loc) -> tuple[Optional[str], Optional[int]]:
        """(path, line) to report a problem with the value at ``loc``: the innermost key written here, else
        the layer below; a key written nowhere (a default) is reported against the bottom file, without line."""
        full = self.root + loc
        for end in range(len(full), 0, -1):
            if full[:end] in self.positions:
                return self.path, self.positions[full[:end]] if self.has_lines else None
        inner = self._inside(full)  # a section not written here as such, but keys in it were (--set icl.k=2)
        if inner:
            return self.path, min(inner) if self.has_lines else None
        if self.below is not None:
            return self.below.where(loc)
        return self.path, None

    def order(self, loc: Loc) -> Optional[tuple[int, int]]:
        """Sorts the keys by where they were written (a later line, or a --set over the file, is later)."""
        if self.root + loc in self.positions:
            return self.depth, self.positions[self.root + loc]
        inner = self._inside(self.root + loc)
        if inner:
            return self.depth, max(inner)
        return self.below.order(loc) if self.below is not None else None

    def _inside(self, full: Loc) -> list[int]:
        """Positions of the keys written here inside the section at ``full``."""
        return [at for key, at in self.positions.items() if len(key) > len(full) and key[:len(full)] == full]

    @property
    def depth(self) -> int:
        return self.below.depth + 1 if self.below is not None else 0

    def latest(self, keys: tuple[str, ...], within: Loc = ()) -> str:
        """Of ``keys`` (in the mapping at ``within``), the one written last: a cross-field error points at it."""
        written = [(self.order((*within, key)), key) for key in keys if self.order((*within, key)) is not None]
        return max(written)[1] if written else keys[0]


class Schema(BaseModel):
    """A validated section of an embedkit file; remembers its :class:`Source` for checks made after loading."""

    model_config = ConfigDict(strict=True, extra="forbid", validate_assignment=True, allow_inf_nan=False)
    _source: Source = PrivateAttr(default_factory=lambda: Source(None))

    def where(self, key: str) -> tuple[Optional[str], Optional[int]]:
        """(path, line) that set ``key`` (dotted)."""
        return self._source.where(tuple(key.split(".")))

    def error(self, key: str, message: str) -> UserError:
        """A UserError about ``key`` (dotted) at the file and line that set it."""
        return UserError(f"{key}: {message}", *self.where(key))


def source_of(instance: Schema) -> Source:
    return instance._source


class FieldsError(ValueError):
    """Raised by a check across fields: reported at whichever of ``keys`` was written last."""

    def __init__(self, keys: tuple[str, ...], message: str):
        super().__init__(message)
        self.keys = keys


def validate(model: type[M], data: Any, source: Source, at: Loc = (), label: str = "") -> M:
    """``data`` (read from ``source`` at ``at``) as a ``model``, or its first problem in the file as a UserError."""
    source = source.scoped(at)
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        problems = [_user_error(error, model, source, label) for error in exc.errors()]
        # pydantic lists problems in the schema's field order; a reader fixes a file top to bottom
        raise min(problems, key=lambda problem: (problem.line is None, problem.line or 0)) from None
    instance._source = source
    return instance


def read_yaml(path: str | Path) -> tuple[Any, Source]:
    """The document in ``path`` and the line of each key; a key given twice in one mapping is an error."""
    text = _read_text(path)
    loader = YamlLoader(text)
    try:
        node = loader.get_single_node()
        positions = _yaml_positions(node, str(path))
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or exc
        raise UserError(f"invalid YAML: {problem}", path, mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return data, Source(str(path), positions)


def read_json(path: str | Path) -> tuple[Any, Source]:
    """The document in ``path`` and the line of each object key."""
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", path, exc.lineno) from None
    return data, Source(str(path), _json_positions(text, data))


def parse_yaml_value(raw: str) -> Any:
    """A ``--set`` value, typed as in a recipe (``3e-5`` a float, ``[1, 2]`` a list); unparsable text stays text."""
    if not raw.strip():
        return ""
    try:
        return yaml.load(raw, Loader=YamlLoader)
    except yaml.YAMLError:
        return raw


def _closest(key: str, known: typing.Iterable[str]) -> Optional[str]:
    match = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
    return match[0] if match else None


def _dotted(loc: Loc) -> str:
    """``('lora', 'r')`` -> ``lora.r``; ``('matryoshka_dims', 1)`` -> ``matryoshka_dims[1]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel]:
    """The model class describing the mapping at ``loc`` (list indices and dict keys step through)."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is not None:
            model = _model_in(field.annotation) or model
    return model


def _model_in(annotation: Any) -> Optional[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def takes_text(model: type[BaseModel], loc: Loc) -> bool:
    """Whether the field at ``loc`` is a string (``--set query_instruction_for_retrieval=123`` means text)."""
    field = _model_at(model, loc[:-1]).model_fields.get(loc[-1]) if loc and isinstance(loc[-1], str) else None
    if field is None:
        return False
    annotation = field.annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return str in typing.get_args(annotation)
    return annotation is str


_TYPE_NAMES = {
    "bool_type": "bool", "int_type": "int", "int_from_float": "int", "float_type": "float", "string_type": "str",
    "list_type": "a list", "tuple_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
    "model_attributes_type": "a mapping", "path_type": "a path",
}  # fmt: skip


def _user_error(error: dict[str, Any], model: type[BaseModel], source: Source, label: str) -> UserError:
    loc: Loc = tuple(error["loc"])
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    cause = ctx.get("error")
    if isinstance(cause, FieldsError):
        loc = (*loc, source.latest(cause.keys, loc))
    key = _dotted(loc)
    if kind == "extra_forbidden":
        hint = _closest(str(loc[-1]), _model_at(model, loc[:-1]).model_fields)
        text = f"unknown key '{key}'" + (f" (did you mean '{_dotted((*loc[:-1], hint))}'?)" if hint else "")
    elif kind == "missing":
        text = f"'{key}' is required"
    else:
        problem = _problem(kind, ctx, _shown(value), error["msg"])
        text = f"{key}: {problem}" if key else problem
    return UserError(f"{label}: {text}" if label else text, *source.where(loc))


def _problem(kind: str, ctx: dict[str, Any], value: str, pydantic_message: str) -> str:
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {value}"
    if kind in ("enum", "literal_error"):
        return f"expected one of {ctx['expected'].replace(' or ', ', ')}, got {value}"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "greater_than":
        bound = "positive" if ctx["gt"] == 0 else f"greater than {ctx['gt']}"
        return f"must be {bound}, got {value}"
    if kind == "greater_than_equal":
        bound = "0 or more" if ctx["ge"] == 0 else f"at least {ctx['ge']}"
        return f"must be {bound}, got {value}"
    if kind == "less_than":
        return f"must be less than {ctx['lt']}, got {value}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}, got {value}"
    if kind == "finite_number":
        return f"must be a finite number, got {value}"
    return pydantic_message[0].lower() + pydantic_message[1:] + f", got {value}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None


def _yaml_positions(node: Optional[yaml.Node], path: str) -> dict[Loc, int]:
    positions: dict[Loc, int] = {}

    def walk(node: yaml.Node, loc: Loc, parents: frozenset[int]) -> None:
        if id(node) in parents:  # a recursive alias
            return
        parents = parents | {id(node)}
        if isinstance(node, yaml.MappingNode):
            first_lines: dict[tuple[str, Any], int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` keys may be overridden here
                    continue
                key, line = key_node.value, key_node.start_mark.line + 1
                if (key_node.tag, key) in first_lines:
                    raise UserError(f"duplicate key '{_dotted((*loc, key))}' "
                                    f"(first on line {first_lines[key_node.tag, key]})", path, line)
                first_lines[key_node.tag, key] = line
                positions[(*loc, key)] = line
                walk(value_node, (*loc, key), parents)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                positions[(*loc, index)] = item.start_mark.line + 1
                walk(item, (*loc, index), parents)

    if node is not None:
        walk(node, (), frozenset())
    return positions


def _json_positions(text: str, data: Any) -> dict[Loc, int]:
    """The line of each object key, found in the text in document order (the json module keeps no positions)."""
    positions: dict[Loc, int] = {}

    def walk(value: Any, loc: Loc, start: int) -> int:
        if isinstance(value, dict):
            for key, item in value.items():
                found = re.compile(r'(?<!\\)"' + re.escape(json.dumps(key, ensure_ascii=False)[1:-1]) + r'"\s*:')
                match = found.search(text, start)
                if match is None:  # written with escapes json.dumps would not use: no line for it
                    continue
                positions[(*loc, key)] = text.count("\n", 0, match.start()) + 1
                start = walk(item, (*loc, key), match.end())
        elif isinstance(value, list):
            for index, item in enumerate(value):
                start = walk(item, (*loc, index), start)
        return start

    walk(data, (), 0)
    return positions
