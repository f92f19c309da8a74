# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""EtcdClient: the etcd v3 calls the modules make, over a transport (GatewayTransport or a fake).

Answers are decoded into plain Python values (bytes, ints, dataclasses); the JSON quirks stay in
codec. Paths are the same in etcd 3.5 and 3.6; the only path that differs by version is HashKV,
which answers on /v3/maintenance/hash before 3.5.10.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.codec import (
    KeyValue, b64, event_from_json, kv_from_json, to_bytes, to_int, unb64)
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import NOT_FOUND, OUT_OF_RANGE, EtcdError

DEFAULT_PAGE_SIZE = 1000


@dataclasses.dataclass(frozen=True)
class RangeResult:
    kvs: list
    more: bool
    count: int
    revision: int  # the store revision the answer was read at


@dataclasses.dataclass(frozen=True)
class Member:
    id: int
    name: str
    peer_urls: list
    client_urls: list
    is_learner: bool

    @property
    def started(self) -> bool:
        """etcd fills in the name when the member has started and published itself."""
        return bool(self.name)

    def as_dict(self) -> dict:
        return {"id": format(self.id, "x"), "name": self.name, "peer_urls": list(self.peer_urls),
                "client_urls": list(self.client_urls), "is_learner": self.is_learner}


def member_from_json(obj: dict) -> Member:
    return Member(id=to_int(obj.get("ID")), name=obj.get("name") or "", peer_urls=list(obj.get("peerURLs") or []),
                  client_urls=list(obj.get("clientURLs") or []), is_learner=bool(obj.get("isLearner")))


def op_put(key: bytes, value: bytes, lease: int = 0) -> dict:
    put = {"key": b64(key), "value": b64(value)}
    if lease:
        put["lease"] = str(lease)
    return {"request_put": put}


def op_delete(key: bytes, range_end: bytes | None = None) -> dict:
    delete = {"key": b64(key)}
    if range_end:
        delete["range_end"] = b64(range_end)
    return {"request_delete_range": delete}


def header_revision(answer: dict) -> int:
    return to_int((answer.get("header") or {}).get("revision"))


class EtcdClient:
    """The etcd v3 API over a transport with ``call(path, body) -> dict`` and ``stream(path, body, chunked)``."""

    def __init__(self, transport) -> None:
        self.transport = transport

    def close(self) -> None:
        self.transport.close()

    def for_endpoints(self, endpoints: list[str], connect_retry: float | None = None) -> "EtcdClient":
        """A client to other endpoints (one member) with the same TLS settings; connect_retry 0: a refusal is final."""
        return type(self)(self.transport.with_endpoints(endpoints, connect_retry=connect_retry))

    def clone(self) -> "EtcdClient":
        """A client with a connection of its own to the same endpoints (for another thread)."""
        return self.for_endpoints([endpoint.url for endpoint in self.transport.endpoints])

    # -- kv ----------------------------------------------------------------------------------
    def range(self, key: bytes | str, range_end: bytes | str | None = None, *, revision: int = 0, limit: int = 0,
              keys_only: bool = False, count_only: bool = False, serializable: bool = False) -> RangeResult:
        body: dict = {"key": b64(key)}
        if range_end:
            body["range_end"] = b64(range_end)
        for name, value in (("revision", revision), ("limit", limit)):
            if value:
                body[name] = str(value)
        for name, flag in (("keys_only", keys_only), ("count_only", count_only), ("serializable", serializable)):
            if flag:
                body[name] = True
        answer = self.transport.call("/v3/kv/range", body)
        return RangeResult(kvs=[kv_from_json(kv) for kv in answer.get("kvs") or []], more=bool(answer.get("more")),
                           count=to_int(answer.get("count")), revision=header_revision(answer))

    def get(self, key: bytes | str) -> KeyValue | None:
        result = self.range(key)
        return result.kvs[0] if result.kvs else None

    def count(self, key: bytes | str, range_end: bytes | str, revision: int = 0) -> tuple[int, int]:
        """(number of keys in [key, range_end), store revision)."""
        result = self.range(key, range_end, revision=revision, count_only=True)
        return result.count, result.revision

    def pages(self, key: bytes | str, range_end: bytes | str, *, revision: int = 0,
              page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[RangeResult]:
        """Every key of [key, range_end) at one revision, page by page.

        The first page pins the revision (the latest unless given); the next pages are read at
        that same revision, so the whole is one consistent view. A compacted revision raises an
        EtcdError whose ``compacted`` is true.
        """
        start = to_bytes(key)
        while True:
            page = self.range(start, range_end, revision=revision, limit=page_size)
            revision = revision or page.revision
            yield RangeResult(kvs=page.kvs, more=page.more, count=page.count, revision=revision)
            if not page.more or not page.kvs:
                return
            start = page.kvs[-1].key + b"\0"

    def put(self, key: bytes | str, value: bytes | str, lease: int = 0) -> int:
        """Store value at key; the new store revision."""
        body = op_put(to_bytes(key), to_bytes(value), lease)["request_put"]
        return header_revision(self.transport.call("/v3/kv/put", body))

    def delete_range(self, key: bytes | str, range_end: bytes | str | None = None) -> tuple[int, int]:
        """(number of keys deleted, store revision)."""
        body = op_delete(to_bytes(key), to_bytes(range_end) if range_end else None)["request_delete_range"]
        answer = self.transport.call("/v3/kv/deleterange", body)
        return to_int(answer.get("deleted")), header_revision(answer)

    def txn(self, success: list[dict], compare: list[dict] | None = None, failure: list[dict] | None = None) -> tuple[bool, int]:
        """(succeeded, store revision) of one transaction of op_put/op_delete operations."""
        body: dict = {"success": success}
        if compare:
            body["compare"] = compare
        if failure:
            body["failure"] = failure
        answer = self.transport.call("/v3/kv/txn", body)
        return bool(answer.get("succeeded")), header_revision(answer)

    def compact(self, revision: int, physical: bool = False) -> None:
        body: dict = {"revision": str(revision)}
        if physical:
            body["physical"] = True
        self.transport.call("/v3/kv/compaction", body)

    def watch(self, key: bytes | str, range_end: bytes | str | None = None, *, start_revision: int = 0,
              prev_kv: bool = False) -> "Watch":
        return Watch(self.transport, to_bytes(key), to_bytes(range_end) if range_end else None, start_revision, prev_kv)

    # -- leases ------------------------------------------------------------------------------
    def lease_grant(self, ttl: int, lease_id: int = 0) -> tuple[int, int]:
        """(lease id, granted TTL); lease_id 0 lets etcd choose."""
        body: dict = {"TTL": str(ttl)}
        if lease_id:
            body["ID"] = str(lease_id)
        answer = self.transport.call("/v3/lease/grant", body)
        if answer.get("error"):  # older servers put the reason in the answer, not the status
            raise EtcdError(str(answer["error"]), code=NOT_FOUND)
        return to_int(answer.get("ID")), to_int(answer.get("TTL"))

    def lease_revoke(self, lease_id: int) -> None:
        self.transport.call("/v3/lease/revoke", {"ID": str(lease_id)})

    def lease_time_to_live(self, lease_id: int) -> tuple[int, int]:
        """(remaining TTL, granted TTL); (-1, 0) for a lease that expired or never was."""
        answer = self.transport.call("/v3/lease/timetolive", {"ID": str(lease_id)})
        return to_int(answer.get("TTL")), to_int(answer.get("grantedTTL"))

    def lease_ids(self) -> list[int]:
        answer = self.transport.call("/v3/lease/leases", {})
        return [to_int(lease.get("ID")) for lease in answer.get("leases") or []]

    # -- cluster -----------------------------------------------------------------------------
    def member_list(self, linearizable: bool = True) -> tuple[list, int]:
        """(members, cluster id)."""
        members, cluster_id, _revision = self.member_list_with_revision(linearizable)
        return members, cluster_id

    def member_list_with_revision(self, linearizable: bool = True) -> tuple[list, int, int]:
        """(members, cluster id, the answering member's store revision from the header; 0 where etcd leaves it out)."""
        answer = self.transport.call("/v3/cluster/member/list", {"linearizable": True} if linearizable else {})
        return ([member_from_json(m) for m in answer.get("members") or []], to_int((answer.get("header") or {}).get("cluster_id")),
                header_revision(answer))

    def member_add(self, peer_urls: list[str], is_learner: bool) -> Member:
        body: dict = {"peerURLs": list(peer_urls)}
        if is_learner:
            body["isLearner"] = True
        answer = self.transport.call("/v3/cluster/member/add", body)
        return member_from_json(answer.get("member") or {})

    def member_remove(self, member_id: int) -> None:
        self.transport.call("/v3/cluster/member/remove", {"ID": str(member_id)})

    def member_promote(self, member_id: int) -> None:
        self.transport.call("/v3/cluster/member/promote", {"ID": str(member_id)})

    # -- maintenance -------------------------------------------------------------------------
    def status(self) -> dict:
        """The answering member's status, integers decoded; keys as etcd names them."""
        answer = self.transport.call("/v3/maintenance/status", {})
        header = answer.get("header") or {}
        return {
            "version": answer.get("version", ""), "member_id": to_int(header.get("member_id")),
            "cluster_id": to_int(header.get("cluster_id")), "revision": to_int(header.get("revision")),
            "leader": to_int(answer.get("leader")), "raft_term": to_int(answer.get("raftTerm")),
            "raft_index": to_int(answer.get("raftIndex")), "raft_applied_index": to_int(answer.get("raftAppliedIndex")),
            "db_size": to_int(answer.get("dbSize")), "db_size_in_use": to_int(answer.get("dbSizeInUse")),
            "is_learner": bool(answer.get("isLearner")), "errors": list(answer.get("errors") or []),
            # etcd 3.6 reports its --quota-backend-bytes; 3.5 does not (0).
            "db_size_quota": to_int(answer.get("dbSizeQuota")),
        }

    def hash_kv(self, revision: int = 0) -> tuple[int, int, int]:
        """(hash, compact revision, revision) of the answering member's MVCC store (one cluster only).

        Before etcd 3.5.10 the call answers on /v3/maintenance/hash (and /hashkv is 404).
        """
        body = {"revision": str(revision)} if revision else {}
        try:
            answer = self.transport.call("/v3/maintenance/hashkv", body)
        except EtcdError as exc:
            if exc.status != 404:
                raise
            answer = self.transport.call("/v3/maintenance/hash", body)
        return to_int(answer.get("hash")), to_int(answer.get("compact_revision")), header_revision(answer)

    def alarms(self) -> list[dict]:
        answer = self.transport.call("/v3/maintenance/alarm", {"action": "GET"})
        return [{"member_id": to_int(a.get("memberID")), "alarm": a.get("alarm", "NONE")} for a in answer.get("alarms") or []]

    def alarm_disarm(self, member_id: int, alarm: str) -> None:
        self.transport.call("/v3/maintenance/alarm", {"action": "DEACTIVATE", "memberID": str(member_id), "alarm": alarm})

    def defragment(self) -> None:
        """Rewrites the answering member's backend without its free pages; the member answers nothing else meanwhile."""
        self.transport.call("/v3/maintenance/defragment", {})

    def snapshot(self) -> Iterator[bytes]:
        """The backend snapshot as blobs; concatenated they are the file etcdctl snapshot save writes."""
        with self.transport.stream("/v3/maintenance/snapshot", {}) as stream:
            for message in stream.messages():
                blob = message.get("blob")
                if blob:
                    yield unb64(blob)


class Watch:
    """A watch through the gateway, on a chunked request body so progress requests can be sent.

    ``next(timeout)`` returns a list of events (possibly empty for a progress answer) or None
    when nothing came. ``request_progress()`` asks etcd for a progress answer: it comes after
    every pending event, only once the watcher is synced, and carries the revision up to which
    all events have been sent (``progress_revision``).
    """

    def __init__(self, transport, key: bytes, range_end: bytes | None, start_revision: int, prev_kv: bool) -> None:
        create: dict = {"key": b64(key)}
        if range_end:
            create["range_end"] = b64(range_end)
        if start_revision:
            create["start_revision"] = str(start_revision)
        if prev_kv:
            create["prev_kv"] = True
        self.start_revision = start_revision
        self.progress_revision = 0  # all events up to this revision have been delivered
        self.last_revision = start_revision - 1 if start_revision else 0
        self._stream = transport.stream("/v3/watch", {"create_request": create}, chunked=True)
        self.endpoint = self._stream.endpoint.url
        self.watch_id = None
        first = self._read(None)
        if first is None or not first.get("created"):
            self.close()
            raise EtcdError(f"the watch was not created: {first!r}", endpoint=self.endpoint)
        self._check_canceled(first)
        self.watch_id = to_int(first.get("watch_id"))

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()

    def request_progress(self) -> None:
        self._stream.send({"progress_request": {}})

    def _read(self, timeout: float | None) -> dict | None:
        message = self._stream.read(timeout)
        if message is None and self._stream.ended:
            raise EtcdError("etcd closed the watch stream", endpoint=self.endpoint)
        return message

    def _check_canceled(self, message: dict) -> None:
        if not message.get("canceled"):
            return
        self.close()
        compact = to_int(message.get("compact_revision"))
        if compact:
            raise EtcdError(f"cannot watch from revision {self.start_revision}: it was compacted "
                            f"(the oldest revision left is {compact})", code=OUT_OF_RANGE, endpoint=self.endpoint)
        raise EtcdError(f"etcd canceled the watch: {message.get('cancel_reason') or 'no reason given'}", endpoint=self.endpoint)

    def next(self, timeout: float) -> list | None:
        message = self._read(timeout)
        if message is None:
            return None
        self._check_canceled(message)
        events = [event_from_json(e) for e in message.get("events") or []]
        if events:
            self.last_revision = max(self.last_revision, events[-1].revision)
        elif not message.get("created"):
            # A progress answer (watch_id -1 for a stream-wide progress request, the watch's own
            # id for a progress notification): every event up to header.revision was sent.
            revision = header_revision(message)
            self.progress_revision = max(self.progress_revision, revision)
            self.last_revision = max(self.last_revision, revision)
        return events
