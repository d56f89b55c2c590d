"""`embedkit quantize`: an int8 or int8/int4 weight-only version of a model, with the cost in quality measured."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from embedkit.choices import EngineChoice, QuantType
from embedkit.cli.options import BatchSizeOpt, DeviceOpt, output_options
from embedkit.cli.params import choice_option, count_option
from embedkit.console import Output


@output_options
def quantize_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="Model directory (any that eval takes).")],
    quant_type: Annotated[str, choice_option(QuantType, "--quant-type", help="int8: weights and activations (calibrated); weight_only_int8/int4: weights only.")],
    output: Annotated[Path, typer.Option("--output", metavar="DIR", help="The quantized model dir to write (new or empty, outside MODEL).")],
    engine: Annotated[str, choice_option(EngineChoice, "--engine", help="openvino (NNCF; auto on CPU), onnx (ONNX Runtime int8) or paddle (weight-only on GPU; auto there).")] = EngineChoice.AUTO.value,
    group_size: Annotated[int, typer.Option("--group-size", help="weight_only_int4: input channels per scale (64 or 128).")] = 128,
    calibration: Annotated[Optional[Path], typer.Option("--calibration", metavar="DATA", help="int8: texts to calibrate on: a BEIR/T2Ranking dir, training JSONL or .txt (default: --eval-data).")] = None,
    calibration_split: Annotated[Optional[str], typer.Option(help="Split whose queries a retrieval dataset calibrates with (default: --split).")] = None,
    calibration_samples: Annotated[int, count_option("--calibration-samples", help="Calibration texts sampled (seeded).")] = 300,
    seed: Annotated[int, typer.Option(help="Seed for the calibration sample.")] = 42,
    eval_data: Annotated[Optional[Path], typer.Option("--eval-data", metavar="DIR", help="Also score source and quantized model on this dir: NDCG@10, ΔNDCG@10, docs/s, size, peak RSS.")] = None,
    split: Annotated[str, typer.Option(help="Split of --eval-data reported.")] = "test",
    device: DeviceOpt = "auto",
    batch_size: BatchSizeOpt = None,
    *,
    out: Output,
) -> None:
    """Quantize a model (NNCF/OpenVINO or ONNX Runtime on CPU, Paddle weight-only on GPU) and report the cost."""
    from embedkit.compression.quant_report import render
    from embedkit.compression.quantization import QuantizeRequest, quantize

    request = QuantizeRequest(
        model=model, output=output, quant_type=quant_type, engine=engine, group_size=group_size,
        calibration=calibration, calibration_split=calibration_split, calibration_samples=calibration_samples,
        seed=seed, eval_data=eval_data, split=split, device=device, batch_size=batch_size,
        show_progress=out.verbosity >= 0,
    )
    result = quantize(request)
    out.result(result.to_dict())
    render(result, out)
