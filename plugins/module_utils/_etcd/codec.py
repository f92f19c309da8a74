# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure encoding for etcd's JSON gateway: no I/O here, everything is unit-tested on tables.

- bytes travel as standard base64, int64/uint64 as JSON strings (numbers are accepted too);
- zero values are omitted (an absent ``more`` is false, a watch PUT event has no ``type``);
- errors come as ``{"error", "code", "message"}`` (upstream 3.5), ``{"code", "message",
  "details"}`` (3.6, and 3.5 built with grpc-gateway v2 as Debian does), inside a stream as
  ``{"error": {...}}``, and as plain text when etcd's own auth is on;
- streams (watch, snapshot) are chunked HTTP with one JSON object per line, and a line can span
  chunks (the snapshot stream sends the newline in a chunk of its own): split on newlines only.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import NamedTuple

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import (
    INVALID_ARGUMENT, NOT_FOUND, TRANSPORT, UNAVAILABLE, EtcdError)

AUTH_ENABLED_MESSAGE = (
    "etcd's own authentication (users and roles) is enabled on this cluster: the JSON gateway cannot pass "
    "the client certificate's identity on, so every call is refused. kubeforge's etcd modules need a cluster "
    "with client-cert auth and etcd auth off (as clusters installed for Kubernetes run)")


def to_bytes(value: bytes | str) -> bytes:
    """Keys and values given as text are UTF-8."""
    return value if isinstance(value, bytes) else value.encode("utf-8")


def b64(value: bytes | str) -> str:
    return base64.b64encode(to_bytes(value)).decode("ascii")


def unb64(value: str | None) -> bytes:
    """Decode a base64 field; an omitted field is the empty value."""
    if not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EtcdError(f"etcd sent an invalid base64 field: {value[:40]!r}", code=INVALID_ARGUMENT) from exc


def to_int(value: object) -> int:
    """int64/uint64 come as strings, sometimes as numbers, and are omitted when zero."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, str)):
        return int(value)
    raise EtcdError(f"etcd sent {value!r} where an integer was expected", code=INVALID_ARGUMENT)


def prefix_range_end(prefix: bytes) -> bytes:
    """The exclusive end of every key starting with prefix: its last byte below 0xff incremented.

    A prefix of only 0xff bytes (or the empty prefix) has no such end: ``b"\\0"`` then means
    "every key >= key" to etcd.
    """
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\0"
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def prefix_range(prefix: bytes | str) -> tuple[bytes, bytes]:
    """(key, range_end) covering every key under prefix; the empty prefix is the whole keyspace."""
    prefix = to_bytes(prefix)
    if not prefix:
        return b"\0", b"\0"
    return prefix, prefix_range_end(prefix)


class KeyValue(NamedTuple):
    """A key as etcd returns it (a tuple: a range of many thousand keys decodes fast)."""

    key: bytes
    value: bytes = b""
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    lease: int = 0


def kv_from_json(obj: dict) -> KeyValue:
    get = obj.get
    return KeyValue(unb64(get("key")), unb64(get("value")), int(get("create_revision") or 0), int(get("mod_revision") or 0),
                    int(get("version") or 0), int(get("lease") or 0))


@dataclasses.dataclass(frozen=True)
class Event:
    type: str  # "PUT" or "DELETE"
    kv: KeyValue
    prev_kv: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


def event_from_json(obj: dict) -> Event:
    prev = obj.get("prev_kv")
    return Event(type=obj.get("type") or "PUT", kv=kv_from_json(obj.get("kv") or {}),
                 prev_kv=kv_from_json(prev) if prev else None)


_HTTP_TO_GRPC = {400: INVALID_ARGUMENT, 404: NOT_FOUND, 503: UNAVAILABLE}


def error_from_fields(fields: dict, status: int = 0, endpoint: str = "") -> EtcdError:
    """An error object of any of the gateway's shapes."""
    message = fields.get("message") or fields.get("error") or ""
    code = fields.get("code", fields.get("grpc_code"))
    if not isinstance(code, int):
        code = _HTTP_TO_GRPC.get(status, TRANSPORT)
    if not message:
        message = f"etcd answered HTTP {status} without a message" if status else "etcd answered an error without a message"
    return EtcdError(str(message), code=code, status=status, endpoint=endpoint)


def error_from_response(status: int, content_type: str, body: bytes, endpoint: str = "") -> EtcdError:
    """The EtcdError for a non-200 answer of the gateway."""
    text = body.decode("utf-8", errors="replace").strip()
    if "CommonName of client" in text:
        return EtcdError(f"{AUTH_ENABLED_MESSAGE} (etcd answered HTTP {status}: {text})", code=INVALID_ARGUMENT,
                         status=status, endpoint=endpoint)
    if "json" in (content_type or "") or text.startswith("{"):
        try:
            fields = json.loads(text)
        except ValueError:
            fields = None
        if isinstance(fields, dict):
            return error_from_fields(fields, status=status, endpoint=endpoint)
    return EtcdError(f"HTTP {status}: {text[:300]}" if text else f"HTTP {status}", code=_HTTP_TO_GRPC.get(status, TRANSPORT),
                     status=status, endpoint=endpoint)


def decode_message(line: bytes, endpoint: str = "") -> dict:
    """One line of a stream: the ``result`` object, or an EtcdError raised for ``error``."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise EtcdError(f"etcd sent a stream line that is not JSON: {line[:80]!r}", endpoint=endpoint) from exc
    if not isinstance(obj, dict):
        raise EtcdError(f"etcd sent a stream line that is not an object: {line[:80]!r}", endpoint=endpoint)
    if obj.get("error"):
        error = obj["error"]
        raise error_from_fields(error if isinstance(error, dict) else {"message": str(error)},
                                status=to_int(error.get("http_code")) if isinstance(error, dict) else 0, endpoint=endpoint)
    return obj.get("result", obj)


class LineSplitter:
    """Bytes in, complete lines out, whatever the chunk boundaries were."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        parts = (self._pending + data).split(b"\n")
        self._pending = parts.pop()
        return [part.strip() for part in parts if part.strip()]

    def finish(self) -> list[bytes]:
        """The last line when the stream ended without a newline."""
        rest, self._pending = self._pending.strip(), b""
        return [rest] if rest else []


class ChunkedDecoder:
    """Decoder of HTTP/1.1 chunked transfer coding: raw bytes in, body bytes out."""

    def __init__(self) -> None:
        self._buffer = b""
        self._left = 0  # bytes of the current chunk still to come
        self._need_crlf = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = []
        while not self.done:
            if self._left:
                piece = self._buffer[:self._left]
                if not piece:
                    break
                out.append(piece)
                self._buffer = self._buffer[len(piece):]
                self._left -= len(piece)
                if self._left == 0:
                    self._need_crlf = True
                continue
            if self._need_crlf:
                if len(self._buffer) < 2:
                    break
                if self._buffer[:2] != b"\r\n":
                    raise EtcdError("etcd sent a malformed chunked stream (no CRLF after a chunk)")
                self._buffer = self._buffer[2:]
                self._need_crlf = False
            end = self._buffer.find(b"\r\n")
            if end < 0:
                if len(self._buffer) > 1024:
                    raise EtcdError("etcd sent a malformed chunked stream (chunk size line too long)")
                break
            size_text = self._buffer[:end].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise EtcdError(f"etcd sent a malformed chunk size {size_text[:20]!r}") from exc
            self._buffer = self._buffer[end + 2:]
            if size == 0:
                self.done = True  # trailers, if any, are not needed
            self._left = size
        return b"".join(out)


def parse_response_head(buffer: bytes) -> tuple[int, dict, bytes] | None:
    """(status, lower-cased headers, rest) of the first final response in buffer, or None if incomplete.

    Interim 1xx answers (``100 Continue``) are skipped.
    """
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head, buffer = buffer[:end].decode("iso-8859-1"), buffer[end + 4:]
        lines = head.split("\r\n")
        fields = lines[0].split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
            raise EtcdError(f"not an HTTP answer: {lines[0][:80]!r}")
        status = int(fields[1])
        if 100 <= status < 200:
            continue
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1) if ":" in line else (line, "")
            headers[name.strip().lower()] = value.strip()
        return status, headers, buffer
