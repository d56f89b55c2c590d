"""Each registered family, on a tiny random model of it: recognition, layer list, hidden states, LoRA targets and
rebuilding with a subset of the layers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import paddle
import paddlenlp.transformers as T
import pytest
from paddle import nn

from embedkit.errors import UserError
from embedkit.modeling.architectures import (
    ARCHITECTURES,
    architecture_of,
    find_architecture,
    hidden_states,
    keep_layers,
    layer_list,
    read_architecture,
    with_layers,
)
from embedkit.modeling.loading import load_backbone
from embedkit.modeling.lora import apply_lora
from embedkit.modeling.nv_embed import NVEmbedConfig, NVEmbedModel
from embedkit.modeling.qwen3 import Qwen3Config, Qwen3Model

LAYERS = 3
_PADDLE_ATTENTION = frozenset(f"self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "out_proj"))
_DECODER = frozenset([*(f"self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj")),
                      *(f"mlp.{p}" for p in ("gate_proj", "up_proj", "down_proj"))])
_GROUPED_KV_HEADS = {"num_key_value_heads": 2}  # for 4 query heads, as Mistral-7B and Qwen2 group theirs


@dataclass(frozen=True)
class Family:
    name: str
    config_class: type
    model_class: type
    adapted: frozenset[str]  # the Linear layers LoRA adapts, as the last two parts of their names
    options: dict = field(default_factory=dict)


FAMILIES = [
    Family("BERT", T.BertConfig, T.BertModel, _PADDLE_ATTENTION),
    Family("ERNIE", T.ErnieConfig, T.ErnieModel, _PADDLE_ATTENTION),
    Family("RoBERTa", T.RobertaConfig, T.RobertaModel, _PADDLE_ATTENTION),
    Family("XLM-RoBERTa", T.XLMRobertaConfig, T.XLMRobertaModel,
           frozenset({"self.query", "self.key", "self.value", "output.dense"})),
    Family("LLaMA", T.LlamaConfig, T.LlamaModel, _DECODER, _GROUPED_KV_HEADS),
    Family("Mistral", T.MistralConfig, T.MistralModel, _DECODER, _GROUPED_KV_HEADS),
    Family("Qwen2", T.Qwen2Config, T.Qwen2Model, _DECODER, _GROUPED_KV_HEADS),
    # embedkit's own Paddle Qwen3; head_dim 16 is not hidden/heads (8), as in the real Qwen3 models.
    Family("Qwen3", Qwen3Config, Qwen3Model, _DECODER, {**_GROUPED_KV_HEADS, "head_dim": 16}),
    # A bidirectional Mistral under embedding_model, the latent-attention pooling block beside it (not adapted).
    Family("NV-Embed", NVEmbedConfig, NVEmbedModel, _DECODER,
           {**_GROUPED_KV_HEADS, "latent_attention_config": {"num_latents_value": 8, "num_cross_heads": 2,
                                                             "cross_dim_head": 16}}),
]
BY_NAME = {family.name: family for family in FAMILIES}


def _tiny_config(family: Family):
    return family.config_class(vocab_size=64, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=64, **family.options)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """Family name -> a saved tiny random model of it (built once per module)."""
    built = {}

    def build(name: str):
        if name not in built:
            family = BY_NAME[name]
            paddle.seed(0)
            built[name] = tmp_path_factory.mktemp(name.lower())
            family.model_class(_tiny_config(family)).save_pretrained(str(built[name]), safe_serialization=True)
        return built[name]

    return build


def _batch(backbone):
    """Two texts, the second right-padded: token ids clear of the special ids, the mask marking the padding."""
    pad = backbone.config.pad_token_id or 0
    ids = paddle.to_tensor([[5, 9, 12, 7, 30, 41], [8, 22, 17, 6, pad, pad]], dtype="int64")
    mask = paddle.to_tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype="int64")
    return ids, mask


def test_every_registered_family_is_tested():
    assert sorted(entry.name for entry in ARCHITECTURES) == sorted(BY_NAME)


@pytest.mark.parametrize("name", BY_NAME)
def test_family_is_recognised_from_its_saved_config_json_and_from_the_loaded_backbone(name, tiny_dir):
    assert read_architecture(tiny_dir(name)).name == name
    assert architecture_of(load_backbone(tiny_dir(name))).name == name


def test_a_legacy_config_without_model_type_is_recognised_by_its_architectures_class(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["ErnieModel"], "hidden_size": 32}))
    assert read_architecture(tmp_path).name == "ERNIE"


def test_an_unknown_family_is_a_user_error_naming_its_model_type_whatever_the_path_says(tmp_path):
    model_dir = tmp_path / "bert-base-llama-qwen2"  # a path naming known families decides nothing
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"]}))
    with pytest.raises(UserError, match="model_type 'gpt_neox'") as err:
        read_architecture(model_dir)
    assert err.value.path == str(model_dir / "config.json")
    # model_type is authoritative: architectures naming a known class do not override it.
    with pytest.raises(UserError, match="model_type 'gpt2'"):
        find_architecture("gpt2", ["BertModel"])


def test_a_missing_or_broken_config_json_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="config.json is missing"):
        read_architecture(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert",\n')
    with pytest.raises(UserError, match="invalid JSON") as err:
        read_architecture(tmp_path)
    assert err.value.line == 2


@pytest.mark.parametrize("name", BY_NAME)
def test_layer_list_holds_num_hidden_layers_layers(name, tiny_dir):
    backbone = load_backbone(tiny_dir(name))
    layers = layer_list(backbone)
    assert isinstance(layers, nn.LayerList) and len(layers) == backbone.config.num_hidden_layers == LAYERS
    if BY_NAME[name].options:  # the decoders really group their KV heads
        assert backbone.config.num_key_value_heads < backbone.config.num_attention_heads
    # The entry's key prefix is where the layers' weights live in the state dict.
    prefix = architecture_of(backbone).layer_key_prefix(LAYERS - 1)
    assert {key[len(prefix):] for key in backbone.state_dict() if key.startswith(prefix)} == set(layers[-1].state_dict())


@pytest.mark.parametrize("name", BY_NAME)
def test_hidden_states_are_the_embeddings_output_then_each_layers_output(name, tiny_dir):
    backbone = load_backbone(tiny_dir(name))
    backbone.train()  # dropout is on in training mode; the states must not depend on it
    ids, mask = _batch(backbone)
    layers = layer_list(backbone)
    seen_inputs, seen_outputs = [], []
    hooks = [layers[0].register_forward_pre_hook(lambda layer, inputs: seen_inputs.append(inputs[0]))]
    hooks += [layer.register_forward_post_hook(lambda layer, inputs, out: seen_outputs.append(
        out[0] if isinstance(out, tuple) else out)) for layer in layers]
    states = hidden_states(backbone, ids, mask)
    for hook in hooks:
        hook.remove()

    assert backbone.training  # the caller's mode is restored
    assert len(states) == LAYERS + 1 and all(s.shape == [2, 6, 32] for s in states)
    np.testing.assert_array_equal(states[0].numpy(), seen_inputs[0].numpy())
    for after_layer, seen in zip(states[1:LAYERS], seen_outputs[:LAYERS - 1], strict=True):
        np.testing.assert_array_equal(after_layer.numpy(), seen.numpy())
    backbone.eval()
    last = backbone(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
    np.testing.assert_allclose(states[-1].numpy(), last.numpy(), atol=1e-6)
    # The last state is the last layer's output, after the final norm where the family has one.
    final_norm = architecture_of(backbone).final_norm
    after_last = _sublayer(backbone, final_norm)(seen_outputs[-1]) if final_norm else seen_outputs[-1]
    np.testing.assert_allclose(states[-1].numpy(), after_last.numpy(), atol=1e-6)
    np.testing.assert_allclose(hidden_states(backbone, ids, mask)[2].numpy(), states[2].numpy(), atol=1e-6)


def _sublayer(backbone, path: str):
    for attribute in path.split("."):
        backbone = getattr(backbone, attribute)
    return backbone


def _saved_layer_count(model_dir) -> int:
    """num_hidden_layers as config.json holds it (NV-Embed: in its text_config)."""
    config = json.loads((model_dir / "config.json").read_text())
    return config.get("text_config", config)["num_hidden_layers"]


def _adapted_by(patterns, backbone) -> dict[str, nn.Layer]:
    return {name: layer for name, layer in backbone.named_sublayers() if any(re.fullmatch(p, name) for p in patterns)}


@pytest.mark.parametrize("name", BY_NAME)
def test_lora_targets_are_linear_projections_and_each_matches_one(name, tiny_dir):
    backbone = load_backbone(tiny_dir(name))
    targets = architecture_of(backbone).lora_targets
    for pattern in targets:
        assert _adapted_by([pattern], backbone), pattern
    adapted = _adapted_by(targets, backbone)
    assert all(isinstance(layer, nn.Linear) for layer in adapted.values())
    assert {".".join(n.split(".")[-2:]) for n in adapted} == BY_NAME[name].adapted
    assert len(adapted) == len(BY_NAME[name].adapted) * LAYERS  # every layer, nothing outside them (e.g. the pooler)

    lora = apply_lora(backbone, 4, 8, 0.0, None, str(tiny_dir(name)))
    trainable = {n.rsplit(".lora_", 1)[0] for n, p in lora.named_parameters() if not p.stop_gradient}
    # Besides the adapters, what the family trains in full (NV-Embed's latent block).
    in_full = {n for n, _ in backbone.named_parameters()
               if any(re.fullmatch(p, n) for p in architecture_of(backbone).lora_trainable)}
    assert trainable == {f"model.{n}" for n in set(adapted) | in_full}
    assert bool(in_full) == (name == "NV-Embed")


def test_lora_targets_cover_paddlenlps_fused_decoder_projections():
    family = BY_NAME["LLaMA"]
    config = _tiny_config(family)
    config.fuse_attention_qkv = config.fuse_attention_ffn = True  # LlamaConfig's base __init__ resets the arguments
    backbone = family.model_class(config)
    adapted = _adapted_by(architecture_of(backbone).lora_targets, backbone)
    assert {n.rsplit(".", 1)[-1] for n in adapted} == {"qkv_proj", "o_proj", "gate_up_fused_proj", "down_proj"}


def _renumbered_by_hand(keys, prefix_of, removed: int, num_layers: int) -> dict[str, str]:
    """new key -> old key, when layer ``removed`` is dropped and the ones after it move down by one."""
    mapping = {}
    for key in keys:
        if key.startswith(prefix_of(removed)):
            continue
        new = key
        for old in range(removed + 1, num_layers):
            if key.startswith(prefix_of(old)):
                new = prefix_of(old - 1) + key[len(prefix_of(old)):]
        mapping[new] = key
    return mapping


@pytest.mark.parametrize("name", BY_NAME)
def test_keep_layers_saves_renumbered_weights_and_config_that_reload(name, tiny_dir, tmp_path):
    original = load_backbone(tiny_dir(name))
    pruned = with_layers(original, [0, 2])
    pruned.save_pretrained(str(tmp_path / "pruned"), safe_serialization=True)
    reloaded = load_backbone(tmp_path / "pruned")

    assert reloaded.config.num_hidden_layers == 2 and len(layer_list(reloaded)) == 2
    assert _saved_layer_count(tmp_path / "pruned") == 2
    assert len(layer_list(original)) == LAYERS  # the original is left as it was
    old, new = original.state_dict(), reloaded.state_dict()
    expected = _renumbered_by_hand(old, architecture_of(original).layer_key_prefix, removed=1, num_layers=LAYERS)
    assert set(new) == set(expected)
    for new_key, old_key in expected.items():
        np.testing.assert_array_equal(new[new_key].numpy(), old[old_key].numpy(), err_msg=new_key)


def _bert_by_hand(bert, ids, mask, layers):
    hidden = bert.embeddings(input_ids=ids)
    additive_mask = (1.0 - mask.unsqueeze([1, 2]).astype("float32")) * -1e4
    for index in layers:
        hidden = layer_list(bert)[index](hidden, src_mask=additive_mask)
    return hidden


def _llama_by_hand(llama, ids, mask, layers):
    hidden = llama.embed_tokens(ids)
    batch, length = ids.shape
    causal_mask = llama._prepare_decoder_attention_mask(mask, (batch, length), 0, hidden.dtype)
    positions = paddle.arange(length, dtype="int64").expand((batch, length))
    for index in layers:
        out = layer_list(llama)[index](hidden, positions, causal_mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return llama.norm(hidden)


@pytest.mark.parametrize("name, by_hand", [("BERT", _bert_by_hand), ("LLaMA", _llama_by_hand)])
def test_a_model_without_layer_1_computes_embeddings_then_layers_0_and_2(name, by_hand, tiny_dir, tmp_path):
    original = load_backbone(tiny_dir(name))
    original.eval()
    with_layers(original, [0, 2]).save_pretrained(str(tmp_path / "pruned"), safe_serialization=True)
    pruned = load_backbone(tmp_path / "pruned")
    pruned.eval()
    ids, mask = _batch(original)
    with paddle.no_grad():
        expected = by_hand(original, ids, mask, [0, 2])
        got = pruned(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
        untouched = original(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(by_hand(original, ids, mask, [0, 1, 2]).numpy(), untouched.numpy(), atol=1e-5)
    assert not np.allclose(got.numpy(), untouched.numpy(), atol=1e-3)  # layer 1 did something


def test_keep_layers_refuses_layers_the_model_does_not_have(tiny_dir):
    backbone = load_backbone(tiny_dir("BERT"))
    state, config = backbone.state_dict(), backbone.config
    with pytest.raises(UserError, match="at least one"):
        keep_layers(state, config, [])
    with pytest.raises(UserError, match=r"\[3\] do not exist: the model has 3 layers \(0-2\)"):
        keep_layers(state, config, [0, 3])
    with pytest.raises(UserError, match="more than once"):
        keep_layers(state, config, [1, 1])
    # The kept layers keep their order, however they are listed.
    assert set(keep_layers(state, config, [2, 0])[1]) == set(keep_layers(state, config, [0, 2])[1])
    assert config.num_hidden_layers == LAYERS  # the config given is not modified


def test_keep_layers_refuses_a_state_dict_in_another_key_layout(tiny_dir):
    backbone = load_backbone(tiny_dir("BERT"))
    hugging_face_style = {f"bert.{key}": value for key, value in backbone.state_dict().items()}
    with pytest.raises(ValueError, match="'encoder.layers'"):
        keep_layers(hugging_face_style, backbone.config, [0])
