# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fakes of the transport layer for the _etcd unit tests (the integration tests use real etcd)."""
from __future__ import annotations

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.transport import parse_endpoint


class FakeStream:
    def __init__(self, messages, endpoint="https://a:2379"):
        self.messages_left = list(messages)
        self.sent = []
        self.endpoint = parse_endpoint(endpoint)
        self.ended = False
        self.closed = False

    def read(self, timeout=None):
        if not self.messages_left:
            self.ended = True
            return None
        message = self.messages_left.pop(0)
        if isinstance(message, BaseException):
            raise message
        return message

    def messages(self):
        while self.messages_left:
            yield self.read()

    def send(self, body):
        self.sent.append(body)

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class FakeTransport:
    """Answers each path from a dict: a value, a list of values (one per call), an EtcdError, or a callable(body)."""

    def __init__(self, answers=None, streams=None, endpoints=("https://a:2379",)):
        self.answers = dict(answers or {})
        self.streams = list(streams or [])
        self.calls = []
        self.endpoints = [parse_endpoint(e) for e in endpoints]
        self.closed = False

    def call(self, path, body=None):
        self.calls.append((path, body))
        answer = self.answers.get(path)
        if isinstance(answer, list):
            answer = answer.pop(0)
        if callable(answer):
            answer = answer(body)
        if isinstance(answer, EtcdError):
            raise answer
        if answer is None:
            raise AssertionError(f"unexpected call {path} {body}")
        return answer

    def stream(self, path, body=None, chunked=False):
        self.calls.append((path, body))
        return self.streams.pop(0)

    def with_endpoints(self, endpoints, connect_retry=None):
        return FakeTransport(self.answers, endpoints=endpoints)

    def close(self):
        self.closed = True

    def paths(self):
        return [call[0] for call in self.calls]
