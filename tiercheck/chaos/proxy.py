"""A small asyncio TCP proxy for network faults between the cache and a real server.

Toxiproxy is what one would use, but it is a Go binary and is not installable from PyPI here, and
it sees bytes, not Redis commands. This module does the "toxics" the chaos suites need:

- `latency(seconds)`: every chunk, in both directions, is held that long before it is forwarded
  (order is kept: each direction is one sequential pump);
- `reset_mid_reply(True)`: the next chunk the server sends is cut: its first half reaches the
  client, then both sockets are closed with a TCP RST (SO_LINGER 0). Every reply is cut while
  the toxic is on, so a client sees partial replies followed by ECONNRESET;
- `partition(True)`: open connections reset, new ones refused, bytes in flight dropped;
- `hold_next(match)`: the next client command that `match` accepts is held back (with everything
  its connection sends after it) until `release()`, while other connections pass: the client times
  out on it, later commands land, then the held one lands late (an indeterminate write);
- `before_command(n, fn)`: `fn` runs (blocking that connection) just before the n-th command from
  now is forwarded (a snapshot taken between two commands of one operation);
- `cut_long_lived()`: RST only the connections that subscribed, turned on client tracking or block
  on a read (pub/sub, invalidation and announcement channels).

Client-to-server bytes are split into commands with a small RESP parser (`parse_command`): a
command is an array of bulk strings, which is all a Redis client sends. redis-py's parsers are
client-side (they read replies, not requests) and hiredis likewise, so neither fits. A connection
whose first byte is not `*` (an echo test, an inline command, another protocol) is forwarded as
opaque bytes and none of the command-level toxics touch it.

`reset_all()` resets every open connection once. The proxy runs its own event loop in a daemon
thread; `start()` returns once it listens (a threading.Event, no sleep), `stop()` closes every
socket and joins the thread. Counters (`ProxyStats`) let tests and nemeses observe what happened
without timing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

_CHUNK = 65536
_READY_TIMEOUT = 30.0  # failsafe only
_MAX_HEADER = 64 * 1024  # a RESP header line longer than this is not RESP: the connection goes opaque

# Commands that change data (a late one can undo a later removal). MULTI/EXEC blocks need no special
# case: holding a write inside a block holds its EXEC too, since both travel on one connection.
WRITE_COMMANDS = frozenset(
    b"""SET SETEX PSETEX SETNX SETRANGE APPEND GETSET GETDEL GETEX MSET MSETNX HSET HMSET HSETNX HDEL
    HINCRBY HINCRBYFLOAT INCR INCRBY INCRBYFLOAT DECR DECRBY DEL UNLINK EXPIRE PEXPIRE EXPIREAT PEXPIREAT
    PERSIST RENAME RENAMENX RESTORE COPY MOVE LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LSET LREM LTRIM LINSERT
    LMOVE RPOPLPUSH SADD SREM SPOP SMOVE ZADD ZREM ZINCRBY ZPOPMIN ZPOPMAX ZREMRANGEBYSCORE
    ZREMRANGEBYRANK ZREMRANGEBYLEX XADD XDEL XTRIM EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL PUBLISH
    FLUSHDB FLUSHALL SWAPDB""".split()
)
# Commands after which a connection is a long-lived channel rather than a request/reply one.
_SUBSCRIBING = frozenset(b"SUBSCRIBE PSUBSCRIBE SSUBSCRIBE MONITOR".split())
_BLOCKING = frozenset(b"BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP".split())


class RespError(ValueError):
    """The bytes are not a RESP command."""


def parse_command(buf: bytes | bytearray, pos: int = 0) -> tuple[list[bytes], int] | None:
    """One client command starting at `pos`: (arguments, end offset), or None while incomplete.

    Raises RespError when the bytes are not a RESP array of bulk strings."""
    if pos >= len(buf):
        return None
    if buf[pos] != 0x2A:  # "*"
        raise RespError(f"not a RESP array: {bytes(buf[pos : pos + 16])!r}")
    count, p = _header(buf, pos)
    if count is None:
        return None
    args: list[bytes] = []
    for _ in range(count):
        if p >= len(buf):
            return None
        if buf[p] != 0x24:  # "$"
            raise RespError(f"not a bulk string: {bytes(buf[p : p + 16])!r}")
        size, start = _header(buf, p)
        if size is None:
            return None
        end = start + size
        if end + 2 > len(buf):
            return None
        if buf[end : end + 2] != b"\r\n":
            raise RespError("bulk string without its CRLF")
        args.append(bytes(buf[start:end]))
        p = end + 2
    return args, p


def _header(buf: bytes | bytearray, pos: int) -> tuple[int | None, int]:
    line_end = buf.find(b"\r\n", pos, pos + _MAX_HEADER)
    if line_end < 0:
        if len(buf) - pos >= _MAX_HEADER:
            raise RespError("header line too long")
        return None, pos
    try:
        value = int(buf[pos + 1 : line_end])
    except ValueError:
        raise RespError(f"bad length {bytes(buf[pos:line_end])!r}") from None
    if value < 0:
        raise RespError("negative length in a command")
    return value, line_end + 2


def skip_reply(buf: bytes | bytearray, pos: int = 0) -> int | None:
    """The end offset of one server reply (RESP2 or RESP3) starting at `pos`, or None while incomplete.

    The proxy counts replies to know when the commands it forwarded have been applied."""
    if pos >= len(buf):
        return None
    kind = buf[pos : pos + 1]
    line_end = buf.find(b"\r\n", pos)
    if line_end < 0:
        return None
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return line_end + 2
    try:
        size = int(buf[pos + 1 : line_end])
    except ValueError:
        raise RespError(f"bad reply header {bytes(buf[pos:line_end])!r}") from None
    if kind in (b"$", b"!", b"="):
        if size < 0:
            return line_end + 2
        end = line_end + 2 + size + 2
        return end if end <= len(buf) else None
    if kind in (b"*", b"~", b">", b"%", b"|"):
        p = line_end + 2
        for _ in range(max(0, size) * (2 if kind in (b"%", b"|") else 1)):
            p = skip_reply(buf, p)  # type: ignore[assignment]
            if p is None:
                return None
        return p
    raise RespError(f"not a RESP reply: {bytes(buf[pos : pos + 16])!r}")


class Command(bytes):
    """One client command as it crossed the proxy: its raw RESP bytes (it is a `bytes`, so a matcher
    written as `Callable[[bytes], bool]` works on it) and its parsed arguments (`args`)."""

    args: tuple[bytes, ...]

    def __new__(cls, raw: bytes, args: tuple[bytes, ...] | list[bytes]) -> Command:
        command = super().__new__(cls, raw)
        command.args = tuple(args)
        return command

    @property
    def raw(self) -> bytes:
        return bytes(self)

    @property
    def name(self) -> bytes:
        return self.args[0].upper() if self.args else b""

    @property
    def is_write(self) -> bool:
        return self.name in WRITE_COMMANDS

    def __str__(self) -> str:
        shown = b" ".join(a if len(a) <= 40 else a[:37] + b"..." for a in self.args[:4])
        return shown.decode("utf-8", "replace") + (" ..." if len(self.args) > 4 else "")


def is_write(command: Command) -> bool:
    """The default matcher of the late-write fault: any command that changes data."""
    return command.is_write


def opens_channel(args: list[bytes] | tuple[bytes, ...]) -> bool:
    """Whether a command turns its connection into a long-lived channel (pub/sub, client tracking, a
    blocking read): such connections stay open and idle between announcements. HELLO 3 alone does not:
    redis-py 6+ sends it on every connection."""
    if not args:
        return False
    name = args[0].upper()
    if name in _SUBSCRIBING or name in _BLOCKING:
        return True
    if name == b"CLIENT" and len(args) >= 3 and args[1].upper() == b"TRACKING" and args[2].upper() == b"ON":
        return True
    return name in (b"XREAD", b"XREADGROUP") and any(a.upper() == b"BLOCK" for a in args[1:])


@dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    bytes_up: int = 0  # client -> server
    bytes_down: int = 0  # server -> client
    commands: int = 0  # RESP commands forwarded to the server
    refused: int = 0  # connections refused by a partition
    dropped: int = 0  # bytes dropped by a partition
    delayed: int = 0  # chunks held back by the latency toxic
    channels_cut: int = 0  # long-lived connections reset by cut_long_lived()


class Hold:
    """One `hold_next` request: which command was held, what passed meanwhile, whether it landed."""

    def __init__(self, match: Callable[[Command], bool]) -> None:
        self.match = match
        self.command: Command | None = None
        self.passed = 0  # commands of other connections forwarded while this one was held
        self.dropped = False  # the connection was reset while holding: the command never reached the server
        self._held = threading.Event()
        self._applied = threading.Event()
        self._release: asyncio.Event | None = None
        self._sent = False

    @property
    def held(self) -> bool:
        return self._held.is_set()

    @property
    def applied(self) -> bool:
        """The server answered after the held command reached it, or the connection ended after it."""
        return self._applied.is_set()

    def wait_held(self, timeout: float = _READY_TIMEOUT) -> bool:
        return self._held.wait(timeout)

    def describe(self) -> str:
        if self.command is None:
            return "nothing held yet"
        state = "dropped" if self.dropped else "landed" if self.applied else "held"
        return f"{self.command} {state} after {self.passed} later command(s)"


@dataclass
class _Countdown:
    remaining: int
    fn: Callable[[], object]
    done: threading.Event = field(default_factory=threading.Event)
    before: Command | None = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    opaque: bool = False
    channel: bool = False  # sent a command that makes it long-lived (opens_channel)
    hold: Hold | None = None  # the hold this connection's pump is blocked on
    held_at: int = 0  # the held command's number among `sent`
    sent: int = 0  # commands forwarded to the server
    replies: int = 0  # replies counted from the server (stops counting once unparseable)
    counting: bool = True
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False

    def settled(self) -> bool:
        """Every command forwarded so far has been answered (or answers cannot be counted)."""
        return self.ended or not self.counting or self.channel or self.replies >= self.sent


async def _in_thread(countdown: _Countdown) -> None:
    """Run the countdown's blocking fn in a thread of its own that ends with it (no executor thread
    outlives it: the chaos runner counts threads left behind as leaks)."""
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()

    def run() -> None:
        try:
            countdown.fn()
        except Exception as exc:  # reported through the countdown, the traffic goes on
            countdown.error = exc
        finally:
            loop.call_soon_threadsafe(finished.set)

    thread = threading.Thread(target=run, name="chaos-proxy-hook", daemon=True)
    thread.start()
    await finished.wait()
    thread.join(_READY_TIMEOUT)  # it is returning: a moment at most
    countdown.done.set()


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
        self._conns: set[_Conn] = set()
        self._idle = threading.Event()
        self._idle.set()
        self._hold_next: Hold | None = None  # armed, waiting for a matching command
        self._holding: Hold | None = None  # a command is held now
        self._countdown: _Countdown | None = None

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
            for conn in list(self._conns):
                conn.client.transport.abort()
                conn.upstream.transport.abort()
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

    def _call(self, coro_fn: Callable[[], object]) -> None:
        """Run a coroutine function on the proxy's loop and wait for it (no-op before start)."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(coro_fn(), self._loop).result(_READY_TIMEOUT)  # type: ignore[arg-type]

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

    @property
    def partitioned(self) -> bool:
        return self._partitioned

    def reset_all(self) -> None:
        """RST every open connection now (returns once done). A held command is dropped with it."""

        async def reset() -> None:
            for conn in list(self._conns):
                self._reset(conn)
            self._conns.clear()
            self._idle.set()

        self._call(reset)

    def _reset(self, conn: _Conn) -> None:
        _rst(conn.client)
        _rst(conn.upstream)
        self.stats.resets += 1
        if conn.hold is not None and conn.hold._release is not None and not conn.hold._sent:
            conn.hold.dropped = True
            conn.hold._release.set()
            if self._holding is conn.hold:
                self._holding = None

    def hold_next(self, match: Callable[[Command], bool] | None = None) -> Hold:
        """Hold back the next command `match` accepts (default: any), with everything its connection
        sends after it, until `release()`; other connections keep passing. Returns the Hold, which
        tells what was held and how many commands of other connections passed it."""
        hold = Hold(match or (lambda command: True))
        self._hold_next = hold
        return hold

    def release(self, timeout: float = _READY_TIMEOUT) -> bool:
        """Forward the held command (if any) and return once it landed: the server answered after it,
        or closed the connection after applying it. Disarms a `hold_next` that held nothing yet.
        True when a held command landed."""
        taken: list[Hold] = []

        async def release() -> None:  # on the proxy's loop: no command can be matched meanwhile
            self._hold_next = None
            hold, self._holding = self._holding, None
            if hold is not None:
                taken.append(hold)
                if hold._release is not None:
                    hold._release.set()

        if self._loop is None or self._thread is None or not self._thread.is_alive():
            self._hold_next = None
            return False
        self._call(release)
        if not taken:
            return False
        return taken[0]._applied.wait(timeout) and not taken[0].dropped

    def before_command(self, n: int, fn: Callable[[], object]) -> _Countdown:
        """Run `fn` (in a worker thread, its connection waiting) just before the n-th command from now
        is forwarded to the server. Returns the countdown: `.done` is set once fn ran, `.before` is
        the command it preceded, `.error` what fn raised."""
        if n < 1:
            raise ValueError("n counts from 1")
        countdown = _Countdown(n, fn)
        self._countdown = countdown
        return countdown

    def cancel_countdown(self) -> None:
        self._countdown = None

    def cut_long_lived(self) -> int:
        """RST the long-lived channel connections (see `opens_channel`) and only those; returns how many."""
        cut = [0]

        async def cut_them() -> None:
            for conn in [c for c in self._conns if c.channel]:
                self._conns.discard(conn)
                self._reset(conn)
                cut[0] += 1
            self.stats.channels_cut += cut[0]
            if not self._conns:
                self._idle.set()

        self._call(cut_them)
        return cut[0]

    @property
    def channel_connections(self) -> int:
        return sum(1 for c in list(self._conns) if c.channel)

    def wait_idle(self, timeout: float = _READY_TIMEOUT) -> bool:
        """Wait until no connection is open through the proxy (after the clients closed theirs)."""
        idle = self._idle.wait(timeout)
        if idle and self._loop is not None and self._thread is not None and self._thread.is_alive():
            for _ in range(3):  # let the loop run the close callbacks the aborts scheduled
                asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self._loop).result(timeout)
        return idle

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def heal(self) -> None:
        """Every toxic off; a held command is released (it lands), a pending countdown cancelled."""
        self._latency = 0.0
        self._reset_replies = False
        self._partitioned = False
        self._countdown = None
        self.release()

    # --- the pumps --------------------------------------------------------------------------------

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self._partitioned:
            self.stats.refused += 1
            _rst(client_w)
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            _rst(client_w)  # upstream refused: so does the proxy
            return
        conn = _Conn(client_w, up_w)
        self._conns.add(conn)
        self._idle.clear()
        try:
            await asyncio.gather(self._pump_up(client_r, conn), self._pump_down(up_r, conn))
        except asyncio.CancelledError:
            pass  # the proxy is stopping
        finally:
            self._conns.discard(conn)
            for w in (conn.client, conn.upstream):
                w.transport.abort()
            if conn.hold is not None:
                conn.hold._applied.set()  # the connection ended after the held command (or dropped it)
            if not self._conns:
                self._idle.set()

    def _drop_partitioned(self, conn: _Conn, data: bytes) -> bool:
        if not self._partitioned:
            return False
        self.stats.dropped += len(data)  # bytes already read when the partition began: never delivered
        for w in (conn.client, conn.upstream):
            _rst(w)
        return True

    async def _pump_up(self, reader: asyncio.StreamReader, conn: _Conn) -> None:
        writer = conn.upstream
        buf = bytearray()
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if self._drop_partitioned(conn, data):
                    return
                if self._latency:
                    self.stats.delayed += 1
                    await asyncio.sleep(self._latency)  # the toxic itself, not a synchronisation
                if conn.opaque:
                    self.stats.bytes_up += len(data)
                    writer.write(data)
                    await writer.drain()
                    continue
                buf += data
                if not await self._forward_commands(buf, conn):
                    return
        except (ConnectionError, OSError):
            pass
        finally:
            if writer.can_write_eof() and not writer.is_closing():
                with contextlib.suppress(OSError, RuntimeError):
                    writer.write_eof()

    async def _forward_commands(self, buf: bytearray, conn: _Conn) -> bool:
        """Forward every complete command in `buf` (removing it), applying the command-level toxics.
        False when the connection was dropped meanwhile."""
        writer = conn.upstream
        out = bytearray()
        pos = 0

        async def flush() -> None:
            if out:
                self.stats.bytes_up += len(out)
                writer.write(bytes(out))
                out.clear()
                await writer.drain()

        while True:
            try:
                parsed = parse_command(buf, pos)
            except RespError:  # not Redis after all: everything from here on passes as bytes
                conn.opaque = True
                out += buf[pos:]
                pos = len(buf)
                break
            if parsed is None:
                break
            args, end = parsed
            command = Command(bytes(buf[pos:end]), tuple(args))
            pos = end
            if opens_channel(args):
                conn.channel = True
            countdown = self._countdown
            if countdown is not None:
                countdown.remaining -= 1
                if countdown.remaining <= 0:
                    self._countdown = None
                    await flush()
                    await self._settle(conn)  # the commands before this one are applied
                    countdown.before = command
                    await _in_thread(countdown)
            hold = self._hold_next
            if hold is not None and self._holding is None and hold.match(command):
                self._hold_next = None
                await flush()
                if not await self._hold(conn, hold, command):
                    return False
                conn.held_at = conn.sent + 1
            elif self._holding is not None and self._holding is not conn.hold:
                self._holding.passed += 1
            out += command.raw
            conn.sent += 1
            self.stats.commands += 1
        del buf[:pos]
        await flush()
        return True

    async def _settle(self, conn: _Conn) -> None:
        """Wait until the server answered every command this connection forwarded: they are applied.
        Bounded by a failsafe (a paused server never answers); then it goes on regardless."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _READY_TIMEOUT
        while not conn.settled() and loop.time() < deadline:
            conn.progress.clear()
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(conn.progress.wait(), deadline - loop.time())

    async def _hold(self, conn: _Conn, hold: Hold, command: Command) -> bool:
        hold.command = command
        hold._release = asyncio.Event()
        conn.hold = hold
        self._holding = hold
        hold._held.set()
        await hold._release.wait()
        if hold.dropped or conn.upstream.is_closing() or conn.ended:  # reset, or the server went away
            hold.dropped = True
            hold._applied.set()
            return False
        hold._sent = True
        return True

    async def _pump_down(self, reader: asyncio.StreamReader, conn: _Conn) -> None:
        """Server to client. When the client has gone, replies are read and dropped until the server
        closes: a command the proxy forwarded late is then still applied, not cut off by a reset."""
        writer = conn.client
        client_gone = False
        replies = bytearray()
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if conn.counting and not conn.opaque:
                    replies += data
                    self._count_replies(conn, replies)
                if conn.hold is not None and conn.hold._sent and (conn.replies >= conn.held_at or not conn.counting):
                    conn.hold._applied.set()
                if self._drop_partitioned(conn, data):
                    return
                if client_gone:
                    continue
                if self._latency:
                    self.stats.delayed += 1
                    await asyncio.sleep(self._latency)  # the toxic itself, not a synchronisation
                if self._reset_replies:
                    half = data[: max(1, len(data) // 2)]
                    self.stats.bytes_down += len(half)
                    self.stats.resets += 1
                    writer.write(half)
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    for w in (conn.client, conn.upstream):
                        _rst(w)
                    return
                self.stats.bytes_down += len(data)  # counted before the peer can see the bytes
                try:
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    client_gone = True
        except (ConnectionError, OSError):
            pass
        finally:
            conn.ended = True
            conn.progress.set()
            if writer.can_write_eof() and not writer.is_closing():
                with contextlib.suppress(OSError, RuntimeError):
                    writer.write_eof()

    @staticmethod
    def _count_replies(conn: _Conn, buf: bytearray) -> None:
        pos = 0
        try:
            while (end := skip_reply(buf, pos)) is not None:
                if buf[pos : pos + 1] not in (b">", b"|"):  # pushes and attributes answer no command
                    conn.replies += 1
                pos = end
        except RespError:
            conn.counting = False
            buf.clear()
            conn.progress.set()
            return
        del buf[:pos]
        if pos:
            conn.progress.set()
