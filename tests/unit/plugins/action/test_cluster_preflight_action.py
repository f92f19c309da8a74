# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the cluster_preflight action reads a host's cluster-wide settings (the rule on them: check_one_value in
tests/unit/plugins/module_utils/test_preflight.py; the whole play: tests/unit/playbooks/test_preflight_play.py)."""
from __future__ import annotations

import os

from ansible.errors import AnsibleUndefinedVariable

from ansible.parsing.dataloader import DataLoader

from ansible_collections.kubeforge.cluster.plugins.action.cluster_preflight import (
    ROLES_DIR, ActionModule, one_value_settings, role_argument_specs)
from ansible_collections.kubeforge.cluster.plugins.module_utils import _preflight


class HostVars(dict):
    """A host's variables that render on access, as Ansible's hostvars do: a value naming an undefined one fails."""

    def get(self, key, default=None):
        value = super().get(key, default)
        if isinstance(value, str) and "{{" in value:
            raise AnsibleUndefinedVariable(f"'{value}' names an undefined variable")
        return value


def test_the_cluster_wide_settings_and_those_of_the_roles_the_cis_check_judges_take_one_value():
    names = one_value_settings(role_argument_specs(DataLoader())[0])
    assert names[:len(_preflight.REQUIRED_SETTINGS)] == _preflight.REQUIRED_SETTINGS
    assert {"control_plane_tls_min_version", "kubelet_bootstrap_protect_kernel_defaults", "ipvs_scheduler"} <= set(names)
    assert len(names) == len(set(names))


def test_every_setting_named_is_read_and_an_unset_one_is_none():
    settings = ActionModule._settings_of(HostVars(kube_version="1.36.4", ansible_host="192.0.2.1"), _preflight.REQUIRED_SETTINGS)
    assert set(settings) == set(_preflight.REQUIRED_SETTINGS)
    assert settings["kube_version"] == "1.36.4"
    assert settings["kube_pod_cidr"] is None


def test_a_setting_a_host_cannot_render_shows_why():
    settings = ActionModule._settings_of(HostVars(kubeforge_credentials_dir="{{ nowhere }}/credentials"), ("kubeforge_credentials_dir",))
    assert settings["kubeforge_credentials_dir"] == "(cannot be rendered: '{{ nowhere }}/credentials' names an undefined variable)"
    # Marked, so that the check of the roles' settings leaves it to the role, which renders it with its defaults.
    assert isinstance(settings["kubeforge_credentials_dir"], _preflight.UnrenderedValue)


def test_every_roles_options_are_read_from_its_argument_specs():
    specs, problems = role_argument_specs(DataLoader())
    assert problems == []
    assert set(specs) == {name for name in os.listdir(ROLES_DIR) if os.path.exists(os.path.join(ROLES_DIR, name, "meta", "argument_specs.yml"))}
    assert specs["coredns"]["coredns_replicas"]["type"] == "int"


def test_an_argument_spec_that_cannot_be_read_is_a_problem(tmp_path):
    for role, text in (("good", "argument_specs: {main: {options: {good_port: {type: int}}}}\n"), ("broken", "argument_specs: [\n"),
                       ("odd", "argument_specs: {other: {}}\n")):
        (tmp_path / role / "meta").mkdir(parents=True)
        (tmp_path / role / "meta" / "argument_specs.yml").write_text(text)
    (tmp_path / "no_spec").mkdir()
    specs, problems = role_argument_specs(DataLoader(), str(tmp_path))
    assert specs == {"good": {"good_port": {"type": "int"}}}
    assert [problem.split(" cannot be read")[0] for problem in problems] == ["roles/broken/meta/argument_specs.yml", "roles/odd/meta/argument_specs.yml"]
