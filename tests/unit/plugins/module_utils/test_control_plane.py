# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The control plane's command lines, config documents and encryption keys (module_utils/_control_plane)."""
from __future__ import annotations

import base64
import datetime

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _control_plane as cp

SETTINGS = {
    "version": "1.36.4", "node_ip": "10.0.0.11", "apiserver_port": 6443, "service_cidr": "10.96.0.0/12",
    "pod_cidr": "10.244.0.0/16", "node_cidr_mask_size": 24, "etcd_servers": ["https://10.0.0.11:2379", "https://10.0.0.12:2379"],
    "kubelet_tls_mode": "bootstrap", "pki_dir": "/etc/kubernetes/pki", "config_dir": "/etc/kubernetes",
    "audit_log_dir": "/var/log/kubernetes/audit", "audit_log_maxage": 30, "audit_log_maxbackup": 10, "audit_log_maxsize": 100,
    "tls_min_version": "VersionTLS12", "tls_cipher_suites": ["TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
    "service_account_issuer": "https://kubernetes.default.svc.cluster.local", "terminated_pod_gc_threshold": 12500, "extra_args": {},
}


def settings(**change):
    return {**SETTINGS, **change}


def args(component, **change):
    return dict(arg.split("=", 1) for arg in cp.component_args(component, settings(**change)))


@pytest.mark.parametrize("version", ["1.35.2", "1.36.4", "1.37.1"])
@pytest.mark.parametrize("component", cp.CONTROL_PLANE)
def test_every_default_flag_exists_and_none_is_deprecated(version, component):
    built = cp.component_args(component, settings(version=version))
    unknown, deprecated = cp.flag_problems(component, version.rsplit(".", 1)[0], built)
    assert (unknown, deprecated) == ([], [])


def test_values_are_rendered_as_the_command_line_takes_them():
    apiserver = args("kube-apiserver")
    assert apiserver["--authorization-mode"] == "Node,RBAC"
    assert apiserver["--anonymous-auth"] == "false"
    assert apiserver["--etcd-servers"] == "https://10.0.0.11:2379,https://10.0.0.12:2379"
    assert apiserver["--bind-address"] == apiserver["--advertise-address"] == "10.0.0.11"
    assert apiserver["--tls-cipher-suites"] == "TLS_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"


def test_bootstrap_tokens_only_in_bootstrap_mode():
    assert args("kube-apiserver")["--enable-bootstrap-token-auth"] == "true"
    assert "--enable-bootstrap-token-auth" not in args("kube-apiserver", kubelet_tls_mode="signed")


def test_extra_args_win_and_null_drops_a_default():
    extra = {"kube-scheduler": {"v": 4, "--bind-address": "127.0.0.2"}, "kube-apiserver": {"profiling": None}}
    assert args("kube-scheduler", extra_args=extra)["--v"] == "4"
    assert args("kube-scheduler", extra_args=extra)["--bind-address"] == "127.0.0.2"
    assert "--profiling" not in args("kube-apiserver", extra_args=extra)
    assert args("kube-controller-manager", extra_args=extra)["--v"] == "2"


def test_a_flag_the_version_lacks_is_refused():
    with pytest.raises(cp.ControlPlaneError, match="kube-apiserver 1.36 has no flag --insecure-port"):
        cp.component_args("kube-apiserver", settings(extra_args={"kube-apiserver": {"insecure-port": 0}}))
    # Added in 1.36: refused for 1.35.
    with pytest.raises(cp.ControlPlaneError, match="has no flag --tls-curve-preferences"):
        cp.component_args("kube-apiserver", settings(version="1.35.2", extra_args={"kube-apiserver": {"tls-curve-preferences": "X25519"}}))
    assert "--tls-curve-preferences" in args("kube-apiserver", extra_args={"kube-apiserver": {"tls-curve-preferences": "X25519"}})


@pytest.mark.parametrize("value", ["a b", "say \"hi\"", "back\\slash"])
def test_values_systemd_would_split_are_refused(value):
    with pytest.raises(cp.ControlPlaneError, match="not supported in flag values"):
        cp.component_args("kube-scheduler", settings(extra_args={"kube-scheduler": {"v": value}}))


def test_an_unsupported_version_is_refused():
    with pytest.raises(cp.ControlPlaneError, match="not supported"):
        cp.component_args("kube-scheduler", settings(version="1.30.0"))


def test_config_documents_are_checked_against_the_field_lists():
    for kind in ("KubeSchedulerConfiguration", "Policy"):
        assert cp.config_doc(kind, settings())["kind"] == kind
    doc = cp.scheduler_config(settings())
    doc["leaderElection"]["leaderElekt"] = True
    assert cp.unknown_config_fields(doc, "1.36") == ["leaderElection.leaderElekt"]
    assert cp.unknown_config_fields({**doc, "apiVersion": "kubescheduler.config.k8s.io/v1beta3"}, "1.36")[0].startswith("apiVersion")
    # Maps the lists do not expand are not looked into.
    assert cp.unknown_config_fields({**cp.audit_policy({}), "metadata": {"name": "x"}}, "1.36") == []


def test_the_encryption_configuration_encrypts_with_the_first_key_and_reads_plain_data():
    keys = cp.encryption_keys([], "ensure")
    doc = cp.config_doc("EncryptionConfiguration", settings(), keys)
    providers = doc["resources"][0]["providers"]
    assert providers == [{"secretbox": {"keys": keys}}, {"identity": {}}]
    assert doc["resources"][0]["resources"] == ["secrets"]
    with pytest.raises(cp.ControlPlaneError, match="no encryption key"):
        cp.encryption_config([])


def test_encryption_key_rotation_steps():
    [first] = cp.encryption_keys([], "ensure")
    assert len(base64.b64decode(first["secret"])) == 32
    assert cp.encryption_keys([first], "ensure") == [first]  # created once, kept
    added = cp.encryption_keys([first], "add")
    assert added[0] == first and len(added) == 2 and added[1]["secret"] != first["secret"]
    promoted = cp.encryption_keys(added, "promote")
    assert promoted == [added[1], first]
    assert cp.encryption_keys(promoted, "prune") == [added[1]]


@pytest.mark.parametrize("keys, message", [
    ([{"name": "a", "secret": base64.b64encode(b"x" * 16).decode()}], "has 16 bytes"),
    ([{"name": "a", "secret": "%%%"}], "not base64"),
    ([{"name": "a"}], "needs a name and a secret"),
    ([{"name": "a", "secret": base64.b64encode(b"x" * 32).decode()}] * 2, "duplicate"),
])
def test_a_damaged_key_file_is_refused(keys, message):
    with pytest.raises(cp.ControlPlaneError, match=message):
        cp.encryption_keys(keys, "ensure")


def test_rotating_without_a_key_or_with_an_unknown_action_fails():
    with pytest.raises(cp.ControlPlaneError, match="there is none yet"):
        cp.encryption_keys([], "add")
    with pytest.raises(cp.ControlPlaneError, match="unknown encryption key action"):
        cp.encryption_keys([], "rotate")


# --------------------------------------------------------------------------- the key file: retired keys

NOW = datetime.datetime(2025, 5, 1, 10, 0, 0, tzinfo=datetime.timezone.utc)


def key(name, byte=b"k"):
    return {"name": name, "secret": base64.b64encode(byte * 32).decode()}


def test_a_pruned_key_is_kept_as_retired_with_the_time_it_left():
    after = cp.encryption_key_file({"keys": [key("b", b"b"), key("a", b"a")]}, "prune", now=NOW)
    assert after == {"keys": [key("b", b"b")], "retired": [{**key("a", b"a"), "retired": "2025-05-01T10:00:00Z"}]}
    # A second prune keeps the retired key, and its time.
    again = cp.encryption_key_file(after, "prune", now=NOW + datetime.timedelta(days=1))
    assert again == after


@pytest.mark.parametrize("action", ["ensure", "add", "promote"])
def test_only_a_prune_retires_and_a_file_without_retired_keys_keeps_its_shape(action):
    after = cp.encryption_key_file({"keys": [key("b", b"b"), key("a", b"a")]}, action, now=NOW)
    assert set(after) == {"keys"}
    assert {"a", "b"} <= {k["name"] for k in after["keys"]}
    assert cp.encryption_key_file({"keys": [key("a")]}, "ensure") == {"keys": [key("a")]}  # what the first run wrote
    [created] = cp.encryption_key_file(None, "ensure")["keys"]  # no file yet
    assert created["name"].startswith("key-")


def test_retired_keys_wait_for_the_operator_and_one_put_back_leaves_retired():
    retired_a = {**key("a", b"a"), "retired": "2025-01-01T00:00:00Z"}
    after = cp.encryption_key_file({"keys": [key("c", b"c"), key("b", b"b")], "retired": [retired_a]}, "prune", now=NOW)
    assert after["retired"] == [retired_a, {**key("b", b"b"), "retired": "2025-05-01T10:00:00Z"}]
    # The operator moved a back to the end of keys (it decrypts again): it is no longer retired.
    back = cp.encryption_key_file({"keys": [key("c", b"c"), key("a", b"a")], "retired": after["retired"]}, "ensure", now=NOW)
    assert back == {"keys": [key("c", b"c"), key("a", b"a")], "retired": [after["retired"][1]]}
    # ... and deleted b from retired: the file has no retired keys left.
    assert cp.encryption_key_file({"keys": back["keys"], "retired": []}, "ensure") == {"keys": back["keys"]}


@pytest.mark.parametrize("data, message", [
    ({"keys": [key("a")], "retired": [{**key("a", b"x"), "retired": "2025-01-01T00:00:00Z"}]}, "different secrets: a"),
    ({"keys": [key("a")], "retired": [{"name": "b"}]}, "needs a name and a secret"),
    ({"keys": [key("a")], "retired": {"b": "x"}}, "must be a list"),
    ([key("a")], "must be a mapping"),
])
def test_a_damaged_retired_list_is_refused(data, message):
    with pytest.raises(cp.ControlPlaneError, match=message):
        cp.encryption_key_file(data, "ensure")


def test_the_encryption_store_is_what_the_apiserver_uses_extra_arguments_included():
    store = cp.encryption_store(settings())
    assert store == {"endpoints": SETTINGS["etcd_servers"], "ca_cert": "/etc/kubernetes/pki/etcd-ca.crt",
                     "client_cert": "/etc/kubernetes/pki/apiserver-etcd-client.crt",
                     "client_key": "/etc/kubernetes/pki/apiserver-etcd-client.key", "etcd_prefix": "/registry", "resources": ["secrets"]}
    assert store["resources"] == cp.encryption_config([key("a")])["resources"][0]["resources"]
    moved = cp.encryption_store(settings(extra_args={"kube-apiserver": {"etcd-prefix": "/kube", "etcd-servers": "https://e1:2379,https://e2:2379"}}))
    assert (moved["etcd_prefix"], moved["endpoints"]) == ("/kube", ["https://e1:2379", "https://e2:2379"])
