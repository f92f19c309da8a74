# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of recover_credentials.yml: rebuilds the credentials directory from what
trust_anchor_info (include_content) read on every host, through the pki plan read backwards
(plugins/module_utils/_pki/recover.py). Refuses, writing nothing, when a control-plane or etcd
host did not answer or the hosts disagree; moves a differing directory aside, never deletes.
Contacts no host itself; returns paths and host names, never a file's content."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import recover as _recover
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.trust import answered, cluster_hosts


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("plan", "results_var"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        plan = args.get("plan")
        if not isinstance(plan, dict) or "hosts" not in plan:
            raise AnsibleActionFail("plan must be the pki plan (the pki role's pki_plan fact)")
        results_var = str(args.get("results_var") or "recover_credentials_found")
        credentials_dir = str(self._templar.template(task_vars.get("kubeforge_credentials_dir")))
        groups = task_vars["groups"]
        hostvars = task_vars["hostvars"]
        hosts = cluster_hosts(groups, ("kube_control_plane", "etcd", "k8s_cluster"))
        reports = {host: answered(self._templar.template(hostvars[host].get(results_var))) for host in hosts}

        recovery = _recover.recover(plan, reports, cluster_hosts(groups), credentials_dir)
        result.update(changed=False, problems=recovery.problems, warnings_found=recovery.warnings, notes=recovery.notes)
        if recovery.problems:
            raise AnsibleActionFail(f"recover_credentials.yml refuses; nothing was written to {credentials_dir}:\n"
                                    + "\n".join(f"  - {problem}" for problem in recovery.problems), result=result)
        carried = _recover.carry_over(recovery, credentials_dir)
        try:
            outcome = _recover.settle(credentials_dir, recovery.files, plan.get("directories") or [],
                                      check_mode=bool(self._play_context.check_mode))
        except _recover.RecoverError as exc:
            raise AnsibleActionFail(str(exc), result=result) from exc
        for warning in recovery.warnings:
            self._display.warning(warning)
        if outcome["moved_aside_to"]:
            self._display.warning(f"{credentials_dir} held files that differ from what the hosts hold "
                                  f"({', '.join(outcome['conflicts'])}): it was moved aside to {outcome['moved_aside_to']}")
        result.update(outcome)
        result["carried_over"] = carried
        result["recovered"] = {_relative(path, credentials_dir): hosts for path, hosts in sorted(recovery.sources.items())}
        result["msg"] = (f"{len(recovery.files)} files recovered from the hosts into {credentials_dir}; "
                         f"{len(outcome['written'])} written")
        return result


def _relative(path: str, base: str) -> str:
    return path[len(base):].lstrip("/") if path.startswith(base) else path
