# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller side of the trust check and of recover_credentials.yml: what the action plugins take from
the play (the results registered on each host, the credentials directory, check mode) and what they return.
The logic is tested in tests/unit/plugins/module_utils/_pki/test_trust.py and test_recover.py."""
from __future__ import annotations

import json
import os
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.kubeforge.cluster.plugins.action import credentials_recover, trust_anchor_check
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import trust
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.trust import REINITIALISE_VAR

GROUPS = {"kube_control_plane": ["cp1", "cp2"], "etcd": ["cp1", "cp2"], "k8s_cluster": ["cp1", "cp2", "w1"]}
FP = ":".join(["AB"] * 32)
PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


class Templar:
    @staticmethod
    def template(value):
        return value


def action(module, args: dict, check_mode: bool = False):
    task = mock.MagicMock(async_val=0, check_mode=check_mode, args=args, action=module.__name__)
    connection = mock.MagicMock()
    connection._shell.tmpdir = "/tmp/unused"  # pylint: disable=protected-access
    play_context = mock.MagicMock(check_mode=check_mode)
    return module.ActionModule(task, connection, play_context, loader=None, templar=Templar())


def task_vars(tmp_path, results_var: str, results: dict) -> dict:
    return {"groups": GROUPS, "kubeforge_credentials_dir": str(tmp_path / "credentials"),
            "hostvars": {host: ({results_var: result} if result is not None else {}) for host, result in results.items()}}


def held(fp=FP) -> dict:
    return {"changed": False, "anchors": [{"anchor": "cluster-ca", "path": "/etc/kubernetes/pki/ca.crt", "fingerprint_sha256": fp}],
            "encryption_key_names": [], "errors": []}


# --------------------------------------------------------------------------- the check

def test_the_check_refuses_from_a_controller_without_credentials(tmp_path):
    results = {"cp1": held(), "cp2": held(), "w1": {"skipped": True}}
    plugin = action(trust_anchor_check, {"results_var": "kubeforge_trust_anchors", "reinitialise": False})
    with pytest.raises(AnsibleActionFail) as failure:
        plugin.run(task_vars=task_vars(tmp_path, "kubeforge_trust_anchors", results))
    assert f"cluster CA: the controller has none ({tmp_path}/credentials/pki/ca.crt); cp1, cp2 hold SHA256 {FP}" in str(failure.value)
    assert failure.value.result["hosts_read"] == ["cp1", "cp2"]


def test_the_escape_hatch_warns_and_goes_on(tmp_path):
    plugin = action(trust_anchor_check, {"reinitialise": "true"})
    with mock.patch.object(plugin, "_display") as display:
        result = plugin.run(task_vars=task_vars(tmp_path, "kubeforge_trust_anchors", {"cp1": held(), "cp2": None, "w1": None}))
    assert not result.get("failed") and result["changed"] is False
    assert display.warning.call_args[0][0].startswith(f"{REINITIALISE_VAR} is set")


def test_the_check_passes_when_the_hosts_hold_the_controllers(tmp_path):
    (tmp_path / "credentials" / "pki").mkdir(parents=True)
    (tmp_path / "credentials" / "pki" / "ca.crt").write_text(PEM)
    mine = trust.anchor_fingerprint(PEM, trust.ANCHOR_BY_NAME["cluster-ca"])
    result = action(trust_anchor_check, {}).run(task_vars=task_vars(tmp_path, "kubeforge_trust_anchors",
                                                                    {"cp1": held(mine), "cp2": held(mine), "w1": None}))
    assert result["problems"] == [] and result["hosts_read"] == ["cp1", "cp2"]


# --------------------------------------------------------------------------- recover

def plan(credentials) -> dict:
    ca = {"path": f"{credentials}/pki/ca.crt", "privatekey_path": f"{credentials}/pki/ca.key", "profile": "ca"}
    entry = {"src": ca["path"], "dest": "/etc/kubernetes/pki/ca.crt", "mode": "0644", "services": []}
    return {"hosts": {"cp1": [entry], "cp2": [entry]}, "kubeconfigs": [], "certificates": [ca],
            "service_account": {"private_key": f"{credentials}/pki/sa.key", "public_key": f"{credentials}/pki/sa.pub"},
            "directories": [credentials, f"{credentials}/pki"]}


def found(files: dict) -> dict:
    return {**held(), "files": files, "encryption_keys": [], "etcd_initial_env": None, "etcd_restore_marker": None}


@pytest.mark.parametrize("check_mode", [False, True])
def test_recover_writes_what_the_hosts_hold_and_returns_no_content(tmp_path, check_mode):
    credentials = str(tmp_path / "credentials")
    results = {"cp1": found({"/etc/kubernetes/pki/ca.crt": PEM}), "cp2": found({"/etc/kubernetes/pki/ca.crt": PEM}), "w1": None}
    plugin = action(credentials_recover, {"plan": plan(credentials), "results_var": "found"}, check_mode)
    result = plugin.run(task_vars=task_vars(tmp_path, "found", results))
    assert result["changed"] and result["written"] == ["pki/ca.crt"] and result["recovered"] == {"pki/ca.crt": ["cp1", "cp2"]}
    assert "AAAA" not in json.dumps(result)
    assert os.path.exists(os.path.join(credentials, "pki", "ca.crt")) is not check_mode


def test_recover_refuses_hosts_that_disagree_and_writes_nothing(tmp_path):
    credentials = str(tmp_path / "credentials")
    other = PEM.replace("AAAA", "BBBB")
    results = {"cp1": found({"/etc/kubernetes/pki/ca.crt": PEM}), "cp2": found({"/etc/kubernetes/pki/ca.crt": other}), "w1": None}
    with pytest.raises(AnsibleActionFail, match="recover_credentials.yml refuses; nothing was written") as failure:
        action(credentials_recover, {"plan": plan(credentials)}).run(task_vars=task_vars(tmp_path, "recover_credentials_found", results))
    assert "pki/ca.crt: the hosts hold 2 different versions (cp1 holds one; cp2 holds one)" in str(failure.value)
    assert not os.path.exists(credentials)
