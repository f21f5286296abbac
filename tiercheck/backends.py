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
        # The port is held for the server's whole life: by the listening socket while it runs, by a bound
        # socket that does not listen while it is stopped (clients are refused, as by a server that is down),
        # so no free-port probe (a bind without address reuse, port 0 included) takes it during an outage.
        self._held: socket.socket | None = _bound_socket(0)
        self.port = self._held.getsockname()[1]
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
        server = _NoDelayTcpFakeServer(("127.0.0.1", self.port), bind_and_activate=False, server_type="redis")
        server.socket.close()
        server.socket, self._held = self._held or _bound_socket(self.port), None
        server.server_activate()  # listen
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
        self._held = _bound_socket(self.port)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Stop for good and give the port back."""
        self.stop()
        held, self._held = self._held, None
        if held is not None:
            held.close()

    def __enter__(self) -> FakeRedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bound_socket(port: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:port (0: any free port), not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


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
