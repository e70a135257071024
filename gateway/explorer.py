"""The GraphQL explorer (GraphiQL) of `GET /graphql` in a browser, in dev only.

Its assets are GraphiQL's browser bundle and React's, installed by `make explorer`
(`npm ci` from the committed lock in gateway/explorer_assets/) and served by the
gateway itself under `/graphql/explorer/`: the page loads nothing from another
origin, so it works offline and under a strict network policy. Why npm and not a
Python package: docs/graphql-http.md.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

NODE_MODULES = Path(__file__).resolve().parent / "explorer_assets" / "node_modules"
# The URL name of each asset -> its file in the installed packages.
ASSETS = {
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.min.js": "graphiql/graphiql.min.js",
}
ASSETS_PATH = "/explorer"  # under the GraphQL path: /graphql/explorer/<name>
NOT_INSTALLED = (
    "The GraphQL explorer's assets are not installed: run `make explorer` "
    "(Node.js 20+ and npm; `make dev` runs it when npm is present), then reload. "
    "GraphQL itself works without them: POST /graphql."
)


def assets_installed() -> bool:
    return all((NODE_MODULES / file).is_file() for file in ASSETS.values())


def explorer_page(graphql_path: str) -> str:
    """GraphiQL's page for the endpoint at `graphql_path`: same-origin assets only."""
    base = escape(graphql_path.rstrip("/") + ASSETS_PATH, quote=True)
    styles = f'<link rel="stylesheet" href="{base}/graphiql.min.css">'
    scripts = "\n".join(
        f'<script src="{base}/{name}"></script>' for name in ASSETS if name.endswith(".js")
    )
    endpoint = json.dumps(graphql_path).replace("<", "\\u003c")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Haunted GraphQL explorer</title>
<style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
{styles}
{scripts}
</head>
<body>
<div id="graphiql">Loading the explorer...</div>
<script>
  /* Authenticated fields need a token: add {{"Authorization": "Bearer <token>"}} in Headers. */
  const fetcher = GraphiQL.createFetcher({{ url: {endpoint} }});
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{ fetcher, defaultEditorToolsVisibility: true }}),
  );
</script>
</body>
</html>
"""


async def serve_asset(request: Request) -> Response:
    name = request.path_params["name"]
    file = ASSETS.get(name)
    if file is None:
        return PlainTextResponse("no such explorer asset", status_code=404)
    if not (NODE_MODULES / file).is_file():
        return PlainTextResponse(NOT_INSTALLED, status_code=404)
    media_type = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(NODE_MODULES / file, media_type=media_type)
