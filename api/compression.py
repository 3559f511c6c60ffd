"""gzip both ways: compressed answers for clients that accept them, and gzip request bodies inflated as they arrive.

Answers: Starlette's `GZipMiddleware` (pure ASGI, streams chunk by chunk, adds `Vary: Accept-Encoding`, leaves small
answers and already-compressed media types alone), with `Accept-Encoding` read properly (`gzip;q=0` refuses gzip).
A client that does not accept gzip gets the app's answer as it is, with `Vary: Accept-Encoding` added to every answer
rather than Starlette's identity responder inspecting each one (which cost a phone's score post 3 % of its CPU).

Requests: `Content-Encoding: gzip` bodies are inflated incrementally by `GzipBody`, which never produces more than
the body limit plus one byte, so a zip bomb (megabytes of zeros in a few kilobytes) costs at most the limit in
memory before it is refused with 413. Any other coding is 415 (with `Accept-Encoding: gzip`, RFC 9110 15.5.16); a
body that is not valid gzip is 400. `api.middleware.RequestContextMiddleware` applies both (docs/conventions.md).
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware, GZipResponder
from starlette.types import Message, Receive, Scope, Send

from api.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

GZIP = "gzip"
# zlib's own default: most of level 9's ratio on JSON for a fraction of its CPU.
COMPRESS_LEVEL = 6
MINIMUM_SIZE = 500  # bytes; smaller answers gain too little to be worth a compressor
# PDFs compress their own streams already: gzipping the report again costs CPU and saves next to nothing.
NOT_COMPRESSED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/pdf")
_GZIP_WINDOW = 16 + zlib.MAX_WBITS  # gzip header and trailer, not raw deflate or zlib
# Every answer could have been compressed for another client: caches must key on Accept-Encoding.
_VARY = (b"vary", b"Accept-Encoding")

INVALID_GZIP = "invalid_gzip_body"
UNSUPPORTED_ENCODING = "unsupported_content_encoding"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value (RFC 9110 12.5.3) accepts gzip: listed (or `*`) with a non-zero q."""
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, _, parameters = part.partition(";")
        coding = coding.strip().lower()
        weight = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        if coding:
            weights[coding] = weight
    weight = weights.get(GZIP, weights.get("x-gzip", weights.get("*", 0.0)))
    return weight > 0


class ResponseCompression(GZipMiddleware):
    """Starlette's GZipMiddleware choosing by the parsed Accept-Encoding rather than a substring match."""

    def __init__(self, app) -> None:
        super().__init__(app, minimum_size=MINIMUM_SIZE, compresslevel=COMPRESS_LEVEL,
                         exclude_content_types=NOT_COMPRESSED)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not accepts_gzip(Headers(scope=scope).get("accept-encoding", "")):
            async def send_varying(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), _VARY]
                await send(message)

            await self.app(scope, receive, send_varying)
            return
        responder = GZipResponder(self.app, self.minimum_size, compresslevel=self.compresslevel,
                                  thread_minimum_size=self.thread_minimum_size,
                                  exclude_content_types=self.exclude_content_types)
        await responder(scope, receive, send)


def request_coding(values: list[str]) -> str | None:
    """The request's content coding from its Content-Encoding values: None (identity) or "gzip"; 415 otherwise."""
    codings = [c.strip().lower() for value in values for c in value.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if codings in (["gzip"], ["x-gzip"]):
        return GZIP
    raise UnsupportedMediaType(
        "Request bodies may be sent as they are or with Content-Encoding: gzip, nothing else",
        code=UNSUPPORTED_ENCODING, headers={"Accept-Encoding": GZIP})


class GzipBody:
    """Inflates a gzip request body chunk by chunk, refusing it (413) as soon as it would exceed `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflated = 0
        self.received = False
        self._inflater = zlib.decompressobj(_GZIP_WINDOW)

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self.received = True
            # Never more than one byte past the limit: that byte alone proves the body too large.
            allowed = self.limit - self.inflated + 1
            try:
                chunk = self._inflater.decompress(data, allowed)
            except zlib.error:
                raise _invalid() from None
            self.inflated += len(chunk)
            if self.inflated > self.limit:
                raise PayloadTooLarge(f"Request bodies are limited to {self.limit} bytes (after decompression)")
            out.append(chunk)
            # Output stopped short of `allowed`, so all of `data` was used, unless a gzip member ended inside it:
            # RFC 1952 allows several members one after the other.
            data = self._inflater.unused_data if self._inflater.eof else b""
            if data:
                self._inflater = zlib.decompressobj(_GZIP_WINDOW)
        return b"".join(out)

    def finish(self) -> None:
        """At the end of the body: a gzip stream cut off before its trailer is refused."""
        if self.received and not self._inflater.eof:
            raise _invalid()


def _invalid() -> BadRequest:
    return BadRequest("The body is not valid gzip (Content-Encoding: gzip)", code=INVALID_GZIP)
