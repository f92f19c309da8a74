# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""etcd_defrag's backend: one member defragmented when it would give enough space back, and its NOSPACE alarm
disarmed once its database is under the quota again.

Compaction (etcd's own, and the apiserver's every five minutes) frees pages inside the database file but never
shrinks it: the file only grows, and a member whose file reaches --quota-backend-bytes raises a NOSPACE alarm, after
which the whole cluster refuses writes. Defragmenting rewrites the file without its free pages; the member answers
nothing else while it runs, so the playbook does one member at a time. The free space is the status call's dbSize
less dbSizeInUse; a member that has just been defragmented still shows a few free pages, hence a threshold.
"""

from __future__ import annotations

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient

NOSPACE = "NOSPACE"
# Raised by etcd's corruption check: the members' data differ. Rewriting a member's file then could make it worse.
CORRUPT = "CORRUPT"


def free_bytes(status: dict) -> int:
    """Bytes a defragmentation gives back: the database file's size less what its pages in use take."""
    return max(0, status["db_size"] - status["db_size_in_use"])


def sizes(status: dict) -> dict:
    return {"db_size": status["db_size"], "db_size_in_use": status["db_size_in_use"], "free_bytes": free_bytes(status)}


class EtcdDefragBackend:
    """Defragments the member that ``client`` reaches; ``defrag_client`` reaches the same member with a longer timeout."""

    def __init__(self, client: EtcdClient, defrag_client: EtcdClient, params: dict) -> None:
        self.client = client
        self.defrag_client = defrag_client
        self.params = params

    def _refuse_corruption(self, alarms: list) -> None:
        corrupt = sorted({f"{a['member_id']:x}" for a in alarms if a["alarm"] == CORRUPT})
        if corrupt:
            raise KubeforgeError(
                f"etcd has a CORRUPT alarm (members {', '.join(corrupt)}): the members' data differ, and no member is "
                "defragmented until that is resolved (etcd's data corruption recovery: replace the member that differs, "
                "or restore a snapshot).")

    def run(self, check_mode: bool) -> dict:
        before = self.client.status()
        member_id = before["member_id"]
        if before["is_learner"]:
            raise KubeforgeError(f"etcd member {member_id:x} is a learner: promote it first (etcd defragments voting members).")
        alarms = self.client.alarms()
        self._refuse_corruption(alarms)
        quota = before["db_size_quota"] or self.params["quota_bytes"]
        defragment = free_bytes(before) >= self.params["min_free_bytes"]
        now = sizes(before)
        after = now
        if defragment and check_mode:
            # What a defragmentation leaves: about the pages in use.
            after = {"db_size": before["db_size_in_use"], "db_size_in_use": before["db_size_in_use"], "free_bytes": 0}
        elif defragment:
            self.defrag_client.defragment()
            after = sizes(self.client.status())
        nospace = any(a["alarm"] == NOSPACE and a["member_id"] == member_id for a in alarms)
        disarm = nospace and self.params["disarm_nospace"] and after["db_size"] < quota
        if disarm and not check_mode:
            self.client.alarm_disarm(member_id, NOSPACE)
        result = {
            "changed": defragment or disarm,
            "defragmented": defragment,
            "member_id": f"{member_id:x}",
            "leader": before["leader"] == member_id,
            "before": now,
            "after": after,
            "quota_bytes": quota,
            "alarms_disarmed": [NOSPACE] if disarm else [],
            "nospace_alarm": nospace and not disarm,
            "diff": {"before": now, "after": after},
        }
        if nospace and not disarm:
            result["msg"] = (f"etcd member {member_id:x} keeps its NOSPACE alarm: its database ({after['db_size']} bytes) is not under the "
                             f"quota ({quota} bytes). The cluster refuses writes until it is: compact, defragment with a lower "
                             "min_free_bytes, or raise etcd_quota_backend_bytes.")
        return result
