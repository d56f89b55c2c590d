"""Hugging Face and PaddleNLP entries, with the real downloaders replaced by injected fakes.

The fakes stand in for ``huggingface_hub.snapshot_download`` and paddlenlp's from_pretrained: the
tests check the arguments embedkit passes and what it does with the files that come back.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
from hub_support import sha256
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

from embedkit.errors import UserError
from embedkit.hub.download import fetch
from embedkit.hub.hf import FALLBACK_WEIGHT_PATTERNS, WEIGHT_PATTERNS
from embedkit.hub.manifest import MANIFEST_NAME
from embedkit.hub.registry import Entry, load_registry


class FakeHub:
    """snapshot_download's keyword interface over in-memory repos: writes the allowed files to local_dir."""

    def __init__(self, repos: dict[str, dict[str, bytes]], error: Exception | None = None):
        self.repos = repos
        self.error = error
        self.calls: list[dict] = []

    def __call__(self, **kwargs) -> str:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        local_dir = Path(kwargs["local_dir"])
        for name, data in self.repos[kwargs["repo_id"]].items():
            if any(fnmatch.fnmatch(name, pattern) for pattern in kwargs["allow_patterns"]):
                (local_dir / name).parent.mkdir(parents=True, exist_ok=True)
                (local_dir / name).write_bytes(data)
        (local_dir / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)  # the real client's bookkeeping
        return str(local_dir)


BGE_REPO = {
    "config.json": b"{}",
    "tokenizer.json": b"{}",
    "vocab.txt": b"[PAD]\n",
    "1_Pooling/config.json": b"{}",
    "model.safetensors": b"weights",
    "pytorch_model.bin": b"the same weights, pickled",
    "onnx/model.onnx": b"onnx",
    "README.md": b"# card",
}


def test_a_hub_model_is_fetched_with_the_right_arguments(monkeypatch, embedkit_home):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    hub = FakeHub({"BAAI/bge-large-en-v1.5": BGE_REPO})

    result = fetch("BAAI/bge-large-en-v1.5", hf_downloader=hub)

    target = embedkit_home / "models" / "bge-large-en-v1.5"
    (call,) = hub.calls
    assert call["repo_id"] == "BAAI/bge-large-en-v1.5" and call["repo_type"] == "model"
    assert call["local_dir"] == str(target)
    assert call["endpoint"] == "http://127.0.0.1:1" and call["token"] == "hf_test_token"
    assert call["force_download"] is False and call["revision"] is None
    assert set(WEIGHT_PATTERNS) <= set(call["allow_patterns"])
    assert not any(p.endswith(".bin") for p in call["allow_patterns"])
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file() and ".cache" not in p.parts) == [
        ".embedkit-download.json",
        "1_Pooling/config.json",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
    ]
    assert result.path == target and result.downloaded
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    assert manifest["files"]["model.safetensors"]["sha256"] == sha256(b"weights")
    assert manifest["origin"]["hf"] == "BAAI/bge-large-en-v1.5"


def test_a_present_snapshot_is_not_fetched_again_unless_forced():
    hub = FakeHub({"BAAI/bge-large-en-v1.5": BGE_REPO})
    fetch("bge-large-en-v1.5", hf_downloader=hub)

    again = fetch("bge-large-en-v1.5", hf_downloader=hub)
    assert not again.downloaded and len(hub.calls) == 1

    fetch("bge-large-en-v1.5", force=True, hf_downloader=hub)
    assert len(hub.calls) == 2 and hub.calls[1]["force_download"] is True


def adapter_registry(adapter_digest: str) -> dict[str, Entry]:
    adapter = Entry(
        name="adapter", kind="model", source="hf", size="1 kB", licence="test", repo="org/adapter",
        revision="0123456789abcdef0123456789abcdef01234567", allow_patterns=("adapter_config.json",),
        sha256={"adapter_model.bin": adapter_digest}, base_model="base",
    )  # fmt: skip
    base = Entry(name="base", kind="model", source="hf", size="1 kB", licence="test", repo="org/base", allow_patterns=("config.json",))
    return {"adapter": adapter, "base": base}


ADAPTER_REPO = {"adapter_config.json": b"{}", "adapter_model.bin": b"lora", "training_args.bin": b"args"}
BASE_REPO = {"config.json": b"{}", "model-00001-of-00001.safetensors": b"base weights"}


def test_bin_weights_only_when_there_are_no_safetensors_and_the_base_model_comes_too(embedkit_home):
    hub = FakeHub({"org/adapter": ADAPTER_REPO, "org/base": BASE_REPO})

    result = fetch("adapter", registry=adapter_registry(sha256(b"lora")), hf_downloader=hub)

    assert [(c["repo_id"], c["allow_patterns"]) for c in hub.calls] == [
        ("org/adapter", ["adapter_config.json", *WEIGHT_PATTERNS]),
        ("org/adapter", FALLBACK_WEIGHT_PATTERNS),
        ("org/base", ["config.json", *WEIGHT_PATTERNS]),
    ]
    assert hub.calls[0]["revision"] == "0123456789abcdef0123456789abcdef01234567"
    adapter_dir = embedkit_home / "models" / "adapter"
    assert (adapter_dir / "adapter_model.bin").is_file() and not (adapter_dir / "training_args.bin").exists()
    assert {rec.path: rec.verified for rec in result.files} == {"adapter_config.json": False, "adapter_model.bin": True}
    (base,) = result.base_models
    assert base.path == embedkit_home / "models" / "base"
    assert (base.path / "model-00001-of-00001.safetensors").is_file()


def test_a_hub_file_with_the_wrong_digest_is_deleted(embedkit_home):
    hub = FakeHub({"org/adapter": ADAPTER_REPO, "org/base": BASE_REPO})

    with pytest.raises(UserError, match="sha256 mismatch for org/adapter"):
        fetch("adapter", registry=adapter_registry("0" * 64), hf_downloader=hub)

    assert not (embedkit_home / "models" / "adapter" / "adapter_model.bin").exists()


def test_an_unreachable_hub_says_where_the_files_go(monkeypatch, embedkit_home):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    hub = FakeHub({}, error=LocalEntryNotFoundError("Please check your internet connection"))

    with pytest.raises(UserError) as caught:
        fetch("mteb-scifact", hf_downloader=hub)

    message = str(caught.value)
    assert "cannot reach the Hugging Face Hub for mteb/scifact (https://huggingface.co/datasets/mteb/scifact)" in message
    assert "huggingface-cli download mteb/scifact --repo-type dataset --revision d56462d0" in message
    assert str(embedkit_home / "datasets" / "mteb-scifact" / "source") in message


def test_a_gated_repo_asks_for_a_token():
    hub = FakeHub({}, error=GatedRepoError("403 gated"))

    with pytest.raises(UserError, match="meta-llama/Llama-2-7b-hf is gated: .* export HF_TOKEN"):
        fetch("llama-2-7b-hf", hf_downloader=hub)


MTEB_SCIFACT = {
    "corpus.jsonl": b'{"_id": "d1", "title": "T", "text": "claim evidence"}\n',
    "queries.jsonl": b'{"_id": "q1", "text": "claim?"}\n',
    "qrels/test.tsv": b"query-id\tcorpus-id\tscore\nq1\td1\t1\n",
    "qrels/train.tsv": b"query-id\tcorpus-id\tscore\nq2\td2\t1\n",
    "README.md": b"# card",
}


def test_a_hub_dataset_is_downloaded_to_source_and_converted_once(embedkit_home):
    hub = FakeHub({"mteb/scifact": MTEB_SCIFACT})

    result = fetch("mteb-scifact", hf_downloader=hub)

    target = embedkit_home / "datasets" / "mteb-scifact"
    (call,) = hub.calls
    assert call["repo_type"] == "dataset" and call["local_dir"] == str(target / "source")
    assert call["revision"] == load_registry()["mteb-scifact"].revision
    assert not (target / "source" / "qrels" / "train.tsv").exists()  # only the evaluated split comes down
    assert result.path == target
    assert result.conversion["outputs"] == ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"]
    assert (target / "qrels" / "test.tsv").read_text() == "query-id\tcorpus-id\tscore\nq1\td1\t1\n"
    written = (target / "corpus.jsonl").stat().st_mtime_ns

    again = fetch("mteb-scifact", hf_downloader=hub)

    assert not again.downloaded and len(hub.calls) == 1
    assert (target / "corpus.jsonl").stat().st_mtime_ns == written


def fake_paddlenlp(calls: list[str]):
    def save(name: str, directory: Path) -> None:
        calls.append(name)
        (directory / "model_state.pdparams").write_bytes(b"paddle weights")
        (directory / "config.json").write_text("{}")
        (directory / "vocab.txt").write_text("[PAD]\n")

    return save


def test_a_paddlenlp_model_is_saved_through_paddlenlp_and_recorded(embedkit_home):
    calls: list[str] = []

    result = fetch("rocketqa-zh-base-query-encoder", paddlenlp_saver=fake_paddlenlp(calls))

    target = embedkit_home / "models" / "rocketqa-zh-base-query-encoder"
    assert calls == ["rocketqa-zh-base-query-encoder"]
    assert result.path == target and (target / "model_state.pdparams").is_file()
    assert {rec.path for rec in result.files} == {"config.json", "model_state.pdparams", "vocab.txt"}

    again = fetch("rocketqa-zh-base-query-encoder", paddlenlp_saver=fake_paddlenlp(calls))
    assert not again.downloaded and calls == ["rocketqa-zh-base-query-encoder"]


def test_an_unreachable_paddlenlp_store_names_the_url_and_the_target(embedkit_home):
    def offline(name: str, directory: Path) -> None:
        raise OSError("Can't load the model for 'rocketqa-zh-base-para-encoder'")

    with pytest.raises(UserError) as caught:
        fetch("rocketqa-zh-base-para-encoder", paddlenlp_saver=offline)

    target = embedkit_home / "models" / "rocketqa-zh-base-para-encoder"
    assert "https://paddlenlp.bj.bcebos.com/models/transformers/rocketqa/rocketqa-zh-base-para-encoder.pdparams" in str(caught.value)
    assert str(target) in str(caught.value)
    assert not target.exists()


def test_a_paddlenlp_model_put_in_place_by_hand_is_recorded_without_network(embedkit_home):
    target = embedkit_home / "models" / "rocketqa-zh-base-query-encoder"
    target.mkdir(parents=True)
    (target / "model_state.pdparams").write_bytes(b"copied by hand")
    calls: list[str] = []

    result = fetch("rocketqa-zh-base-query-encoder", paddlenlp_saver=fake_paddlenlp(calls))

    assert calls == [] and not result.downloaded
    assert [rec.path for rec in result.files] == ["model_state.pdparams"]


def test_force_never_deletes_a_model_put_in_place_by_hand(embedkit_home):
    target = embedkit_home / "models" / "rocketqa-zh-base-query-encoder"
    target.mkdir(parents=True)
    (target / "model_state.pdparams").write_bytes(b"copied by hand")
    calls: list[str] = []

    with pytest.raises(UserError, match="is in the way: embedkit did not create it"):
        fetch("rocketqa-zh-base-query-encoder", force=True, paddlenlp_saver=fake_paddlenlp(calls))

    assert calls == [] and (target / "model_state.pdparams").read_bytes() == b"copied by hand"


def test_a_paddlenlp_model_fills_an_empty_directory_and_a_forced_fetch_replaces_its_own(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    calls: list[str] = []

    fetch("rocketqa-zh-base-query-encoder", to=target, paddlenlp_saver=fake_paddlenlp(calls))
    (target / "config.json").write_text('{"stale": true}')
    fetch("rocketqa-zh-base-query-encoder", to=target, force=True, paddlenlp_saver=fake_paddlenlp(calls))

    assert len(calls) == 2 and (target / "config.json").read_text() == "{}"


@pytest.mark.parametrize("flags", [{"sha256": "0" * 64}, {"extract": True}])
def test_single_file_flags_are_refused_for_hub_entries(flags):
    with pytest.raises(UserError, match="bge-large-en-v1.5 is fetched from hf"):
        fetch("bge-large-en-v1.5", hf_downloader=FakeHub({}), **flags)


# --- the real huggingface_hub client, kept offline by HF_HUB_OFFLINE=1 (tests/conftest.py) -------

needs_offline_hub = pytest.mark.skipif(
    not hf_constants.HF_HUB_OFFLINE, reason="only safe to call the real client when HF_HUB_OFFLINE=1"
)


@needs_offline_hub
def test_the_real_client_offline_reports_what_to_fetch_by_hand(embedkit_home):
    with pytest.raises(UserError, match="cannot reach the Hugging Face Hub for mteb/scifact") as caught:
        fetch("mteb-scifact")

    assert str(embedkit_home / "datasets" / "mteb-scifact" / "source") in str(caught.value)


@needs_offline_hub
def test_the_real_client_offline_accepts_files_put_in_place_by_hand(embedkit_home):
    source = embedkit_home / "datasets" / "mteb-scifact" / "source"
    for name, data in MTEB_SCIFACT.items():
        if name != "qrels/train.tsv":
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes(data)

    result = fetch("mteb-scifact")

    assert result.conversion["counts"] == {"passages": 1, "queries": 1, "qrels": 1}
    assert (embedkit_home / "datasets" / "mteb-scifact" / "corpus.jsonl").is_file()


def test_the_real_paddlenlp_path_saves_a_loadable_model_directory(tmp_path, embedkit_home):
    # A tiny ERNIE saved locally stands in for PaddleNLP's store: from_pretrained accepts a directory
    # as well as a store name, so this runs the real from_pretrained/save_pretrained calls offline.
    from paddlenlp.transformers import ErnieConfig, ErnieModel, ErnieTokenizer

    store = tmp_path / "store"
    store.mkdir()
    (store / "vocab.txt").write_text("\n".join(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "a", "b"]))
    config = ErnieConfig(vocab_size=7, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    ErnieModel(config).save_pretrained(str(store))
    ErnieTokenizer(str(store / "vocab.txt")).save_pretrained(str(store))
    entry = Entry(name="tiny-ernie", kind="model", source="paddlenlp", size="1 kB", licence="test", repo=str(store), url="https://example.invalid/x")

    result = fetch("tiny-ernie", registry={"tiny-ernie": entry})

    saved = {rec.path for rec in result.files}
    assert {"config.json", "model_state.pdparams", "vocab.txt", "tokenizer_config.json"} <= saved
    assert ErnieModel.from_pretrained(str(result.path)).config.hidden_size == 8
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["tiny-ernie"]  # no cache or temp dirs left
