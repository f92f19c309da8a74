# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of the trust guard: compares what trust_anchor_info read on each control-plane
and etcd host (registered in the hosts' variables) with the controller's credentials directory,
and stops the run before anything is generated or pushed when they do not match
(plugins/module_utils/_pki/trust.py). Contacts no host itself."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import trust


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("results_var", "reinitialise"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        results_var = str(self._task.args.get("results_var") or "kubeforge_trust_anchors")
        reinitialise = boolean(self._task.args.get("reinitialise", False), strict=False)
        credentials_dir = str(self._templar.template(task_vars.get("kubeforge_credentials_dir")))
        expected = trust.cluster_hosts(task_vars["groups"])
        hostvars = task_vars["hostvars"]
        reports = {host: trust.answered(self._templar.template(hostvars[host].get(results_var))) for host in expected}

        verdict = trust.compare(trust.read_controller(credentials_dir), reports, expected, credentials_dir)
        decision, message = trust.outcome(verdict, credentials_dir, reinitialise)
        result.update(changed=False, problems=verdict.problems, hosts_read=sorted(h for h, r in reports.items() if r is not None),
                      msg=message)
        if decision == "refuse":
            raise AnsibleActionFail(message, result=result)
        if decision == "warn":
            self._display.warning(message)
        return result
