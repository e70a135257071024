"""The `haunted` command (runtime.md: Command line)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from aiokafka.errors import KafkaError
from rich.console import Console

from events.broker import Bus, KafkaProducer, KafkaSettings, catalog_topics, ensure_topics
from events.consumer import EventConsumers
from events.db import Database
from events.embedded import EmbeddedBroker, EmbeddedBrokerError
from haunted import migrations
from haunted.instance import instance_settings, urls, write_instance
from haunted.logging import configure_logging
from haunted.runtime import Haunted, kafka_settings, retry_policy, tune_gc
from haunted.services import NAMES
from haunted.settings import ConfigurationError, Settings
from services.auth import ErasureReport

app = typer.Typer(
    help="Haunted: an event-driven SaaS backend. The package installs this `haunted` command.",
    epilog="Every command exits 0 on success. On bad configuration it prints one line naming "
    "the variable and exits 2. Every process also creates missing topics when it starts. A "
    "process with `HAUNTED_ENV=dev` (the default), or one on SQLite, also migrates the "
    "database when it starts. Anywhere else, run `haunted migrate` yourself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Kafka topics of the event catalog.", no_args_is_help=True)
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(docs_app, name="docs")
keys_app = typer.Typer(help="Signing keys of access tokens.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
flags_app = typer.Typer(help="Feature flags (issue 8).", no_args_is_help=True)
app.add_typer(flags_app, name="flags")
dlq_app = typer.Typer(help="Dead letters: what consumers gave up on.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
mail_app = typer.Typer(help="Mail caught by the dev mail catcher.", no_args_is_help=True)
app.add_typer(mail_app, name="mail")
events_app = typer.Typer(help="The events on the broker's topics.", no_args_is_help=True)
app.add_typer(events_app, name="events")
new_app = typer.Typer(help="Scaffolds of new parts, in the declared shape.", no_args_is_help=True)
app.add_typer(new_app, name="new")
privacy_app = typer.Typer(
    help="A user's personal data: export and erase (issue 20, docs/privacy.md).",
    no_args_is_help=True,
)
app.add_typer(privacy_app, name="privacy")

console = Console(stderr=True)
T = TypeVar("T")


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _settings() -> Settings:
    """HAUNTED_* variables, then the checkout's dev instance (haunted/instance.py)."""
    try:
        settings = instance_settings()
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


def _run(
    coroutine: Callable[[], Awaitable[T]], *, until_signal: bool = False, service: bool = False
) -> T:
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
            tune_gc()
        return await coroutine()

    if not service:
        # A one-shot command says in one line what failed (below): the Kafka client's
        # own connection errors would only repeat it. Long-running processes keep them.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if not signalled:
            raise
        raise typer.Exit(0) from None
    except (ConfigurationError, EmbeddedBrokerError) as error:
        _fail(str(error))
        raise
    except KafkaError as error:
        _fail(broker_unreachable(error))
        raise


def broker_unreachable(error: Exception) -> str:
    """The one line a command that needs the broker says when it does not answer."""
    return (
        f"HAUNTED_KAFKA_BOOTSTRAP: the broker does not answer ({error}); start it "
        "(`haunted dev` runs one) or point HAUNTED_KAFKA_BOOTSTRAP at it"
    )


@asynccontextmanager
async def _embedded_broker(settings: Settings) -> AsyncIterator[None]:
    """In dev with no broker configured, Tansu runs as a child of this process."""
    if not settings.kafka.uses_embedded:
        yield
        return
    broker = EmbeddedBroker(settings.kafka.embedded_port)
    try:
        await broker.start()  # inside the try: a signal during start still stops the child
        yield
    finally:
        await broker.stop()


@asynccontextmanager
async def _mail_catcher(settings: Settings) -> AsyncIterator[None]:
    """In dev with no SMTP server configured, mail goes to a local catcher (aiosmtpd)
    and is kept in data_dir/mail (`haunted mail list`, /dev/mail)."""
    if settings.smtp_host is not None or settings.env != "dev":
        yield
        return
    from services.notifications import MailCatcher

    catcher = MailCatcher(settings.mail_dir, settings.mail_catcher_port)
    try:
        catcher.start()
    except OSError as error:
        _fail(
            f"HAUNTED_MAIL_CATCHER_PORT: port {settings.mail_catcher_port} cannot be used "
            f"({error.strerror or error}): stop what uses it or set HAUNTED_MAIL_CATCHER_PORT"
        )
    try:
        yield
    finally:
        catcher.stop()


def uvicorn_config(haunted: Haunted) -> uvicorn.Config:
    """How `haunted serve` and `haunted dev` run the app."""
    settings = haunted.settings
    return uvicorn.Config(
        haunted.asgi_app(),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        ws="websockets-sansio",
        # In-flight requests finish at a SIGTERM, for this long at most; then the
        # lifespan's bounded stop (runtime.Haunted.stop) drains the rest.
        timeout_graceful_shutdown=10,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def _print_urls(settings: Settings, *, gateway: bool = True) -> None:
    """Every URL of what this process runs, once at its start."""
    for label, url in urls(settings, gateway=gateway):
        console.print(f"  {label + ':':<26} {url}", highlight=False, soft_wrap=True)


async def _serve(haunted: Haunted) -> None:
    server = uvicorn.Server(uvicorn_config(haunted))
    # uvicorn shuts down gracefully on a signal, then raises it again: these handlers
    # take that second one, so the process ends with its cleanup done and status 0.
    _on_stop_signals(lambda: setattr(server, "should_exit", True))
    await server.serve()


@app.command()
def dev() -> None:
    """Every service, consumer and relay in one process, on the embedded defaults.

    The gateway, every service's consumers, the outbox relay and the fan-out. Starts the
    embedded broker when `HAUNTED_KAFKA_BOOTSTRAP=embedded`.
    """
    settings = _http_settings()

    async def main() -> None:
        async with _embedded_broker(settings), _mail_catcher(settings):
            haunted = Haunted.build(settings)
            written = write_instance(settings)
            console.print(f"haunted dev (settings for other commands: {written})", highlight=False)
            _print_urls(settings)
            await _serve(haunted)

    _run(main, until_signal=True, service=True)


@app.command()
def serve() -> None:
    """The gateway only (GraphQL, Socket.IO, webhooks): stateless, run N of them.

    GraphQL, Socket.IO, `POST /webhooks/stripe`, health, metrics and the fan-out consumer.
    It runs no outbox relay, so at least one worker must run.
    """
    settings = _http_settings()
    _print_urls(settings)
    _run(lambda: _serve(Haunted.build(settings, workers=())), until_signal=True, service=True)


@app.command()
def worker(
    service: Annotated[
        list[str] | None, typer.Argument(help="services to run (all when none)")
    ] = None,
) -> None:
    """Consumers and outbox relays of the named services; run N of them.

    Runs the consumers of the named services (all when none are named) and an outbox
    relay. Naming a service that has no consumers runs only the relay.
    """
    settings = _settings()
    names = tuple(service or NAMES)
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        _fail(f"unknown service {', '.join(unknown)}; known: {', '.join(NAMES)}")

    async def main() -> None:
        async with Haunted.build(settings, gateway=False, workers=names).running() as haunted:
            # /metrics, /healthz and /readyz on HAUNTED_WORKER_PORT, until a stop signal.
            config = uvicorn.Config(
                haunted.probe_app(),
                host=settings.host,
                port=settings.worker_port,
                log_config=None,
                timeout_graceful_shutdown=5,
            )
            server = uvicorn.Server(config)
            _on_stop_signals(lambda: setattr(server, "should_exit", True))
            await server.serve()

    _run(main, until_signal=True, service=True)


@app.command()
def migrate() -> None:
    """Creates or upgrades the database schema (Alembic, `infra/migrations`)."""
    from haunted.privacy import move_to_data_keys

    settings = _settings()
    _run(lambda: migrations.upgrade(settings.database_url))
    console.print("database schema is up to date")
    moved = _run(lambda: move_to_data_keys(settings))
    if moved:
        console.print(f"{moved} email addresses re-sealed with their users' data keys")


@topics_app.command("create")
def topics_create() -> None:
    """Creates every catalog topic and its .dlq on the broker.

    Only the missing ones, with `HAUNTED_KAFKA_PARTITIONS` and
    `HAUNTED_KAFKA_REPLICATION_FACTOR`.
    """
    settings = _settings()
    created = _run(lambda: ensure_topics(kafka_settings(settings)))
    console.print(f"{len(created)} topics created, {len(catalog_topics()) - len(created)} existed")


def _dlq_topics(topic: str | None) -> list[str]:
    from events.broker import DLQ_SUFFIX

    if topic is None:
        return catalog_topics()[len(catalog_topics(with_dlq=False)) :]
    base = topic.removesuffix(DLQ_SUFFIX)
    if base not in catalog_topics(with_dlq=False):
        _fail(f"unknown topic {topic}")
    return [base + DLQ_SUFFIX]


def _moment(since: str | None) -> datetime | None:
    """`--since`: an RFC 3339 time with its zone, or a clear error."""
    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        _fail(f"--since {since!r} is not an RFC 3339 time")
    if moment.tzinfo is None:
        _fail("--since needs a time zone (e.g. Z or +00:00)")
    return moment


@dlq_app.command("list")
def dlq_list(
    topic: Annotated[
        str | None, typer.Option(help="one topic (or its .dlq); default: every .dlq")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="dead-lettered from this time on (RFC 3339)")
    ] = None,
) -> None:
    """Shows what failed and why: one line per dead letter."""
    from rich.table import Table

    from events import deadletters

    settings = _settings()
    topics, moment = _dlq_topics(topic), _moment(since)
    letters = _run(lambda: deadletters.read(kafka_settings(settings), topics, moment))
    table = Table("id", "dead-lettered", "consumer", "original", "attempts", "error")
    for letter in letters:
        table.add_row(
            letter.id, letter.time, letter.consumer, letter.origin, letter.attempts, letter.error
        )
    console.print(table)
    console.print(f"{len(letters)} dead letters")


@dlq_app.command("redrive")
def dlq_redrive(
    topic: Annotated[str, typer.Option(help="the topic whose dead letters go back (or its .dlq)")],
    ids: Annotated[
        list[str] | None, typer.Option("--ids", help="only these event ids (repeatable)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would be fed back; change nothing")
    ] = False,
) -> None:
    """Feeds dead letters back to the handler of the consumer that gave up on each,
    idempotently (an event already applied counts as a duplicate), and reports."""
    from events import deadletters
    from events.consumer import BatchHandler, EventHandler
    from events.handlers import BatchHandlers
    from haunted.services import SPECS, facades_of

    settings = _settings()
    topics = _dlq_topics(topic)

    async def main() -> deadletters.RedriveReport:
        app = Haunted.build(settings, gateway=False, workers=())
        try:
            await app.broker.connect()  # for a record that fails again: back to the .dlq
            letters = await deadletters.read(app.kafka, topics)
            if ids:
                letters = [letter for letter in letters if letter.id in set(ids)]
            facades = facades_of(app.services)
            handlers: dict[str, EventHandler | BatchHandler] = {}
            batch: set[str] = set()
            for registry in (each for spec in SPECS for each in spec.registries(facades)):
                if isinstance(registry, BatchHandlers):
                    handlers[registry.consumer] = registry.handler
                    batch.add(registry.consumer)
                else:
                    handlers[registry.consumer] = registry.handle
            return await deadletters.redrive(
                letters, app.consumers, handlers, frozenset(batch), dry_run=dry_run
            )
        finally:
            await app.broker.stop()
            await app.redis.aclose()
            await app.db.dispose()

    report = _run(main)
    for label, found in (
        ("handled", report.handled),
        ("already applied (duplicates)", report.duplicates),
        ("dead-lettered again", report.dead_lettered_again),
    ):
        console.print(f"{label}: {len(found)}" + (f" ({', '.join(found)})" if found else ""))
    for letter_id, why in report.skipped.items():
        console.print(f"skipped {letter_id}: {why}")
    if report.dead_lettered_again:
        raise typer.Exit(1)


@app.command()
def replay(
    service: Annotated[str, typer.Argument(help="the service whose handler replays")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="from the oldest retained event (default)")
    ] = False,
    since: Annotated[
        str | None, typer.Option(help="from this time on (RFC 3339, e.g. 2026-01-01T00:00Z)")
    ] = None,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", help="only these topics (repeatable)")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="empty the service's state first, then replay all")
    ] = False,
) -> None:
    """Feeds retained topics through a service's handler again: backfill or rebuild.

    It never touches the service's consumer group, and it prints what it did. Redelivered
    events change nothing (the handler is idempotent); `--rebuild` empties the service's
    state and its `processed_events` rows first.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from events.replay import ReplayError
    from events.replay import replay as run_replay
    from haunted.services import replay_targets

    settings = _settings()
    targets = replay_targets()
    if service not in targets:
        _fail(f"unknown service {service}; replayable: {', '.join(sorted(targets))}")
    if from_beginning and since is not None:
        _fail("give --from-beginning or --since, not both")
    moment: datetime | None = _moment(since)

    class RateColumn(ProgressColumn):
        """Records per second since the start: rich's own speed needs many samples
        and says nothing for a replay that takes a second."""

        def render(self, task: Task) -> Text:
            return Text(_rate(task.completed, task.elapsed))

    async def main() -> None:
        columns = (
            TextColumn(f"replay {service}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeRemainingColumn(),
        )
        started = time.perf_counter()
        try:
            async with _event_consumers(settings) as (db, consumers, kafka):
                with Progress(*columns, console=console, transient=False) as bar:
                    task = bar.add_task(service, total=None)
                    report = await run_replay(
                        targets[service],
                        consumers,
                        db,
                        kafka,
                        topics=topic,
                        since=moment,
                        rebuild=rebuild,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                    )
        except ReplayError as error:
            _fail(str(error))
            return
        elapsed = time.perf_counter() - started
        console.print(
            f"replayed {report.records} records: {report.handled} handled, "
            f"{report.duplicates} duplicates, {report.dead_lettered} dead-lettered "
            f"in {elapsed:.1f} s ({_rate(report.records, elapsed)})",
            highlight=False,
        )

    _run(main, until_signal=True)


def _rate(records: float, elapsed: float | None) -> str:
    if not elapsed:
        return "0 ev/s"
    return f"{records / elapsed:,.0f} ev/s"


@asynccontextmanager
async def _event_consumers(
    settings: Settings,
) -> AsyncIterator[tuple[Database, EventConsumers, KafkaSettings]]:
    """What a replay feeds handlers through: the database, and consumers whose dead
    letters go to the broker."""
    kafka = kafka_settings(settings)
    db = Database(settings.database_url)
    broker = Bus(kafka)
    try:
        await broker.connect()
        yield db, EventConsumers(db, KafkaProducer(broker), kafka, retry_policy(settings)), kafka
    finally:
        await broker.stop()
        await db.dispose()


# Backups and recovery by replay (issue 17; docs/deploy.md "Recovery").


@app.command()
def backup(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="where backups go (one folder each); HAUNTED_BACKUP_DIR"),
    ] = None,
    keep: Annotated[
        int | None, typer.Option(help="keep this many backups there, delete older ones")
    ] = None,
    physical: Annotated[
        bool,
        typer.Option("--physical", help="a pg_basebackup base backup (for point-in-time recovery)"),
    ] = False,
) -> None:
    """A pg_dump archive (or a base backup) plus a manifest: time, schema, outbox and
    consumer positions."""
    from aiokafka.errors import KafkaError

    from haunted.backup import BackupError
    from haunted.backup import backup as take_backup
    from haunted.services import replay_targets

    settings = _settings()
    live = [target for target in replay_targets().values() if target.live]

    async def main() -> Path:
        return await take_backup(
            settings.database_url,
            kafka_settings(settings),
            live,
            directory or settings.backup_dir,
            physical=physical,
            keep=keep,
        )

    try:
        folder = _run(main)
    except BackupError as error:
        _fail(str(error))
        raise
    except KafkaError as error:
        _fail(f"HAUNTED_KAFKA_BOOTSTRAP: the broker does not answer ({error})")
        raise
    console.print(f"backup written to {folder}", highlight=False)


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="a backup folder written by `haunted backup`")],
    replay_only: Annotated[
        bool,
        typer.Option(
            "--replay-only",
            help="the database is restored already (point-in-time recovery): only replay",
        ),
    ] = False,
) -> None:
    """Restores a backup, then replays every consumer from the backup's positions.

    Stop the workers first; start them again after. Refused, with nothing changed,
    when a topic's retention no longer reaches back to the backup."""
    from aiokafka.errors import KafkaError

    from events.replay import ReplayError
    from haunted.backup import BackupError, Manifest, check_retention, replay_from, restore_database
    from haunted.privacy import restore_key_store
    from haunted.services import replay_targets

    settings = _settings()
    try:
        manifest = Manifest.read(archive)
    except BackupError as error:
        _fail(str(error))
        raise
    targets = replay_targets()
    live = [target for target in targets.values() if target.live]

    async def main() -> None:
        kafka = kafka_settings(settings)
        await check_retention(kafka, manifest, live)  # before anything is changed
        if not replay_only:
            await restore_database(settings.database_url, archive, manifest)
            console.print(
                f"restored {archive} (taken {manifest.taken_at}, "
                f"schema {', '.join(manifest.schema_revisions)})",
                highlight=False,
            )
            restored, erased = await restore_key_store(settings, archive)
            console.print(
                f"key store: {restored} data keys put back from the backup; "
                f"{len(erased)} users erased since the backup dropped again",
                highlight=False,
                soft_wrap=True,
            )
        async with _event_consumers(settings) as (db, consumers, kafka):
            for done in await replay_from(manifest, targets, consumers, db, kafka):
                r = done.report
                console.print(
                    f"replayed {done.target} from the backup's positions: {r.records} records, "
                    f"{r.handled} handled, {r.duplicates} duplicates, "
                    f"{r.dead_lettered} dead-lettered",
                    highlight=False,
                )
        console.print(f"loss window: {manifest.loss_window}", highlight=False)

    try:
        _run(main)
    except (BackupError, ReplayError) as error:
        _fail(str(error))
    except KafkaError as error:
        _fail(f"HAUNTED_KAFKA_BOOTSTRAP: the broker does not answer ({error})")


@privacy_app.command("erase")
def privacy_erase(
    user_id: Annotated[str, typer.Argument(help="the id of the user to erase")],
) -> None:
    """Erases a user by deleting their data key: their personal data in the tables, in
    the events the topics retain and in the backups' copies becomes unreadable at once,
    and every service drops or anonymises its rows. Prints what each service did; a
    second run changes nothing and prints the same."""
    from haunted.privacy import erase_user
    from haunted.runtime import build_redis
    from services.errors import DomainError

    settings = _settings()

    async def main() -> ErasureReport:
        db = Database(settings.database_url)
        redis = build_redis(settings.redis_url)
        try:
            return await erase_user(settings, db, redis, user_id)
        finally:
            await redis.aclose()
            await db.dispose()

    try:
        report = _run(main)
    except DomainError as error:
        _fail(error.message)
        raise
    state = "already erased on" if report.already else "erased on"
    console.print(
        f"user {report.user_id} {state} {report.erased_at.isoformat()} "
        f"(anonymous id {report.anonymous_id})",
        highlight=False,
        soft_wrap=True,
    )
    for service, counts in report.services.items():
        done = ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in counts.items())
        line = f"  {service}: {done or 'keeps nothing per user'}"
        console.print(line, highlight=False, soft_wrap=True)


@docs_app.command("asyncapi")
def docs_asyncapi() -> None:
    """Prints the AsyncAPI 3.0 document of every topic and its .dlq (JSON)."""
    from haunted.asyncapi import asyncapi_document

    document: dict[str, Any] = asyncapi_document()
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@docs_app.command("events")
def docs_events(
    check: Annotated[
        bool, typer.Option("--check", help="write nothing; exit 1 when the table is stale")
    ] = False,
) -> None:
    """Writes the table of topics this project adds (docs/events.md) from schemas/.

    Every topic of the catalog that the published contract lacks: owner, key, audience,
    committed versions, data fields, and the model's docstring as its description.
    """
    from haunted.reference.proposed import EVENTS_DOC, StaleSection, write

    try:
        current = write(EVENTS_DOC, check=check)
    except StaleSection as error:
        _fail(str(error))
    if current:
        console.print("docs/events.md: the topics this project adds are current")
    elif check:
        console.print("docs/events.md: stale; run haunted docs events")
        raise typer.Exit(1)
    else:
        console.print("docs/events.md: the topics this project adds were rewritten")


@docs_app.command("site")
def docs_site(
    out: Annotated[Path, typer.Option(help="where the generated pages go (emptied first)")] = Path(
        "site/generated"
    ),
) -> None:
    """Writes the docs site's generated pages: configuration, command line, GraphQL API,
    event catalog, and the AsyncAPI document the site serves."""
    from haunted.reference import write_site

    written = write_site(out)
    console.print(f"{len(written)} files written under {out}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """A new key signs from now on; the old one verifies until its tokens expire.

    Generated keys only: the new pair goes to `HAUNTED_DATA_DIR/keys/`, the old public key
    to `retired-keys/`. Exits 2 when `HAUNTED_JWT_PRIVATE_KEY_FILE` is set (mounted keys
    rotate by configuration). Restart the processes (or roll them) to load the new key.
    """
    from haunted.keyring import rotate_signing_key

    settings = _settings()
    try:
        kid = rotate_signing_key(settings)
    except ConfigurationError as error:
        _fail(str(error))
    console.print(f"new signing key {kid}; the previous one verifies until its tokens expire")


@keys_app.command("init")
def keys_init(
    directory: Annotated[Path, typer.Argument(help="where the keys go (a volume)")],
) -> None:
    """The JWT key pair and the PII keys of a deployment, generated once into DIRECTORY.

    Files already there are kept, so it runs on every start (compose's `keys` service).
    Point HAUNTED_JWT_PRIVATE_KEY_FILE, HAUNTED_JWT_PUBLIC_KEY_FILE and
    HAUNTED_PII_KEYS_FILE at them."""
    from haunted.keyring import init_keys

    try:
        written = init_keys(directory)
    except (ConfigurationError, OSError) as error:
        _fail(str(error))
        return
    kept = "nothing new" if not written else f"wrote {', '.join(written)}"
    console.print(f"keys in {directory}: {kept}", highlight=False)


@flags_app.command("list")
def flags_list() -> None:
    """Each flag with its state and strategies, from the active source (Unleash or the file).

    A table of every flag with its state, strategies, variants and required permission.
    """
    from rich.table import Table

    from events.db import Database
    from haunted.runtime import build_redis
    from haunted.services import build_flags
    from services.flags import FlagInfo, FlagsSourceError

    settings = _settings()

    async def load() -> tuple[str, list[FlagInfo]]:
        db = Database(settings.database_url)
        redis = build_redis(settings.redis_url)
        try:
            service = build_flags(settings, db, redis)
            await service.load()
            return service.source_name, service.flags()
        finally:
            await redis.aclose()
            await db.dispose()

    try:
        source, flags = asyncio.run(load())
    except FlagsSourceError as error:
        _fail(str(error))
    table = Table(title=f"Feature flags from {source}")
    table.add_column("flag", no_wrap=True)
    table.add_column("state")
    table.add_column("strategies")
    table.add_column("variants")
    table.add_column("requires")
    for flag in flags:
        table.add_row(
            flag.name,
            "[green]on[/green]" if flag.enabled else "[red]off[/red]",
            "\n".join(flag.strategies) or "-",
            ", ".join(flag.variants) or "-",
            flag.required_permission or "-",
        )
    Console(width=max(Console().width, 120)).print(table)


@privacy_app.command("export")
def privacy_export(
    user_id: Annotated[str, typer.Argument(help="the user whose data is exported")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the archive here, not stdout")
    ] = None,
) -> None:
    """The user's data export: the JSON archive `exportMyData` links to, built by the
    same facades, as the operator (any user; no link, no rate limit)."""
    from haunted.runtime import build_redis, build_services
    from services.errors import DomainError
    from services.principal import Operator

    settings = _settings()

    async def main() -> None:
        db = Database(settings.database_url)
        redis = build_redis(settings.redis_url)
        services = build_services(settings, db, redis)
        try:
            archive = await services.exports.operator_archive(Operator("privacy export"), user_id)
            with contextlib.ExitStack() as stack:
                sink = stack.enter_context(output.open("wb")) if output else sys.stdout.buffer
                async for chunk in archive:
                    sink.write(chunk)
                sink.flush()
        finally:
            await services.llm.close()
            await redis.aclose()
            await db.dispose()

    try:
        _run(main)
    except DomainError as error:
        _fail(error.message)


# What runs, and what it says (issue 18, item 9): haunted/status.py, haunted/tail.py.


@app.command()
def status() -> None:
    """Each part of the instance with its health: the database, Redis, the broker,
    the gateway's /healthz and /readyz, each consumer group's lag, the outbox
    backlog and the dead letters. Exit status 1 when a part is down."""
    from rich.table import Table

    from haunted.status import status as collect

    settings = _settings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the table says what it found
    rows = _run(lambda: collect(settings))
    table = Table("part", "state", "detail", title="haunted status")
    marks = {True: "[green]ok[/green]", False: "[red]![/red]", None: "[dim]-[/dim]"}
    for row in rows:
        table.add_row(row.part, f"{marks[row.ok]} {row.state}", row.detail)
    Console(width=max(Console().width, 120)).print(table)
    down = [row.part for row in rows if row.ok is False and row.state == "down"]
    if down:
        raise typer.Exit(1)


@events_app.command("tail")
def events_tail(
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", help="only these topics (repeatable; default: every topic)"),
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="only these CloudEvent types (repeatable)"),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new events until Ctrl-C")
    ] = False,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="from the oldest retained event")
    ] = False,
    last: Annotated[
        int, typer.Option(help="otherwise, the last this many per partition", min=0)
    ] = 10,
) -> None:
    """Pretty-prints the CloudEvents on the topics, without a consumer group: nothing
    is committed and no live group is disturbed."""
    from events.broker import catalog_topics
    from haunted.tail import print_tail, unknown_topics

    settings = _settings()
    topics = list(topic or catalog_topics(with_dlq=False))
    unknown = unknown_topics(topics)
    if unknown:
        _fail(f"unknown topic {', '.join(unknown)}; `haunted topics create` lists the catalog's")
    out = Console(highlight=False)

    async def main() -> int:
        return await print_tail(
            out,
            kafka_settings(settings),
            topics,
            list(event_type or ()),
            from_beginning=from_beginning,
            last=last,
            follow=follow,
        )

    printed = _run(main, until_signal=follow)
    console.print(f"{printed} events", highlight=False)


def main() -> None:
    app()


@mail_app.command("list")
def mail_list(
    limit: Annotated[int, typer.Option(help="the newest this many", min=1)] = 50,
) -> None:
    """The mail `haunted dev`'s catcher received, newest first."""
    from rich.table import Table

    from services.notifications import caught_mail

    settings = _settings()
    caught = caught_mail(settings.mail_dir, limit)
    table = Table(title=f"Mail caught in {settings.mail_dir} ({len(caught)})")
    table.add_column("received", no_wrap=True)
    table.add_column("to", no_wrap=True)
    table.add_column("subject", no_wrap=True)
    table.add_column("text")
    for mail in caught:
        table.add_row(
            f"{mail.received_at:%Y-%m-%d %H:%M:%S}", mail.to, mail.subject, mail.text.strip()
        )
    Console(width=max(Console().width, 120)).print(table)


@app.command()
def seed() -> None:
    """Demo data for the dev instance, through the facades and their events; idempotent.

    A demo team (owner, admin, member, viewer: one printed password) on the paid plan
    through the offline checkout, a few LLM calls, and a month of product events.
    `haunted dev` (running, or when it next starts) publishes and applies the events,
    which fill the dashboards. A second run finds the demo owner and writes nothing.
    """
    from haunted.seed import PASSWORD, seed

    settings = _settings()
    if settings.env == "prod":
        _fail("haunted seed writes accounts with a known password: not with HAUNTED_ENV=prod")

    async def main() -> Any:
        if settings.env == "dev" or settings.database_url.startswith("sqlite"):
            await migrations.upgrade(settings.database_url)  # as `haunted dev` does
        haunted = Haunted.build(settings, gateway=False, workers=())
        try:
            return await seed(haunted.services)
        finally:
            await haunted.services.llm.close()
            await haunted.redis.aclose()
            await haunted.db.dispose()

    report = _run(main)
    if not report.seeded:
        console.print("the demo data is there already: nothing written", highlight=False)
    else:
        console.print(
            f"seeded team {report.team_id}: plan {report.plan or 'free (no offline checkout)'}, "
            f"{report.prompts} prompt calls, {report.events} product events over a month",
            highlight=False,
            soft_wrap=True,
        )
    for address, role in report.accounts:
        console.print(f"  {role:<7} {address}", highlight=False)
    console.print(f"  password: {PASSWORD}", highlight=False)


@new_app.command("service")
def new_service(
    name: Annotated[str, typer.Argument(help="the service's name: lowercase, e.g. reports")],
) -> None:
    """A new service: package, event, handler, tables, GraphQL, tests, docs, declaration.

    Writes services/NAME/ (facade, one handler registered by its event class, tables),
    schemas/NAME.py with its snapshot, an Alembic branch, gateway/schema/NAME.graphql (its
    fields call the facade's methods of their names: no resolvers), tests/services/NAME/
    and a docs entry, and adds its ServiceSpec to haunted/services.py (and its lines to
    pyproject.toml and schemas/__init__.py); docs/events.md's generated table gains its
    topic. A bad NAME writes nothing.
    """
    from haunted.scaffold import ScaffoldError
    from haunted.scaffold import new_service as scaffold
    from haunted.settings import ROOT

    try:
        written = scaffold(name, ROOT)
    except ScaffoldError as error:
        _fail(str(error))
        raise
    for path in written:
        console.print(f"  {path.relative_to(ROOT)}", highlight=False)
    console.print(
        f"service {name} added: `make test` covers it; `cd web && npm run codegen` "
        "regenerates the web app's types for its GraphQL",
        highlight=False,
    )
