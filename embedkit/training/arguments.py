"""The recipe → PaddleNLP ``TrainingArguments``, after refusing what this device cannot run.

Options that need a GPU are refused up front on a CPU-only machine with a UserError naming the option and
the reason, instead of failing deep inside Paddle (or, as ``use_flash_attention`` did in the original
example, silently doing nothing). On a GPU they pass straight through to PaddleNLP's documented arguments.
"""

from __future__ import annotations

from pathlib import Path

from embedkit.config import TrainConfig
from embedkit.errors import UserError

LOGGING_DIR = "logs"


def gpu_count() -> int:
    import paddle

    if not paddle.device.is_compiled_with_cuda():
        return 0
    return paddle.device.cuda.device_count()


def check_device_support(config: TrainConfig, nproc: int = 1, gpu_ids: list[int] | None = None,
                         available_gpus: int | None = None) -> None:
    """Raise a UserError for the first setting this machine cannot run.

    ``--nproc N`` alone is allowed on CPU: Paddle's launcher then runs N gloo processes (data parallel, and
    what the multi-process tests use); asking for GPUs (``--gpus``) is not.
    """
    available = gpu_count() if available_gpus is None else available_gpus
    if available > 0:
        if nproc > available:
            raise UserError(f"--nproc {nproc}: this machine has {available} GPU(s)")
        unknown = [g for g in gpu_ids or [] if g >= available]
        if unknown:
            raise UserError(f"--gpus: no GPU {unknown[0]} on this machine (it has {available})")
        return
    why = "this machine has no GPU (paddle sees no CUDA device)"
    refusals = [
        (config.bf16, "bf16: bfloat16 mixed precision needs a GPU with bfloat16 support (compute capability 8.0+)"),
        (config.fp16, "fp16: float16 mixed precision needs a GPU; Paddle's CPU kernels run float32 only"),
        (config.fp16_opt_level == "O2" and (config.fp16 or config.bf16),
         "fp16_opt_level O2: pure half-precision training needs a GPU"),
        (bool(config.sharding.strip()), f"sharding {config.sharding!r}: sharded data parallel needs GPUs"),
        (config.use_flash_attention, "use_flash_attention: flash attention is a CUDA kernel"),
        (bool(gpu_ids), f"--gpus {','.join(map(str, gpu_ids or []))}: multi-GPU training needs GPUs"),
    ]
    for refused, message in refusals:
        if refused:
            raise UserError(f"{message}; {why}. Remove the option (or run on a GPU machine)")


def training_arguments(config: TrainConfig, run_dir: Path):
    """PaddleNLP ``TrainingArguments`` for the recipe (names as in the original example)."""
    from paddlenlp.trainer import TrainingArguments

    return TrainingArguments(
        output_dir=str(run_dir),
        overwrite_output_dir=True,  # embedkit decides about resuming and overwriting itself (run.py)
        do_train=True,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        recompute=config.recompute,
        fp16=config.fp16,
        bf16=config.bf16,
        fp16_opt_level=config.fp16_opt_level,
        sharding=config.sharding,
        disable_tqdm=True,
        report_to=["visualdl"],
        logging_dir=str(run_dir / LOGGING_DIR),
        remove_unused_columns=False,
        dataloader_num_workers=0,
        skip_memory_metrics=True,
    )
