# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_defrag's backend on a fake member: when it defragments, what check mode reports, the NOSPACE alarm, the refusals.

Real defragmentations, with a NOSPACE alarm raised by a small quota, are in tests/integration/test_live_defrag.py."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.defrag import EtcdDefragBackend

from .fakes import FakeTransport

MIB = 1 << 20
MEMBER = 0x8E9E05C52164694D


def status(db_size, in_use, leader=MEMBER, quota=None, learner=False):
    answer = {"header": {"member_id": str(MEMBER), "revision": "9"}, "leader": str(leader), "dbSize": str(db_size),
              "dbSizeInUse": str(in_use)}
    if quota:
        answer["dbSizeQuota"] = str(quota)
    if learner:
        answer["isLearner"] = True
    return answer


def alarm(kind, member=MEMBER):
    return {"memberID": str(member), "alarm": kind}


def backend(statuses, alarms=(), **params):
    """A backend whose member answers ``statuses`` in turn; the defragmentation goes through its own transport."""
    transport = FakeTransport({"/v3/maintenance/status": list(statuses), "/v3/maintenance/alarm": lambda body: (
        {"alarms": list(alarms)} if body["action"] == "GET" else {"alarms": [alarm(body["alarm"], int(body["memberID"]))]})})
    defrag_transport = FakeTransport({"/v3/maintenance/defragment": {}})
    params = {"min_free_bytes": 64 * MIB, "quota_bytes": 2048 * MIB, "disarm_nospace": True, **params}
    return EtcdDefragBackend(EtcdClient(transport), EtcdClient(defrag_transport), params), transport, defrag_transport


def test_a_member_with_enough_free_bytes_is_defragmented_and_its_sizes_reported():
    run, _transport, defrag = backend([status(300 * MIB, 100 * MIB, leader=1), status(100 * MIB + 8192, 100 * MIB, leader=1)])
    result = run.run(check_mode=False)
    assert defrag.paths() == ["/v3/maintenance/defragment"]
    assert result["changed"] and result["defragmented"] and not result["leader"] and result["member_id"] == "8e9e05c52164694d"
    assert result["before"] == {"db_size": 300 * MIB, "db_size_in_use": 100 * MIB, "free_bytes": 200 * MIB}
    assert result["after"] == {"db_size": 100 * MIB + 8192, "db_size_in_use": 100 * MIB, "free_bytes": 8192}
    assert result["diff"] == {"before": result["before"], "after": result["after"]} and result["alarms_disarmed"] == []


@pytest.mark.parametrize("free, defragmented", [(64 * MIB - 1, False), (64 * MIB, True)])
def test_the_threshold_is_the_free_bytes(free, defragmented):
    run, _transport, defrag = backend([status(100 * MIB + free, 100 * MIB), status(100 * MIB, 100 * MIB)])
    result = run.run(check_mode=False)
    assert result["defragmented"] is defragmented and result["changed"] is defragmented and result["leader"]
    assert defrag.paths() == (["/v3/maintenance/defragment"] if defragmented else [])


def test_check_mode_reports_the_sizes_a_defragmentation_would_leave_and_changes_nothing():
    run, transport, defrag = backend([status(300 * MIB, 100 * MIB)], alarms=[alarm("NOSPACE")])
    result = run.run(check_mode=True)
    assert result["changed"] and result["defragmented"] and result["alarms_disarmed"] == ["NOSPACE"]
    assert result["after"] == {"db_size": 100 * MIB, "db_size_in_use": 100 * MIB, "free_bytes": 0}
    assert defrag.calls == [] and [body["action"] for path, body in transport.calls if path.endswith("/alarm")] == ["GET"]


def test_the_nospace_alarm_is_disarmed_once_the_database_is_under_the_quota():
    run, transport, _defrag = backend([status(2048 * MIB, 1000 * MIB), status(1000 * MIB, 1000 * MIB)],
                                      alarms=[alarm("NOSPACE"), alarm("NOSPACE", member=7)])
    result = run.run(check_mode=False)
    assert result["alarms_disarmed"] == ["NOSPACE"] and not result["nospace_alarm"] and "msg" not in result
    # This member's alarm only: another member's is disarmed by its own run.
    assert transport.calls[-1] == ("/v3/maintenance/alarm", {"action": "DEACTIVATE", "memberID": str(MEMBER), "alarm": "NOSPACE"})


def test_a_member_still_over_the_quota_keeps_its_alarm_and_the_result_says_what_to_do():
    run, transport, _defrag = backend([status(2048 * MIB, 2040 * MIB)], alarms=[alarm("NOSPACE")])
    result = run.run(check_mode=False)
    assert not result["changed"] and result["nospace_alarm"] and result["alarms_disarmed"] == []
    assert "keeps its NOSPACE alarm" in result["msg"] and "etcd_quota_backend_bytes" in result["msg"]
    assert all(body["action"] == "GET" for path, body in transport.calls if path.endswith("/alarm"))


def test_the_quota_etcd_reports_wins_over_the_parameter():
    # etcd 3.6 reports its quota: 500 MiB here, so 600 MiB after the defragmentation is still over it.
    run, _transport, _defrag = backend([status(900 * MIB, 600 * MIB, quota=500 * MIB), status(600 * MIB, 600 * MIB, quota=500 * MIB)],
                                       alarms=[alarm("NOSPACE")])
    result = run.run(check_mode=False)
    assert result["quota_bytes"] == 500 * MIB and result["defragmented"] and result["nospace_alarm"]


def test_disarm_nospace_false_leaves_the_alarm():
    run, _transport, _defrag = backend([status(100 * MIB, 100 * MIB)], alarms=[alarm("NOSPACE")], disarm_nospace=False)
    result = run.run(check_mode=False)
    assert not result["changed"] and result["nospace_alarm"]


@pytest.mark.parametrize("statuses, alarms, message", [
    ([status(300 * MIB, 100 * MIB, learner=True)], [], "etcd member 8e9e05c52164694d is a learner: promote it first"),
    ([status(300 * MIB, 100 * MIB)], [alarm("CORRUPT", member=7), alarm("NOSPACE")], "etcd has a CORRUPT alarm (members 7)"),
])
def test_refused_before_any_change(statuses, alarms, message):
    run, _transport, defrag = backend(statuses, alarms=alarms)
    with pytest.raises(KubeforgeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run.run(check_mode=False)
    assert defrag.calls == []
