"""Typed, validated recipe schema.

Option names follow PaddleNLP's ``contrastive_training`` example so its users find their way;
defaults are the example's code defaults unless a comment says why they differ. Every value check that needs
no model is here, so a bad recipe (or ``--set``) is refused before anything runs; the checks against the base
model (hidden size, position embeddings) are ``embedkit.training.preflight``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator, model_validator

from embedkit.choices import EngineChoice, FineTuneType, Pooling
from embedkit.config.validation import LAX, FieldsError, Schema

AtLeastOne = Annotated[int, Field(ge=1)]

# Max lengths when neither a recipe nor embedkit.json says: the example's code defaults (its README claims 512
# for passages; the code uses 128, and so do we).
DEFAULT_QUERY_MAX_LEN = 32
DEFAULT_PASSAGE_MAX_LEN = 128


class LoraConfig(Schema):
    r: AtLeastOne = 32
    alpha: AtLeastOne = 64
    dropout: float = Field(0.1, ge=0, lt=1)
    # None: chosen from the architecture's layer names (see embedkit.modeling.lora).
    target_modules: Optional[list[str]] = None


class DistillConfig(Schema):
    """KL(teacher ‖ student) over each query's group, used when the data carries pos_scores/neg_scores."""

    # 0 leaves distillation out.
    weight: float = Field(1.0, ge=0)
    teacher_temperature: float = Field(1.0, gt=0)


class IclConfig(Schema):
    """bge-en-icl's in-context examples in training (FlagEmbedding's ICL dataset): each query is prefixed with
    (query, positive) examples taken from the other pairs of its batch, formatted by
    ``embedkit.modeling.prompts.icl_example`` (see ``embedkit.training.icl``). Off by default; with
    ``examples_per_query: 5`` the other defaults make FlagEmbedding's code defaults."""

    # k, the most examples a query gets; 0 leaves in-context examples out.
    examples_per_query: int = Field(0, ge=0)
    # true: each query draws its count uniformly from 0..k, as FlagEmbedding does (so 1/(k+1) of the queries
    # get none); false: k for every query (fewer when the batch has fewer other pairs).
    random_count: bool = True
    # The chance that a query is given examples at all, drawn before the count (FlagEmbedding: always, 1.0).
    use_probability: float = Field(1.0, ge=0, le=1)
    # An example's query, framed by the instruction as FlagEmbedding counts it, and its passage, in tokens.
    example_query_max_len: AtLeastOne = 64
    example_passage_max_len: AtLeastOne = 96


class EvalConfig(Schema):
    """Evaluation run before and after training, and by ``embedkit eval`` when given a recipe."""

    data: Optional[str] = None
    split: str = "test"
    batch_size: AtLeastOne = 32
    max_length: Optional[AtLeastOne] = None
    engine: Annotated[EngineChoice, LAX] = EngineChoice.AUTO
    top_k: AtLeastOne = 1000


class TrainConfig(Schema):
    model_name_or_path: str = ""
    output_dir: str = "runs/embedkit"
    train_data: str = ""
    # With a BEIR/T2Ranking directory as train_data: the qrels split whose judged positives are trained on.
    train_split: str = "train"
    # Where the trainer draws negatives when an example has fewer than train_group_size-1 of its own:
    # "corpus" = random corpus documents (BEIR/T2Ranking data only; JSONL has no corpus and always uses
    # "examples"), "examples" = passages of other training examples.
    fill_negatives_from: Literal["corpus", "examples"] = "corpus"
    train_group_size: AtLeastOne = 8
    query_max_len: AtLeastOne = DEFAULT_QUERY_MAX_LEN
    passage_max_len: AtLeastOne = DEFAULT_PASSAGE_MAX_LEN
    query_instruction_for_retrieval: Optional[str] = None
    passage_instruction_for_retrieval: Optional[str] = None
    sentence_pooling_method: Annotated[Pooling, LAX] = Pooling.MEAN
    normalized: bool = True
    separate_towers: bool = False
    fine_tune_type: Annotated[FineTuneType, LAX] = FineTuneType.SFT
    lora: LoraConfig = Field(default_factory=LoraConfig)
    merge_lora: bool = False
    use_matryoshka: bool = False
    matryoshka_dims: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [64, 128, 256, 512, 768])
    matryoshka_loss_weights: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [1.0] * 5)
    use_inbatch_neg: bool = False
    temperature: float = Field(0.02, gt=0)
    margin: float = 0.2
    negatives_cross_device: bool = False
    distill: DistillConfig = Field(default_factory=DistillConfig)
    icl: IclConfig = Field(default_factory=IclConfig)
    recompute: bool = False
    use_flash_attention: bool = False
    sharding: str = ""
    fp16: bool = False
    bf16: bool = False
    fp16_opt_level: Literal["O0", "O1", "O2"] = "O1"
    max_example_num_per_dataset: AtLeastOne = 100_000_000
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: AtLeastOne = 8
    gradient_accumulation_steps: AtLeastOne = 1
    learning_rate: float = Field(5e-5, gt=0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: AtLeastOne = 10
    save_steps: AtLeastOne = 500
    save_total_limit: Optional[int] = 2
    # Optimizer and scheduler states are dropped from the checkpoints when a run finishes (they are most of a
    # checkpoint's size and only serve to continue training); true keeps them, to extend the run later.
    keep_optimizer_state: bool = False
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("matryoshka_dims")
    @classmethod
    def _dims_differ(cls, dims: list[int]) -> list[int]:
        repeated = sorted({d for d in dims if dims.count(d) > 1})
        if repeated:
            raise ValueError(f"{', '.join(map(str, repeated))} listed more than once")
        return dims

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.num_train_epochs <= 0 and self.max_steps <= 0:
            raise FieldsError(("num_train_epochs", "max_steps"),
                              f"with num_train_epochs {self.num_train_epochs} and max_steps {self.max_steps} nothing "
                              "would be trained: set either above 0")
        if self.fp16 and self.bf16:
            raise FieldsError(("fp16", "bf16"), "fp16 and bf16 are exclusive: choose one")
        if self.use_matryoshka and len(self.matryoshka_dims) != len(self.matryoshka_loss_weights):
            raise FieldsError(("matryoshka_dims", "matryoshka_loss_weights", "use_matryoshka"),
                              f"{len(self.matryoshka_dims)} matryoshka_dims but {len(self.matryoshka_loss_weights)} "
                              "matryoshka_loss_weights: give one weight per dim")
        if self.icl.examples_per_query and "{text}" not in (self.query_instruction_for_retrieval or ""):
            raise FieldsError(("icl", "query_instruction_for_retrieval"),
                              "in-context examples need a query instruction with a {text} slot (bge-en-icl's "
                              "\"<instruct>{task}\\n<query>{text}\\n<response>\"): each example is framed by it")
        return self
