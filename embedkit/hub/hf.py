"""Hugging Face Hub snapshots through ``huggingface_hub.snapshot_download``.

The hub client does the transfer (resume, parallel files, its own progress bars) and reads
``HF_HOME``; the endpoint and token are read from ``HF_ENDPOINT`` and ``HF_TOKEN`` at call time and
passed explicitly. The downloader is a parameter so tests can check the call without a hub.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from embedkit.errors import UserError
from embedkit.hub.manifest import visible_files
from embedkit.hub.registry import Entry

# Weights: safetensors when the repo has them; pickled *.bin only when it has none. "*model*.bin"
# (not "*.bin") so training_args.bin and optimizer states stay on the hub.
WEIGHT_PATTERNS = ["*.safetensors", "*.safetensors.index.json"]
FALLBACK_WEIGHT_PATTERNS = ["*model*.bin", "*.bin.index.json"]
DEFAULT_ENDPOINT = "https://huggingface.co"

Downloader = Callable[..., Any]  # huggingface_hub.snapshot_download's keyword interface


def snapshot(entry: Entry, local_dir: Path, *, force: bool = False, downloader: Downloader | None = None) -> list[Path]:
    """Download ``entry``'s allowed files into ``local_dir``; return the files now there."""
    if downloader is None:
        from huggingface_hub import snapshot_download as downloader
    patterns = list(entry.allow_patterns)
    if entry.kind == "model":
        patterns += WEIGHT_PATTERNS
    _call(downloader, entry, local_dir, patterns, force)
    if entry.kind == "model" and not any(local_dir.rglob("*.safetensors")):
        _call(downloader, entry, local_dir, FALLBACK_WEIGHT_PATTERNS, force)
        if not any(local_dir.rglob("*model*.bin")):
            raise UserError(f"{entry.repo} has neither *.safetensors nor *model*.bin weights", local_dir)
    incomplete = sorted(local_dir.glob(".cache/huggingface/download/**/*.incomplete"))
    if incomplete:
        raise UserError(
            f"the download of {entry.repo} is incomplete ({len(incomplete)} file(s) unfinished); "
            "rerun the command with network access to resume it",
            local_dir,
        )
    return visible_files(local_dir)


def _call(downloader: Downloader, entry: Entry, local_dir: Path, patterns: list[str], force: bool) -> None:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from requests import ConnectionError as RequestsConnectionError
    from requests import Timeout

    endpoint = os.environ.get("HF_ENDPOINT") or None
    repo_type = "dataset" if entry.kind == "dataset" else "model"
    page = f"{(endpoint or DEFAULT_ENDPOINT).rstrip('/')}/{'datasets/' if repo_type == 'dataset' else ''}{entry.repo}"
    try:
        downloader(
            repo_id=entry.repo,
            repo_type=repo_type,
            revision=entry.revision,
            local_dir=str(local_dir),
            allow_patterns=patterns,
            endpoint=endpoint,
            token=os.environ.get("HF_TOKEN") or None,
            force_download=force,
        )
    except GatedRepoError:
        raise UserError(
            f"{entry.repo} is gated: accept its licence at {page} and export HF_TOKEN with a token of that account"
        ) from None
    except RepositoryNotFoundError:
        raise UserError(f"{entry.repo} was not found at {page} (a private repo also needs HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise UserError(f"{entry.repo} has no revision {entry.revision!r}") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, RequestsConnectionError, Timeout) as exc:
        raise _unreachable(entry, repo_type, local_dir, patterns, page, exc) from None
    except HfHubHTTPError as exc:
        raise UserError(f"the Hugging Face Hub refused {entry.repo}: {exc}") from None


def _unreachable(entry: Entry, repo_type: str, local_dir: Path, patterns: list[str], page: str, exc: Exception) -> UserError:
    command = ["huggingface-cli", "download", entry.repo]
    if repo_type == "dataset":
        command += ["--repo-type", "dataset"]
    if entry.revision:
        command += ["--revision", entry.revision]
    command += ["--include", *(f"'{p}'" for p in patterns), "--local-dir", "DIR"]
    command_note = ""
    if entry.kind == "model" and patterns != FALLBACK_WEIGHT_PATTERNS:
        command_note = f" (if the repo has no *.safetensors, add {' '.join(repr(p) for p in FALLBACK_WEIGHT_PATTERNS)})"
    reason = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__).rstrip(".")
    return UserError(
        f"cannot reach the Hugging Face Hub for {entry.repo} ({page}): {reason}. No network? On a machine "
        f"that has access run `{' '.join(command)}`{command_note}, copy DIR's files into {local_dir}, then "
        "rerun this command: files already in place are recorded instead of downloaded."
    )
