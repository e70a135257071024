"""The outside system: customers' HTTP endpoints, reached safely.

Every delivery resolves the endpoint's host itself, checks each address, and
connects to a checked address (the Host header and TLS SNI keep the name), so a
name that resolved to a public address when the endpoint was saved cannot be
re-pointed at an internal one later (DNS rebinding). Redirects are not followed
(one could lead anywhere), and at most `max_response_bytes` of an answer are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx

MAX_URL_LENGTH = 2048


class UnsafeUrl(ValueError):
    """A URL that may not receive webhooks; the message says why, for the caller."""


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    require_https: bool  # prod: https only
    allow_private: bool  # dev and tests: loopback and private addresses allowed


def check_url(url: str, policy: UrlPolicy) -> SplitResult:
    """The URL's shape: scheme, host, no credentials; raises UnsafeUrl."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("the URL cannot be parsed") from None
    allowed = ("https",) if policy.require_https else ("https", "http")
    if parts.scheme not in allowed:
        raise UnsafeUrl(f"the URL must use {' or '.join(allowed)}")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("the URL may not carry credentials")
    if port == 0:
        raise UnsafeUrl("the URL's port is invalid")
    return parts


def _allowed_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(parts: SplitResult, policy: UrlPolicy) -> list[str]:
    """The host's addresses, every one of them allowed by the policy; raises UnsafeUrl."""
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeUrl("the URL's host does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeUrl("the URL's host does not resolve")
    if not policy.allow_private and not all(_allowed_address(each) for each in addresses):
        # One internal address is enough to refuse: which one a connect picks is not ours.
        raise UnsafeUrl("the URL's host is a private, loopback or link-local address")
    return addresses


async def check_endpoint_url(url: str, policy: UrlPolicy) -> None:
    await resolve(check_url(url, policy), policy)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST came to: a status (None: no answer) and how long it took."""

    status: int | None
    latency_ms: int
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class HttpDelivery:
    """POSTs webhook bodies; one connection pool for every endpoint."""

    def __init__(
        self, policy: UrlPolicy, *, timeout_s: float = 15.0, max_response_bytes: int = 64 * 1024
    ) -> None:
        self._policy = policy
        self._timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Attempt:
        started = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            parts = check_url(url, self._policy)
            address = (await resolve(parts, self._policy))[0]
        except UnsafeUrl as error:
            return Attempt(None, took(), str(error))
        port = parts.port or (443 if parts.scheme == "https" else 80)
        literal = f"[{address}]" if ":" in address else address
        target = parts._replace(netloc=f"{literal}:{port}").geturl()
        host_header = parts.netloc.rsplit("@", 1)[-1]
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        try:
            async with asyncio.timeout(self._timeout_s):
                request = self._client.build_request(
                    "POST",
                    target,
                    content=body,
                    headers={**headers, "host": host_header},
                    extensions=extensions,
                )
                response = await self._client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= self._max_response_bytes:
                            break  # the answer's body is not needed past this
                finally:
                    await response.aclose()
        except TimeoutError:
            return Attempt(None, took(), f"no answer within {self._timeout_s:g} s")
        except httpx.HTTPError as error:
            return Attempt(None, took(), type(error).__name__)
        return Attempt(response.status_code, took())
