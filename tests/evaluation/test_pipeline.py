"""The evaluation flow with a stand-in encoder: right metrics, MTEB's conventions, Matryoshka, outputs."""

from __future__ import annotations

import json

import pytest
from eval_support import write_beir

from embedkit.errors import UserError
from embedkit.evaluation.datasets import MTEB_IGNORE_IDENTICAL_IDS, load_dataset
from embedkit.evaluation.options import EvalOptions
from embedkit.evaluation.outputs import write_report
from embedkit.evaluation.pipeline import evaluate_encoder, evaluate_loaded, load_datasets


def test_word_overlap_encoder_ranks_each_topic_document_first(word_encoder, topic_data):
    result = evaluate_encoder(word_encoder, topic_data)
    assert result.num_docs == 8 and result.num_queries == 8
    assert result.metrics["mrr_at_10"] == pytest.approx(1.0)
    assert result.metrics["precision_at_1"] == pytest.approx(1.0)
    # q0 also has d4 (grade 1) relevant, which shares no word with it: recall@1 is 1/2 there.
    assert result.metrics["recall_at_1"] == pytest.approx((7 + 0.5) / 8)
    assert set(result.run) == {f"q{i}" for i in range(8)}
    assert all(len(docs) == 8 for docs in result.run.values())  # top_k capped at the corpus size


def test_documents_are_read_as_title_space_text(tmp_path):
    root = write_beir(tmp_path / "titled", [("d1", "A Title", "the body"), ("d2", "", " untitled body "),
                                            ("d3", "  ", "spaces")], [("q", "x")], [("q", "d1", 1)])
    assert load_dataset(root, "test").doc_texts() == ["A Title the body", "untitled body", "spaces"]


def test_identical_ids_follow_mteb_for_each_dataset(word_encoder, tmp_path):
    corpus = [("q1", "", "alpha beta"), ("d2", "", "alpha beta gamma")]
    rows = dict(corpus=corpus, queries=[("q1", "alpha beta")], qrels=[("q1", "d2", 1)])
    arguana = evaluate_encoder(word_encoder, write_beir(tmp_path / "arguana", **rows))
    scifact = evaluate_encoder(word_encoder, write_beir(tmp_path / "scifact", **rows))
    forced = evaluate_encoder(word_encoder, tmp_path / "scifact", EvalOptions(ignore_identical_ids=True))

    assert arguana.ignore_identical_ids and not scifact.ignore_identical_ids
    assert set(arguana.run["q1"]) == {"d2"} and arguana.metrics["mrr_at_10"] == 1.0
    assert set(scifact.run["q1"]) == {"q1", "d2"} and scifact.metrics["mrr_at_10"] == 0.5
    assert forced.ignore_identical_ids and set(forced.run["q1"]) == {"d2"}


def test_identical_ids_table_matches_installed_mteb():
    import mteb

    for key, task_name in MTEB_IGNORE_IDENTICAL_IDS.items():
        assert mteb.get_task(task_name).ignore_identical_ids, (key, task_name)
    for task_name in ("SciFact", "NFCorpus", "TRECCOVID", "SCIDOCS", "NQ", "HotpotQA", "DuRetrieval"):
        assert not mteb.get_task(task_name).ignore_identical_ids, task_name


def test_matryoshka_scores_each_dim_and_rejects_dims_beyond_the_model(word_encoder, topic_data):
    result = evaluate_encoder(word_encoder, topic_data, EvalOptions(dims=[64, 2, 8]))
    assert sorted(result.by_dim) == [2, 8, 64]
    assert result.by_dim[64] == pytest.approx(result.metrics)  # the full dim truncates nothing
    assert result.by_dim[2]["ndcg_at_10"] < result.metrics["ndcg_at_10"]
    with pytest.raises(UserError, match="65 is larger than the model's embedding dimension 64"):
        evaluate_encoder(word_encoder, topic_data, EvalOptions(dims=[32, 65]))


def test_several_datasets_get_a_mean_and_their_own_run_files(word_encoder, topic_data, tmp_path):
    other = write_beir(tmp_path / "other", [("a", "", "coffee bean roasting"), ("b", "", "jazz saxophone")],
                       [("x", "jazz saxophone"), ("y", "tea")], [("x", "b", 1), ("y", "a", 1)])
    datasets = load_datasets([topic_data, other, topic_data], "test")
    assert [d.name for d in datasets] == ["topics", "other", "topics-2"]
    report = evaluate_loaded(word_encoder, "fake-model", datasets, EvalOptions(show_progress=False, dims=[8]))
    per = [d.metrics["ndcg_at_10"] for d in report.datasets]
    assert report.mean["ndcg_at_10"] == pytest.approx(sum(per) / 3)

    written = write_report(report, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["matryoshka.png", "results.json", "run.other.trec", "run.topics-2.trec", "run.topics.trec"]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["mean"]["ndcg_at_10"] == pytest.approx(report.mean["ndcg_at_10"])
    assert results["datasets"][1]["run_file"] == "run.other.trec"
    assert {"ndcg_at_10", "mrr_at_10", "recall_at_100", "map_at_10", "precision_at_1"} <= set(results["mean"])
    lines = (tmp_path / "out" / "run.other.trec").read_text().splitlines()
    assert lines[0].split()[:4] == ["x", "Q0", "b", "1"]
    assert (tmp_path / "out" / "matryoshka.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
