"""Trainer callbacks: a rich progress bar, a checkpoint (and log line) at the very last step, VisualDL logs."""

from __future__ import annotations

import time

from paddlenlp.trainer import TrainerCallback
from paddlenlp.trainer.integrations import VisualDLCallback
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class FinalStepCallback(TrainerCallback):
    """Log and checkpoint the last step even when it is not a multiple of logging_steps / save_steps.

    The final checkpoint makes a finished run resumable as a no-op: rerunning the same command after the
    run completed (or was killed while writing its final outputs) continues from the end instead of
    retraining the steps after the last periodic checkpoint.
    """

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_log = True
            control.should_save = True
        return control


class RichProgressCallback(TrainerCallback):
    """Step, loss, learning rate, examples/s and ETA on one line (stderr); shown by the main process only.

    Also times this attempt's training loop (``first_step``, ``train_seconds``) for the run's examples/s.
    """

    def __init__(self, console: Console, examples_per_step: int):
        self.console = console
        self.examples_per_step = examples_per_step
        self.progress: Progress | None = None
        self.task = None
        self.loss = float("nan")
        self.lr = float("nan")
        self.first_step: int | None = None
        self.train_seconds = 0.0
        self._start_time = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.first_step, self._start_time = state.global_step, time.perf_counter()
        if not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("lr {task.fields[lr]}"),
            TextColumn("{task.fields[speed]} ex/s"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step,
                                           loss="-", lr="-", speed="-")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs or "loss" not in logs:  # (the end-of-training summary has no loss)
            return
        self.loss = logs["loss"]
        self.lr = logs.get("learning_rate", self.lr)
        self.progress.update(self.task, loss=f"{self.loss:.4f}", lr=f"{self.lr:.2e}")
        if not self.console.is_terminal:  # a log file gets no live bar: one line per logging step instead
            elapsed = time.perf_counter() - self._start_time
            done = state.global_step - self.first_step
            speed = done * self.examples_per_step / elapsed if elapsed > 0 else 0.0
            eta = (state.max_steps - state.global_step) * elapsed / done if done else float("nan")
            self.console.print(f"step {state.global_step}/{state.max_steps}  loss {self.loss:.4f}  lr {self.lr:.2e}  "
                               f"{speed:.1f} ex/s  ETA {eta:.0f} s", highlight=False)

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is None:
            return
        elapsed = time.perf_counter() - self._start_time
        steps = state.global_step - self.first_step
        speed = f"{steps * self.examples_per_step / elapsed:.1f}" if elapsed > 0 and steps else "-"
        self.progress.update(self.task, completed=state.global_step, speed=speed)

    def on_train_end(self, args, state, control, **kwargs):
        self.train_seconds = time.perf_counter() - self._start_time
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class VisualDLLogCallback(VisualDLCallback):
    """PaddleNLP's VisualDL callback, with hyperparameters visualdl accepts.

    The stock callback passes boolean arguments to ``add_hparams``, which visualdl 2.5 stores in an integer
    protobuf field; current protobuf refuses that (``Expected an int, got a boolean``) and training would
    stop before its first step. Booleans are written as 0/1 instead; scalars are logged as before.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if self.vdl_writer is None:
            self._init_summary_writer(args)
        if self.vdl_writer is not None:
            self.vdl_writer.add_text("args", args.to_json_string())
            hparams = {k: int(v) if isinstance(v, bool) else v for k, v in args.to_sanitized_dict().items()}
            self.vdl_writer.add_hparams(hparams, metrics_list=[])
