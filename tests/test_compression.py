"""gzip both ways: compressed answers for clients that accept them; gzip request bodies inflated within the body
limit (a zip bomb is a 413 without being inflated whole), other codings 415, corrupt gzip 400, never a 500."""

import gzip
import json
import tracemalloc
import zlib

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app, release
from api.compression import accepts_gzip
from tests.conftest import make_settings
from tests.test_errors import assert_problem
from tests.test_scores import body

JSON = {"Content-Type": "application/json"}


def gzipped(value) -> bytes:
    return gzip.compress(json.dumps(value).encode())


async def raw_get(client, url, headers, accept_encoding):
    """The answer as sent (httpx decodes gzip transparently; the header says whether it was compressed)."""
    return await client.get(url, headers={**headers, "Accept-Encoding": accept_encoding})


async def test_answers_are_gzipped_when_the_client_accepts_it(client, world):
    plain = await raw_get(client, "/v1/instruments", world.patient_user.headers, "identity")
    packed = await raw_get(client, "/v1/instruments", world.patient_user.headers, "gzip")
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(plain.content) / 3
    assert packed.json() == plain.json()
    for answer in (plain, packed):
        assert "accept-encoding" in answer.headers["vary"].lower()
        # The request-context middleware's headers survive compression.
        assert answer.headers["cache-control"] == "no-store" and answer.headers["x-request-id"]


@pytest.mark.parametrize(("value", "accepted"), [
    ("gzip", True), ("GZIP", True), ("deflate, gzip;q=0.5", True), ("*", True), ("br;q=1, *;q=0.1", True),
    ("gzip;q=0", False), ("identity", False), ("", False), ("br", False), ("gzip;q=0.0, *", False),
    ("gzip;q=oops", False), ("x-gzip", True),
])
def test_accept_encoding_is_parsed_with_its_weights(value, accepted):
    assert accepts_gzip(value) is accepted


async def test_gzip_refused_with_q_zero_answers_identity(client, world):
    answer = await raw_get(client, "/v1/instruments", world.patient_user.headers, "gzip;q=0, identity")
    assert answer.status_code == 200 and "content-encoding" not in answer.headers


async def test_small_answers_and_problems_stay_uncompressed(client, world):
    missing = await raw_get(client, "/v1/scores/00000000-0000-0000-0000-000000000000", world.patient_user.headers,
                            "gzip")
    assert_problem(missing, 404)
    assert "content-encoding" not in missing.headers


async def test_the_pdf_report_is_not_gzipped_again(client, world):
    report = await raw_get(client, f"/v1/patients/{world.patient.id}/report", world.clinician.headers, "gzip")
    assert report.status_code == 200, report.text
    assert report.headers["content-type"] == "application/pdf"
    assert "content-encoding" not in report.headers
    assert report.content.startswith(b"%PDF")


async def test_a_gzipped_score_and_batch_are_accepted(client, world):
    entry = body()
    created = await client.post("/v1/me/scores", content=gzipped(entry),
                                headers={**world.patient_user.headers, **JSON, "Content-Encoding": "gzip"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == entry["id"]
    batch = {"scores": [entry, body(), body()]}
    answered = await client.post("/v1/me/scores/batch", content=gzipped(batch),
                                 headers={**world.patient_user.headers, **JSON, "Content-Encoding": "GZIP, identity"})
    assert answered.status_code == 200, answered.text
    assert [r["status"] for r in answered.json()["results"]] == [200, 201, 201]


async def test_a_body_in_several_gzip_members_is_one_body(client, world):
    raw = json.dumps(body()).encode()
    two_members = gzip.compress(raw[:20]) + gzip.compress(raw[20:])
    created = await client.post("/v1/me/scores", content=two_members,
                                headers={**world.patient_user.headers, **JSON, "Content-Encoding": "gzip"})
    assert created.status_code == 201, created.text


async def test_a_gzipped_invalid_body_is_the_usual_422(client, world):
    answer = await client.post("/v1/me/scores", content=gzip.compress(b"{not json"),
                               headers={**world.patient_user.headers, **JSON, "Content-Encoding": "gzip"})
    assert_problem(answer, 422)


@pytest.mark.parametrize(("url", "peak_under"), [("/v1/me/scores", 12_000_000),
                                                 ("/v1/me/scores/batch", 40_000_000)])
async def test_a_zip_bomb_is_413_without_being_inflated_whole(settings, world, url, peak_under):
    """100 MB of zeros in about 100 KB: refused once the inflated body passes the route's limit (1 MiB; the batch's
    12.5 MB), and the request never holds much more than that in memory (tracemalloc's peak), nor anything like
    the 100 MB."""
    bomb = gzip.compress(b"0" * 100_000_000, compresslevel=9)
    assert len(bomb) < 200_000
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://calmtrack.test") as http:
        tracemalloc.start()
        try:
            answer = await http.post(url, content=bomb,
                                     headers={**world.patient_user.headers, **JSON, "Content-Encoding": "gzip"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    await release(app)
    problem = assert_problem(answer, 413)
    assert problem["code"] == "payload_too_large" and "after decompression" in problem["detail"]
    assert peak < peak_under, peak


async def test_a_streamed_zip_bomb_is_413(client, world):
    bomb = gzip.compress(b"[" * 5_000_000)

    async def chunks():
        for start in range(0, len(bomb), 1000):
            yield bomb[start:start + 1000]

    answer = await client.post("/v1/patients", content=chunks(),
                               headers={**world.admin.headers, **JSON, "Content-Encoding": "gzip"})
    assert assert_problem(answer, 413)["code"] == "payload_too_large"


async def test_a_body_limit_applies_to_the_inflated_size(database_url, world):
    app = create_app(make_settings(database_url, max_body_bytes=2048))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    entry = body(note="n" * 1500)
    async with httpx.AsyncClient(transport=transport, base_url="http://calmtrack.test") as http:
        fits = await http.post("/v1/me/scores", content=gzipped(entry),
                               headers={**world.patient_user.headers, **JSON, "Content-Encoding": "gzip"})
        over = await http.post("/v1/me/scores", content=gzipped(body(note="n" * 1999)),
                               headers={**world.patient_user.headers, **JSON, "Content-Encoding": "gzip"})
    await release(app)
    assert fits.status_code == 201, fits.text
    # 1999 × "n" compresses to a few bytes: only the inflated size can be over the limit.
    assert assert_problem(over, 413)["code"] == "payload_too_large"


@pytest.mark.parametrize("coding", ["br", "deflate", "zstd", "gzip, gzip", "compress", "gzip, br"])
async def test_other_content_encodings_are_415(client, world, coding):
    answer = await client.post("/v1/me/scores", content=gzipped(body()),
                               headers={**world.patient_user.headers, **JSON, "Content-Encoding": coding})
    problem = assert_problem(answer, 415)
    assert problem["code"] == "unsupported_content_encoding"
    assert answer.headers["accept-encoding"] == "gzip"
    assert answer.headers["x-request-id"]


@pytest.mark.parametrize("coding", ["br", "'ue-", "gzip"])
async def test_a_coding_without_content_is_ignored(client, world, coding):
    """Content-Encoding describes the content: a request without any has nothing to decode, so the header is
    ignored, not refused (a 415 on a route without a body would be one it does not document)."""
    headers = {**world.clinician.headers, "Content-Encoding": coding}
    started = await client.post("/v1/me/mfa/totp", headers=headers)
    assert started.status_code == 200, started.text
    assert (await client.post("/v1/me/mfa/totp", content=b"", headers=headers)).status_code in (200, 409)
    assert (await client.get("/v1/me", headers=headers)).status_code == 200


@pytest.mark.parametrize("raw", [
    b"not gzip at all", gzip.compress(b'{"id": 1}', mtime=0)[:-6], gzip.compress(b"{}", mtime=0)[:5],
    gzip.compress(b"{}", mtime=0) + b"trailing garbage", zlib.compress(b"{}"),
], ids=["not-gzip", "no-trailer", "header-only", "trailing-garbage", "zlib-not-gzip"])
async def test_corrupt_or_truncated_gzip_is_400(client, world, raw):
    answer = await client.post("/v1/me/scores", content=raw,
                               headers={**world.patient_user.headers, **JSON, "Content-Encoding": "gzip"})
    assert assert_problem(answer, 400)["code"] == "invalid_gzip_body"


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=300) | st.binary(max_size=300).map(gzip.compress)
       | st.binary(max_size=300).map(lambda b: gzip.compress(b)[: max(1, len(b) // 2)]))
async def test_any_bytes_sent_as_gzip_are_a_problem_or_accepted_never_a_500(client, world, raw):
    answer = await client.post("/v1/me/scores/batch", content=raw,
                               headers={**world.patient_user.headers, **JSON, "Content-Encoding": "gzip"})
    assert answer.status_code in {400, 413, 422}, answer.text
    assert_problem(answer, answer.status_code)


def test_the_openapi_document_declares_415_with_every_body():
    from tests.conftest import openapi_document

    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            has_body = "requestBody" in operation
            assert ("415" in operation["responses"]) is has_body, (method, path)
    assert "Content-Encoding: gzip" in openapi_document()["info"]["description"]
