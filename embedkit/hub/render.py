"""How `embedkit download` shows its results: rich text on stderr, JSON on stdout with --json."""

from __future__ import annotations

from rich import box
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

from embedkit.console import Output
from embedkit.hub.download import FetchResult
from embedkit.hub.registry import Entry


def render_registry(entries: list[Entry], out: Output) -> None:
    out.result([entry.to_dict() for entry in entries])
    table = Table(title="embedkit download registry", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("name", "kind", "size"):
        table.add_column(column, no_wrap=True)
    table.add_column("licence")  # the one column that wraps on a narrow terminal
    for entry in entries:
        table.add_row(entry.name, entry.kind, entry.size, entry.licence)
    out.info(table)


def render_fetch(result: FetchResult, out: Output) -> None:
    out.result(result.to_dict())
    _render_one(result, out, indent="")


def _render_one(result: FetchResult, out: Output, indent: str) -> None:
    state = "downloaded" if result.downloaded else "already present"
    out.info(Text(f"{indent}{result.name} ({result.kind}, {state}) -> {result.path}", style="bold green"))
    total = sum(rec.size for rec in result.files)
    verified = sum(rec.verified for rec in result.files)
    out.info(Text(f"{indent}  {len(result.files)} file(s), {decimal(total)}, from {result.source}"))
    if verified == len(result.files):
        checks = "matches the published digest" if verified == 1 else "all match published digests"
    elif verified:
        checks = f"{verified} match published digests; the others have none published and were recorded as received"
    else:
        checks = "none published; recorded as received and checked against that from now on"
    out.info(Text(f"{indent}  sha256: {checks}"))
    if result.extracted_to is not None:
        out.info(Text(f"{indent}  extracted to {result.extracted_to}"))
    if result.conversion is not None:
        counts = ", ".join(f"{k}={v}" for k, v in (result.conversion.get("counts") or {}).items())
        outputs = ", ".join(result.conversion.get("outputs", []))
        out.info(Text(f"{indent}  converted ({result.conversion['name']}): {outputs}" + (f" [{counts}]" if counts else "")))
    for note in result.notes:
        out.info(Text(f"{indent}  note: {note}", style="yellow"))
    if out.verbosity > 0:
        table = Table(show_header=True, box=None, padding=(0, 2))
        for column in ("file", "size", "sha256", "verified"):
            table.add_column(column)
        for rec in result.files:
            table.add_row(rec.path, decimal(rec.size), rec.sha256, "yes" if rec.verified else "no")
        out.info(table)
    for base in result.base_models:
        out.info(Text(f"{indent}  base model:"))
        _render_one(base, out, indent + "    ")
