# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""etcd_mirror's backend: a copy of a prefix from one cluster to another, with a defined end.

1. Copy: every key under the prefix at one source revision R (the first page pins it, the next
   pages are read at R), written in batched transactions (``batching``). Leases are re-granted on
   the destination with their remaining TTL and the keys attached to them.
2. Follow: a watch delivers the source's puts and deletes after R, applied in batches (the last
   write of a key wins within a batch). The watch starts at R itself (events up to R are
   skipped): etcd answers no progress request on a watch that starts at a future revision. When
   the follow time is over, a progress request is sent; its answer comes after every pending
   event, with the revision P up to which all events were sent: once the events before it are
   applied, the destination holds the source's state at P ("caught up"). A broken stream is
   reopened from the last applied revision.
3. Verify: key count and a client-side content hash (``hashing``) of the source at revision P
   and of the destination, which nobody else writes.
4. Optionally raise the destination's revision above the source's, with writes of a scratch key
   (then deleted), so that resource versions never go backwards for clients moving over.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.batching import (
    DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS, Write, plan_batches)
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient, op_delete, op_put
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.codec import prefix_range, to_bytes
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import INVALID_ARGUMENT, OUT_OF_RANGE, TRANSPORT, EtcdError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.hashing import ContentHasher

LEASE_NOT_FOUND = "requested lease not found"
LEASE_EXISTS = "lease already exists"
# A new watch is unsynced until etcd's sync loop (every 100 ms) has run: a progress request before
# that is deferred. Wait this long after opening a stream before asking.
WATCH_SETTLE_SECONDS = 0.3
# Without any answer to a progress request for this long, open a new stream and ask again.
PROGRESS_RETRY_SECONDS = 2.0
# Apply pending follow events once this many writes are waiting, even while events keep coming.
FOLLOW_FLUSH_WRITES = 1024
# Watch streams lost (the source restarted, a connection broke) before giving up; 0.5 s to 4 s apart.
WATCH_RECONNECTS = 6
# Verifications before giving up: a leased key can expire between the caught-up revision and the
# reading of the destination; catching up again brings the source's delete.
VERIFY_ATTEMPTS = 3
# Connections writing the revision bump in parallel (with fsync on, etcd batches them in one raft round).
BUMP_WORKERS = 4


@dataclasses.dataclass(frozen=True)
class MirrorSettings:
    prefix: bytes = b""
    dest_prefix: bytes = b""
    overwrite: bool = False
    follow_seconds: float = 0.0
    catch_up_timeout: float = 60.0
    page_size: int = 1000
    max_txn_ops: int = DEFAULT_MAX_TXN_OPS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    verify: bool = True
    min_dest_revision_above_source: bool = False
    revision_margin: int = 1000
    revision_bump_key: bytes = b"/kubeforge/mirror-revision-bump"
    revision_bump_limit: int = 100000

    def dest_key(self, key: bytes) -> bytes:
        return self.dest_prefix + key[len(self.prefix):]


def settings_from_params(p: dict) -> MirrorSettings:
    prefix = to_bytes(p.get("prefix") or "")
    if p.get("strip_prefix"):
        dest_prefix = b""
    elif p.get("dest_prefix") is not None:
        dest_prefix = to_bytes(p["dest_prefix"])
    else:
        dest_prefix = prefix
    for name in ("page_size", "max_txn_ops", "max_request_bytes"):
        if p.get(name) is not None and int(p[name]) < 1:
            raise EtcdError(f"{name} must be at least 1", code=INVALID_ARGUMENT)
    defaults = MirrorSettings()
    return MirrorSettings(
        prefix=prefix, dest_prefix=dest_prefix, overwrite=bool(p.get("overwrite")),
        follow_seconds=float(p.get("follow_seconds") or 0), catch_up_timeout=float(p.get("catch_up_timeout") or defaults.catch_up_timeout),
        page_size=int(p.get("page_size") or defaults.page_size), max_txn_ops=int(p.get("max_txn_ops") or defaults.max_txn_ops),
        max_request_bytes=int(p.get("max_request_bytes") or defaults.max_request_bytes), verify=p.get("verify", True) is not False,
        min_dest_revision_above_source=bool(p.get("min_dest_revision_above_source")),
        revision_margin=int(p.get("revision_margin") if p.get("revision_margin") is not None else defaults.revision_margin),
        revision_bump_key=to_bytes(p.get("revision_bump_key") or defaults.revision_bump_key),
        revision_bump_limit=int(p.get("revision_bump_limit") if p.get("revision_bump_limit") is not None else defaults.revision_bump_limit))


def ranges_overlap(a: tuple[bytes, bytes], b: tuple[bytes, bytes]) -> bool:
    """Whether two [key, range_end) ranges share a key; range_end b"\\0" means "to the end"."""
    def end(r):
        return None if r[1] == b"\0" else r[1]
    a_end, b_end = end(a), end(b)
    return (b_end is None or a[0] < b_end) and (a_end is None or b[0] < a_end)


def bump_plan(source_revision: int, dest_revision: int, margin: int) -> int:
    """How many scratch-key puts bring the destination revision above source_revision + margin."""
    return max(0, source_revision + margin + 1 - dest_revision)


class EtcdMirrorBackend:
    def __init__(self, source: EtcdClient, dest: EtcdClient, settings: MirrorSettings, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.source = source
        self.dest = dest
        self.s = settings
        self.clock = clock
        self.sleep = sleep
        self.src_range = prefix_range(settings.prefix)
        self.dst_range = prefix_range(settings.dest_prefix)
        self.leases: dict = {}  # source lease id -> destination lease id (0: expired, keys kept without lease)
        self.leases_copied = 0
        self.txns = 0

    # -- leases ------------------------------------------------------------------------------
    def _dest_lease(self, source_lease: int) -> int:
        if not source_lease:
            return 0
        if source_lease not in self.leases:
            ttl = self.source.lease_time_to_live(source_lease)[0]
            dest_lease = 0
            if ttl > 0:
                ttl += 1  # etcd rounds the remaining TTL down: never expire before the source does
                try:  # the same ID where it is free keeps the two clusters easy to compare
                    dest_lease = self.dest.lease_grant(ttl, source_lease)[0]
                except EtcdError as exc:
                    if not exc.has(LEASE_EXISTS):
                        raise
                    dest_lease = self.dest.lease_grant(ttl)[0]
                self.leases_copied += 1
            self.leases[source_lease] = dest_lease
        return self.leases[source_lease]

    # -- writing -----------------------------------------------------------------------------
    def _apply(self, writes: list) -> None:
        for batch in plan_batches(writes, self.s.max_txn_ops, self.s.max_request_bytes):
            try:
                self._txn(batch)
            except EtcdError as exc:
                if not exc.has(LEASE_NOT_FOUND):
                    raise
                # A destination lease ran out between its grant and this write: its keys expire
                # on the source too, and the watch brings their deletes.
                gone = {w.lease for w in batch if w.lease and self.dest.lease_time_to_live(w.lease)[0] <= 0}
                for source_lease, dest_lease in list(self.leases.items()):
                    if dest_lease in gone:
                        self.leases[source_lease] = 0
                self._txn([dataclasses.replace(w, lease=0) if w.lease in gone else w for w in batch])

    def _txn(self, batch: list) -> None:
        self.dest.txn([op_put(w.key, w.value, w.lease) if w.value is not None else op_delete(w.key) for w in batch])
        self.txns += 1

    # -- phases ------------------------------------------------------------------------------
    def copy(self) -> tuple[int, int]:
        """(source revision, keys copied) of the consistent copy.

        The pages are read ahead by a thread on a connection of its own, so that reading the source
        and writing the destination overlap.
        """
        revision, keys = 0, 0
        try:
            for page in _read_ahead(self.source, lambda reader: reader.pages(*self.src_range, page_size=self.s.page_size)):
                revision = page.revision
                self._apply([Write(self.s.dest_key(kv.key), kv.value, self._dest_lease(kv.lease)) for kv in page.kvs])
                keys += len(page.kvs)
        except EtcdError as exc:
            if exc.compacted:
                raise EtcdError(f"the source compacted revision {revision} during the copy: copy again with overwrite, and compact "
                                "less often while mirroring", code=OUT_OF_RANGE, result={"keys_copied": keys}) from exc
            raise
        return revision, keys

    def follow(self, revision: int, follow_seconds: float | None = None) -> tuple[int, int]:
        """Apply the source's changes after revision until caught up; (caught-up revision, events applied)."""
        events = 0
        broken = 0
        applied = revision  # every source change up to here is on the destination
        follow_until = self.clock() + (self.s.follow_seconds if follow_seconds is None else follow_seconds)
        give_up = follow_until + self.s.catch_up_timeout
        while True:
            try:
                # From the applied revision itself, never from a future one: etcd answers no progress
                # request for a watch whose start revision is above the store's (3.5.8+).
                with self.source.watch(*self.src_range, start_revision=applied) as watch:
                    outcome = self._follow_stream(watch, applied, follow_until, give_up)
            except EtcdError as exc:
                if exc.compacted:
                    raise EtcdError(f"cannot follow the source from revision {applied + 1}: {exc.message}. Mirror again with "
                                    "overwrite, and compact less often while mirroring", code=OUT_OF_RANGE) from exc
                if exc.code != TRANSPORT:
                    raise
                outcome = _Outcome(applied=applied, error=exc)  # the source is unreachable for now
            events += outcome.events
            applied = outcome.applied
            if outcome.caught_up:
                return outcome.caught_up, events
            if outcome.error is not None:
                broken += 1
                if broken > WATCH_RECONNECTS or self.clock() >= give_up:
                    raise EtcdError(f"lost the watch on the source {broken} times: {outcome.error}", result={"events_followed": events})
                self.sleep(min(0.25 * 2 ** broken, 4.0))

    def _follow_stream(self, watch, applied: int, follow_until: float, give_up: float) -> "_Outcome":
        """Follow on one watch stream until caught up, the stream breaks, or a progress answer does not come."""
        outcome = _Outcome(applied=applied)
        pending: list = []
        opened = last_message = self.clock()
        asked_at = None
        while True:
            now = self.clock()
            if now >= give_up:
                raise EtcdError(f"not caught up with the source within {self.s.catch_up_timeout:g}s after the follow time "
                                f"(last change applied: revision {outcome.applied}): are writers still running faster than the copy?")
            if asked_at is None and now >= follow_until and now >= opened + WATCH_SETTLE_SECONDS:
                watch.request_progress()
                asked_at = now
            elif asked_at is not None and now - max(asked_at, last_message) >= PROGRESS_RETRY_SECONDS:
                # etcd defers a progress request that came while the watcher was catching up, and may
                # then never answer it if no event follows: open a new stream and ask again.
                self._flush(pending, outcome)
                return outcome
            try:
                batch = watch.next(min(0.2, max(0.01, follow_until - now)) if now < follow_until else 0.2)
            except EtcdError as exc:
                if exc.compacted:
                    raise
                # The stream broke (a member stopping ends it with "server closed the stream without
                # sending trailers", code 13): follow on a new one from what was applied.
                self._flush(pending, outcome)
                outcome.error = exc
                return outcome
            if batch is None:  # idle: the destination catches up meanwhile
                self._flush(pending, outcome)
                continue
            last_message = now
            fresh = [e for e in batch if e.revision > applied]  # the watch starts at an applied revision
            if fresh:
                outcome.events += len(fresh)
                pending.extend(Write(self.s.dest_key(e.kv.key), None) if e.type == "DELETE"
                               else Write(self.s.dest_key(e.kv.key), e.kv.value, self._dest_lease(e.kv.lease)) for e in fresh)
                outcome.seen = max(outcome.seen, fresh[-1].revision)
                if len(pending) >= FOLLOW_FLUSH_WRITES:
                    self._flush(pending, outcome)
            elif not batch and asked_at is not None and watch.progress_revision:
                self._flush(pending, outcome)
                outcome.caught_up = outcome.applied = max(watch.progress_revision, outcome.applied)
                return outcome

    def _flush(self, pending: list, outcome: "_Outcome") -> None:
        """Apply the pending writes; everything seen so far is then on the destination."""
        if pending:
            self._apply(pending)
            pending.clear()
        outcome.applied = max(outcome.applied, outcome.seen)

    def digest(self, client: EtcdClient, key_range: tuple, prefix: bytes, revision: int = 0) -> tuple[int, str, int]:
        """(keys, content hash, revision read at) of a range, keys relative to prefix."""
        hasher = ContentHasher(prefix)
        read_at = revision
        for page in client.pages(*key_range, revision=revision, page_size=self.s.page_size):
            read_at = page.revision
            for kv in page.kvs:
                hasher.update(kv.key, kv.value)
        return hasher.count, hasher.hexdigest(), read_at

    def verify(self, source_revision: int = 0) -> dict:
        """Both digests, read at the same time (the source's on a connection of its own, in a thread)."""
        source_digest: list = []

        def read_source() -> None:
            reader = self.source.clone()
            try:
                source_digest.append(self.digest(reader, self.src_range, self.s.prefix, source_revision))
            except EtcdError as exc:
                source_digest.append(exc)
            finally:
                reader.close()

        thread = threading.Thread(target=read_source, daemon=True)
        thread.start()
        try:
            dst_keys, dst_hash, dst_rev = self.digest(self.dest, self.dst_range, self.s.dest_prefix)
        finally:
            thread.join()
        if isinstance(source_digest[0], EtcdError):
            raise source_digest[0]
        src_keys, src_hash, src_rev = source_digest[0]
        return {"equal": src_keys == dst_keys and src_hash == dst_hash, "source_revision": src_rev, "dest_revision": dst_rev,
                "source_keys": src_keys, "dest_keys": dst_keys, "source_hash": src_hash, "dest_hash": dst_hash}

    def verify_caught_up(self, caught_up: int) -> tuple[dict, int, int]:
        """(verification, caught-up revision, events followed meanwhile): verify, catching up again when they differ."""
        events = 0
        attempts = 1
        verification = self.verify(caught_up)
        while not verification["equal"] and attempts < VERIFY_ATTEMPTS:
            caught_up, more = self.follow(caught_up, follow_seconds=0)
            events += more
            attempts += 1
            verification = self.verify(caught_up)
        verification["attempts"] = attempts
        return verification, caught_up, events

    def bump_revision(self, check_mode: bool) -> tuple[int, int]:
        """(puts, destination revision) so that the destination revision ends above the source's."""
        key = self.s.revision_bump_key
        if ranges_overlap((key, key + b"\0"), self.dst_range) and self.s.dest_prefix:
            raise EtcdError(f"revision_bump_key {key!r} lies under the destination prefix: choose a key outside it", code=INVALID_ARGUMENT)
        if self.dest.get(key) is not None:
            raise EtcdError(f"revision_bump_key {key!r} exists on the destination: it must be a key nobody uses", code=INVALID_ARGUMENT)
        puts = 0
        dest_revision = self.dest.count(key, None)[1]
        while True:
            source_revision = self.source.count(key, None)[1]
            needed = bump_plan(source_revision, dest_revision, self.s.revision_margin)
            if needed == 0 or check_mode:
                break
            if puts + needed > self.s.revision_bump_limit:
                raise EtcdError(
                    f"the destination revision {dest_revision} would need {puts + needed} writes to pass the source's {source_revision} "
                    f"(+ revision_margin {self.s.revision_margin}), more than revision_bump_limit {self.s.revision_bump_limit}: "
                    "seed the destination from a snapshot of the source restored with bump_revision instead, then mirror with "
                    "overwrite", code=INVALID_ARGUMENT)
            dest_revision = self._put_many(key, needed)
            puts += needed
        if puts:
            dest_revision = self.dest.delete_range(key)[1]
        return (needed if check_mode else puts), dest_revision

    def _put_many(self, key: bytes, count: int) -> int:
        """count puts of key (each one revision), over several connections; the highest revision reached."""
        workers = min(BUMP_WORKERS, max(1, count // 64))
        shares = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
        reached = [0] * workers
        errors: list = []

        def work(index: int, client: EtcdClient) -> None:
            try:
                for _put in range(shares[index]):
                    reached[index] = client.put(key, b"")
            except EtcdError as exc:
                errors.append(exc)
            finally:
                if client is not self.dest:
                    client.close()

        clients = [self.dest] + [self.dest.clone() for _worker in range(1, workers)]
        threads = [threading.Thread(target=work, args=(i, c), daemon=True) for i, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return max(reached)

    def _refuse_same_range(self) -> None:
        if self.source.status()["cluster_id"] == self.dest.status()["cluster_id"] and ranges_overlap(self.src_range, self.dst_range):
            raise EtcdError("the source and the destination are the same cluster and their ranges overlap", code=INVALID_ARGUMENT)

    def run(self, check_mode: bool = False) -> dict:
        started = self.clock()
        self._refuse_same_range()
        result: dict = {"changed": False, "keys_copied": 0, "leases_copied": 0, "events_followed": 0, "source_revision": 0,
                        "caught_up_revision": 0, "verification": None, "revision_bumps": 0, "deleted_before_copy": 0}
        dest_keys = self.dest.count(*self.dst_range)[0]
        copy = True
        if dest_keys and not self.s.overwrite:
            verification = self.verify()
            if not verification["equal"]:
                raise EtcdError(f"the destination already holds {dest_keys} keys under {self.s.dest_prefix!r} that differ from the "
                                "source: set overwrite to replace them", code=INVALID_ARGUMENT, result={"verification": verification})
            copy = False
            result.update(verification=verification, source_revision=verification["source_revision"],
                          caught_up_revision=verification["source_revision"])
        if copy and check_mode:
            keys, revision = self.source.count(*self.src_range)
            result.update(changed=True, keys_copied=keys, source_revision=revision, deleted_before_copy=dest_keys)
        elif copy:
            if dest_keys:
                result["deleted_before_copy"] = self.dest.delete_range(*self.dst_range)[0]
            copy_started = self.clock()
            revision, keys = self.copy()
            copy_seconds = self.clock() - copy_started
            caught_up, events = self.follow(revision)
            result.update(changed=True, keys_copied=keys, source_revision=revision, caught_up_revision=caught_up,
                          events_followed=events, leases_copied=self.leases_copied, copy_seconds=round(copy_seconds, 3),
                          keys_per_second=round(keys / copy_seconds, 1) if copy_seconds > 0 else 0.0, transactions=self.txns)
            if self.s.verify:
                result["verification"], result["caught_up_revision"], more = self.verify_caught_up(caught_up)
                result["events_followed"] += more
                if not result["verification"]["equal"]:
                    raise EtcdError("verification failed: the destination differs from the source at revision "
                                    f"{result['caught_up_revision']} (was something else writing to the destination?)", result=result)
        if self.s.min_dest_revision_above_source:
            bumps, dest_revision = self.bump_revision(check_mode)
            result["revision_bumps"] = bumps
            result["changed"] = result["changed"] or bumps > 0
            result["dest_revision"] = dest_revision
        else:
            result["dest_revision"] = self.dest.count(*self.dst_range)[1]
        result["duration"] = round(self.clock() - started, 3)
        result["diff"] = {"before": {"dest_keys": dest_keys},
                          "after": {"dest_keys": result["verification"]["dest_keys"] if result["verification"] else result["keys_copied"]}}
        return result


def _read_ahead(client: EtcdClient, pages: Callable[[EtcdClient], object], depth: int = 2):
    """The pages of pages(reader) where reader is a clone of client, read by a thread up to depth pages ahead."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def hand_over(item) -> bool:
        """Queue item unless the consumer has stopped (never blocks forever)."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        reader = client.clone()
        try:
            for page in pages(reader):
                if not hand_over(page):
                    return
            hand_over(done)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # handed to the consumer, which raises it
            hand_over(exc)
        finally:
            reader.close()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


@dataclasses.dataclass
class _Outcome:
    """What one watch stream achieved."""

    applied: int  # every source change up to this revision is on the destination
    seen: int = 0  # the last source revision received
    events: int = 0
    caught_up: int = 0  # the progress revision, once caught up
    error: EtcdError | None = None  # the stream broke
