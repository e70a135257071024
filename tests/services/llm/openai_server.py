"""A local OpenAI-compatible server for tests: real HTTP, real SSE, scripted faults.

Each request takes the next scripted `Fault` (if any) for its model; without
one it answers "reply from <model>: <first words of the prompt>" with usage
counted in words. The reached `openai` client cannot tell it from the real API.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Fault:
    """What one request gets instead of a normal answer."""

    status: int | None = None  # answer this HTTP status
    retry_after: str | None = None  # with this Retry-After header
    cut_after: int | None = None  # streaming: drop the connection after this many chunks
    no_usage: bool = False  # streaming: omit the usage chunk
    malformed: bool = False  # streaming: send a chunk that is not JSON
    delay_s: float = 0.0  # answer this late (client timeouts)


@dataclass
class FakeOpenAI:
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    # Benchmarks: answers of this many words (None: the short reply below), a pause
    # between streamed chunks, and a gate every stream waits at after its first chunk.
    words: int | None = None
    chunk_delay_s: float = 0.0
    hold: asyncio.Event | None = None
    keep_requests: bool = True

    def fail(self, model: str, *faults: Fault) -> None:
        self.faults[model].extend(faults)

    def models_called(self) -> list[str]:
        return [request["model"] for request in self.requests]

    @staticmethod
    def reply(body: dict[str, Any]) -> str:
        words = body["messages"][-1]["content"].split()[:8]
        return f"reply from {body['model']}: {' '.join(words)}"

    @staticmethod
    def usage(body: dict[str, Any], text: str) -> dict[str, int]:
        prompt = sum(len(message["content"].split()) for message in body["messages"])
        completion = len(text.split())
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        if self.keep_requests:
            self.requests.append(body)
        queue = self.faults.get(body["model"])
        fault = queue.popleft() if queue else Fault()
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.status is not None:
            headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
            error = {"error": {"message": "injected", "type": "server_error", "code": None}}
            return JSONResponse(error, status_code=fault.status, headers=headers)
        text = self.reply(body)
        if self.words is not None:
            filler = text.split() * (self.words // max(len(text.split()), 1) + 1)
            text = " ".join(filler[: self.words])
        if body.get("stream"):
            return StreamingResponse(
                self._stream(body, text, fault), media_type="text/event-stream"
            )
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": self.usage(body, text),
            }
        )

    async def _stream(self, body: dict[str, Any], text: str, fault: Fault) -> AsyncIterator[bytes]:
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
        }
        words = text.split(" ")
        for index, word in enumerate(words):
            if fault.cut_after is not None and index == fault.cut_after:
                raise ConnectionError("injected cut")  # uvicorn drops the connection
            if fault.malformed and index == 1:
                yield b"data: {not json\n\n"
                continue
            if index == 1 and self.hold is not None:
                await self.hold.wait()
            if index and self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
            delta = {"content": word if index == 0 else " " + word}
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(last)}\n\n".encode()
        include = (body.get("stream_options") or {}).get("include_usage")
        if include and not fault.no_usage:
            usage = {**base, "choices": [], "usage": self.usage(body, text)}
            yield f"data: {json.dumps(usage)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])


async def serve(fake: FakeOpenAI, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    # Idle connections stay open: a client reusing one as the server closes it fails.
    config = uvicorn.Config(
        fake.app(), host="127.0.0.1", port=port, log_config=None, timeout_keep_alive=300
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}/v1"
    return server, task
