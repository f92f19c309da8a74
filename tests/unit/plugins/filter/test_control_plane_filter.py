# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The control_plane filters turn the collection's errors into AnsibleFilterError."""
from __future__ import annotations

import importlib
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.filter.control_plane import FilterModule

SETTINGS = {
    "version": "1.36.4", "node_ip": "10.0.0.11", "apiserver_port": 6443, "service_cidr": "10.96.0.0/12",
    "pod_cidr": "10.244.0.0/16", "etcd_servers": ["https://10.0.0.11:2379"], "kubelet_tls_mode": "signed",
    "pki_dir": "/etc/kubernetes/pki", "config_dir": "/etc/kubernetes", "audit_log_dir": "/var/log/kubernetes/audit",
    "audit_log_maxage": 30, "audit_log_maxbackup": 10, "audit_log_maxsize": 100, "tls_min_version": "VersionTLS12",
    "tls_cipher_suites": ["TLS_AES_128_GCM_SHA256"], "service_account_issuer": "https://kubernetes.default.svc.cluster.local",
    "terminated_pod_gc_threshold": 12500, "extra_args": {},
}

FILTERS = FilterModule().filters()


def test_filters_are_registered():
    assert sorted(FILTERS) == ["control_plane_args", "control_plane_config", "control_plane_encryption_key_file",
                               "control_plane_encryption_keys", "control_plane_encryption_store"]


def test_every_filter_has_its_documentation_file():
    directory = os.path.dirname(importlib.import_module("ansible_collections.kubeforge.cluster.plugins.filter.control_plane").__file__)
    for name in FILTERS:
        with open(os.path.join(directory, f"{name}.yml"), encoding="utf-8") as handle:
            assert yaml.safe_load(handle)["DOCUMENTATION"]["name"] == name


def test_args_and_config():
    assert "--anonymous-auth=false" in FILTERS["control_plane_args"](SETTINGS, "kube-apiserver")
    assert FILTERS["control_plane_config"](SETTINGS, "Policy")["apiVersion"] == "audit.k8s.io/v1"


def test_errors_become_filter_errors():
    with pytest.raises(AnsibleFilterError, match="control_plane_args: .*has no flag --insecure-port"):
        FILTERS["control_plane_args"]({**SETTINGS, "extra_args": {"kube-apiserver": {"insecure-port": 0}}}, "kube-apiserver")
    with pytest.raises(AnsibleFilterError, match="unknown config kind"):
        FILTERS["control_plane_config"](SETTINGS, "KubeletConfiguration")
    with pytest.raises(AnsibleFilterError, match="unknown encryption key action"):
        FILTERS["control_plane_encryption_keys"]([], "rotate")
    with pytest.raises(AnsibleFilterError, match="control_plane_encryption_key_file: .*must be a mapping"):
        FILTERS["control_plane_encryption_key_file"]([], "ensure")
