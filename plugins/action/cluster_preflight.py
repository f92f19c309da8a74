# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller-side preflight: reads the whole inventory, and the kernel facts the preflight play
gathered with kubeforge.cluster.node_facts, and runs every rule. It contacts no host itself.

For the CIS check it also renders the role variables each component's final settings are built
from (_cis.ROLE_VARIABLES), from the roles' own files, as the roles' tasks would see them. And it hands every
role's argument specs, with each host's values of the role settings the inventory sets, to the rule that
checks them (_preflight.check_role_settings)."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts, _cis, _preflight
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import trust
from ansible_collections.kubeforge.cluster.plugins.module_utils._inventory import node_address

# Cluster-wide settings the rules read (from inventory group_vars), plus the play's internal list
# of artifacts to check, the phases the entry playbook names and why it needs the whole cluster.
CLUSTER_SETTINGS = _preflight.REQUIRED_SETTINGS + ("kubeforge_required_artifacts", _preflight.PHASES_KEY, _preflight.WHOLE_CLUSTER_KEY,
                                                   _preflight.INSTALLS_VERSIONS_KEY)
# The preflight play's registered node_facts results: those of this run (facts are also cached between runs).
NODE_FACTS_RESULT = "kubeforge_trust_anchors"
# Hosts only in these groups are not cluster members (kubespray's bastion).
IGNORED_GROUPS = ("bastion",)
ROLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")


def role_files(loader, roles_dir: str = ROLES_DIR) -> dict:
    """{role: (its defaults, its vars)} of the roles whose final settings the CIS check judges (_cis.ROLE_VARIABLES); a
    file that cannot be read is its AnsibleError, which the reader of that role reports."""
    files = {}
    for role in _cis.ROLE_VARIABLES:
        try:
            files[role] = tuple(loader.load_from_file(os.path.join(roles_dir, role, part, "main.yml"), cache="none", trusted_as_template=True)
                                or {} for part in ("defaults", "vars"))
        except AnsibleError as exc:
            files[role] = exc
    return files


def role_argument_specs(loader, roles_dir: str = ROLES_DIR) -> tuple:
    """({role: the options of its meta/argument_specs.yml, entry point main} for every role, problems)."""
    specs, problems = {}, []
    for role in sorted(os.listdir(roles_dir)):
        path = os.path.join(roles_dir, role, "meta", "argument_specs.yml")
        if os.path.exists(path):
            try:
                specs[role] = loader.load_from_file(path)["argument_specs"]["main"].get("options") or {}
            except (AnsibleError, KeyError, TypeError) as exc:
                problems.append(f"roles/{role}/meta/argument_specs.yml cannot be read: {exc}")
    return specs, problems


def role_variables(templar, loader, task_vars: dict, extra_var_names=frozenset(), roles_dir: str = ROLES_DIR) -> tuple:
    """({name: value} of _cis.ROLE_VARIABLES, problems): each rendered as a task of its role sees it on
    this host - role defaults < inventory and facts < role vars < extra vars."""
    files = role_files(loader, roles_dir)
    values, problems = {}, []
    for role, names in _cis.ROLE_VARIABLES.items():
        try:
            if isinstance(files[role], AnsibleError):
                raise files[role]
            defaults, own = files[role]
            scope = {**defaults, **task_vars, **{name: value for name, value in own.items() if name not in extra_var_names}}
            rendered = templar.copy_with_new_env(available_variables=scope)
            values.update({name: rendered.template(scope[name]) for name in names})
        except (AnsibleError, KeyError) as exc:
            problems.append(f"the final settings of the {role} role could not be computed for the CIS check: {exc}")
    return values, problems


def one_value_settings(specs: dict) -> tuple:
    """The settings that take one value on every host: the cluster-wide ones, and the settings of the roles whose final
    settings the CIS check judges by the values of the host the preflight runs on (``specs``: role_argument_specs'
    answer; a role's options are its defaults, tests/unit/test_role_specs.py)."""
    names = list(_preflight.REQUIRED_SETTINGS)
    for role in _cis.ROLE_VARIABLES:
        names += [name for name in specs.get(role, {}) if name not in names]
    return tuple(names)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset()

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        groups = {name: list(members) for name, members in task_vars["groups"].items()}
        ignored = {h for g in IGNORED_GROUPS for h in groups.get(g, [])}
        members = set(groups.get("all", [])) - ignored | {h for g in _preflight.ROLE_GROUPS for h in groups.get(g, [])}
        hostvars = task_vars["hostvars"]
        # The play gathered node facts on its k8s_cluster hosts (those of kubeforge_preflight_node_hosts when a
        # day-2 playbook names them): those must have them. A host the play left out (--limit, or not named) is
        # checked only when its facts are cached from an earlier run.
        asked = set(task_vars.get("ansible_play_hosts_all") or []) & set(groups.get("k8s_cluster", []))
        named = task_vars.get("kubeforge_preflight_node_hosts")
        if named is not None:
            asked &= set(self._templar.template(named))
        settings_host = task_vars.get("inventory_hostname")
        specs, spec_problems = role_argument_specs(self._loader)
        names = one_value_settings(specs)
        options = {option for role_options in specs.values() for option in role_options}
        read = names + tuple(sorted(options - set(names)))
        seen = {}  # each host's values of the settings that take one value
        hosts = {}
        for name in sorted(members):
            host_vars = hostvars[name]  # each lookup gathers the host's variables anew
            hosts[name] = {"ip": self._templar.template(node_address(host_vars, name))}
            facts = self._templar.template((host_vars.get("ansible_facts") or {}).get("kubeforge_node"))
            if facts is not None or name in asked:
                hosts[name]["kubeforge_node"] = facts
            read_now = ((host_vars.get(NODE_FACTS_RESULT) or {}).get("ansible_facts") or {}).get("kubeforge_node")
            if read_now:
                hosts[name][_preflight.LINKED_VERSIONS_KEY] = self._templar.template(read_now.get(_preflight.LINKED_VERSIONS_KEY))
            settings = self._settings_of(host_vars, read)
            seen[name] = {key: settings[key] for key in names}
            hosts[name][_preflight.ROLE_SETTINGS_KEY] = {key: settings[key] for key in options if settings[key] is not None}
        reference = seen[settings_host] if settings_host in seen else self._settings_of(hostvars[settings_host], names)
        for name, settings in seen.items():
            differing = {key: value for key, value in settings.items() if value != reference.get(key)}
            if differing:
                hosts[name][_preflight.DIFFERING_SETTINGS_KEY] = differing
        cluster = {key: self._templar.template(task_vars.get(key)) for key in CLUSTER_SETTINGS}
        cluster[_preflight.SETTINGS_HOST_KEY] = settings_host
        cluster[_preflight.ROLE_SPECS_KEY] = specs
        cluster[_preflight.SETTINGS_HOST_VALUES_KEY] = {key: reference.get(key) for host in hosts.values()
                                                        for key in host.get(_preflight.DIFFERING_SETTINGS_KEY, {})}
        cluster[_preflight.ROLE_VARS_KEY], render_problems = role_variables(self._templar, self._loader, task_vars,
                                                                            frozenset(load_extra_vars(self._loader)))

        # The phase-order rule (with the phases the playbook names): the run's tags, and whether the controller holds a
        # trust anchor.
        cluster[_preflight.TAGS_KEY] = (task_vars.get("ansible_run_tags"), task_vars.get("ansible_skip_tags"))
        cluster[_preflight.LIMIT_KEY] = task_vars.get("ansible_limit")
        credentials = cluster.get("kubeforge_credentials_dir")
        cluster[_preflight.CONTROLLER_HAS_CA_KEY] = not isinstance(credentials, str) or any(
            os.path.exists(os.path.join(credentials, anchor.controller_path)) for anchor in trust.ANCHORS)

        directory = cluster.get("kubeforge_artifacts_dir")
        digests = _artifacts.controller_digests(directory) if isinstance(directory, str) and directory else None
        cluster[_preflight.OFFLINE_DIGEST_KEY] = digests.digest if digests else None

        report = _preflight.validate(cluster, hosts, groups)
        report.problems.extend(spec_problems + render_problems)
        if digests:
            try:
                digests.save()
            except OSError as exc:  # a cache: the next run hashes again
                self._display.warning(f"cannot keep the offline artifacts' sha256 in {digests.path}: {exc}")
        for warning in report.warnings:
            self._display.warning(warning)
        result.update(changed=False, problems=report.problems, warnings_found=report.warnings, hosts_checked=len(hosts))
        if report.problems:
            raise AnsibleActionFail(report.message(), result=result)
        result["msg"] = f"Preflight passed for {len(hosts)} hosts"
        return result

    @staticmethod
    def _settings_of(host_vars, names) -> dict:
        """The settings ``names`` as a host sees them, rendered in its own variables (None where the inventory does not
        set one; a setting it cannot render shows why)."""
        settings = {}
        for key in names:
            try:
                settings[key] = host_vars.get(key)
            except AnsibleError as exc:
                settings[key] = _preflight.UnrenderedValue(f"(cannot be rendered: {exc.message})")
        return settings
