"""The `haunted` command (runtime.md: Command line)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from rich.console import Console

from events.broker import catalog_topics, ensure_topics
from events.embedded import EmbeddedBroker, EmbeddedBrokerError
from haunted import migrations
from haunted.logging import configure_logging
from haunted.runtime import SERVICES, Haunted, kafka_settings
from haunted.settings import ConfigurationError, Settings, load_settings

app = typer.Typer(
    help="Haunted: an event-driven SaaS backend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Kafka topics of the event catalog.", no_args_is_help=True)
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(docs_app, name="docs")
keys_app = typer.Typer(help="Signing keys of access tokens.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

console = Console(stderr=True)
T = TypeVar("T")


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigurationError as error:
        _fail(str(error))
        raise  # unreachable: _fail exits
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def _http_settings() -> Settings:
    """Settings for a command that serves HTTP: a taken port fails now, in one line,
    not after every part has started."""
    settings = _settings()
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM
        )[0]
    except OSError:
        return settings  # an unusable host: uvicorn says what is wrong with it
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                _fail(
                    f"HAUNTED_PORT: port {settings.port} on {settings.host} is taken: "
                    "stop what uses it or set HAUNTED_PORT"
                )
    return settings


def _on_stop_signals(callback: Callable[[], object]) -> None:
    """SIGINT and SIGTERM (`docker stop`) stop the process through `callback`."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # NotImplementedError on Windows, RuntimeError outside the main thread.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, callback)


def _run(coroutine: Callable[[], Awaitable[T]], *, until_signal: bool = False) -> T:
    """Runs a command; with `until_signal`, a signal stops it cleanly, with status 0.

    Without this, SIGTERM kills the process where it stands: no consumer leaves its
    group, and the embedded broker outlives `haunted dev` where the OS does not
    stop children with their parent.
    """

    signalled: list[bool] = []

    async def main() -> T:
        task = asyncio.current_task()
        assert task is not None

        def stop() -> None:
            signalled.append(True)
            task.cancel()

        if until_signal:
            _on_stop_signals(stop)
        return await coroutine()

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if not signalled:
            raise
        raise typer.Exit(0) from None
    except (ConfigurationError, EmbeddedBrokerError) as error:
        _fail(str(error))
        raise


@asynccontextmanager
async def _embedded_broker(settings: Settings) -> AsyncIterator[None]:
    """In dev with no broker configured, Tansu runs as a child of this process."""
    if not settings.uses_embedded_kafka:
        yield
        return
    broker = EmbeddedBroker(settings.embedded_kafka_port)
    try:
        await broker.start()  # inside the try: a signal during start still stops the child
        yield
    finally:
        await broker.stop()


async def _serve(haunted: Haunted) -> None:
    settings = haunted.settings
    config = uvicorn.Config(
        haunted.asgi_app(),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on a signal, then raises it again: these handlers
    # take that second one, so the process ends with its cleanup done and status 0.
    _on_stop_signals(lambda: setattr(server, "should_exit", True))
    await server.serve()


@app.command()
def dev() -> None:
    """Every service, consumer and relay in one process, on the embedded defaults."""
    settings = _http_settings()

    async def main() -> None:
        async with _embedded_broker(settings):
            await _serve(Haunted.build(settings))

    _run(main, until_signal=True)


@app.command()
def serve() -> None:
    """The gateway only (GraphQL, Socket.IO, webhooks): stateless, run N of them."""
    settings = _http_settings()
    _run(lambda: _serve(Haunted.build(settings, workers=())), until_signal=True)


@app.command()
def worker(
    service: Annotated[
        list[str] | None, typer.Argument(help="services to run (all when none)")
    ] = None,
) -> None:
    """Consumers and outbox relays of the named services; run N of them."""
    settings = _settings()
    names = tuple(service or SERVICES)
    unknown = [name for name in names if name not in SERVICES]
    if unknown:
        _fail(f"unknown service {', '.join(unknown)}; known: {', '.join(SERVICES)}")

    async def main() -> None:
        async with Haunted.build(settings, gateway=False, workers=names).running():
            await asyncio.Event().wait()

    _run(main, until_signal=True)


@app.command()
def migrate() -> None:
    """Creates or upgrades the database schema."""
    settings = _settings()
    _run(lambda: migrations.upgrade(settings.database_url))
    console.print("database schema is up to date")


@topics_app.command("create")
def topics_create() -> None:
    """Creates every catalog topic and its .dlq on the broker."""
    settings = _settings()
    created = _run(lambda: ensure_topics(kafka_settings(settings)))
    console.print(f"{len(created)} topics created, {len(catalog_topics()) - len(created)} existed")


@docs_app.command("asyncapi")
def docs_asyncapi() -> None:
    """Prints the AsyncAPI document of every topic."""
    from haunted.asyncapi import asyncapi_document

    settings = _settings()
    document: dict[str, Any] = asyncapi_document(settings)
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """A new key signs from now on; the old one verifies until its tokens expire.

    Restart the processes (or roll them) to load the new key.
    """
    from haunted.keyring import rotate_signing_key

    settings = _settings()
    try:
        kid = rotate_signing_key(settings)
    except ConfigurationError as error:
        _fail(str(error))
    console.print(f"new signing key {kid}; the previous one verifies until its tokens expire")


def main() -> None:
    app()
