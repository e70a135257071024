"""The `haunted` command (runtime.md: Command line)."""

from __future__ import annotations

import asyncio
import json
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


def _run(coroutine: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(coroutine())  # type: ignore[arg-type]
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
    await broker.start()
    try:
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
    await uvicorn.Server(config).serve()


@app.command()
def dev() -> None:
    """Every service, consumer and relay in one process, on the embedded defaults."""
    settings = _settings()

    async def main() -> None:
        async with _embedded_broker(settings):
            await _serve(Haunted.build(settings))

    _run(main)


@app.command()
def serve() -> None:
    """The gateway only (GraphQL, Socket.IO, webhooks): stateless, run N of them."""
    settings = _settings()
    _run(lambda: _serve(Haunted.build(settings, workers=())))


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

    _run(main)


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


def main() -> None:
    app()
