"""In-process backends the harness controls: a manual clock and fakeredis served over TCP.

Implementations see only URLs and a clock, exactly as they would with real servers; the
suites can make the fake server fail (refuse, drop) without touching the implementation.
"""

from __future__ import annotations

import socket
import threading
import uuid
from dataclasses import dataclass, field

import fakeredis


@dataclass
class FakeClock:
    """A clock that moves only when a test says so: TTL decisions become deterministic."""

    now: float = 1_000_000.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class _NoDelayTcpFakeServer(fakeredis.TcpFakeServer):
    """fakeredis's TCP server writes each reply separately; without TCP_NODELAY, Nagle plus
    delayed ACKs stall every multi-reply pipeline by ~40 ms."""

    allow_reuse_address = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.daemon_threads = True  # fakeredis sets False, which makes server_close() wait for clients

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class FakeRedisServer:
    """fakeredis behind a real TCP socket on 127.0.0.1; `stop()`/`start()` simulate an outage
    (data kept), `start(empty=True)` a restart that lost its data."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._server: fakeredis.TcpFakeServer | None = None
        # the data, kept across stop()/start() like a server behind a network outage
        self._state: fakeredis.FakeServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, empty: bool = False) -> None:
        """Listen again; with the data held before stop() unless `empty` (a restart that lost it)."""
        if self._server is not None:
            return
        server = _NoDelayTcpFakeServer(("127.0.0.1", self.port), server_type="redis")
        if self._state is not None and not empty:
            server.fake_server = self._state
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fakeredis-tcp", daemon=True
        )  # stop() waits one poll interval
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket and every client connection: clients see connection errors."""
        server, self._server = self._server, None
        if server is None:
            return
        self._state = server.fake_server
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeRedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_namespace(prefix: str = "tc") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


_shared: FakeRedisServer | None = None
_shared_lock = threading.Lock()


def shared_fake_redis() -> FakeRedisServer:
    """One fakeredis TCP server per process, for machines that cannot take pytest fixtures."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FakeRedisServer()
        _shared.start()
        return _shared
