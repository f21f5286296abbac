"""A small asyncio TCP proxy for network faults between the cache and a real server.

Toxiproxy is what one would use, but it is a Go binary and is not installable from PyPI here, so
this module does the two "toxics" the chaos suites need:

- `latency(seconds)`: every chunk, in both directions, is held that long before it is forwarded
  (order is kept: each direction is one sequential pump);
- `reset_mid_reply(True)`: the next chunk the server sends is cut: its first half reaches the
  client, then both sockets are closed with a TCP RST (SO_LINGER 0). Every reply is cut while
  the toxic is on, so a client sees partial replies followed by ECONNRESET.

`reset_all()` resets every open connection once. The proxy runs its own event loop in a daemon
thread; `start()` returns once it listens (a threading.Event, no sleep), `stop()` closes every
socket and joins the thread. Counters (`connections`, `resets`, `bytes_up`, `bytes_down`) let
tests observe what happened without timing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass

_CHUNK = 65536
_READY_TIMEOUT = 30.0  # failsafe only


@dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    bytes_up: int = 0  # client -> server
    bytes_down: int = 0  # server -> client


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN: the peer gets ECONNRESET."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, listen_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.port = 0
        self.stats = ProxyStats()
        self._latency = 0.0
        self._reset_replies = False
        self._partitioned = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._idle = threading.Event()
        self._idle.set()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread = threading.Thread(target=self._run, name="chaos-tcp-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(_READY_TIMEOUT):
            raise RuntimeError("the chaos proxy did not start listening")
        if self._error is not None:
            raise RuntimeError(f"the chaos proxy failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, self.listen_host, 0))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for client, upstream in list(self._pairs):
                client.transport.abort()
                upstream.transport.abort()
            loop.run_until_complete(self._server.wait_closed())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        """Close the listener and every connection; join the thread. Idempotent."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_READY_TIMEOUT)
        self._thread = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, scheme: str = "redis", path: str = "/0") -> str:
        return f"{scheme}://{self.listen_host}:{self.port}{path}"

    # --- toxics -----------------------------------------------------------------------------------

    def latency(self, seconds: float) -> None:
        self._latency = max(0.0, float(seconds))

    def reset_mid_reply(self, enabled: bool = True) -> None:
        self._reset_replies = enabled

    def partition(self, enabled: bool = True) -> None:
        """A network partition: open connections are reset, new ones refused, and nothing sent reaches
        the server (unlike a paused server, which applies the commands it buffered once it resumes)."""
        self._partitioned = enabled
        if enabled:
            self.reset_all()

    def reset_all(self) -> None:
        """RST every open connection now (returns once done)."""
        if self._loop is None:
            return

        async def reset() -> None:
            for client, upstream in list(self._pairs):
                _rst(client)
                _rst(upstream)
                self.stats.resets += 1
            self._pairs.clear()
            self._idle.set()

        asyncio.run_coroutine_threadsafe(reset(), self._loop).result(_READY_TIMEOUT)

    def wait_idle(self, timeout: float = _READY_TIMEOUT) -> bool:
        """Wait until no connection is open through the proxy (after the clients closed theirs)."""
        idle = self._idle.wait(timeout)
        if idle and self._loop is not None and self._thread is not None and self._thread.is_alive():
            for _ in range(3):  # let the loop run the close callbacks the aborts scheduled
                asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self._loop).result(timeout)
        return idle

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def heal(self) -> None:
        self._latency = 0.0
        self._reset_replies = False
        self._partitioned = False

    # --- the pumps --------------------------------------------------------------------------------

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self._partitioned:
            _rst(client_w)
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            _rst(client_w)  # upstream refused: so does the proxy
            return
        pair = (client_w, up_w)
        self._pairs.add(pair)
        self._idle.clear()
        try:
            await asyncio.gather(
                self._pump(client_r, up_w, pair, downstream=False),
                self._pump(up_r, client_w, pair, downstream=True),
            )
        except asyncio.CancelledError:
            pass  # the proxy is stopping
        finally:
            self._pairs.discard(pair)
            for w in pair:
                w.transport.abort()
            if not self._pairs:
                self._idle.set()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
        downstream: bool,
    ) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if self._partitioned:  # bytes already read when the partition began: dropped, never delivered
                    for w in pair:
                        _rst(w)
                    return
                if self._latency:
                    await asyncio.sleep(self._latency)  # the toxic itself, not a synchronisation
                if downstream and self._reset_replies:
                    half = data[: max(1, len(data) // 2)]
                    self.stats.bytes_down += len(half)
                    self.stats.resets += 1
                    writer.write(half)
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    for w in pair:
                        _rst(w)
                    return
                if downstream:  # counted before the peer can see the bytes
                    self.stats.bytes_down += len(data)
                else:
                    self.stats.bytes_up += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if writer.can_write_eof() and not writer.is_closing():
                with contextlib.suppress(OSError, RuntimeError):
                    writer.write_eof()
