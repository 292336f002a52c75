"""Slow and hostile connections against a real `tcai serve` (docs/http-api.md, "Slow and
hostile connections"): partial headers by the thousand under a 1,024 open-files limit,
slowloris, a slow body, the cap per client address, and requests aiohttp's parser
refuses. The whole 127.0.0.0/8 is loopback, so attackers bind 127.0.0.2 and up and the
health checks from 127.0.0.1 are another client.

Run with -s to see the figures of the 1,100-connection test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tcai.config import new_secret
from tcai.db.models import SystemLog
from tests.conftest import Database, provision
from tests.helpers import ALLOWED, CHAT_PATH, CONFIG_PATH, count, require

FD_LIMIT = 1024
ATTACKERS = 1100
PARTIAL = b"GET /api/health HTTP/1.1\r\nHost: tcai.example\r\nX-Slow: "
"""The start of a request whose headers never end."""


@dataclass
class Daemon:
    base: str
    port: int
    process: subprocess.Popen[str]
    log_dir: Path

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self, seconds: float = 15) -> int:
        """SIGTERM, then the exit code (a daemon that does not stop fails the test)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(seconds)

    def logs(self) -> str:
        return "".join(path.read_text() for path in sorted(self.log_dir.glob("*.jsonl*")))

    def counter(self, name: str) -> float:
        """A counter from /metrics (this test's client is a loopback peer)."""
        with urllib.request.urlopen(self.base + "/metrics", timeout=30) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.fixture
def daemon_env(seeded: Database, tmp_path: Path) -> dict[str, str]:
    provision(seeded, allowed_origins=[ALLOWED])
    return {
        "DATABASE_URL": seeded.url,
        "WIDGET_SECRET": new_secret(),
        "LOG_DIR": str(tmp_path / "logs"),
        "HEADER_TIMEOUT_SECONDS": "2",
        "BODY_TIMEOUT_SECONDS": "2",
    }


@contextlib.contextmanager
def serving(env: dict[str, str], **overrides: str) -> Iterator[Daemon]:
    """`tcai serve` with soft = hard RLIMIT_NOFILE = 1,024, stopped on the way out."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tcai", "serve", "--port", str(port)],
        env={**os.environ, **env, **overrides},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_open_files,
    )
    daemon = Daemon(f"http://127.0.0.1:{port}", port, process, Path(env["LOG_DIR"]))
    try:
        for _ in range(300):
            try:
                if get(daemon.base + "/api/health", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            process.kill()
            raise AssertionError(process.communicate()[1])
        yield daemon
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def finished_stderr(daemon: Daemon) -> str:
    """The daemon's stderr once it has exited; it must hold no traceback."""
    _out, err = daemon.process.communicate(timeout=30)
    assert "Traceback" not in err, err
    return err


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


def read_until_closed(sock: socket.socket, seconds: float = 30, drip: bytes = b"") -> bytes:
    """Everything the daemon sends until it closes the connection (sending `drip` every
    half second meanwhile). Fails if it is still open after `seconds`."""
    received = b""
    give_up = time.monotonic() + seconds
    sock.settimeout(0.5)
    while time.monotonic() < give_up:
        try:
            if drip:
                sock.sendall(drip)
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"still open after {seconds} s; received {received[:200]!r}")


def response_of(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines[1:])
    }
    return status, headers, json.loads(body)


# ---- 1,100 connections that never finish their headers -----------------------------------


def close_wait_sockets(port: int) -> int:
    """Sockets on the daemon's port that the client closed and the daemon has not."""
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "08":
                    found += 1
    return found


class Attack:
    """`total` connections, each sending PARTIAL as soon as it is established, opened from
    a thread. Non-blocking: connections the daemon cannot accept yet wait in the kernel's
    queue (or retry their SYN) without holding up the others."""

    def __init__(self, port: int, total: int, sources: list[str]) -> None:
        self.sockets: list[socket.socket] = []
        self.sent = 0
        self.thread = threading.Thread(target=self._run, args=(port, total, sources))
        self.thread.start()

    def _run(self, port: int, total: int, sources: list[str]) -> None:
        by_fd: dict[int, socket.socket] = {}
        poller = select.poll()
        for index in range(total):
            sock = socket.socket()
            sock.bind((sources[index % len(sources)], 0))
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            by_fd[sock.fileno()] = sock
            self.sockets.append(sock)
            poller.register(sock, select.POLLOUT)
        waiting = set(by_fd)
        give_up = time.monotonic() + 30
        while waiting and time.monotonic() < give_up:
            for fd, events in poller.poll(200):
                poller.unregister(fd)
                waiting.discard(fd)
                if not events & (select.POLLERR | select.POLLHUP):
                    with contextlib.suppress(OSError):
                        by_fd[fd].send(PARTIAL)
                        self.sent += 1

    def cut_by_daemon(self) -> int:
        return sum(_closed_by_peer(sock) for sock in self.sockets)

    def close(self) -> None:
        self.thread.join()
        for sock in self.sockets:
            sock.close()
        self.sockets = []


def test_1100_partial_header_connections_under_a_1024_fd_limit(daemon_env) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    require(
        hard == resource.RLIM_INFINITY or hard >= ATTACKERS + 200,
        f"this process may open at most {hard} files; the test needs {ATTACKERS + 200}",
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sources = [f"127.0.0.{2 + index}" for index in range(20)]  # 55 each, under the cap of 64
    attack: Attack | None = None
    try:
        # Five seconds: the attack fills every descriptor before the first deadline.
        with serving(daemon_env, HEADER_TIMEOUT_SECONDS="5") as daemon:
            get(daemon.base + "/api/health")
            baseline = daemon.fds()
            attack = Attack(daemon.port, ATTACKERS, sources)
            # More connections than descriptors: past RLIMIT_NOFILE minus a reserve the
            # daemon closes the oldest stalled ones, so it never runs out.
            peak = 0

            def watch() -> bool:
                nonlocal peak
                peak = max(peak, daemon.fds())
                return attack.sent >= ATTACKERS and attack.cut_by_daemon() > 0

            flooded = _wait_until(watch, 30)
            peak = max(peak, daemon.fds())
            # DURING: the attackers still hold every socket the daemon has not closed.
            asked = time.monotonic()
            during = get(daemon.base + "/api/health", timeout=60)
            during_s = time.monotonic() - asked
            cut = attack.cut_by_daemon()
            sent = attack.sent
            # AFTER: the attackers let go.
            attack.close()
            asked = time.monotonic()
            after = get(daemon.base + "/api/health", timeout=60)
            after_s = time.monotonic() - asked
            evicted = daemon.counter("tcai_connections_evicted_total")
            settled = _wait_until(lambda: daemon.fds() <= baseline + 5, 30)
            close_wait = _wait_until(lambda: close_wait_sockets(daemon.port) == 0, 30)
            fds_after = daemon.fds()
            asked = time.monotonic()
            code = daemon.stop()
            stop_s = time.monotonic() - asked
            err = finished_stderr(daemon)
            logs = daemon.logs()
        print(
            f"\n{ATTACKERS} partial-header connections from {len(sources)} addresses, "
            f"RLIMIT_NOFILE {FD_LIMIT}, HEADER_TIMEOUT_SECONDS 5:"
            f"\n  daemon fds: baseline {baseline}, peak {peak} (limit {FD_LIMIT}), "
            f"after {fds_after}; attacker requests started: {sent}"
            f"\n  /api/health during: {during[0]} in {during_s:.2f} s; after: {after[0]} "
            f"in {after_s:.2f} s"
            f"\n  attacker connections the daemon had cut when health answered: {cut}"
            f"\n  back to baseline fds: {settled}; no CLOSE-WAIT left: {close_wait}; "
            f"SIGTERM → exit {code} in {stop_s:.2f} s"
            f"\n  stalled connections evicted to keep descriptors free: {evicted}"
            f"\n  'cannot accept' warnings in the log: {logs.count('cannot accept new connections')}"
        )
        assert flooded and evicted > 0  # more stalled connections came than it could hold
        # Accepts come in batches (a whole backlog at a time) before any of them can evict,
        # so a burst may still meet the limit for a moment: accepting then pauses a second
        # and one warning line says so; health is answered all the same.
        assert logs.count("cannot accept new connections") <= 2
        assert during[0] == 200 and during[1]["status"] == "ok"
        # Whether health needed a descriptor freed by a cut stalled connection or found
        # one still free depends on timing; `cut` is printed, the answer is what counts.
        assert after[0] == 200 and after[1]["status"] == "ok"
        assert settled and close_wait
        assert code == 0
        assert "Too many open files" not in err
    finally:
        if attack is not None:
            attack.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _wait_until(predicate, seconds: float) -> bool:
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


# ---- one slow client at a time ---------------------------------------------------------


def test_slowloris_is_cut_at_the_header_deadline(daemon_env) -> None:
    """A byte every half second never completes the headers: closed, unanswered."""
    with serving(daemon_env) as daemon:
        sock = connect(daemon.port, "127.0.0.2")
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: tcai.example\r\n")
        assert read_until_closed(sock, 20, drip=b"X") == b""
        sock.close()
        # A kept-alive connection gets the same deadline from the end of its response.
        sock = connect(daemon.port, "127.0.0.2")
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: tcai.example\r\n\r\n")
        status, _headers, body = response_of(read_until_closed(sock, 20))
        assert status == 200 and body["status"] == "ok"
        sock.close()
        assert daemon.stop() == 0
        finished_stderr(daemon)


def test_a_slow_body_gets_408_in_the_error_shape(daemon_env) -> None:
    """A chat body that stops arriving: the handler's read of it ends in 408
    `request_timeout` and the connection closes; a body no route reads just closes."""
    with serving(daemon_env) as daemon:
        status, config = get(daemon.base + CONFIG_PATH, {"Origin": ALLOWED})
        assert status == 200, config
        sock = connect(daemon.port, "127.0.0.3")
        sock.sendall(
            f"POST {CHAT_PATH} HTTP/1.1\r\nHost: tcai.example\r\nOrigin: {ALLOWED}\r\n"
            f"Authorization: Bearer {config['token']}\r\nContent-Type: application/json\r\n"
            'Content-Length: 200\r\n\r\n{"message": "hel'.encode()
        )
        status, headers, body = response_of(read_until_closed(sock, 20))
        assert status == 408
        assert body["error"]["code"] == "request_timeout"
        assert body["request_id"] == headers["x-request-id"]
        sock.close()

        sock = connect(daemon.port, "127.0.0.3")
        sock.sendall(
            b"POST /api/booking/click HTTP/1.1\r\nHost: tcai.example\r\n"
            b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
        )
        status, _headers, body = response_of(read_until_closed(sock, 20, drip=b" "))
        assert status == 401 and body["error"]["code"] == "invalid_token"  # answered first
        sock.close()
        assert daemon.stop() == 0
        finished_stderr(daemon)
        assert '"route": "/api/chat/{client_id}/{bot_id}", "status": 408' in daemon.logs()


# ---- the cap per client address ----------------------------------------------------------


def test_connections_over_the_cap_are_closed_at_once(daemon_env) -> None:
    env = {**daemon_env, "HEADER_TIMEOUT_SECONDS": "60", "TRUSTED_PROXIES": "127.0.0.9/32"}
    with serving(env, MAX_CONNECTIONS_PER_ADDRESS="3") as daemon:
        request = b"GET /api/health HTTP/1.1\r\nHost: tcai.example\r\n\r\n"

        def held(source: str) -> socket.socket:
            sock = connect(daemon.port, source)
            sock.sendall(request)  # answered, so surely accepted and counted; kept alive
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            return sock

        kept = [held("127.0.0.4") for _ in range(3)]
        for _ in range(3):  # refused again and again: counted each time, logged once
            extra = connect(daemon.port, "127.0.0.4")
            extra.sendall(request)
            assert read_until_closed(extra, 20) == b""
            extra.close()
        # The three it holds still work, another address is welcome, a proxy is exempt.
        for sock in kept:
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        kept += [held("127.0.0.5"), *(held("127.0.0.9") for _ in range(5))]
        metrics = urllib.request.urlopen(daemon.base + "/metrics", timeout=10).read().decode()
        # One closed, one more may come.
        kept.pop(0).close()
        assert _wait_until(lambda: _answers(daemon.port, "127.0.0.4", request), 10)
        for sock in kept:
            sock.close()
        assert daemon.stop() == 0
        finished_stderr(daemon)
        logs = daemon.logs()
    assert "tcai_connections_refused_total 3.0" in metrics
    refusals = [line for line in logs.splitlines() if "connections refused" in line]
    assert len(refusals) == 1
    assert '"ip": "127.0.0.0"' in refusals[0] and "127.0.0.4" not in logs


def _answers(port: int, source: str, request: bytes) -> bool:
    with connect(port, source) as sock:
        sock.sendall(request)
        try:
            return sock.recv(65536).startswith(b"HTTP/1.1 200")
        except OSError:
            return False


# ---- requests aiohttp's parser refuses ---------------------------------------------------


def bad_requests(secret: str) -> dict[str, tuple[bytes, int]]:
    """name → (raw bytes, expected status). Most carry an Authorization header, several
    in the very line the parser chokes on (its message would quote it)."""
    auth = f"Authorization: Bearer {secret}\r\n".encode()
    start = b"GET /api/health HTTP/1.1\r\nHost: tcai.example\r\n"
    post = b"POST /api/booking/click HTTP/1.1\r\nHost: tcai.example\r\n" + auth
    return {
        "garbage request line": (b"GARBAGE " + secret.encode() + b"\r\n\r\n", 400),
        "bad method": (b"G@T / HTTP/1.1\r\nHost: tcai.example\r\n" + auth + b"\r\n", 400),
        "unknown HTTP version": (b"GET / HTTP/7.3\r\nHost: tcai.example\r\n" + auth + b"\r\n", 400),
        "non-ASCII in a header name": (start + auth + b"X\xffName: 1\r\n\r\n", 400),
        "NUL in the Authorization value": (start + auth[:-2] + b"\x00\r\n\r\n", 400),
        "space before the colon": (
            start + b"Authorization : Bearer " + secret.encode() + b"\r\n\r\n",
            400,
        ),
        "header line too long": (
            start + b"Authorization: Bearer " + secret.encode() * 400 + b"\r\n\r\n",
            413,
        ),
        "request line too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + auth + b"\r\n", 413),
        "too many headers": (
            start + auth + b"".join(b"X-H%d: 1\r\n" % n for n in range(200)) + b"\r\n",
            400,
        ),
        "invalid Content-Length": (post + b"Content-Length: 12abc\r\n\r\n", 400),
        "two Content-Lengths": (post + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
        "Content-Length and Transfer-Encoding": (
            post + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        "bad chunk size": (post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
        "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
        "NUL in the path": (
            b"GET /api/\x00health HTTP/1.1\r\nHost: tcai.example\r\n" + auth + b"\r\n",
            400,
        ),
        "TLS on the HTTP port": (
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + secret.encode(),
            400,
        ),
    }


def test_requests_the_parser_refuses_get_the_error_shape_and_one_short_line(
    daemon_env, seeded: Database
) -> None:
    secret = new_secret()
    cases = bad_requests(secret)
    with serving(daemon_env) as daemon:
        answers: dict[str, tuple[int, dict[str, str], dict]] = {}
        for name, (raw, _expected) in cases.items():
            sock = connect(daemon.port, "127.0.0.6")
            sock.sendall(raw)
            answers[name] = response_of(read_until_closed(sock, 20))
            sock.close()
        # A bad chunk after the headers, on a route that answers without the body.
        sock = connect(daemon.port, "127.0.0.6")
        sock.sendall(
            b"POST /api/health HTTP/1.1\r\nHost: tcai.example\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        time.sleep(0.2)
        sock.sendall(b"zz\r\n" + secret.encode() + b"\r\n")
        late, _headers, _body = response_of(read_until_closed(sock, 20))
        sock.close()
        assert get(daemon.base + "/api/health")[0] == 200
        assert daemon.stop() == 0
        err = finished_stderr(daemon)
        logs = daemon.logs()
    for name, (status, headers, body) in answers.items():
        expected = cases[name][1]
        assert status == expected, name
        assert headers["content-type"].startswith("application/json"), name
        assert body["error"]["code"] == ("payload_too_large" if expected == 413 else "bad_request")
        assert body["error"]["message"].endswith(".") and secret not in body["error"]["message"]
        assert re.fullmatch(r"[0-9a-f]{16}", body["request_id"]) and (
            headers["x-request-id"] == body["request_id"]
        ), name
    assert late == 405
    lines = [line for line in logs.splitlines() if "refused by the HTTP parser" in line]
    assert len(lines) == len(cases)
    for line in lines:
        record = json.loads(line)
        assert record["ip"] == "127.0.0.0" and record["status"] in (400, 413)
        assert len(line) < 400
    assert {json.loads(line)["request_id"] for line in lines} == {
        body["request_id"] for _s, _h, body in answers.values()
    }
    for text in (logs, err):
        assert secret not in text and "Traceback" not in text and "127.0.0.6" not in text
    assert count(seeded, SystemLog) == 0


# ---- nothing left to import on the event loop ----------------------------------------------


def test_phone_metadata_is_loaded_whole_so_redaction_imports_nothing_later() -> None:
    """`tcai serve` calls `load_phone_metadata` before it accepts a connection; after it,
    reading a number of any region (log redaction, contact extraction, display) imports
    no module, so it cannot fail on the loop for want of a file descriptor."""
    import phonenumbers

    from tcai.text.contacts import display_phone, extract_contacts
    from tcai.text.redact import load_phone_metadata, redact_contacts

    load_phone_metadata()
    metadata = phonenumbers.PhoneMetadata
    assert not any(metadata._region_available.values())  # every loader consumed
    assert not any(metadata._country_code_available.values())
    before = set(sys.modules)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        assert "[phone]" in redact_contacts(f"call me on {text} please")
        extract_contacts(f"I'm Ana, {text}", default_region=region)
        display_phone(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    assert set(sys.modules) == before
