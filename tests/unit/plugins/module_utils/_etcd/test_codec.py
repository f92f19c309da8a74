# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gateway's encodings: base64, int64 strings, omitted zero values, error shapes, chunked lines."""
from __future__ import annotations

import json

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import codec
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError


@pytest.mark.parametrize("value, encoded", [(b"", ""), (b"a", "YQ=="), ("é", "w6k="), (b"\x00\xff", "AP8=")])
def test_base64_round_trip(value, encoded):
    assert codec.b64(value) == encoded
    assert codec.unb64(encoded) == codec.to_bytes(value)


@pytest.mark.parametrize("value", [None, ""])
def test_omitted_bytes_are_empty(value):
    assert codec.unb64(value) == b""


def test_invalid_base64_is_an_etcd_error():
    with pytest.raises(EtcdError, match="invalid base64"):
        codec.unb64("not base64!")


@pytest.mark.parametrize("value, expected", [
    (None, 0), ("", 0), ("0", 0), ("42", 42), (42, 42), ("-1", -1), ("18446744073709551615", 2**64 - 1), (True, 1),
])
def test_to_int(value, expected):
    assert codec.to_int(value) == expected


def test_to_int_refuses_other_types():
    with pytest.raises(EtcdError):
        codec.to_int([1])


@pytest.mark.parametrize("prefix, end", [
    (b"a", b"b"), (b"/registry/", b"/registry0"), (b"a\xff", b"b"), (b"a\xfe", b"a\xff"), (b"\xff\xff", b"\0"), (b"", b"\0"),
    (b"ab\xff\xff", b"ac"),
])
def test_prefix_range_end(prefix, end):
    assert codec.prefix_range_end(prefix) == end


@pytest.mark.parametrize("prefix, expected", [("", (b"\0", b"\0")), ("/a/", (b"/a/", b"/a0")), (b"x", (b"x", b"y"))])
def test_prefix_range(prefix, expected):
    assert codec.prefix_range(prefix) == expected


def test_kv_with_omitted_zero_values():
    kv = codec.kv_from_json({"key": "YQ==", "mod_revision": "7"})
    assert kv == codec.KeyValue(key=b"a", value=b"", create_revision=0, mod_revision=7, version=0, lease=0)


@pytest.mark.parametrize("obj, kind, has_prev", [
    ({"kv": {"key": "YQ==", "value": "dg==", "mod_revision": "3"}}, "PUT", False),  # a PUT has no "type"
    ({"type": "DELETE", "kv": {"key": "YQ==", "mod_revision": "4"}, "prev_kv": {"key": "YQ==", "value": "dg=="}}, "DELETE", True),
])
def test_events(obj, kind, has_prev):
    event = codec.event_from_json(obj)
    assert event.type == kind and event.kv.key == b"a" and (event.prev_kv is not None) == has_prev
    assert event.revision == int(obj["kv"]["mod_revision"])


@pytest.mark.parametrize("status, ctype, body, code, fragment", [
    # upstream 3.5 (grpc-gateway v1)
    (400, "application/json", {"error": "etcdserver: too many operations in txn request", "code": 3,
                               "message": "etcdserver: too many operations in txn request"}, 3, "too many operations"),
    # 3.6, and Debian's 3.5 built with grpc-gateway v2
    (400, "application/json", {"code": 11, "message": "etcdserver: mvcc: required revision has been compacted", "details": []},
     11, "compacted"),
    (400, "application/json", {"code": 3, "message": "etcdserver: duplicate key given in txn request"}, 3, "duplicate key"),
    (404, "application/json", {"code": 5, "message": "Not Found"}, 5, "Not Found"),
    (503, "text/plain", "upstream down", 14, "HTTP 503: upstream down"),
    (502, "text/html", "", -1, "HTTP 502"),
])
def test_error_shapes(status, ctype, body, code, fragment):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
    error = codec.error_from_response(status, ctype, raw, endpoint="https://e:2379")
    assert error.code == code and error.status == status and fragment in error.message
    assert "https://e:2379" in str(error)


def test_compacted_flag():
    error = codec.error_from_response(400, "application/json", b'{"code":11,"message":"etcdserver: mvcc: required revision has been compacted"}')
    assert error.compacted
    future = codec.error_from_response(400, "application/json", b'{"code":11,"message":"etcdserver: mvcc: required revision is a future revision"}')
    assert not future.compacted


def test_auth_enabled_is_explained():
    # What the gateway answers (plain text) when etcd auth is on and the client certificate has a CN.
    body = b"CommonName of client sending a request against gateway will be ignored and not used as expected\n"
    error = codec.error_from_response(400, "text/plain; charset=utf-8", body)
    assert "authentication (users and roles) is enabled" in str(error) and "CommonName" in str(error)


@pytest.mark.parametrize("line, expected", [
    (b'{"result":{"created":true}}', {"created": True}),
    (b'{"result":{}}', {}),
])
def test_decode_message(line, expected):
    assert codec.decode_message(line) == expected


@pytest.mark.parametrize("line, code", [
    (b'{"error":{"grpc_code":11,"http_code":400,"message":"required revision has been compacted","http_status":"Bad Request"}}', 11),
    (b'{"error":{"code":14,"message":"etcdserver: no leader","details":[]}}', 14),
])
def test_decode_stream_errors(line, code):
    with pytest.raises(EtcdError) as caught:
        codec.decode_message(line)
    assert caught.value.code == code


@pytest.mark.parametrize("line", [b"not json", b"[1,2]"])
def test_decode_garbage(line):
    with pytest.raises(EtcdError):
        codec.decode_message(line)


STREAM = b'{"result":{"blob":"YQ=="}}\n{"result":{"blob":"Yg=="}}\n{"result":{"blob":"Yw=="}}\n'


@pytest.mark.parametrize("cuts", [[], [1], [26], [27], [10, 30, 31], list(range(1, len(STREAM)))])
def test_line_splitter_ignores_chunk_boundaries(cuts):
    splitter = codec.LineSplitter()
    bounds = [0, *cuts, len(STREAM)]
    lines = []
    for start, end in zip(bounds, bounds[1:]):
        lines += splitter.feed(STREAM[start:end])
    lines += splitter.finish()
    assert [json.loads(line)["result"]["blob"] for line in lines] == ["YQ==", "Yg==", "Yw=="]


def test_line_splitter_keeps_a_last_line_without_newline():
    splitter = codec.LineSplitter()
    assert splitter.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert splitter.finish() == [b'{"b"']


def chunked(*pieces: bytes, extension: bytes = b"") -> bytes:
    return b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize("raw, step", [
    (chunked(b"hello ", b"world"), 1),
    (chunked(b"hello ", b"world"), 3),
    (chunked(b"hello ", b"world"), 1000),
    (chunked(b"hello world", extension=b";name=value"), 2),
    (chunked(b"h", b"e", b"llo", b" world"), 5),
])
def test_chunked_decoder(raw, step):
    decoder = codec.ChunkedDecoder()
    out = b"".join(decoder.feed(raw[i:i + step]) for i in range(0, len(raw), step))
    assert out == b"hello world" and decoder.done


def test_chunked_decoder_waits_for_more():
    decoder = codec.ChunkedDecoder()
    assert decoder.feed(b"5\r\nhel") == b"hel" and not decoder.done
    assert decoder.feed(b"lo\r\n") == b"lo" and not decoder.done


@pytest.mark.parametrize("raw", [b"zz\r\nhello\r\n", b"2\r\nhiXX", b"1" * 2000])
def test_chunked_decoder_refuses_garbage(raw):
    with pytest.raises(EtcdError, match="malformed"):
        codec.ChunkedDecoder().feed(raw)


@pytest.mark.parametrize("raw, status, rest", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nabc", 200, b"abc"),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", 200, b""),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nabc", 400, b"abc"),
])
def test_parse_response_head(raw, status, rest):
    got_status, headers, got_rest = codec.parse_response_head(raw)
    assert (got_status, got_rest) == (status, rest)
    assert all(name == name.lower() for name in headers)


@pytest.mark.parametrize("raw", [b"HTTP/1.1 200 OK\r\nX: y\r\n", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"])
def test_parse_response_head_incomplete(raw):
    assert codec.parse_response_head(raw) is None


def test_parse_response_head_refuses_non_http():
    with pytest.raises(EtcdError, match="not an HTTP answer"):
        codec.parse_response_head(b"SSH-2.0-OpenSSH\r\n\r\n")
