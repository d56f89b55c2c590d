"""Every file and directory name embedkit reads or writes in a model or run directory, in one place."""

from __future__ import annotations

# embedkit's own description of a saved embedder (pooling, instructions, max lengths, towers).
SPEC_FILE = "embedkit.json"
MODEL_CONFIG_FILE = "config.json"

# Weights, in the layouts PaddleNLP and Hugging Face write (sharded variants matched by the patterns).
SAFETENSORS_FILE = "model.safetensors"
WEIGHT_FILES = (SAFETENSORS_FILE, "model.safetensors.index.json", "model_state.pdparams", "pytorch_model.bin")
WEIGHT_SHARD_PATTERNS = ("model-*.safetensors", "model_state-*.pdparams")

# Files that decide how a tokenizer splits text (WordPiece, BPE and SentencePiece layouts).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "sentencepiece.bpe.model",
                   "spiece.model", "spm.model")
# Written beside a model by save_pretrained, read by nothing that changes the embeddings.
AUXILIARY_MODEL_FILES = ("chat_template.json", "generation_config.json")

# A PaddleNLP LoRA adapter directory: its config names the base model.
LORA_CONFIG_FILE = "lora_config.json"
LORA_WEIGHTS_FILE = "lora_model_state.pdparams"
# A Hugging Face PEFT adapter directory (RepLLaMA's layout): its config names the base model too.
PEFT_CONFIG_FILE = "adapter_config.json"
PEFT_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
ADAPTER_FILES = (LORA_CONFIG_FILE, LORA_WEIGHTS_FILE, PEFT_CONFIG_FILE, *PEFT_WEIGHT_FILES)

# Two-tower models keep each tower in a subfolder.
QUERY_TOWER_DIR = "query_model"
PASSAGE_TOWER_DIR = "passage_model"

# sentence-transformers layout.
ST_POOLING_CONFIG = "1_Pooling/config.json"
ST_MODULES_FILE = "modules.json"
ST_CONFIG_FILE = "sentence_bert_config.json"
ST_PROMPTS_FILE = "config_sentence_transformers.json"  # prompts, similarity function
ST_NORMALIZE_DIR = "2_Normalize"

# Exported inference graphs, beside the model (or in the cache), one subfolder per engine and tower.
EXPORT_DIRNAME = ".embedkit-export"
EXPORT_META_FILE = "export.json"
# An OpenVINO IR graph (`embedkit export --format openvino`, `embedkit quantize`): the graph and its weights.
OPENVINO_MODEL_FILE = "openvino_model.xml"
OPENVINO_WEIGHTS_FILE = "openvino_model.bin"

# What `embedkit export` and `embedkit train` write beside a model for people to read.
MODEL_CARD_FILE = "README.md"

# Training runs.
CHECKPOINT_PREFIX = "checkpoint"
TRAINER_STATE_FILE = "trainer_state.json"
MERGED_DIR = "merged"
RECIPE_FILE = "recipe.yaml"  # the resolved recipe, at the top of a run dir and in each checkpoint
# Written when embedkit creates or claims a run dir: only a dir holding it is one whose outputs embedkit may remove.
RUN_MARKER_FILE = ".embedkit-run.json"
# Written last into each checkpoint: every other file's size and sha256 (embedkit.integrity).
CHECKPOINT_MANIFEST_FILE = "embedkit-checkpoint.json"
EVAL_AFTER_FILE = "eval_after.json"  # the trained model's scores, beside eval_before.json (the base model's)


def model_file_names() -> frozenset[str]:
    """Names that make up a saved model (weights, config, tokenizer, adapter, spec)."""
    return frozenset((SPEC_FILE, MODEL_CONFIG_FILE, *WEIGHT_FILES, *TOKENIZER_FILES, *AUXILIARY_MODEL_FILES,
                      *ADAPTER_FILES))
