"""Training: ``embedkit train`` on PaddleNLP's Trainer.

The flow, one module per step:

- ``command`` / ``run``: recipe + flags → :class:`TrainConfig`, ``--nproc`` relaunch (``launch``), the service;
- ``arguments``: device checks and the recipe → PaddleNLP ``TrainingArguments``;
- ``checkpoints``: resume from the last complete checkpoint, ``--overwrite``, refuse a foreign non-empty dir;
- ``base_model``: what ``model_name_or_path`` may name (a dir, ``pkg:NAME``, a downloaded name, ``tiny-bert``);
- ``tokenized`` → ``dataset`` → ``sampling`` → ``batching`` → ``collator``: data tokenised once and cached,
  per-epoch groups, length-grouped batches, dynamic padding with false-negative masks and teacher scores;
- ``modeling``: the :class:`Embedder` set up for sft / lora / bitfit, plus the loss (``embedkit.losses``);
- ``trainer`` / ``callbacks`` / ``distributed``: the Trainer subclass, progress, cross-device gathering;
- ``report``: loss curve and model card.
"""
