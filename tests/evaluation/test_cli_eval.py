"""`embedkit eval` end to end with tiny models: results, outputs, cache, checkpoints, MTEB, two towers, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from eval_support import DEMO_DATA, demo_texts, write_beir

FAST = ("--engine", "paddle", "--batch-size", "64")


def eval_json(run_cli, *args):
    result = run_cli("eval", *args, *FAST, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_eval_reports_mteb_metric_keys_and_second_run_is_cached(run_cli, tiny_model, tmp_path):
    first = eval_json(run_cli, tiny_model, "--data", DEMO_DATA, "--output", tmp_path / "out")
    second = eval_json(run_cli, tiny_model, "--data", DEMO_DATA)

    dataset = first["datasets"][0]
    assert dataset["name"] == "scifact-mini" and dataset["num_docs"] == 800 and dataset["num_queries"] == 100
    for key in ("ndcg_at_1", "ndcg_at_3", "ndcg_at_5", "ndcg_at_10", "ndcg_at_100", "mrr_at_10", "mrr_at_100",
                "recall_at_1", "recall_at_5", "recall_at_10", "recall_at_100", "recall_at_1000", "map_at_10",
                "map_at_100", "precision_at_1", "precision_at_10"):
        assert 0.0 <= dataset["metrics"][key] <= 1.0, key
    assert dataset["metrics"]["recall_at_1000"] == 1.0  # 800 docs, all retrieved
    assert dataset["cached"] == {"queries": False, "corpus": False} and dataset["timings"]["docs_per_s"] > 0
    assert second["datasets"][0]["cached"] == {"queries": True, "corpus": True}
    assert second["datasets"][0]["timings"]["docs_per_s"] is None
    assert second["datasets"][0]["metrics"] == pytest.approx(dataset["metrics"])
    assert first["mean"]["ndcg_at_10"] == dataset["metrics"]["ndcg_at_10"]

    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["datasets"][0]["run_file"] == "run.trec"
    lines = (tmp_path / "out" / "run.trec").read_text().splitlines()
    assert len(lines) == 100 * 800
    qid, q0, _, rank, _, _ = lines[0].split()
    assert (qid, q0, rank) == (lines[0].split()[0], "Q0", "1")


def test_human_output_is_a_table_on_stderr(run_cli, tiny_model):
    result = run_cli("eval", tiny_model, "--data", DEMO_DATA, *FAST)
    assert result.exit_code == 0 and result.stdout == ""
    for text in ("NDCG@10", "MRR@10", "Recall@1000", "MAP@100", "P@1", "scifact-mini", "docs/s", "cached"):
        assert text in result.stderr


def test_flags_configure_a_plain_checkpoint(run_cli, tiny_model):
    base = eval_json(run_cli, tiny_model, "--data", DEMO_DATA, "--no-cache")
    flagged = eval_json(run_cli, tiny_model, "--data", DEMO_DATA, "--no-cache", "--pooling", "cls",
                        "--query-instruction", "query: ", "--max-length", "64", "--query-max-length", "16")
    assert base["spec"]["pooling"] == "mean" and flagged["spec"]["pooling"] == "cls"
    assert flagged["spec"]["query_instruction"] == "query: "
    assert (flagged["spec"]["passage_max_len"], flagged["spec"]["query_max_len"]) == (64, 16)
    assert flagged["datasets"][0]["metrics"]["ndcg_at_10"] != base["datasets"][0]["metrics"]["ndcg_at_10"]


def test_several_datasets_and_approximate_index(run_cli, tiny_model, tmp_path):
    copy = Path(shutil.copytree(DEMO_DATA, tmp_path / "copy"))
    report = eval_json(run_cli, tiny_model, "--data", DEMO_DATA, "--data", copy, "--index", "hnsw")
    assert [d["name"] for d in report["datasets"]] == ["scifact-mini", "copy"]
    assert report["datasets"][1]["cached"] == {"queries": True, "corpus": True}  # same texts, same vectors
    assert report["datasets"][0]["index"] == "hnsw"
    assert report["mean"]["ndcg_at_10"] == pytest.approx(report["datasets"][0]["metrics"]["ndcg_at_10"])


def test_matryoshka_dims_print_a_curve_and_save_a_png(run_cli, tiny_model, tmp_path):
    report = eval_json(run_cli, tiny_model, "--data", DEMO_DATA, "--dims", "8,16", "--output", tmp_path / "out")
    assert set(report["datasets"][0]["by_dim"]) == {"8", "16"}
    assert (tmp_path / "out" / "matryoshka.png").stat().st_size > 1000
    too_big = run_cli("eval", tiny_model, "--data", DEMO_DATA, "--dims", "16,64", *FAST)
    assert too_big.exit_code == 2
    assert "64 is larger than the model's embedding dimension 32" in too_big.stderr


def test_two_tower_model_encodes_each_side_with_its_own_tower(run_cli, tmp_path):
    from embedkit.inference import Encoder
    from embedkit.modeling.spec import EmbedderSpec
    from embedkit.modeling.tiny import build_tiny_bert

    root = tmp_path / "two-tower"
    build_tiny_bert(root / "query_model", demo_texts(), seed=1)
    build_tiny_bert(root / "passage_model", demo_texts(), seed=2)
    EmbedderSpec(pooling="cls", normalized=False, query_model="query_model", passage_model="passage_model",
                 query_max_len=32, passage_max_len=128).save(root)
    data = write_beir(tmp_path / "small", [(f"d{i}", "", t) for i, t in enumerate(demo_texts(30))],
                      [("q1", "cells and proteins"), ("q2", "risk of disease")], [("q1", "d3", 1), ("q2", "d7", 1)])

    report = eval_json(run_cli, root, "--data", data, "--output", tmp_path / "out")
    assert report["spec"]["query_model"] == "query_model" and report["spec"]["normalized"] is False

    # Expected: the query tower alone on queries, the passage tower alone on passages, raw dot products.
    def alone(tower, side, texts, max_len):
        encoder = Encoder.from_model_dir(root / tower, engine="paddle", overrides={
            "pooling": "cls", "normalized": False, "query_max_len": max_len, "passage_max_len": max_len})
        return encoder.encode(texts, side)

    queries = alone("query_model", "query", ["cells and proteins", "risk of disease"], 32)
    passages = alone("passage_model", "passage", demo_texts(30), 128)
    best = np.argmax(queries @ passages.T, axis=1)
    run_lines = (tmp_path / "out" / "run.trec").read_text().splitlines()
    top = {line.split()[0]: line.split()[2] for line in run_lines if line.split()[3] == "1"}
    assert top == {"q1": f"d{best[0]}", "q2": f"d{best[1]}"}


def test_evaluate_all_marks_the_best_checkpoint_and_skips_broken_ones(run_cli, tiny_model_template, tmp_path):
    from embedkit.modeling.tiny import build_tiny_bert

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_model_template, run_dir / "checkpoint-20")
    build_tiny_bert(run_dir / "checkpoint-100", demo_texts(), seed=5)
    shutil.copytree(tiny_model_template, run_dir / "checkpoint-50")
    (run_dir / "checkpoint-50" / "model.safetensors").unlink()  # config and tokenizer, weights missing
    for step in (20, 50, 100):
        (run_dir / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    shutil.copytree(tiny_model_template, run_dir / "checkpoint-120")  # cut short: no trainer state
    shutil.copytree(tiny_model_template, run_dir, dirs_exist_ok=True)  # the final model

    result = run_cli("eval", "--evaluate-all", run_dir, "--data", DEMO_DATA, *FAST, "--json",
                     "--output", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    names = [c["name"] for c in report["checkpoints"]]
    assert names == ["checkpoint-20", "checkpoint-50", "checkpoint-100", "checkpoint-120", "final"]
    skipped = report["checkpoints"][1]
    assert "no weights found" in skipped["skipped"] and "results" not in skipped
    assert "incomplete checkpoint: no trainer_state.json" in report["checkpoints"][3]["skipped"]
    scores = {c["name"]: c["results"]["mean"]["ndcg_at_10"] for c in report["checkpoints"] if "results" in c}
    assert report["best"] == max(scores, key=scores.get)
    assert [c["best"] for c in report["checkpoints"]].count(True) == 1
    assert (tmp_path / "out" / "checkpoints.json").is_file()
    assert (tmp_path / "out" / "checkpoint-100" / "run.trec").is_file()


def test_mteb_local_task_runs_offline_and_matches_embedkit(run_cli, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    ours = eval_json(run_cli, tiny_model, "--data", DEMO_DATA)["datasets"][0]["metrics"]

    result = run_cli("eval", tiny_model, "--mteb", "SciFact", "--data", DEMO_DATA, *FAST, "--json",
                     "--output", tmp_path / "mteb")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    (task,) = report["tasks"]
    assert task["task"] == "SciFact" and task["split"] == "test"
    path = Path(report["files"][0])
    assert path.name == "SciFact.json" and path.is_relative_to(tmp_path / "mteb" / "results")
    saved = json.loads(path.read_text())
    assert saved["task_name"] == "SciFact" and saved["dataset_revision"].startswith("local-")
    assert saved["scores"]["test"][0]["main_score"] == task["main_score"]
    for key in ("ndcg_at_10", "mrr_at_10", "recall_at_100", "map_at_10"):
        assert task["scores"][key] == pytest.approx(ours[key], abs=2e-5), key


def test_mteb_builtin_task_offline_fails_with_a_clear_message(run_cli, tiny_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    result = run_cli("eval", tiny_model, "--mteb", "SciFact", *FAST)
    assert result.exit_code == 2
    assert "could not load MTEB task SciFact" in result.stderr and "--data DIR" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["missing_dir", "unknown_doc", "unknown_query", "empty_corpus", "no_weights",
                                  "unknown_mteb_task", "no_model"])
def test_bad_input_is_a_clear_message_and_exit_2(run_cli, tiny_model, tmp_path, case):
    data, model, extra = DEMO_DATA, tiny_model, ()
    expected = {
        "missing_dir": "does-not-exist: no such file or directory", "unknown_doc": "document id 'nope' is not in corpus.jsonl",
        "unknown_query": "query id 'ghost' is not in queries.jsonl", "empty_corpus": "file is empty",
        "no_weights": "no weights found", "unknown_mteb_task": "no MTEB retrieval task named 'SciFactt'",
        "no_model": "missing MODEL",
    }[case]
    if case == "missing_dir":
        data = tmp_path / "does-not-exist"
    elif case == "unknown_doc":
        data = write_beir(tmp_path / "d", [("d1", "", "text")], [("q1", "query")], [("q1", "nope", 1)])
    elif case == "unknown_query":
        data = write_beir(tmp_path / "d", [("d1", "", "text")], [("q1", "query")], [("ghost", "d1", 1)])
    elif case == "empty_corpus":
        data = write_beir(tmp_path / "d", [], [("q1", "query")], [("q1", "d1", 1)])
    elif case == "no_weights":
        (tiny_model / "model.safetensors").unlink()
    elif case == "unknown_mteb_task":
        extra = ("--mteb", "SciFactt")
        data = None
    args = ["eval"] if case == "no_model" else ["eval", model]
    if data is not None:
        args += ["--data", data]
    result = run_cli(*args, *extra, *FAST)
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_t2ranking_directory_with_recipe_settings(run_cli, tiny_model, tmp_path):
    root = tmp_path / "t2r"
    root.mkdir()
    texts = demo_texts(40)
    (root / "collection.tsv").write_text("pid\ttext\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(texts)))
    (root / "queries.dev.tsv").write_text("qid\ttext\n1\tcells and proteins\n2\trisk of disease\n")
    (root / "qrels.dev.tsv").write_text("qid\t0\tpid\trel\n1\t0\t5\t2\n2\t0\t9\t1\n2\t0\t2\t0\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"eval:\n  data: {root}\n  split: dev\n  engine: paddle\n  top_k: 10\n  max_length: 64\n")

    report = eval_json(run_cli, tiny_model, "--recipe", recipe)
    (dataset,) = report["datasets"]
    assert (dataset["format"], dataset["split"], dataset["num_docs"], dataset["num_queries"]) == ("t2ranking", "dev", 40, 2)
    assert dataset["top_k"] == 10 and report["spec"]["passage_max_len"] == 64
    assert dataset["ignore_identical_ids"]  # MTEB's T2Retrieval drops a query's own id


def test_an_output_that_is_a_file_is_refused_before_encoding(run_cli, tiny_model, tmp_path, monkeypatch):
    from embedkit.inference import Encoder

    taken = tmp_path / "results"
    taken.write_text("my notes\n")
    monkeypatch.setattr(Encoder, "from_model_dir", lambda *a, **k: pytest.fail("the model was loaded"))
    result = run_cli("eval", tiny_model, "--data", DEMO_DATA, "--output", taken)
    assert result.exit_code == 2 and f"{taken}: is a file, expected a directory" in result.stderr
    assert taken.read_text() == "my notes\n"
