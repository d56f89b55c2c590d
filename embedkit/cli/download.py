"""`embedkit download`: fetch a registry model or dataset, or any URL, verified and recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from embedkit.cli.options import output_options
from embedkit.console import Output
from embedkit.errors import UserError


@output_options
def download_command(
    name_or_url: Annotated[
        Optional[str],
        typer.Argument(metavar="NAME|URL", help="A registry name (see --list), a registry entry's Hugging Face repo id, or an http(s) URL."),
    ] = None,
    list_registry: Annotated[bool, typer.Option("--list", help="Show the registry: names, kinds, sizes and licences.")] = False,
    sha256: Annotated[Optional[str], typer.Option("--sha256", metavar="HEX", help="Expected sha256 of a URL download; a mismatch deletes the file.")] = None,
    extract: Annotated[bool, typer.Option("--extract", help="Unpack a .tar, .tar.gz/.tgz or .zip download beside it.")] = False,
    to: Annotated[Optional[Path], typer.Option("--to", metavar="DIR", help="Download into DIR instead of $EMBEDKIT_HOME (default ~/.cache/embedkit).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even when a verified copy is present.")] = False,
    *,
    out: Output,
) -> None:
    """Download a registry model or dataset, or any URL: resumable, verified, recorded in a manifest."""
    from embedkit.hub.render import render_fetch, render_registry

    if list_registry:
        from embedkit.hub.registry import load_registry

        render_registry(list(load_registry().values()), out)
        return
    if name_or_url is None:
        raise UserError("name a registry entry or give a URL (`embedkit download --list` shows the registry)")
    from embedkit.hub.download import fetch

    render_fetch(fetch(name_or_url, sha256=sha256, extract=extract, to=to, force=force), out)
