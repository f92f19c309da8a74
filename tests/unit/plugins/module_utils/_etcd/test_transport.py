# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transport: keep-alive, one reconnect on a dropped connection, failover, and streams on a socket pair."""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import transport as tr
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError


@pytest.mark.parametrize("url, host, port, scheme", [
    ("https://10.0.0.1:2379", "10.0.0.1", 2379, "https"),
    ("http://localhost:12379/", "localhost", 12379, "http"),
    ("https://etcd-1", "etcd-1", 2379, "https"),
    ("https://[::1]:2379", "::1", 2379, "https"),
])
def test_parse_endpoint(url, host, port, scheme):
    endpoint = tr.parse_endpoint(url)
    assert (endpoint.host, endpoint.port, endpoint.scheme) == (host, port, scheme)


def test_ipv6_host_header():
    assert tr.parse_endpoint("https://[::1]:2379").host_header == "[::1]:2379"


@pytest.mark.parametrize("url", ["10.0.0.1:2379", "unix:///run/etcd.sock", "https://h:2379/v3", "https://h:99999", "https://"])
def test_parse_endpoint_refuses(url):
    with pytest.raises(EtcdError):
        tr.parse_endpoint(url)


class FakeResponse:
    def __init__(self, status=200, body=b"{}", ctype="application/json", will_close=False):
        self.status, self._body, self._ctype, self.will_close = status, body, ctype, will_close

    def read(self):
        return self._body

    def getheader(self, name, default=None):
        return self._ctype if name == "Content-Type" else default


class FakeConnection:
    """Answers from a script: a FakeResponse, or an exception raised by request()."""

    def __init__(self, endpoint, script, log):
        self.endpoint, self.script, self.log, self.closed = endpoint, script, log, False

    def request(self, method, path, body=None, headers=None):
        self.log.append((self.endpoint.url, path, json.loads(body)))
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        self._next = step

    def getresponse(self):
        return self._next

    def close(self):
        self.closed = True


class Factory:
    def __init__(self, scripts: dict, refuse=()):
        self.scripts, self.refuse, self.log, self.connections = scripts, set(refuse), [], []

    def __call__(self, endpoint):
        if endpoint.url in self.refuse:
            raise ConnectionRefusedError(111, "Connection refused")
        conn = FakeConnection(endpoint, self.scripts[endpoint.url], self.log)
        self.connections.append(conn)
        return conn


def transport(factory, endpoints=("https://a:2379",)):
    return tr.GatewayTransport(list(endpoints), connection_factory=factory)


def test_keep_alive_uses_one_connection():
    factory = Factory({"https://a:2379": [FakeResponse(body=b'{"n":"1"}'), FakeResponse(body=b'{"n":"2"}')]})
    t = transport(factory)
    assert t.call("/v3/kv/range", {"key": "YQ=="}) == {"n": "1"}
    assert t.call("/v3/kv/range", {}) == {"n": "2"}
    assert len(factory.connections) == 1 and factory.log[0] == ("https://a:2379", "/v3/kv/range", {"key": "YQ=="})


@pytest.mark.parametrize("dropped", [http.client.RemoteDisconnected("closed"), BrokenPipeError(32, "Broken pipe"),
                                     ConnectionResetError(104, "reset")])
def test_a_dropped_reused_connection_is_reconnected_once(dropped):
    factory = Factory({"https://a:2379": [FakeResponse(), dropped, FakeResponse(body=b'{"ok":true}')]})
    t = transport(factory)
    t.call("/v3/maintenance/status")
    assert t.call("/v3/kv/put", {"key": "YQ=="}) == {"ok": True}
    assert len(factory.connections) == 2 and factory.connections[0].closed
    assert [entry[1] for entry in factory.log] == ["/v3/maintenance/status", "/v3/kv/put", "/v3/kv/put"]


def test_a_second_drop_is_an_error():
    drop = http.client.RemoteDisconnected("closed")
    factory = Factory({"https://a:2379": [FakeResponse(), drop, drop]})
    t = transport(factory)
    t.call("/v3/maintenance/status")
    with pytest.raises(EtcdError, match="closed"):
        t.call("/v3/kv/put")


def test_a_fresh_connection_is_never_retried():
    factory = Factory({"https://a:2379": [http.client.RemoteDisconnected("closed"), FakeResponse()]})
    with pytest.raises(EtcdError):
        transport(factory).call("/v3/kv/put")
    assert len(factory.log) == 1


def test_a_timeout_is_never_retried():
    factory = Factory({"https://a:2379": [FakeResponse(), TimeoutError("timed out"), FakeResponse()]})
    t = transport(factory)
    t.call("/v3/maintenance/status")
    with pytest.raises(EtcdError, match="timed out"):
        t.call("/v3/cluster/member/add")
    assert len(factory.log) == 2


def test_failover_to_the_next_endpoint_and_stay_there():
    factory = Factory({"https://b:2379": [FakeResponse(body=b'{"from":"b"}'), FakeResponse(body=b'{"from":"b"}')]},
                      refuse={"https://a:2379"})
    t = transport(factory, ["https://a:2379", "https://b:2379"])
    assert t.call("/v3/kv/range")["from"] == "b"
    assert t.current_endpoint == "https://b:2379"
    assert t.call("/v3/kv/range")["from"] == "b"


class Clock:
    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_every_endpoint_refused_is_retried_then_an_error():
    factory = Factory({}, refuse={"https://a:2379", "https://b:2379"})
    clock = Clock()
    t = tr.GatewayTransport(["https://a:2379", "https://b:2379"], connection_factory=factory, clock=clock, sleep=clock.sleep)
    with pytest.raises(EtcdError, match="cannot connect to any etcd endpoint: https://a:2379: .*; https://b:2379: "):
        t.call("/v3/kv/range")
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.0] and clock.now <= tr.CONNECT_RETRY_SECONDS


def test_a_restarting_member_is_waited_for():
    factory = Factory({"https://a:2379": [FakeResponse(body=b'{"up":true}')]}, refuse={"https://a:2379"})
    clock = Clock()

    def sleep(seconds):
        clock.sleep(seconds)
        factory.refuse.clear()  # the member is back
    t = tr.GatewayTransport(["https://a:2379"], connection_factory=factory, clock=clock, sleep=sleep)
    assert t.call("/v3/kv/range") == {"up": True} and clock.sleeps == [0.1]


def test_other_connect_errors_are_not_retried():
    def unreachable(endpoint):
        raise OSError(113, "No route to host")
    clock = Clock()
    t = tr.GatewayTransport(["https://a:2379"], connection_factory=unreachable, clock=clock, sleep=clock.sleep)
    with pytest.raises(EtcdError, match="No route to host"):
        t.call("/v3/kv/range")
    assert clock.sleeps == []


def test_http_errors_become_etcd_errors():
    factory = Factory({"https://a:2379": [FakeResponse(status=400, body=b'{"code":3,"message":"etcdserver: too many operations in txn request"}')]})
    with pytest.raises(EtcdError) as caught:
        transport(factory).call("/v3/kv/txn")
    assert caught.value.code == 3 and caught.value.status == 400 and caught.value.endpoint == "https://a:2379"


def test_will_close_drops_the_connection():
    factory = Factory({"https://a:2379": [FakeResponse(will_close=True)], "https://a:2379-2": []})
    factory.scripts["https://a:2379"].append(FakeResponse(body=b'{"again":1}'))
    t = transport(factory)
    t.call("/v3/kv/range")
    assert t.call("/v3/kv/range") == {"again": 1}
    assert len(factory.connections) == 2


def test_not_json_answer():
    factory = Factory({"https://a:2379": [FakeResponse(body=b"<html>")]})
    with pytest.raises(EtcdError, match="not JSON"):
        transport(factory).call("/v3/kv/range")


def test_tls_files_that_cannot_be_loaded(tmp_path):
    with pytest.raises(EtcdError, match="cannot load the TLS files"):
        tr.make_ssl_context(str(tmp_path / "missing-ca.crt"), None, None)


# -- streams on a socket pair -----------------------------------------------------------------

class Server:
    """The far end of a socket pair: records what the stream sends, answers what the test says."""

    def __init__(self):
        self.client_side, self.server_side = socket.socketpair()
        self.received = b""

    def factory(self, endpoint):
        return self.client_side

    def send(self, data: bytes):
        self.server_side.sendall(data)

    def read_request(self, until: bytes = b"\r\n\r\n"):
        while until not in self.received:
            self.received += self.server_side.recv(65536)
        return self.received


OK_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def open_stream(server, *, chunked=False, answer=OK_CHUNKED, timeout=2.0):
    t = tr.GatewayTransport(["http://etcd:2379"], timeout=timeout, socket_factory=server.factory)
    server.send(answer)
    return t.stream("/v3/watch" if chunked else "/v3/maintenance/snapshot", {"create_request": {"key": "YQ=="}}, chunked=chunked)


def test_stream_lines_across_chunks():
    server = Server()
    stream = open_stream(server)
    body = b'{"result":{"blob":"YQ=="}}\n{"result":{"blob":"Yg=="}}\n'
    server.send(chunk(body[:5]) + chunk(body[5:30]) + chunk(body[30:-1]) + chunk(b"\n") + b"0\r\n\r\n")
    assert [m["blob"] for m in stream.messages()] == ["YQ==", "Yg=="]
    assert stream.ended
    request = server.read_request()
    assert request.startswith(b"POST /v3/maintenance/snapshot HTTP/1.1\r\nHost: etcd:2379\r\n")
    payload = b'{"create_request":{"key":"YQ=="}}'
    assert request.endswith(b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(payload) + payload)


def test_stream_read_times_out_without_data_and_continues():
    server = Server()
    stream = open_stream(server)
    assert stream.read(0.05) is None and not stream.ended
    server.send(chunk(b'{"result":{"x":1}}\n'))
    assert stream.read(1.0) == {"x": 1}


def test_chunked_request_skips_100_continue_and_sends_more():
    server = Server()
    stream = open_stream(server, chunked=True, answer=b"HTTP/1.1 100 Continue\r\n\r\n" + OK_CHUNKED)
    stream.send({"progress_request": {}})
    request = server.read_request(until=b'{"progress_request":{}}\r\n')
    head, body = request.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding: chunked" in head and b"Expect: 100-continue" in head
    assert body == chunk(b'{"create_request":{"key":"YQ=="}}') + chunk(b'{"progress_request":{}}')


def test_stream_error_status():
    server = Server()
    answer = b'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 37\r\n\r\n{"code":11,"message":"compacted now"}'
    with pytest.raises(EtcdError) as caught:
        open_stream(server, answer=answer)
    assert caught.value.code == 11 and caught.value.status == 400


def test_stream_error_message_in_the_stream():
    server = Server()
    stream = open_stream(server)
    server.send(chunk(b'{"error":{"code":14,"message":"etcdserver: no leader"}}\n'))
    with pytest.raises(EtcdError, match="no leader"):
        stream.read(1.0)


def test_stream_cut_before_its_end():
    server = Server()
    stream = open_stream(server)
    server.send(chunk(b'{"result":{"x":1}}\n'))
    server.read_request()  # unread data would turn the close into a reset
    server.server_side.close()
    assert stream.read(1.0) == {"x": 1}
    with pytest.raises(EtcdError, match="closed the stream before its end"):
        stream.read(1.0)


def test_no_answer_within_the_timeout():
    server = Server()
    t = tr.GatewayTransport(["http://etcd:2379"], timeout=0.1, socket_factory=server.factory)
    with pytest.raises(EtcdError, match="no answer within"):
        t.stream("/v3/maintenance/snapshot", {})


def test_messages_fail_when_data_stops():
    server = Server()
    stream = open_stream(server, timeout=0.1)
    with pytest.raises(EtcdError, match="no data for"):
        list(stream.messages())


def test_stream_waits_for_a_slow_writer():
    server = Server()
    stream = open_stream(server)
    body = b'{"result":{"slow":true}}\n'
    timer = threading.Timer(0.1, lambda: server.send(chunk(body) + b"0\r\n\r\n"))
    timer.start()
    try:
        assert list(stream.messages()) == [{"slow": True}]
    finally:
        timer.join()


def test_no_connect_retry_when_asked():
    factory = Factory({}, refuse={"https://a:2379"})
    clock = Clock()
    t = tr.GatewayTransport(["https://a:2379"], connection_factory=factory, clock=clock, sleep=clock.sleep)
    probe = t.with_endpoints(["https://a:2379"], connect_retry=0)
    with pytest.raises(EtcdError, match="Connection refused"):
        probe.call("/v3/maintenance/status")
    assert clock.sleeps == [] and probe.connect_retry == 0 and t.connect_retry == tr.CONNECT_RETRY_SECONDS


# -- why no endpoint could be connected to (tasks/migrate_state.yml tells "not running" from "refused") --

@pytest.mark.parametrize("exc, kind", [
    (ConnectionRefusedError(111, "Connection refused"), "refused"),
    (socket.timeout("timed out"), "timeout"),
    (TimeoutError(110, "Connection timed out"), "timeout"),
    (OSError(113, "No route to host"), "unreachable"),
    (socket.gaierror(-2, "Name or service not known"), "unreachable"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate"), "tls"),
    (ssl.SSLError(1, "tlsv1 alert unknown ca"), "tls"),
    (http.client.RemoteDisconnected("Remote end closed connection"), "unreachable"),
    (http.client.HTTPException("odd"), "other"),
])
def test_connect_failure_kinds(exc, kind):
    assert tr.connect_failure_kind(exc) == kind


def test_the_error_names_each_endpoint_and_why():
    failures = {"https://a:2379": ssl.SSLCertVerificationError(1, "certificate verify failed"),
                "https://b:2379": ConnectionRefusedError(111, "Connection refused")}

    def connect(endpoint):
        raise failures[endpoint.url]
    clock = Clock()
    t = tr.GatewayTransport(list(failures), connection_factory=connect, clock=clock, sleep=clock.sleep)
    with pytest.raises(EtcdError) as caught:
        t.call("/v3/cluster/member/list")
    assert [(e["endpoint"], e["kind"]) for e in caught.value.result["endpoint_errors"]] == [
        ("https://a:2379", "tls"), ("https://b:2379", "refused")]
    assert "certificate verify failed" in caught.value.result["endpoint_errors"][0]["error"]
