"""`embedkit export`: a model dir written out as a sentence-transformers model or an ONNX / OpenVINO serving dir."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from embedkit.choices import ExportFormat
from embedkit.errors import UserError
from embedkit.filenames import MODEL_CARD_FILE
from embedkit.fsutil import atomic_path, write_text


@dataclass
class ExportResult:
    format: str
    source: str
    output: str
    seconds: float
    check: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_model(model_dir: str | Path, fmt: str, output: str | Path,
                 overrides: Optional[dict] = None) -> ExportResult:
    """Write ``model_dir`` as ``fmt`` into ``output`` (a new or empty dir), checked against the source model.

    The dir appears only complete: it is written beside ``output`` and renamed into place after the check.
    """
    from embedkit import __version__
    from embedkit.export.card import export_card
    from embedkit.inference.serving_dir import graph_engine
    from embedkit.modeling.embedder import resolve_spec

    model_dir, output = Path(model_dir), Path(output)
    if fmt not in ExportFormat.values():
        raise UserError(f"unknown export format {fmt!r} (choose from {', '.join(ExportFormat.values())})", "--format")
    if not model_dir.is_dir():
        raise UserError("model directory not found", model_dir)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UserError("already exists and is not an empty directory; export into a new one", output)
    spec = resolve_spec(model_dir, overrides)
    if fmt == ExportFormat.SENTENCE_TRANSFORMERS and graph_engine(model_dir) is not None:
        raise UserError(f"this dir holds a {graph_engine(model_dir)} graph and no weights for torch"
                        f"{' (a quantized model)' if spec.quantization else ''}; export its source model "
                        f"{spec.base_model or ''} instead".replace("  ", " "), model_dir)
    start = time.perf_counter()
    with atomic_path(output) as staged:
        staged.mkdir()
        if fmt == ExportFormat.SENTENCE_TRANSFORMERS:
            check = _write_sentence_transformers(model_dir, staged, spec, overrides)
        else:
            from embedkit.export.serving_export import write_serving_dir

            check = write_serving_dir(model_dir, staged, fmt, overrides)
        write_text(staged / MODEL_CARD_FILE, export_card(output.name, model_dir.name, fmt, spec, check, __version__))
    return ExportResult(fmt, str(model_dir), str(output), time.perf_counter() - start, check)


def _write_sentence_transformers(model_dir: Path, out: Path, spec, overrides: Optional[dict]) -> dict[str, Any]:
    from embedkit.export import st_layout
    from embedkit.export.sentence_transformers_check import check_sentence_transformers
    from embedkit.export.torch_weights import hf_config, torch_state_dict
    from embedkit.modeling.loading import load_backbone, load_tokenizer

    st_layout.check_expressible(spec)
    backbone = load_backbone(model_dir)  # LoRA adapters merged, torch-layout weights converted
    tokenizer = load_tokenizer(model_dir, padding_side=spec.padding_side)
    config = hf_config(backbone)
    st_layout.write_weights(out, torch_state_dict(backbone), config)
    st_layout.write_tokenizer(out, tokenizer, spec, appends_eos=spec.appends_eos() and not _adds_eos(tokenizer))
    st_layout.write_modules(out, spec, config["hidden_size"])
    spec.save(out)  # embedkit reads the dir with its full spec (instructions per side, padding, EOS)
    return check_sentence_transformers(out, model_dir, overrides)


def _adds_eos(tokenizer) -> bool:
    ids = tokenizer("x")["input_ids"]
    return tokenizer.eos_token_id is not None and ids[-1:] == [tokenizer.eos_token_id]
