"""POST /intake/as2: the AS2 endpoint of the HTTP intake (see gateway.as2.receiver)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from gateway.as2.config import As2Config
from gateway.as2.receiver import As2Receiver

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

__all__ = ["mount_as2"]


def mount_as2(
    app: FastAPI,
    gateway: Gateway,
    config: As2Config,
    *,
    store_timeout: float,
    read_body: Callable[[Request], Awaitable[bytes]],
    refused: Callable[[Any, Request], Response],
    refusal: type[Exception],
    count: Callable[[str], None] = lambda _outcome: None,
) -> As2Receiver:
    """Add POST /intake/as2 to `app`. `read_body` is the intake's bounded body reader and
    `refused` answers the `refusal` it raises (413, 408 ...); `count` adds to the intake's
    counters (outcome ``as2_<outcome>``, see `As2Answer.outcome`)."""
    receiver = As2Receiver(gateway, config, store_timeout=store_timeout)
    app.state.as2 = receiver

    @app.post(
        "/intake/as2",
        summary="Receive an AS2 message",
        description=(
            "An AS2 (RFC 4130) message from a partner configured under intake.as2.partners: decrypted, "
            "decompressed and verified, committed, then answered with the MDN (signed, with the MIC, "
            "when the partner asks). An asynchronous MDN is posted to the partner's configured mdn_url "
            "and the request answered 200 at once. A message that fails decryption or its signature "
            "is stored quarantined and answered with the negative MDN. A repeated Message-ID is "
            "answered with the MDN again and stores nothing."
        ),
        response_model=None,
        responses={
            200: {"description": "The MDN (sync), or an empty body (async MDN to follow)."},
            400: {"description": "Not an AS2 message: AS2-From, AS2-To or Message-ID missing."},
            403: {"description": "An unknown AS2-From or AS2-To that asked for no MDN."},
            413: {"description": "The body is larger than intake.max_body_bytes."},
            503: {"description": "The store cannot be written; send again later. Nothing was stored."},
        },
        tags=["as2"],
    )
    async def as2(request: Request) -> Response:
        try:
            body = await read_body(request)
        except refusal as exc:
            return refused(exc, request)
        client = request.client.host if request.client else "?"
        answer = await run_in_threadpool(receiver.receive, list(request.headers.items()), body, client)
        count(f"as2_{answer.outcome}")
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    return receiver
