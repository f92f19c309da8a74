# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP/1.1 + JSON to etcd's gateway with mutual TLS, standard library only.

Unary calls go over one persistent ``http.client`` connection (keep-alive). When a reused
connection turns out to be dropped (the server closed it while idle), it is reconnected once and
the call repeated; a call is never repeated after a timeout or on a fresh connection, since etcd
may have applied it. When an endpoint cannot be connected to, the next one is tried (failover);
the endpoint that answered stays the current one.

Streams (watch, snapshot) each get their own connection, read with a small HTTP/1.1 reader on
the socket so that a read can wait with a deadline (``http.client`` cannot resume after a
timeout) and a watch can send more requests on its open request body (chunked, with
``Expect: 100-continue``, which etcd 3.5 needs to act on each message promptly).

Both factories (connections, sockets) can be injected, so unit tests need no etcd.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import json
import select
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.codec import (
    ChunkedDecoder, LineSplitter, decode_message, error_from_response, parse_response_head)
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import INVALID_ARGUMENT, EtcdError

# How long to keep trying when every endpoint refuses connections (a member restarting).
CONNECT_RETRY_SECONDS = 3.0
# A dropped keep-alive connection shows up as one of these on the next request (not an answer cut
# short: etcd has acted on that request).
_DROPPED = (ConnectionError, http.client.BadStatusLine, http.client.CannotSendRequest, ssl.SSLEOFError, ssl.SSLZeroReturnError)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    url: str
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_endpoint(url: str) -> Endpoint:
    """An etcd client URL: https://host:port (http:// for a cluster without TLS)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EtcdError(f"endpoint {url!r} is not an http(s)://host:port URL", code=INVALID_ARGUMENT)
    if parts.path not in ("", "/") or parts.query:
        raise EtcdError(f"endpoint {url!r} has a path or query: give the client URL only", code=INVALID_ARGUMENT)
    try:
        port = parts.port or 2379
    except ValueError as exc:
        raise EtcdError(f"endpoint {url!r} has an invalid port", code=INVALID_ARGUMENT) from exc
    return Endpoint(url=f"{parts.scheme}://{parts.netloc}", scheme=parts.scheme, host=parts.hostname, port=port)


# Why an endpoint could not be connected to: nothing listens (refused), no answer in time, no route
# or name (unreachable), or TLS failed (a certificate or CA that does not fit: something answered).
NOT_RUNNING = ("refused", "timeout", "unreachable")


def connect_failure_kind(exc: BaseException) -> str:
    """refused, timeout, unreachable, tls or other: why a connection attempt failed, for callers that
    must tell a member that is not running from one that refuses the client (EtcdError.result)."""
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return "tls"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, OSError):
        return "unreachable"
    return "other"


def make_ssl_context(ca_cert: str | None, client_cert: str | None, client_key: str | None) -> ssl.SSLContext:
    """Verifies the server against ca_cert (the system store without it) and presents the client certificate."""
    try:
        context = ssl.create_default_context(cafile=ca_cert or None)
        if client_cert:
            context.load_cert_chain(client_cert, client_key or None)
    except (OSError, ssl.SSLError) as exc:
        raise EtcdError(f"cannot load the TLS files (ca_cert={ca_cert}, client_cert={client_cert}, "
                        f"client_key={client_key}): {exc}", code=INVALID_ARGUMENT) from exc
    return context


class GatewayTransport:
    """The gateway's endpoints, one persistent connection to the current one, and streams."""

    def __init__(self, endpoints: list[str], ca_cert: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None, timeout: float = 10.0,
                 connection_factory: Callable[[Endpoint], object] | None = None,
                 socket_factory: Callable[[Endpoint], socket.socket] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 connect_retry: float = CONNECT_RETRY_SECONDS) -> None:
        if not endpoints:
            raise EtcdError("no etcd endpoint given", code=INVALID_ARGUMENT)
        self.endpoints = [parse_endpoint(url) for url in endpoints]
        self.tls_files = (ca_cert, client_cert, client_key)
        self.timeout = float(timeout)
        self._connection_factory = connection_factory or self._new_connection
        self._socket_factory = socket_factory or self._new_socket
        self._clock = clock
        self._sleep = sleep
        self.connect_retry = connect_retry
        self._context: ssl.SSLContext | None = None
        self._current = 0
        self._conn = None
        self._reused = False

    # -- factories ---------------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = make_ssl_context(*self.tls_files)
        return self._context

    def _new_connection(self, endpoint: Endpoint):
        if endpoint.scheme == "https":
            conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, timeout=self.timeout, context=self._ssl_context())
        else:
            conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=self.timeout)
        conn.connect()
        return conn

    def _new_socket(self, endpoint: Endpoint) -> socket.socket:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=self.timeout)
        if endpoint.scheme == "https":
            try:
                sock = self._ssl_context().wrap_socket(sock, server_hostname=endpoint.host)
            except BaseException:
                sock.close()
                raise
        return sock

    def with_endpoints(self, endpoints: list[str], connect_retry: float | None = None) -> "GatewayTransport":
        """A transport to other endpoints (one member) with the same TLS files and timeout."""
        return GatewayTransport(endpoints, *self.tls_files, timeout=self.timeout,
                                connection_factory=None if self._connection_factory == self._new_connection else self._connection_factory,
                                socket_factory=None if self._socket_factory == self._new_socket else self._socket_factory,
                                clock=self._clock, sleep=self._sleep,
                                connect_retry=self.connect_retry if connect_retry is None else connect_retry)

    @property
    def current_endpoint(self) -> str:
        return self.endpoints[self._current].url

    def _order(self) -> list[int]:
        count = len(self.endpoints)
        return [(self._current + step) % count for step in range(count)]

    def _connect_any(self, factory: Callable[[Endpoint], object]) -> tuple[int, object]:
        """Connect to the current endpoint, or the next ones in turn; the first that connects becomes current.

        When every endpoint refuses the connection (members restarting), the round is repeated for
        up to connect_retry seconds (at most the timeout): nothing was sent, so this is always safe.
        The error's result has each endpoint's failure and its kind (connect_failure_kind).
        """
        deadline = self._clock() + min(self.connect_retry, self.timeout)
        delay = 0.1
        while True:
            failures = []
            kinds = []
            refused_only = True
            for index in self._order():
                endpoint = self.endpoints[index]
                try:
                    handle = factory(endpoint)
                except EtcdError:
                    raise
                except (OSError, http.client.HTTPException) as exc:
                    refused_only = refused_only and isinstance(exc, ConnectionRefusedError)
                    failures.append(f"{endpoint.url}: {exc}")
                    kinds.append({"endpoint": endpoint.url, "kind": connect_failure_kind(exc), "error": str(exc)})
                    continue
                self._current = index
                return index, handle
            if not refused_only or self._clock() + delay > deadline:
                raise EtcdError("cannot connect to any etcd endpoint: " + "; ".join(failures), result={"endpoint_errors": kinds})
            self._sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- unary calls -------------------------------------------------------------------------
    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
                self._reused = False

    def _roundtrip(self, path: str, payload: bytes) -> tuple[int, str, bytes]:
        self._conn.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
        response = self._conn.getresponse()
        data = response.read()
        self._reused = True
        if response.will_close:
            self.close()
        return response.status, response.getheader("Content-Type", "") or "", data

    def call(self, path: str, body: dict | None = None) -> dict:
        """POST body as JSON to path; the decoded answer, or EtcdError."""
        payload = json.dumps(body or {}, separators=(",", ":")).encode("utf-8")
        if self._conn is None:
            self._conn = self._connect_any(self._connection_factory)[1]
        endpoint = self.current_endpoint
        try:
            try:
                status, content_type, data = self._roundtrip(path, payload)
            except _DROPPED:
                if not self._reused:
                    raise
                self.close()
                self._conn = self._connect_any(self._connection_factory)[1]
                endpoint = self.current_endpoint
                status, content_type, data = self._roundtrip(path, payload)
        except EtcdError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise EtcdError(f"{path} failed: {exc or type(exc).__name__}", endpoint=endpoint) from exc
        if status != 200:
            raise error_from_response(status, content_type, data, endpoint=endpoint)
        try:
            answer = json.loads(data) if data.strip() else {}
        except ValueError as exc:
            raise EtcdError(f"{path} answered with something that is not JSON: {data[:80]!r}", endpoint=endpoint) from exc
        if not isinstance(answer, dict):
            raise EtcdError(f"{path} answered with JSON that is not an object", endpoint=endpoint)
        return answer

    # -- streams -----------------------------------------------------------------------------
    def stream(self, path: str, body: dict | None = None, chunked: bool = False) -> "GatewayStream":
        """Open a stream; with chunked, more requests can be sent on it with GatewayStream.send()."""
        index, sock = self._connect_any(self._socket_factory)
        return GatewayStream(sock, self.endpoints[index], path, body or {}, chunked=chunked, timeout=self.timeout)


class GatewayStream:
    """One streamed call: JSON objects, one per line, read with deadlines."""

    def __init__(self, sock: socket.socket, endpoint: Endpoint, path: str, body: dict, chunked: bool,
                 timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._sock = sock
        self.endpoint = endpoint
        self.path = path
        self.chunked = chunked
        self.timeout = timeout
        self._clock = clock
        self._raw = b""
        self._decoder: ChunkedDecoder | None = None
        self._length: int | None = None  # body length when not chunked, None = until EOF
        self._splitter = LineSplitter()
        self._lines: collections.deque = collections.deque()
        self.ended = False
        self.bytes_read = 0
        try:
            self._send_request(body)
            self._read_head()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "GatewayStream":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _fail(self, what: str, exc: BaseException | None = None) -> EtcdError:
        self.close()
        return EtcdError(f"{self.path} stream: {what}" + (f": {exc}" if exc else ""), endpoint=self.endpoint.url)

    def _write(self, data: bytes) -> None:
        if self._sock is None:
            raise self._fail("already closed")
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise self._fail("cannot send", exc) from exc

    def _send_request(self, body: dict) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        head = [f"POST {self.path} HTTP/1.1", f"Host: {self.endpoint.host_header}", "Content-Type: application/json",
                "Accept: application/json"]
        if self.chunked:
            head += ["Transfer-Encoding: chunked", "Expect: 100-continue"]
            self._write(("\r\n".join(head) + "\r\n\r\n").encode("ascii"))
            self.send(body)
        else:
            head += [f"Content-Length: {len(payload)}", "Connection: close"]
            self._write(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + payload)

    def send(self, body: dict) -> None:
        """Another request on a chunked stream (a watch's progress or cancel request)."""
        if not self.chunked:
            raise self._fail("send() needs a stream opened with chunked=True")
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        self._write(b"%x\r\n%s\r\n" % (len(payload), payload))

    def _recv(self, timeout: float) -> bytes | None:
        """Bytes from the socket; None when nothing came within timeout; b"" at EOF."""
        if self._sock is None:
            return b""
        pending = getattr(self._sock, "pending", None)
        if not (pending and pending()):
            try:
                ready = select.select([self._sock], [], [], max(0.0, timeout))[0]
            except (OSError, ValueError) as exc:
                raise self._fail("cannot wait", exc) from exc
            if not ready:
                return None
        try:
            data = self._sock.recv(262144)
        except ssl.SSLWantReadError:
            return None if timeout <= 0 else self._recv(timeout)
        except (socket.timeout, TimeoutError) as exc:
            raise self._fail(f"etcd stopped sending in the middle of a message for {self.timeout}s", exc) from exc
        except OSError as exc:
            raise self._fail("connection lost", exc) from exc
        self.bytes_read += len(data)
        return data

    def _read_head(self) -> None:
        deadline = self._clock() + self.timeout
        while True:
            head = parse_response_head(self._raw)
            if head is not None:
                break
            data = self._recv(deadline - self._clock())
            if data is None:
                raise self._fail(f"no answer within {self.timeout}s")
            if not data:
                raise self._fail("connection closed before an answer")
            self._raw += data
        status, headers, rest = head
        self._raw = b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._decoder = ChunkedDecoder()
        elif headers.get("content-length", "").isdigit():
            self._length = int(headers["content-length"])
        if status != 200:
            body = self._read_body(rest, deadline)
            self.close()
            raise error_from_response(status, headers.get("content-type", ""), body, endpoint=self.endpoint.url)
        self._consume(rest)

    def _read_body(self, rest: bytes, deadline: float) -> bytes:
        """A whole (error) body; small, so read at once."""
        out = [self._decoder.feed(rest) if self._decoder else rest]
        while not (self._decoder and self._decoder.done) and not (self._length is not None and sum(map(len, out)) >= self._length):
            data = self._recv(deadline - self._clock())
            if not data:
                break
            out.append(self._decoder.feed(data) if self._decoder else data)
        return b"".join(out)

    def _consume(self, data: bytes) -> None:
        if self._decoder is not None:
            body = self._decoder.feed(data)
        elif self._length is not None:
            body, self._length = data[:self._length], self._length - len(data[:self._length])
        else:
            body = data
        self._lines.extend(self._splitter.feed(body))
        if (self._decoder is not None and self._decoder.done) or self._length == 0:
            self._finish()

    def _finish(self) -> None:
        self._lines.extend(self._splitter.finish())
        self.ended = True
        self.close()

    def read(self, timeout: float | None = None) -> dict | None:
        """The next message; None when none came within timeout, or the stream ended (see ended)."""
        deadline = self._clock() + (self.timeout if timeout is None else timeout)
        while True:
            if self._lines:
                return decode_message(self._lines.popleft(), endpoint=self.endpoint.url)
            if self.ended:
                return None
            data = self._recv(deadline - self._clock())
            if data is None:
                return None
            if not data:
                if self._decoder is not None or self._length:
                    raise self._fail("etcd closed the stream before its end")
                self._finish()
                continue
            self._consume(data)

    def messages(self) -> Iterator[dict]:
        """Every message until the stream's end; waiting longer than the timeout for one is an error."""
        while True:
            message = self.read()
            if message is None:
                if self.ended:
                    return
                raise self._fail(f"no data for {self.timeout}s")
            yield message
