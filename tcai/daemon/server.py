"""Running the daemon: one or more worker processes on one port, drained on SIGTERM.

With `--workers N` the parent starts N-1 children (spawned, not forked, so no engine or
event loop is shared) and every process binds the same port with SO_REUSEPORT; the
kernel spreads connections across them. SIGTERM or SIGINT stops accepting, waits for
in-flight requests to finish (up to `DRAIN_SECONDS`) and exits; the parent forwards the
signal to its children and waits for them.

With several workers `/metrics` reports the whole daemon: before any child starts, the
parent makes a fresh private directory (mode 0700) for prometheus-client's multiprocess
mode and every process keeps its instruments there (`tcai.daemon.metrics`); when a worker
exits, the parent marks it dead (its live gauges go, its counts stay); the directory is
removed when the daemon stops. One process keeps its own registry, as always.

Each worker, before it accepts a connection: loads all phone-number metadata (nothing
lazy is left for log redaction or contact extraction to import on the event loop), raises
its open-files soft limit to the hard limit, and serves through the connection door of
`tcai.daemon.protocol` (header and body deadlines, a cap per client address, parser
errors in the error shape). Running out of file descriptors anyway makes asyncio pause
accepting for a second at a time; that is one warning line, at most every ten seconds
(docs/http-api.md, "Slow and hostile connections").
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import multiprocessing.connection
import resource
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.multiprocess import mark_process_dead

from tcai.config import Settings
from tcai.daemon.app import create_app
from tcai.daemon.keys import METRICS
from tcai.daemon.metrics import use_multiprocess, use_single_process
from tcai.daemon.protocol import Door, DoorRunner
from tcai.errors import ConfigError
from tcai.text.redact import load_phone_metadata

DRAIN_SECONDS = 30.0
OPEN_FILES_CEILING = 1 << 20
"""The soft open-files limit a worker raises itself to, at most (and never above hard)."""
ACCEPT_WARNING_SECONDS = 10.0
log = logging.getLogger("tcai.daemon")


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (every connection is a file descriptor;
    1,024 is a common soft default). Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(OPEN_FILES_CEILING if hard == resource.RLIM_INFINITY else hard, OPEN_FILES_CEILING)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def _quiet_accept_errors(loop: asyncio.AbstractEventLoop, open_files: int) -> None:
    """asyncio logs each failed accept() (out of file descriptors) with a traceback and
    retries a second later; make that one warning line at most every ten seconds."""
    last = [float("-inf")]

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if context.get("message") != "socket.accept() out of system resource" or not isinstance(
            exc, OSError
        ):
            loop.default_exception_handler(context)
            return
        now = loop.time()
        if now - last[0] >= ACCEPT_WARNING_SECONDS:
            last[0] = now
            log.warning(
                "cannot accept new connections for now (%s, open-files limit %s); "
                "retrying every second",
                exc.strerror,
                open_files,
            )

    loop.set_exception_handler(handler)


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    demo: bool,
    worker: int,
    reuse_port: bool,
    on_ready: Callable[[str], None] | None,
) -> None:
    load_phone_metadata()  # before any connection: see the module's docstring
    open_files = raise_open_files_limit()
    loop = asyncio.get_running_loop()
    _quiet_accept_errors(loop, open_files)
    app = create_app(settings, demo=demo, worker=worker)
    door = Door(settings, app[METRICS], open_files)
    runner = DoorRunner(app, door, shutdown_timeout=DRAIN_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise _port_in_use(host, port) from None
        raise
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if on_ready is not None:
        on_ready(site.name)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # stops listening, lets in-flight requests finish


def _child(
    settings: Settings, host: str, port: int, demo: bool, worker: int, metrics_dir: Path
) -> None:
    use_multiprocess(metrics_dir)
    asyncio.run(
        _serve(settings, host, port, demo=demo, worker=worker, reuse_port=True, on_ready=None)
    )


class _Reaper:
    """Marks each child dead for the metrics as soon as it exits (it waits on the
    processes' sentinels, so it never reaps them: the main thread joins them)."""

    def __init__(self, children: list[multiprocessing.process.BaseProcess], metrics_dir: Path):
        self.children, self.metrics_dir = children, metrics_dir
        self.stopping = False
        self.thread = threading.Thread(target=self._watch, name="tcai-reaper", daemon=True)

    def _watch(self) -> None:
        pending = {child.sentinel: child for child in self.children}
        while pending:
            for ready in multiprocessing.connection.wait(list(pending)):
                assert isinstance(ready, int)  # sentinels are file descriptors
                child = pending.pop(ready)
                if child.pid is not None:
                    mark_process_dead(child.pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]
                if not self.stopping:
                    log.warning(
                        "worker %s (pid %s) exited; the others keep serving", child.name, child.pid
                    )


def _port_in_use(host: str, port: int) -> ConfigError:
    return ConfigError(
        f"port {port} is in use on {host}; stop what listens there (another tcai serve?) "
        "or choose another with --port"
    )


def ensure_port_free(host: str, port: int) -> None:
    """Refuse a taken port before any worker starts. Our workers share their port
    (SO_REUSEPORT), and so would a second `tcai serve` on the same port, silently
    splitting the traffic between two daemons; a plain bind (address reuse for
    TIME_WAIT only, as aiohttp does) fails on a port anyone listens on."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return  # aiohttp reports a host it cannot resolve
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise _port_in_use(host, port) from None
                raise


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    demo: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    ensure_port_free(host, port)
    if workers <= 1:
        use_single_process()
        asyncio.run(
            _serve(settings, host, port, demo=demo, worker=0, reuse_port=False, on_ready=on_ready)
        )
        return
    metrics_dir = Path(tempfile.mkdtemp(prefix="tcai-metrics-"))  # fresh, mode 0700
    use_multiprocess(metrics_dir)  # the environment the children inherit, and this process
    children: list[multiprocessing.process.BaseProcess] = []
    reaper = _Reaper(children, metrics_dir)
    try:
        context = multiprocessing.get_context("spawn")
        for index in range(1, workers):
            child = context.Process(
                target=_child,
                args=(settings, host, port, demo, index, metrics_dir),
                name=f"tcai-worker-{index}",
                daemon=False,
            )
            child.start()
            children.append(child)
        reaper.thread.start()
        asyncio.run(
            _serve(settings, host, port, demo=demo, worker=0, reuse_port=True, on_ready=on_ready)
        )
    finally:
        reaper.stopping = True
        for running in children:
            if running.is_alive():
                running.terminate()  # SIGTERM: each child drains like the parent
        for running in children:
            running.join(DRAIN_SECONDS + 5)
        if reaper.thread.is_alive():
            reaper.thread.join(5)
        shutil.rmtree(metrics_dir, ignore_errors=True)
