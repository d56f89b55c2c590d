"""PaddleNLP ``Trainer`` for bi-encoders: the loss from :class:`BiEncoderForTraining`, embedkit's batches,
and checkpoints that are both resumable and loadable by ``load_embedder``.

What changes against the stock Trainer, and why:

- ``get_train_dataloader``: length-grouped batches of ``(epoch, index)`` items and the dynamic-padding
  collator (the stock sampler shuffles uniformly and knows nothing about group lengths);
- ``_save``: the model is saved through ``Embedder.save_pretrained`` (safetensors, tokenizer, ``embedkit.json``,
  or the PaddleNLP LoRA adapter), so every ``checkpoint-N`` is a model ``embedkit eval`` can load; the
  stock ``_save`` would pickle the wrapper's state dict;
- ``_load_from_checkpoint``: reads those weights back;
- ``_save_checkpoint``: PaddleNLP writes checkpoints in place; here they are staged in a hidden directory,
  completed with a manifest of every file (size, sha256) written last, flushed and renamed into place, so a kill
  mid-save never leaves a loadable-looking half checkpoint and a later-damaged file is caught on resume. A full
  disk is ``RUN_DIR: no space left on device`` (exit 2) with the staging directory removed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import paddle
from paddlenlp.trainer import Trainer, TrainerCallback, TrainerState
from paddlenlp.trainer.trainer import TRAINER_STATE_NAME

from embedkit.filenames import CHECKPOINT_PREFIX, RECIPE_FILE
from embedkit.fsutil import write_json, write_text
from embedkit.retrieval.checkpoints import checkpoint_dirs, checkpoint_step, write_manifest
from embedkit.training.batching import LengthGroupedBatchSampler
from embedkit.training.checkpoints import STAGING_PREFIX, disk_full_message, fsync_path, fsync_tree, make_readable

LOSS_HISTORY_FILE = "loss_history.json"


class EmbeddingTrainer(Trainer):
    def __init__(self, *args, recipe_yaml: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.recipe_yaml = recipe_yaml  # the resolved recipe, saved in each checkpoint
        # PaddleNLP empties state.log_history at every log; the loss curve needs all of it, across resumes,
        # so it is kept here and saved in each checkpoint.
        self.loss_history: list[dict] = []

    def log(self, logs, **kwargs):
        if "loss" in logs:
            self.loss_history.append({"step": int(self.state.global_step), "loss": float(logs["loss"]),
                                      "learning_rate": logs.get("learning_rate")})
        super().log(logs, **kwargs)

    def get_train_dataloader(self):
        sampler = LengthGroupedBatchSampler(
            self.train_dataset,
            batch_size=self.args.per_device_train_batch_size,
            seed=self.args.seed,
            num_replicas=max(self.args.dataset_world_size, 1),
            rank=max(self.args.dataset_rank, 0),
            drop_last=self.args.dataloader_drop_last,
        )
        return paddle.io.DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                                    num_workers=self.args.dataloader_num_workers)

    def steps_per_epoch(self) -> int:
        """Optimisation steps in one pass over the data (PaddleNLP's own formula)."""
        return max(len(self.get_train_dataloader()) // self.args.gradient_accumulation_steps, 1)

    def planned_max_steps(self) -> int:
        """The optimisation steps this run will take in total (PaddleNLP's own formula)."""
        if self.args.max_steps > 0:
            return self.args.max_steps
        return int(self.steps_per_epoch() * self.args.num_train_epochs)

    def train(self, resume_from_checkpoint=None, **kwargs):
        if resume_from_checkpoint is not None:
            self.add_callback(_RestoreRngAtEpochBoundary(self, resume_from_checkpoint))
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def finish_from_checkpoint(self, checkpoint: Path) -> None:
        """Take a checkpoint of an already finished run as the result, without training.

        PaddleNLP resumed at the final step still runs one more step (it skips the trained batches, then trains
        before checking max_steps), so a rerun of a completed command would change the model.
        """
        self._load_from_checkpoint(str(checkpoint))
        self.state = TrainerState.load_from_json(str(checkpoint / TRAINER_STATE_NAME))

    def compute_loss(self, model, inputs, return_outputs=False):
        loss = model(**inputs)
        return (loss, None) if return_outputs else loss

    def _save(self, output_dir=None, state_dict=None, merge_tensor_parallel=False):
        if not self.args.should_save:
            return
        output_dir = output_dir or self.args.output_dir
        self.model.embedder.save_pretrained(output_dir, self.tokenizer)

    def _load_from_checkpoint(self, resume_from_checkpoint=None):
        if resume_from_checkpoint:
            checkpoint = Path(resume_from_checkpoint)
            load_embedder_weights(self.model.embedder, checkpoint)
            history = checkpoint / LOSS_HISTORY_FILE
            if history.is_file():
                self.loss_history = json.loads(history.read_text(encoding="utf-8"))

    def _save_checkpoint(self, model, metrics=None):
        run_dir = Path(self.args.output_dir)
        name = f"{CHECKPOINT_PREFIX}-{self.state.global_step}"
        staging = None
        try:
            with disk_full_message(run_dir):
                if self.args.should_save:
                    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=run_dir))
                if self.args.world_size > 1:
                    staging = Path(_broadcast_path(staging))
                self._save_stock_checkpoint(model, metrics, staging)
                if self.args.world_size > 1:
                    paddle.distributed.barrier()
                if self.args.should_save:
                    self._complete_checkpoint(staging / name)
                    target = run_dir / name
                    if target.exists():  # a checkpoint of the same step from an earlier attempt at this run
                        shutil.rmtree(target)
                    os.replace(staging / name, target)
                    staging.rmdir()
                    fsync_path(run_dir)  # the rename itself
                    self._rotate_step_checkpoints(run_dir)
        except BaseException:
            if self.args.should_save and staging is not None:  # a full disk or a kill leaves no partial save
                shutil.rmtree(staging, ignore_errors=True)
            raise
        if self.args.world_size > 1:
            paddle.distributed.barrier()

    def _save_stock_checkpoint(self, model, metrics, staging: Path) -> None:
        """PaddleNLP's save (model, optimizer, scheduler, RNG, trainer state), into ``staging``: the stock method
        writes to (and rotates checkpoints in) args.output_dir and args.output_signal_dir."""
        run_dir, signal_dir = self.args.output_dir, self.args.output_signal_dir
        self.args.output_dir = self.args.output_signal_dir = str(staging)
        try:
            super()._save_checkpoint(model, metrics)
        finally:
            self.args.output_dir, self.args.output_signal_dir = run_dir, signal_dir

    def _complete_checkpoint(self, checkpoint: Path) -> None:
        """embedkit's files, then the manifest of them all (written last), all flushed before the rename."""
        write_json(checkpoint / LOSS_HISTORY_FILE, self.loss_history)
        if self.recipe_yaml is not None:  # what changed-settings warnings on resume compare against
            write_text(checkpoint / RECIPE_FILE, self.recipe_yaml)
        make_readable(checkpoint)
        write_manifest(checkpoint)
        fsync_tree(checkpoint)

    def _rotate_step_checkpoints(self, run_dir: Path) -> None:
        """Keep the newest ``save_total_limit`` checkpoints, ordered by step (mtime misorders after a resume).

        Checkpoints past the current step are stale ones of an earlier attempt (passed over on resume because
        they did not verify): they are not counted, so rotation never removes the save just made in their favour,
        and they are replaced when the run reaches their step.
        """
        limit = self.args.save_total_limit
        if not limit or limit <= 0:
            return
        reached = [p for p in checkpoint_dirs(run_dir) if checkpoint_step(p) <= self.state.global_step]
        for old in reached[:-limit]:
            shutil.rmtree(old, ignore_errors=True)


class _RestoreRngAtEpochBoundary(TrainerCallback):
    """PaddleNLP restores a resumed run's RNG state once it has skipped the batches already trained in the current
    epoch; resumed exactly at an epoch boundary there are none, so it never does, and dropout then differs from the
    uninterrupted run. This restores it where the first resumed epoch begins."""

    def __init__(self, trainer: EmbeddingTrainer, checkpoint: str):
        self.trainer, self.checkpoint = trainer, checkpoint

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.checkpoint is not None and state.global_step % self.trainer.steps_per_epoch() == 0:
            self.trainer._load_rng_state(self.checkpoint)
        self.checkpoint = None


def _broadcast_path(path: Path | None) -> str:
    """Rank 0's staging path, on every rank (all ranks write their shards of the checkpoint into it)."""
    holder = [str(path) if path is not None else ""]
    paddle.distributed.broadcast_object_list(holder, src=0)
    return holder[0]


def load_embedder_weights(embedder, checkpoint: Path) -> None:
    """Load a checkpoint written by :meth:`EmbeddingTrainer._save` into ``embedder`` in place."""
    towers = [(embedder.query_backbone, checkpoint)]
    if embedder.passage_backbone is not None:
        towers = [(embedder.query_backbone, checkpoint / "query_model"),
                  (embedder.passage_backbone, checkpoint / "passage_model")]
    for backbone, directory in towers:
        adapter = directory / "lora_model_state.pdparams"
        if adapter.is_file():
            backbone.set_state_dict(paddle.load(str(adapter), return_numpy=True))
            continue
        from safetensors.numpy import load_file

        state = {}
        for shard in sorted(directory.glob("*.safetensors")):
            state.update(load_file(str(shard)))
        if not state:
            raise FileNotFoundError(f"no model weights in checkpoint {directory}")
        missing = set(backbone.state_dict()) - set(state)
        if missing:
            raise ValueError(f"checkpoint {directory} lacks {len(missing)} weights, e.g. {sorted(missing)[:3]}")
        backbone.set_state_dict(state)
