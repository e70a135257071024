"""The explorer (gateway/explorer.py): GraphiQL from the gateway's own assets, in dev only."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess

import pytest

from gateway import explorer
from haunted.settings import Settings
from tests.conftest import serve
from tests.gateway.conftest import gateway_in_process

HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
ASSET_URL = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.fixture(scope="session")
def explorer_assets() -> None:
    """GraphiQL's bundle, installed as `make explorer` does (npm ci from the lock)."""
    if not explorer.assets_installed():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install the explorer's assets (make explorer)"
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=explorer.NODE_MODULES.parent,
            check=True,
            timeout=300,
        )
    assert explorer.assets_installed()


async def test_the_dev_explorer_loads_only_same_origin_assets_and_they_are_served(
    settings: Settings, explorer_assets: None
) -> None:
    async with gateway_in_process(settings.model_copy(update={"env": "dev"})) as client:
        page = await client.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        urls = ASSET_URL.findall(page.text)
        assert len(urls) == len(explorer.ASSETS)
        assert "//" not in page.text  # no scheme, no host: no CDN
        for url in urls:
            assert url.startswith("/graphql/explorer/"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            kind = "text/css" if url.endswith(".css") else "text/javascript"
            assert asset.headers["content-type"].startswith(kind)
            assert len(asset.content) > 1000
        assert (await client.get("/graphql/explorer/package.json")).status_code == 404
        # Not a browser: a GET with no query is a GraphQL request error, not the page.
        no_query = await client.get("/graphql", headers={"accept": "application/json"})
        assert no_query.status_code == 400


async def test_outside_dev_there_is_no_explorer(settings: Settings) -> None:
    assert settings.env == "test"
    async with gateway_in_process(settings) as client:
        page = await client.get("/graphql", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/plain")
    assert "dev only" in page.text


async def test_graphiql_renders_in_chromium_with_no_other_host_reachable(
    settings: Settings, explorer_assets: None
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is needed for the explorer test"
    async with serve(settings.model_copy(update={"env": "dev"})) as server:
        process = await asyncio.create_subprocess_exec(
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            # Every host but this one fails to resolve: a CDN asset could not load.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{server.url}/graphql",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        dom, _ = await asyncio.wait_for(process.communicate(), 120)
    text = dom.decode()
    assert 'class="graphiql-container"' in text, text[-2000:]
    assert "Loading the explorer..." not in text  # React replaced the placeholder
