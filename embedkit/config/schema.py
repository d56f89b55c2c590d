"""Typed recipe schema.

Option names follow PaddleNLP's ``contrastive_training`` example so its users find their way;
defaults are the example's code defaults unless a comment says why they differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

Pooling = Literal["cls", "mean", "last"]


@dataclass
class LoraConfig:
    r: int = 32
    alpha: int = 64
    dropout: float = 0.1
    # None: chosen from the architecture's layer names (see embedkit.modeling.lora).
    target_modules: Optional[list[str]] = None


@dataclass
class DistillConfig:
    """KL(teacher ‖ student) over each query's group, used when the data carries pos_scores/neg_scores."""

    weight: float = 1.0
    teacher_temperature: float = 1.0


@dataclass
class EvalConfig:
    """Evaluation run before and after training, and by ``embedkit eval`` when given a recipe."""

    data: Optional[str] = None
    split: str = "test"
    batch_size: int = 32
    max_length: Optional[int] = None
    engine: Literal["auto", "paddle", "paddle-inference", "onnx"] = "auto"
    top_k: int = 1000


@dataclass
class TrainConfig:
    model_name_or_path: str = ""
    output_dir: str = "runs/embedkit"
    train_data: str = ""
    # With a BEIR/T2Ranking directory as train_data: the qrels split whose judged positives are trained on.
    train_split: str = "train"
    # Where the trainer draws negatives when an example has fewer than train_group_size-1 of its own:
    # "corpus" = random corpus documents (BEIR/T2Ranking data only; JSONL has no corpus and always uses
    # "examples"), "examples" = passages of other training examples.
    fill_negatives_from: Literal["corpus", "examples"] = "corpus"
    train_group_size: int = 8
    query_max_len: int = 32
    # The example's code default is 128 although its README claims 512; we follow the code.
    passage_max_len: int = 128
    query_instruction_for_retrieval: Optional[str] = None
    passage_instruction_for_retrieval: Optional[str] = None
    sentence_pooling_method: Pooling = "mean"
    normalized: bool = True
    separate_towers: bool = False
    fine_tune_type: Literal["sft", "lora", "bitfit"] = "sft"
    lora: LoraConfig = field(default_factory=LoraConfig)
    merge_lora: bool = False
    use_matryoshka: bool = False
    matryoshka_dims: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 768])
    matryoshka_loss_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0, 1.0])
    use_inbatch_neg: bool = False
    temperature: float = 0.02
    margin: float = 0.2
    negatives_cross_device: bool = False
    distill: DistillConfig = field(default_factory=DistillConfig)
    recompute: bool = False
    use_flash_attention: bool = False
    sharding: str = ""
    fp16: bool = False
    bf16: bool = False
    fp16_opt_level: Literal["O0", "O1", "O2"] = "O1"
    max_example_num_per_dataset: int = 100_000_000
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: Optional[int] = 3
    eval: EvalConfig = field(default_factory=EvalConfig)
