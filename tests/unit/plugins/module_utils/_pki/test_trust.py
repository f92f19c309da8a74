# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The trust guard: what a host holds (read from a temporary root), what the controller holds, and the
comparison that refuses a controller whose credentials are not the hosts' (issue 10, section 1)."""
from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from ansible_collections.kubeforge.cluster.plugins.filter.pki import pki_plan
from ansible_collections.kubeforge.cluster.plugins.module_utils import _control_plane
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import snapshot as etcd_snapshot
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import inspect as pki_inspect
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import issue, trust
from ansible_collections.kubeforge.cluster.plugins.modules import trust_anchor_info

from .helpers import make_ca

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))))
CREDENTIALS = "/srv/inventory/credentials"
GROUPS = {"etcd": ["cp1", "cp2", "cp3"], "kube_control_plane": ["cp1", "cp2", "cp3"], "kube_node": ["w1"],
          "k8s_cluster": ["cp1", "cp2", "cp3", "w1"]}
HOSTVARS = {"cp1": {"kubeforge_node_ip": "10.0.0.11"}, "cp2": {"kubeforge_node_ip": "10.0.0.12"},
            "cp3": {"kubeforge_node_ip": "10.0.0.13"}, "w1": {"kubeforge_node_ip": "10.0.0.21"}}
SETTINGS = {"credentials_dir": CREDENTIALS, "service_cidr": "10.96.0.0/12", "cluster_domain": "cluster.local", "apiserver_port": 6443,
            "lb_address": "10.0.0.10", "lb_domain": "", "extra_sans": [], "endpoint": "https://127.0.0.1:6443",
            "kubelet_tls_mode": "bootstrap", "cluster_name": "kubernetes", "ca_valid_days": 3650, "cert_valid_days": 365}
FP = {name: ":".join([f"{index:02X}"] * 32) for index, name in enumerate(("A", "B", "C", "D", "E"), 10)}
KEY_A = {"name": "key-a", "secret": base64.b64encode(b"a" * 32).decode()}
KEY_B = {"name": "key-b", "secret": base64.b64encode(b"b" * 32).decode()}


def cert_pem(common_name="cluster-ca") -> str:
    return issue.certificate_pem(make_ca(common_name)[0]).decode()


def write(root, path: str, text: str) -> None:
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as handle:
        handle.write(text)


def encryption_config(keys) -> str:
    """The apiserver's configuration as the control_plane role's template renders it (to_nice_yaml, indent 2)."""
    doc = _control_plane.encryption_config(keys)
    return "# Managed by kubeforge.cluster; changes are overwritten.\n" + yaml.dump(doc, default_flow_style=False, indent=2)


# --------------------------------------------------------------------------- one definition of the layout

def test_the_anchor_paths_are_the_ones_the_pki_plan_sends():
    plan = pki_plan(GROUPS, HOSTVARS, SETTINGS)
    sent = {(entry["dest"], entry["src"]) for host in ("cp1", "cp2", "cp3") for entry in plan["hosts"][host]}
    for anchor in trust.ANCHORS:
        for path in anchor.host_paths:
            assert (path, os.path.join(CREDENTIALS, anchor.controller_path)) in sent, (anchor.name, path)
    contents = {directory for directory, _suffixes in trust.CONTENT_DIRS}
    assert {os.path.dirname(dest) for dest, _src in sent} <= contents


def test_the_encryption_paths_are_the_control_plane_roles():
    settings = {"pki_dir": trust.KUBE_PKI_DIR, "config_dir": trust.KUBE_DIR, "audit_log_dir": "/var/log/kubernetes"}
    assert _control_plane.paths(settings)["encryption_config"] == trust.ENCRYPTION_CONFIG
    with open(os.path.join(REPO, "roles", "control_plane", "vars", "main.yml"), encoding="utf-8") as handle:
        role_vars = yaml.safe_load(handle)
    assert role_vars["control_plane_config_dir"] == trust.KUBE_DIR
    assert role_vars["control_plane_encryption_keys_file"] == "{{ kubeforge_credentials_dir }}/" + trust.CONTROLLER_ENCRYPTION_KEYS


def test_the_etcd_paths_are_the_etcd_roles():
    with open(os.path.join(REPO, "roles", "etcd", "defaults", "main.yml"), encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(REPO, "roles", "etcd", "vars", "main.yml"), encoding="utf-8") as handle:
        role_vars = yaml.safe_load(handle)
    assert defaults["etcd_data_dir"] == trust.DEFAULT_ETCD_DATA_DIR
    assert yaml.safe_load(trust_anchor_info.DOCUMENTATION)["options"]["etcd_data_dir"]["default"] == trust.DEFAULT_ETCD_DATA_DIR
    assert role_vars["etcd_pki_dir"] == trust.ETCD_PKI_DIR
    assert role_vars["etcd_initial_env_file"] == "{{ etcd_config_dir }}/" + os.path.basename(trust.ETCD_INITIAL_ENV)
    assert role_vars["etcd_config_dir"] == os.path.dirname(trust.ETCD_INITIAL_ENV)
    assert etcd_snapshot.MARKER_NAME == trust.RESTORE_MARKER


def test_the_preflight_play_declares_the_escape_hatch_false_and_passes_it():
    with open(os.path.join(REPO, "playbooks", "preflight.yml"), encoding="utf-8") as handle:
        play = yaml.safe_load(handle)[0]
    assert play["vars"][trust.REINITIALISE_VAR] is False
    assert "always" in play["tags"]
    check = next(task for task in play["tasks"] if "kubeforge.cluster.trust_anchor_check" in task)
    assert trust.REINITIALISE_VAR in check["kubeforge.cluster.trust_anchor_check"]["reinitialise"]
    names = [next(key for key in task if key.startswith("kubeforge.cluster.")) for task in play["tasks"]]
    # Read before the checks (node_facts with trust_anchors, registered where the check looks); the trust
    # check last, once the inventory is known good.
    read = play["tasks"][names.index("kubeforge.cluster.node_facts")]
    assert read["register"] == check["kubeforge.cluster.trust_anchor_check"]["results_var"]
    assert "trust_anchors" in read["kubeforge.cluster.node_facts"]
    assert names.index("kubeforge.cluster.node_facts") < names.index("kubeforge.cluster.trust_anchor_check") == len(names) - 1


@pytest.mark.parametrize("name", ["etcd_restore.yml", "rotate_encryption_key.yml"])
def test_day2_playbooks_that_change_trust_start_with_the_preflight(name):
    with open(os.path.join(REPO, "playbooks", name), encoding="utf-8") as handle:
        first = yaml.safe_load(handle)[0]
    # The whole preflight, trust check included: the only setting passed is why --limit is refused.
    assert first.get("ansible.builtin.import_playbook") == "preflight.yml"
    assert set(first.get("vars") or {}) == {"kubeforge_preflight_whole_cluster_why"}


# --------------------------------------------------------------------------- reading a host

def test_fingerprints_are_openssls_and_no_secret_is_returned(tmp_path):
    ca, _key = make_ca("cluster-ca")
    sa_key = issue.generate_private_key("rsa", 2048)
    sa_pub = sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write(tmp_path, "/etc/kubernetes/pki/ca.crt", issue.certificate_pem(ca).decode())
    write(tmp_path, "/etc/kubernetes/pki/ca.key", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    write(tmp_path, "/etc/kubernetes/pki/sa.pub", sa_pub.decode())
    write(tmp_path, trust.ENCRYPTION_CONFIG, encryption_config([KEY_B, KEY_A]))
    result = trust.TrustAnchorInfoBackend(root=str(tmp_path)).run()
    der = sa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert result == {
        "changed": False, "errors": [], "encryption_key_names": ["key-b", "key-a"],
        "anchors": [{"anchor": "cluster-ca", "path": "/etc/kubernetes/pki/ca.crt", "fingerprint_sha256": pki_inspect.fingerprint_sha256(ca)},
                    {"anchor": "service-account-key", "path": "/etc/kubernetes/pki/sa.pub",
                     "fingerprint_sha256": ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())}],
    }
    text = json.dumps(result)
    assert KEY_A["secret"] not in text and "c2VjcmV0" not in text


def test_a_host_with_nothing_holds_nothing(tmp_path):
    assert trust.TrustAnchorInfoBackend(root=str(tmp_path)).run() == {"changed": False, "anchors": [], "encryption_key_names": [], "errors": []}


def test_both_etcd_ca_files_are_read(tmp_path):
    write(tmp_path, "/etc/etcd/pki/ca.crt", cert_pem("etcd-ca"))
    write(tmp_path, "/etc/kubernetes/pki/etcd-ca.crt", cert_pem("other-etcd-ca"))
    anchors = trust.TrustAnchorInfoBackend(root=str(tmp_path)).run()["anchors"]
    assert [(a["anchor"], a["path"]) for a in anchors] == [("etcd-ca", "/etc/etcd/pki/ca.crt"), ("etcd-ca", "/etc/kubernetes/pki/etcd-ca.crt")]
    assert anchors[0]["fingerprint_sha256"] != anchors[1]["fingerprint_sha256"]


def test_a_file_that_is_not_what_it_should_be_is_an_error(tmp_path):
    write(tmp_path, "/etc/kubernetes/pki/ca.crt", "garbage")
    write(tmp_path, "/etc/kubernetes/pki/sa.pub", "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n")
    write(tmp_path, trust.ENCRYPTION_CONFIG, "resources: [\n")
    result = trust.TrustAnchorInfoBackend(root=str(tmp_path)).run()
    assert result["anchors"] == []
    assert result["errors"][0] == "/etc/kubernetes/pki/ca.crt: no PEM CERTIFICATE block"
    assert result["errors"][1].startswith("/etc/kubernetes/pki/sa.pub: the PEM PUBLIC KEY block is not base64")
    assert result["errors"][2].startswith(f"{trust.ENCRYPTION_CONFIG}: not YAML")


@pytest.mark.parametrize("has_yaml", [True, False])
def test_encryption_keys_with_or_without_pyyaml(monkeypatch, has_yaml):
    monkeypatch.setattr(trust, "HAS_YAML", has_yaml)
    assert trust.encryption_keys_from_config(encryption_config([KEY_A, KEY_B])) == [KEY_A, KEY_B]


def test_encryption_keys_of_several_resources_are_listed_once():
    doc = _control_plane.encryption_config([KEY_A])
    doc["resources"].append({"resources": ["configmaps"], "providers": [{"secretbox": {"keys": [KEY_A, KEY_B]}}, {"identity": {}}]})
    assert trust.encryption_keys_from_config(yaml.dump(doc)) == [KEY_A, KEY_B]
    doc["resources"][1]["providers"][0]["secretbox"]["keys"][0] = {"name": "key-a", "secret": KEY_B["secret"]}
    with pytest.raises(trust.TrustError, match="key key-a appears twice with different secrets"):
        trust.encryption_keys_from_config(yaml.dump(doc))


def test_include_content_returns_the_files_the_keys_and_the_etcd_settings(tmp_path):
    write(tmp_path, "/etc/kubernetes/pki/ca.key", "KEY")
    write(tmp_path, "/etc/kubernetes/pki/ca.crt.20260101T000000Z.bak", "old")
    write(tmp_path, "/etc/kubernetes/admin.kubeconfig", "KUBECONFIG")
    write(tmp_path, "/etc/kubernetes/audit-policy.yaml", "not a credential")
    write(tmp_path, "/etc/etcd/pki/member.key", "MEMBER")
    write(tmp_path, trust.ENCRYPTION_CONFIG, encryption_config([KEY_A]))
    write(tmp_path, trust.ETCD_INITIAL_ENV, "ETCD_INITIAL_CLUSTER_TOKEN=kubeforge-0123\n")
    write(tmp_path, "/data/etcd/kubeforge-restore.json", "{}")
    result = trust.TrustAnchorInfoBackend(include_content=True, etcd_data_dir="/data/etcd", root=str(tmp_path)).run()
    assert result["files"] == {"/etc/kubernetes/pki/ca.key": "KEY", "/etc/kubernetes/admin.kubeconfig": "KUBECONFIG",
                               "/etc/etcd/pki/member.key": "MEMBER"}
    assert result["encryption_keys"] == [KEY_A]
    assert result["etcd_initial_env"] == "ETCD_INITIAL_CLUSTER_TOKEN=kubeforge-0123\n" and result["etcd_restore_marker"] == "{}"


def test_the_controller_side(tmp_path):
    pem = cert_pem()
    write(tmp_path, "pki/ca.crt", pem)
    write(tmp_path, "pki/etcd/ca.crt", "broken")
    write(tmp_path, trust.CONTROLLER_ENCRYPTION_KEYS, json.dumps({"keys": [KEY_B], "retired": [dict(KEY_A, retired="2026-01-01T00:00:00Z")]}))
    found = trust.read_controller(str(tmp_path))
    assert found["anchors"] == {"cluster-ca": trust.anchor_fingerprint(pem, trust.ANCHOR_BY_NAME["cluster-ca"])}
    assert found["encryption_key_names"] == ["key-b", "key-a"]
    assert found["errors"] == [f"{tmp_path}/pki/etcd/ca.crt: no PEM CERTIFICATE block"]
    assert trust.read_controller(str(tmp_path / "missing")) == {"anchors": {}, "encryption_key_names": None, "errors": []}


# --------------------------------------------------------------------------- the comparison

def host(*anchors, keys=(), errors=()) -> dict:
    """A trust_anchor_info result: anchors as (anchor, fingerprint) or (anchor, fingerprint, path)."""
    entries = []
    for item in anchors:
        anchor = trust.ANCHOR_BY_NAME[item[0]]
        entries.append({"anchor": item[0], "path": item[2] if len(item) > 2 else anchor.host_paths[0], "fingerprint_sha256": item[1]})
    return {"changed": False, "anchors": entries, "encryption_key_names": list(keys), "errors": list(errors)}


def controller(keys=("key-a",), **anchors) -> dict:
    return {"anchors": {name.replace("_", "-"): fp for name, fp in anchors.items()},
            "encryption_key_names": None if keys is None else list(keys), "errors": []}


FULL = {"cluster_ca": FP["A"], "front_proxy_ca": FP["B"], "etcd_ca": FP["C"], "service_account_key": FP["D"]}
HOSTS = ["cp1", "cp2", "cp3"]


def full_host() -> dict:
    return host(("cluster-ca", FP["A"]), ("front-proxy-ca", FP["B"]), ("etcd-ca", FP["C"]),
                ("etcd-ca", FP["C"], "/etc/kubernetes/pki/etcd-ca.crt"), ("service-account-key", FP["D"]), keys=["key-a"])


def check(mine, reports, expected=None):
    return trust.compare(mine, reports, HOSTS if expected is None else expected, CREDENTIALS)


@pytest.mark.parametrize("mine, reports", [
    # a new cluster: nothing anywhere
    (controller(keys=None), {name: host() for name in HOSTS}),
    # a new cluster whose controller signed first (site.yml --tags pki_sign, or a run cut short)
    (controller(**FULL), {name: host() for name in HOSTS}),
    # every host agrees with the controller
    (controller(**FULL), {name: full_host() for name in HOSTS}),
    # a new node being added holds nothing yet; the others agree
    (controller(**FULL), {"cp1": full_host(), "cp2": full_host(), "cp3": host()}),
    # the controller holds more keys than the hosts (a rotation's new key, saved before any host got it)
    (controller(keys=("key-a", "key-b"), **FULL), {name: full_host() for name in HOSTS}),
    # a host that did not answer while the controller lacks nothing
    (controller(**FULL), {"cp1": full_host(), "cp2": full_host(), "cp3": None}),
], ids=["fresh-cluster", "fresh-hosts", "all-agree", "new-node", "controller-has-more-keys", "silent-host-complete-controller"])
def test_what_passes(mine, reports):
    verdict = check(mine, reports)
    assert verdict.passed and verdict.problems == [] and not verdict.hosts_disagree
    assert trust.outcome(verdict, CREDENTIALS)[0] == "pass"


def test_a_controller_without_credentials_is_refused_naming_hosts_fingerprints_and_the_way_out():
    verdict = check(controller(keys=None), {name: full_host() for name in HOSTS})
    assert verdict.problems == [
        f"cluster CA: the controller has none ({CREDENTIALS}/pki/ca.crt); cp1, cp2, cp3 hold SHA256 {FP['A']}",
        f"front-proxy CA: the controller has none ({CREDENTIALS}/pki/front-proxy-ca.crt); cp1, cp2, cp3 hold SHA256 {FP['B']}",
        f"etcd CA: the controller has none ({CREDENTIALS}/pki/etcd/ca.crt); cp1:/etc/etcd/pki/ca.crt, cp1:/etc/kubernetes/pki/etcd-ca.crt, "
        f"cp2:/etc/etcd/pki/ca.crt, cp2:/etc/kubernetes/pki/etcd-ca.crt, cp3:/etc/etcd/pki/ca.crt, cp3:/etc/kubernetes/pki/etcd-ca.crt "
        f"hold SHA256 {FP['C']}",
        f"service-account key: the controller has none ({CREDENTIALS}/pki/sa.pub); cp1, cp2, cp3 hold SHA256 {FP['D']}",
        f"encryption keys: cp1, cp2, cp3 hold key-a in {trust.ENCRYPTION_CONFIG}, which the controller's "
        f"{CREDENTIALS}/encryption-keys.json lacks (the file does not exist)",
    ]
    decision, message = trust.outcome(verdict, CREDENTIALS)
    assert decision == "refuse"
    assert message.startswith(f"The controller's credentials directory {CREDENTIALS} is not, or cannot be shown to be, the one")
    assert "Nothing was changed on any host." in message and "playbooks/recover_credentials.yml" in message
    assert f"-e {trust.REINITIALISE_VAR}=true" in message and "do not agree" not in message


def test_a_controller_with_other_credentials_is_refused_with_both_fingerprints():
    mine = controller(keys=("key-new",), **{**FULL, "cluster_ca": FP["E"]})
    verdict = check(mine, {name: full_host() for name in HOSTS})
    assert verdict.problems == [
        f"cluster CA: the controller has SHA256 {FP['E']} ({CREDENTIALS}/pki/ca.crt); cp1, cp2, cp3 hold SHA256 {FP['A']}",
        f"encryption keys: cp1, cp2, cp3 hold key-a in {trust.ENCRYPTION_CONFIG}, which the controller's "
        f"{CREDENTIALS}/encryption-keys.json lacks (it has key-new)",
    ]


def test_hosts_that_disagree_with_each_other_are_named_and_recover_is_said_to_refuse_too():
    other = full_host()
    other["anchors"][0]["fingerprint_sha256"] = FP["E"]
    verdict = check(controller(**FULL), {"cp1": full_host(), "cp2": other, "cp3": full_host()})
    assert verdict.hosts_disagree
    assert verdict.problems == [f"cluster CA: the controller has SHA256 {FP['A']} ({CREDENTIALS}/pki/ca.crt); cp1, cp3 hold SHA256 "
                                f"{FP['A']}; cp2 holds SHA256 {FP['E']}; the hosts do not agree with each other"]
    assert "recover_credentials.yml refuses too" in trust.outcome(verdict, CREDENTIALS)[1]


def test_a_retired_key_is_known_and_an_unknown_one_is_not():
    mine = controller(keys=("key-b", "key-a"), **FULL)  # key-a retired on the controller, still on cp1
    reports = {"cp1": host(keys=["key-b", "key-a"]), "cp2": host(keys=["key-b", "key-x"]), "cp3": host(keys=["key-b"])}
    assert check(mine, reports).problems == [
        f"encryption keys: cp2 holds key-x in {trust.ENCRYPTION_CONFIG}, which the controller's "
        f"{CREDENTIALS}/encryption-keys.json lacks (it has key-b, key-a)"]


def test_a_silent_host_fails_only_while_the_controller_lacks_something():
    reports = {"cp1": host(), "cp2": host(), "cp3": None}
    verdict = check(controller(keys=None), reports, HOSTS + ["etcd4"])
    assert verdict.problems == ["cp3, etcd4 did not answer (unreachable, or left out by --limit) while the controller lacks cluster CA, "
                                "front-proxy CA, etcd CA, service-account key, encryption keys: whether those hosts hold them cannot be "
                                "told; run again with every control-plane and etcd host reachable and in the run"]
    assert check(controller(**FULL), reports, HOSTS + ["etcd4"]).passed


def test_unreadable_files_on_a_host_or_the_controller_are_problems():
    mine = dict(controller(**FULL), errors=[f"{CREDENTIALS}/pki/ca.crt: cannot read: Permission denied"])
    verdict = check(mine, {"cp1": host(errors=["/etc/kubernetes/pki/ca.crt: no PEM CERTIFICATE block"]), "cp2": host(), "cp3": host()})
    assert verdict.problems == ["cp1: /etc/kubernetes/pki/ca.crt: no PEM CERTIFICATE block",
                                f"controller: {CREDENTIALS}/pki/ca.crt: cannot read: Permission denied"]


def test_the_escape_hatch_turns_the_refusal_into_a_loud_warning():
    verdict = check(controller(keys=None), {name: full_host() for name in HOSTS})
    decision, message = trust.outcome(verdict, CREDENTIALS, reinitialise=True)
    assert decision == "warn"
    assert message.startswith(f"{trust.REINITIALISE_VAR} is set: the controller's credentials ({CREDENTIALS}) replace what the hosts hold.")
    assert "Every Secret encrypted with the hosts' keys becomes unreadable" in message and verdict.problems[0] in message
    assert trust.outcome(check(controller(**FULL), {name: full_host() for name in HOSTS}), CREDENTIALS, reinitialise=True)[0] == "pass"


@pytest.mark.parametrize("report, expected", [
    ({"anchors": [], "errors": []}, {"anchors": [], "errors": []}),
    ({"skipped": True, "changed": False}, None),
    ({"failed": True, "msg": "boom"}, None),
    ({"unreachable": True}, None),
    ({"changed": False}, None),
    (None, None),
])
def test_what_counts_as_an_answer(report, expected):
    assert trust.answered(report) == expected


def test_cluster_hosts_in_group_order_each_once():
    assert trust.cluster_hosts({"kube_control_plane": ["cp1", "cp2"], "etcd": ["cp1", "e1"]}) == ["cp1", "cp2", "e1"]
    assert trust.cluster_hosts({}) == []
