# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_defrag's backend against real etcd: a member filled up to a small quota raises NOSPACE and refuses writes; once
the keys are deleted and compacted, the defragmentation gives the space back and the alarm is disarmed."""
from __future__ import annotations

import time

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import client_from_params
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.defrag import EtcdDefragBackend, free_bytes
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError

pytestmark = pytest.mark.integration

QUOTA = 16 * 1024 * 1024
VALUE = b"x" * 100_000


def fill_until_nospace(etcd: EtcdClient, prefix: bytes) -> int:
    """Puts until etcd refuses one for lack of space; the number of puts it took."""
    for count in range(1000):
        try:
            etcd.put(prefix + b"%04d" % count, VALUE)
        except EtcdError as exc:
            assert exc.has("database space exceeded"), exc
            return count
    raise AssertionError(f"etcd took {1000 * len(VALUE)} bytes under a quota of {QUOTA}")


def defrag(cluster, member, check_mode=False, **params):
    options = {"min_free_bytes": 1024 * 1024, "quota_bytes": QUOTA, "disarm_nospace": True, **params}
    client = client_from_params(cluster.client_params(endpoints=[member.client_url]))
    slow = client_from_params(cluster.client_params(endpoints=[member.client_url], timeout=60.0))
    try:
        return EtcdDefragBackend(client, slow, options).run(check_mode=check_mode)
    finally:
        client.close()
        slow.close()


def test_a_member_over_its_quota_gets_its_space_back_and_takes_writes_again(clusters, connect):
    cluster = clusters(extra_args=("--quota-backend-bytes", str(QUOTA)))
    etcd = connect(cluster)
    puts = fill_until_nospace(etcd, b"/fill/")
    assert puts > 10 and [a["alarm"] for a in etcd.alarms()] == ["NOSPACE"]
    # Deleting and compacting frees pages inside the file; the file keeps its size and the alarm stays.
    etcd.compact(etcd.delete_range(b"/fill/", b"/fill0")[1], physical=True)
    full = etcd.status()
    assert full["db_size"] >= QUOTA * 0.9 and full["db_size_in_use"] < QUOTA / 4, full
    with pytest.raises(EtcdError, match="database space exceeded"):
        etcd.put(b"/refused", b"1")

    previewed = defrag(cluster, cluster.members[0], check_mode=True)
    assert previewed["changed"] and previewed["defragmented"] and previewed["alarms_disarmed"] == ["NOSPACE"]
    assert etcd.status()["db_size"] == full["db_size"] and etcd.alarms() != []

    done = defrag(cluster, cluster.members[0])
    assert done["changed"] and done["defragmented"] and done["alarms_disarmed"] == ["NOSPACE"] and not done["nospace_alarm"]
    assert done["before"]["db_size"] == full["db_size"] and done["after"]["db_size"] < QUOTA / 4, done
    assert etcd.alarms() == [] and etcd.put(b"/taken", b"1") > 0
    print(f"{puts} puts of {len(VALUE)} bytes to NOSPACE; defragmented from {done['before']['db_size']} to {done['after']['db_size']} bytes")

    again = defrag(cluster, cluster.members[0])
    assert not again["changed"] and not again["defragmented"] and again["after"]["free_bytes"] < 1024 * 1024, again


def test_only_the_member_named_is_defragmented(clusters, connect):
    cluster = clusters(size=3)
    etcd = connect(cluster)
    for count in range(60):
        etcd.put(b"/churn/%04d" % count, VALUE)
    etcd.compact(etcd.delete_range(b"/churn/", b"/churn0")[1], physical=True)
    members = {m.name: connect(cluster, endpoints=[m.client_url]) for m in cluster.members}
    # bbolt frees a page only once no read transaction can still see it: a few writes later here.
    deadline = time.monotonic() + 20
    while free_bytes(members["m1"].status()) < 2 * 1024 * 1024:
        assert time.monotonic() < deadline, members["m1"].status()
        etcd.put(b"/tick", b"1")
        time.sleep(0.2)
    sizes = {name: member.status()["db_size"] for name, member in members.items()}
    done = defrag(cluster, cluster.members[1])
    assert done["defragmented"] and done["after"]["db_size"] < sizes["m1"] / 2, (done, sizes)
    after = {name: member.status()["db_size"] for name, member in members.items()}
    assert after["m0"] == sizes["m0"] and after["m2"] == sizes["m2"] and after["m1"] == done["after"]["db_size"], (after, sizes)
