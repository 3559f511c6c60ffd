"""Shared by the webhook tests: a real receiver on 127.0.0.1, resolvers, and small helpers."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.plan_helpers import rows


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> dict[str, Any]:
        """The payload, after the standardwebhooks package verified its signature (raises otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread, recording every POST. It answers with the statuses of `script` in
    turn, then `then` for ever; `headers` are added to every answer. `hold()` makes it keep the next requests
    waiting until `release()`."""

    def __init__(self, script: Iterable[int] = (), *, then: int = 204, headers: dict[str, str] | None = None) -> None:
        self.script, self.then, self.answer_headers = list(script), then, headers or {}
        self.received: list[Received] = []
        self._lock, self._released = threading.Lock(), threading.Event()
        self._released.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.script.pop(0) if receiver.script else receiver.then
                receiver._released.wait(timeout=30)
                self.send_response(status)
                for name, value in receiver.answer_headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the standard library's 5 resets connections of a busy worker's bursts

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def payloads(self, secret: str) -> list[dict[str, Any]]:
        return [request.verified(secret) for request in self.received]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


def resolver_of(answers: dict[str, Sequence[str]], calls: list[str] | None = None):
    """A resolver answering from `answers` (unknown names do not resolve); records the names asked in `calls`."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return list(answers[host])

    return resolve


async def subscribe(client, actor, url: str, events: Sequence[str] = ("score.created",), **extra: Any) -> dict:
    response = await client.post("/v1/webhooks", json={"url": url, "events": list(events), **extra},
                                 headers=actor.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def new_score(client, world, items: Sequence[int] = (1,) * 7, instrument: str = "gad7") -> str:
    """A score entered by the care team for world.patient (a score.created event); its id."""
    from models.base import utcnow

    score_id = str(uuid.uuid4())
    response = await client.post(f"/v1/patients/{world.patient.id}/scores", headers=world.clinician.headers, json={
        "id": score_id, "instrument": instrument, "items": list(items), "recorded_at": utcnow().isoformat()})
    assert response.status_code == 201, response.text
    return score_id


async def deliveries(app, webhook_id: str) -> list[WebhookDelivery]:
    return await rows(app, WebhookDelivery, WebhookDelivery.endpoint_id == uuid.UUID(webhook_id),
                      order_by=WebhookDelivery.created_at)


async def attempts(app, delivery_id: uuid.UUID) -> list[WebhookAttempt]:
    return await rows(app, WebhookAttempt, WebhookAttempt.delivery_id == delivery_id,
                      order_by=WebhookAttempt.attempt)


async def endpoint(app, webhook_id: str) -> WebhookEndpoint:
    [row] = await rows(app, WebhookEndpoint, WebhookEndpoint.id == uuid.UUID(webhook_id))
    return row


def body_of(received: Received) -> dict[str, Any]:
    return json.loads(received.body)
