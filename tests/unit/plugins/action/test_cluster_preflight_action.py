# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the cluster_preflight action reads a host's cluster-wide settings (the rule on them: check_one_value in
tests/unit/plugins/module_utils/test_preflight.py; the whole play: tests/unit/playbooks/test_preflight_play.py)."""
from __future__ import annotations

from ansible.errors import AnsibleUndefinedVariable

from ansible.parsing.dataloader import DataLoader

from ansible_collections.kubeforge.cluster.plugins.action.cluster_preflight import ActionModule, one_value_settings, role_files
from ansible_collections.kubeforge.cluster.plugins.module_utils import _preflight


class HostVars(dict):
    """A host's variables that render on access, as Ansible's hostvars do: a value naming an undefined one fails."""

    def get(self, key, default=None):
        value = super().get(key, default)
        if isinstance(value, str) and "{{" in value:
            raise AnsibleUndefinedVariable(f"'{value}' names an undefined variable")
        return value


def test_the_cluster_wide_settings_and_those_of_the_roles_the_cis_check_judges_take_one_value():
    names = one_value_settings(role_files(DataLoader()))
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
