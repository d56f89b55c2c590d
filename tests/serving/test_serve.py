"""`embedkit serve`: OpenAI-shaped embeddings over HTTP, batched across concurrent requests, bad requests 4xx."""

from __future__ import annotations

import asyncio
import base64
import json
import random

import httpx
import numpy as np
import pytest
from serving_support import corpus_texts, running_server

TEXTS = ["cells", "a short query about protein folding", *corpus_texts(12)]


def test_fifty_concurrent_requests_are_batched_and_each_gets_its_own_vectors(encoder):
    rng = random.Random(0)
    requests = [{"input": rng.sample(TEXTS, rng.randint(1, 6)), "input_type": rng.choice(["query", "passage"])}
                for _ in range(50)]
    requests[7]["input"] = requests[7]["input"][0]  # a bare string too

    async def call_all(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(*(client.post("/v1/embeddings", json={**r, "model": "tiny"})
                                          for r in requests))

    with running_server(encoder, max_batch=32, max_wait_ms=50) as url:
        responses = asyncio.run(call_all(url))
        health = httpx.get(f"{url}/health").json()
    assert [r.status_code for r in responses] == [200] * 50
    for request, response in zip(requests, responses, strict=True):
        body = response.json()
        texts = [request["input"]] if isinstance(request["input"], str) else request["input"]
        want = encoder.encode(texts, request["input_type"])
        assert body["object"] == "list" and body["model"] == "tiny"
        assert [d["index"] for d in body["data"]] == list(range(len(texts)))
        assert all(d["object"] == "embedding" for d in body["data"])
        got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
        assert np.abs(got - want).max() <= 1e-6
        assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] >= len(texts)
    assert health["requests"] == 50 and health["texts"] == sum(
        1 if isinstance(r["input"], str) else len(r["input"]) for r in requests)
    assert 1 <= health["batches"] < 50 and health["largest_batch"] <= 32 + 6  # a request never splits
    assert health["queued"] == 0


def test_base64_decodes_to_the_same_floats_and_the_query_side_uses_its_instruction(encoder):
    with running_server(encoder) as url:
        as_float = httpx.post(f"{url}/v1/embeddings", json={"input": TEXTS[:3], "input_type": "query"}).json()
        as_b64 = httpx.post(f"{url}/v1/embeddings", json={"input": TEXTS[:3], "input_type": "query",
                                                          "encoding_format": "base64"}).json()
        passage = httpx.post(f"{url}/v1/embeddings", json={"input": TEXTS[:3]}).json()
    floats = np.array([d["embedding"] for d in as_float["data"]], dtype=np.float32)
    decoded = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in as_b64["data"]])
    np.testing.assert_array_equal(decoded, floats)
    passages = np.array([d["embedding"] for d in passage["data"]], dtype=np.float32)
    assert np.abs(passages - floats).max() > 1e-3  # "query: " vs "passage: " prefixes: different vectors
    np.testing.assert_allclose(passages, encoder.encode_passages(TEXTS[:3]), atol=1e-6)


@pytest.mark.parametrize(("body", "status", "message"), [
    (b'{"input": ["a", ', 422, "not valid JSON"),
    (b'["a"]', 422, "JSON object"),
    (json.dumps({"input": [1, 2]}).encode(), 422, "input"),
    (json.dumps({"input": ["a"], "encoding_format": "int8"}).encode(), 422, "encoding_format"),
    (json.dumps({"input": ["a"], "input_type": "document"}).encode(), 422, "input_type"),
    (json.dumps({"input": []}).encode(), 422, "at least one text"),
    (json.dumps({"model": "tiny"}).encode(), 422, "input"),
    (json.dumps({"input": ["a"], "dimensions": 8}).encode(), 422, "dimensions"),
    (json.dumps({"input": ["a"] * 11}).encode(), 413, "more than this server takes"),
    (json.dumps({"input": ["x" * 3000]}).encode(), 413, "over this server's limit"),
])
def test_bad_requests_get_a_4xx_with_a_message_and_the_server_goes_on(encoder, body, status, message):
    with running_server(encoder, limits=_limits(max_texts=10, max_bytes=2048)) as url:
        response = httpx.post(f"{url}/v1/embeddings", content=body, headers={"content-type": "application/json"})
        after = httpx.post(f"{url}/v1/embeddings", json={"input": "still fine"})
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"
    assert after.status_code == 200


def _limits(**values):
    from embedkit.serving import Limits

    return Limits(**values)


def test_the_openai_client_reads_the_response(encoder):
    openai = pytest.importorskip("openai")
    with running_server(encoder) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        result = client.embeddings.create(model="tiny", input=TEXTS[:4])  # the client asks for base64
    got = np.array([d.embedding for d in result.data], dtype=np.float32)
    np.testing.assert_allclose(got, encoder.encode_passages(TEXTS[:4]), atol=1e-6)
    assert result.usage.total_tokens > 0
