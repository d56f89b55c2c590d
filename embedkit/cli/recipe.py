"""`embedkit recipe validate`: load a recipe with its overrides and print every resolved setting."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from embedkit.cli.options import SetOpt, output_options
from embedkit.console import Output

app = typer.Typer(help="Check recipes.", no_args_is_help=True)


@app.command("validate")
@output_options
def validate_command(
    file: Annotated[Path, typer.Argument(help="Training recipe YAML.")],
    overrides: SetOpt = None,
    *,
    out: Output,
) -> None:
    """Load a training recipe, apply --set overrides and print every resolved setting (YAML, or JSON with --json)."""
    from embedkit.config import TrainConfig, apply_overrides, load_recipe
    from embedkit.config.loader import to_dict
    from embedkit.config.render import recipe_to_yaml

    config = apply_overrides(load_recipe(file, TrainConfig), overrides or [])
    if out.json_mode:
        out.result(to_dict(config))
    else:
        # The resolved recipe is the result, so it goes to stdout: `... > resolved.yaml` gives a usable recipe.
        sys.stdout.write(recipe_to_yaml(config))
