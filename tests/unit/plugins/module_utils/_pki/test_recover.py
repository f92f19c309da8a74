# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""recover_credentials.yml's logic on a real PKI: the pki role's plan signed in a temporary directory, each
host's share copied under its own root, read back by trust_anchor_info's backend, rebuilt, and compared
with what the controller had; and its refusals (a silent host, hosts that disagree, nothing to recover)."""
from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import stat

import pytest
import yaml
from ansible.plugins.filter.core import to_nice_json

from ansible_collections.kubeforge.cluster.plugins.filter.pki import pki_controller_files, pki_plan
from ansible_collections.kubeforge.cluster.plugins.module_utils import _control_plane
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import cluster_token
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import issue
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import recover as rec
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.backend import X509CertBackend
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.trust import ENCRYPTION_CONFIG, ETCD_INITIAL_ENV, TrustAnchorInfoBackend

from .helpers import make_ca

GROUPS = {"etcd": ["cp1", "cp2", "cp3"], "kube_control_plane": ["cp1", "cp2", "cp3"], "kube_node": ["w1"],
          "k8s_cluster": ["cp1", "cp2", "cp3", "w1"]}
HOSTVARS = {"cp1": {"kubeforge_node_ip": "10.0.0.11"}, "cp2": {"kubeforge_node_ip": "10.0.0.12"},
            "cp3": {"kubeforge_node_ip": "10.0.0.13"}, "w1": {"kubeforge_node_ip": "10.0.0.21"}}
REQUIRED = ["cp1", "cp2", "cp3"]
KEY_A = {"name": "key-a", "secret": base64.b64encode(b"a" * 32).decode()}
KEY_B = {"name": "key-b", "secret": base64.b64encode(b"b" * 32).decode()}
TOKEN_ENV = ("ETCD_INITIAL_CLUSTER=cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380,cp3=https://10.0.0.13:2380\n"
             "ETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER_TOKEN=kubeforge-0123456789abcdef\n")
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def sign(plan) -> dict:
    """The pki role's x509_cert batch; {path: result}."""
    for directory in plan["directories"]:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    result = X509CertBackend({"certificates": plan["certificates"], "key_type": "ecdsa", "renew_before_days": 30, "force": False}).run()
    return {item["path"]: item for item in result["results"]}


def controller_files(plan) -> list:
    """The kubeconfigs and sa.pub the role writes on the controller."""
    contents = []
    for path in plan["controller_inputs"]:
        with open(path, encoding="ascii") as handle:
            contents.append(handle.read())
    return pki_controller_files(plan, contents)


def put(path, text, mode=0o600) -> None:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def read(path) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def tree(directory) -> dict:
    """{relative path: content} of every file below ``directory``."""
    found = {}
    for top, _dirs, names in os.walk(directory):
        for name in names:
            found[os.path.relpath(os.path.join(top, name), directory)] = read(os.path.join(top, name))
    return found


class Cluster:
    """A signed cluster: the controller's directory and each host's files under tmp/hosts/<host>."""

    def __init__(self, tmp_path, tls_mode="signed"):
        self.tmp = tmp_path
        self.credentials = str(tmp_path / "credentials")
        self.settings = {
            "credentials_dir": self.credentials, "service_cidr": "10.96.0.0/12", "cluster_domain": "cluster.local",
            "apiserver_port": 6443, "lb_address": "10.0.0.10", "lb_domain": "", "extra_sans": [], "endpoint": "https://127.0.0.1:6443",
            "kubelet_tls_mode": tls_mode, "cluster_name": "kubernetes", "ca_valid_days": 3650, "cert_valid_days": 365}
        self.plan = pki_plan(GROUPS, HOSTVARS, self.settings)
        sign(self.plan)
        put(self.plan["service_account"]["private_key"], issue.private_key_pem(issue.generate_private_key("rsa", 2048)).decode())
        for entry in controller_files(self.plan):
            put(entry["dest"], entry["content"], int(entry["mode"], 8))
        put(os.path.join(self.credentials, "encryption-keys.json"), to_nice_json({"keys": [KEY_B, KEY_A]}, indent=2) + "\n")
        state = cluster_token.bootstrap(None, "cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380,cp3=https://10.0.0.13:2380",
                                        random_hex=lambda _n: "0123456789abcdef")
        put(os.path.join(self.credentials, cluster_token.FILE_NAME), to_nice_json(state, indent=2) + "\n")
        for host, entries in self.plan["hosts"].items():
            for entry in entries:
                put(self.host_path(host, entry["dest"]), read(entry["src"]), int(entry["mode"], 8))
        config = yaml.dump(_control_plane.encryption_config([KEY_B, KEY_A]), default_flow_style=False, indent=2)
        for host in GROUPS["kube_control_plane"]:
            put(self.host_path(host, ENCRYPTION_CONFIG), config)
        for host in GROUPS["etcd"]:
            put(self.host_path(host, ETCD_INITIAL_ENV), TOKEN_ENV)

    def host_path(self, host, path) -> str:
        return str(self.tmp / "hosts" / host / path.lstrip("/"))

    def reports(self, **override) -> dict:
        reports = {host: TrustAnchorInfoBackend(include_content=True, root=str(self.tmp / "hosts" / host)).run()
                   for host in GROUPS["k8s_cluster"]}
        reports.update(override)
        return reports

    def lose_the_credentials(self) -> str:
        """The directory moved away, as a lost laptop would; returns where it is now."""
        kept = str(self.tmp / "original")
        shutil.move(self.credentials, kept)
        return kept


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One signed cluster for the read-only tests (signing costs a second)."""
    return Cluster(tmp_path_factory.mktemp("cluster"))


def from_hosts(plan) -> set:
    """What the hosts can give back according to the plan: every file sent, and what the kubeconfigs sent embed."""
    sent = {entry["src"] for entries in plan["hosts"].values() for entry in entries}
    embedded = {config[part] for config in plan["kubeconfigs"] if config["dest"] in sent for part in ("ca", "cert", "key")}
    return sent | embedded


# --------------------------------------------------------------------------- a full recovery

def test_a_lost_directory_is_rebuilt_from_the_hosts_and_the_pki_then_issues_only_what_no_host_had(tmp_path):
    cluster = Cluster(tmp_path)
    original = cluster.lose_the_credentials()
    recovery = rec.recover(cluster.plan, cluster.reports(), REQUIRED, cluster.credentials)
    assert recovery.problems == [] and recovery.warnings == []
    outcome = rec.settle(cluster.credentials, recovery.files, cluster.plan["directories"])
    assert outcome["changed"] and outcome["moved_aside_to"] is None and outcome["conflicts"] == []

    # Everything the hosts hold is back, as it was.
    expected = {os.path.relpath(path, cluster.credentials) for path in from_hosts(cluster.plan)}
    expected |= {"encryption-keys.json", cluster_token.FILE_NAME}
    before, after = tree(original), tree(cluster.credentials)
    assert set(after) == expected
    for path in expected - {cluster_token.FILE_NAME}:
        assert after[path].strip() == before[path].strip(), path
    assert json.loads(after[cluster_token.FILE_NAME])["current"] == "kubeforge-0123456789abcdef"
    # ... with the controller's modes: keys and kubeconfigs 0600, certificates 0644, directories 0700.
    assert stat.S_IMODE(os.stat(os.path.join(cluster.credentials, "pki", "ca.key")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(cluster.credentials, "pki", "ca.crt")).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.join(cluster.credentials, "kubeconfig", "admin.kubeconfig")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(cluster.credentials, "pki", "etcd")).st_mode) == 0o700
    # What is not: the etcd and front-proxy CA keys (never on a host), and what only the controller held.
    lacking = set(before) - set(after)
    assert {"pki/etcd/ca.key", "pki/front-proxy-ca.key", "admin.kubeconfig"} <= lacking
    assert all(not path.endswith(".key") or path.startswith(("pki/etcd/ca", "pki/front-proxy-ca", "pki/super-admin")) for path in lacking)
    assert any("pki/etcd/ca.key: no host holds this CA key" in note for note in recovery.notes)

    # The pki role's batch on the recovered directory: it issues only what no host had (signed by the
    # recovered cluster CA key), keeps every CA, and the kubeconfigs come out as the hosts hold them.
    results = sign(cluster.plan)
    issued = {os.path.relpath(path, cluster.credentials) for path, item in results.items() if item["changed"]}
    assert issued == {path.replace(".key", ".crt") for path in lacking if path.endswith(".key") and "-ca" not in path and "/ca" not in path}
    assert all(results[path]["reasons"] == ["missing", "key_missing"] for path in results if results[path]["changed"])
    rendered = {entry["dest"]: entry["content"] for entry in controller_files(cluster.plan)}
    for host, entries in cluster.plan["hosts"].items():
        for entry in entries:
            if entry["src"] in rendered:
                assert rendered[entry["src"]] == read(cluster.host_path(host, entry["dest"])), (host, entry["dest"])

    # A second recovery finds everything in place.
    again = rec.settle(cluster.credentials, rec.recover(cluster.plan, cluster.reports(), REQUIRED, cluster.credentials).files,
                       cluster.plan["directories"])
    assert not again["changed"] and again["written"] == [] and again["moved_aside_to"] is None


def test_the_key_file_and_the_token_file_are_written_as_the_roles_write_them():
    keys = [KEY_B, KEY_A]
    assert rec.key_file_text(keys) == to_nice_json({"keys": keys}, indent=2) + "\n"
    state = cluster_token.recover(None, {"cp1": TOKEN_ENV})
    assert rec.json_text(state) == to_nice_json(state, indent=2) + "\n"


# --------------------------------------------------------------------------- refusals

def test_hosts_that_disagree_on_a_ca_are_refused(built, tmp_path):
    other = issue.certificate_pem(make_ca("kubernetes-ca")[0]).decode()
    reports = built.reports()
    reports["cp2"] = dict(reports["cp2"], files=dict(reports["cp2"]["files"], **{"/etc/kubernetes/pki/ca.crt": other}))
    recovery = rec.recover(built.plan, reports, REQUIRED, built.credentials)
    assert recovery.problems == ["pki/ca.crt: the hosts hold 2 different versions (cp1, cp2, cp3, w1 hold one; cp2 holds one): "
                                 "which one is this cluster's cannot be told"]


def test_hosts_that_disagree_on_a_ca_key_or_the_service_account_key_are_refused(built):
    reports = built.reports()
    files = dict(reports["cp3"]["files"])
    files["/etc/kubernetes/pki/sa.key"] = issue.private_key_pem(issue.generate_private_key("rsa", 2048)).decode()
    files["/etc/kubernetes/pki/ca.key"] = issue.private_key_pem(issue.generate_private_key("ecdsa", 256)).decode()
    reports["cp3"] = dict(reports["cp3"], files=files)
    problems = rec.recover(built.plan, reports, REQUIRED, built.credentials).problems
    assert [problem.split(":")[0] for problem in problems] == ["pki/ca.key", "pki/sa.key"]


def test_an_encryption_key_name_with_two_secrets_is_refused(built):
    reports = built.reports()
    reports["cp1"] = dict(reports["cp1"], encryption_keys=[KEY_B, {"name": "key-a", "secret": KEY_B["secret"]}])
    assert rec.recover(built.plan, reports, REQUIRED, built.credentials).problems == [
        "encryption key key-a: the hosts hold different secrets under this name (cp1 holds one; cp2, cp3 hold one)"]


def test_a_silent_control_plane_host_is_refused_a_silent_worker_is_not(built):
    assert rec.recover(built.plan, built.reports(cp2=None), REQUIRED, built.credentials).problems == [
        "cp2 did not answer: every control-plane and etcd host is read, since they must agree on what they hold; run again "
        "when they answer (and without --limit)"]
    assert rec.recover(built.plan, built.reports(w1=None), REQUIRED, built.credentials).problems == []


def test_hosts_that_hold_nothing_give_nothing_to_recover(built, tmp_path):
    empty = {host: TrustAnchorInfoBackend(include_content=True, root=str(tmp_path)).run() for host in GROUPS["k8s_cluster"]}
    assert rec.recover(built.plan, empty, REQUIRED, built.credentials).problems == [
        "no host holds any of this cluster's CAs or service-account key: there is nothing to recover (a new cluster: run site.yml)"]


def test_a_leaf_the_hosts_hold_in_two_versions_is_left_out_with_a_warning(built):
    reports = built.reports()
    files = dict(reports["cp2"]["files"], **{"/etc/kubernetes/pki/apiserver.crt": read(built.host_path("cp1", "/etc/kubernetes/pki/ca.crt"))})
    reports["cp2"] = dict(reports["cp2"], files=files)
    recovery = rec.recover(built.plan, reports, REQUIRED, built.credentials)
    assert recovery.problems == []
    assert recovery.warnings == ["pki/apiserver.crt: the hosts hold 2 different versions (cp1, cp3 hold one; cp2 holds one); left out, "
                                 "the pki phase issues it again"]
    assert os.path.join(built.credentials, "pki", "apiserver.crt") not in recovery.files
    assert any(note.startswith("issued again from the recovered CA keys by the pki phase: ") and "pki/apiserver.crt" in note
               for note in recovery.notes)


# --------------------------------------------------------------------------- encryption keys

@pytest.mark.parametrize("lists, keys, warned", [
    ({"cp1": [KEY_A], "cp2": [KEY_A]}, [KEY_A], False),
    ({"cp1": [KEY_A], "cp2": [KEY_A, KEY_B], "cp3": [KEY_A, KEY_B]}, [KEY_A, KEY_B], True),  # an added key that reached two hosts
    ({"cp1": [KEY_B, KEY_A], "cp2": [KEY_A, KEY_B]}, [KEY_B, KEY_A], True),  # a promotion cut short
    ({}, [], False),
])
def test_encryption_key_lists_are_merged(lists, keys, warned):
    merged, problems, warnings = rec.merge_encryption_keys(lists)
    assert (merged, problems, bool(warnings)) == (keys, [], warned)


# --------------------------------------------------------------------------- the directory

def files_in(directory, **texts) -> dict:
    return {os.path.join(str(directory), name): (text, 0o600) for name, text in texts.items()}


def test_an_existing_directory_that_differs_is_moved_aside_never_deleted(tmp_path):
    target = tmp_path / "credentials"
    put(target / "pki" / "ca.crt", "other cluster's CA\n", 0o644)
    put(target / "users" / "jane.kubeconfig", "jane")
    before = tree(target)
    outcome = rec.settle(str(target), files_in(target, **{"pki/ca.crt": "CA\n", "pki/ca.key": "KEY\n"}), [str(target / "pki")], now=NOW)
    assert outcome["moved_aside_to"] == f"{target}.20260301T120000Z" and outcome["conflicts"] == ["pki/ca.crt"]
    assert tree(outcome["moved_aside_to"]) == before
    assert tree(target) == {"pki/ca.crt": "CA\n", "pki/ca.key": "KEY\n"}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700 and stat.S_IMODE(os.stat(target / "pki").st_mode) == 0o700
    # Once more, at the same second: another name beside it.
    put(target / "pki" / "ca.crt", "yet another\n", 0o644)
    assert rec.settle(str(target), files_in(target, **{"pki/ca.crt": "CA\n"}), [], now=NOW)["moved_aside_to"] == f"{target}.20260301T120000Z-1"


def test_an_existing_directory_that_agrees_only_gets_what_it_lacks(tmp_path):
    target = tmp_path / "credentials"
    put(target / "pki" / "ca.crt", "CA\n", 0o644)
    put(target / "users" / "jane.kubeconfig", "jane")
    put(target / "encryption-keys.json", json.dumps({"keys": [KEY_B], "retired": [KEY_A]}))
    wanted = files_in(target, **{"pki/ca.crt": "CA", "pki/ca.key": "KEY\n", "encryption-keys.json": rec.key_file_text([KEY_A, KEY_B])})
    wanted[str(target / "pki" / "ca.crt")] = ("CA", 0o644)
    outcome = rec.settle(str(target), wanted, [])
    assert outcome == {"changed": True, "moved_aside_to": None, "written": ["pki/ca.key"], "conflicts": [], "modes_fixed": []}
    assert read(target / "users" / "jane.kubeconfig") == "jane" and json.loads(read(target / "encryption-keys.json"))["retired"]


def test_a_key_file_lacking_a_host_key_is_a_conflict(tmp_path):
    target = tmp_path / "credentials"
    put(target / "encryption-keys.json", rec.key_file_text([KEY_B]))
    outcome = rec.settle(str(target), files_in(target, **{"encryption-keys.json": rec.key_file_text([KEY_A])}), [], now=NOW)
    assert outcome["conflicts"] == ["encryption-keys.json"] and outcome["moved_aside_to"]


def test_check_mode_writes_and_moves_nothing(tmp_path):
    target = tmp_path / "credentials"
    put(target / "pki" / "ca.crt", "other\n", 0o644)
    outcome = rec.settle(str(target), files_in(target, **{"pki/ca.crt": "CA\n", "pki/ca.key": "KEY\n"}), [], check_mode=True, now=NOW)
    assert outcome["changed"] and outcome["moved_aside_to"] == f"{target}.20260301T120000Z"
    assert outcome["written"] == ["pki/ca.crt", "pki/ca.key"]
    assert tree(target) == {"pki/ca.crt": "other\n"} and not os.path.exists(outcome["moved_aside_to"])
    fresh = tmp_path / "fresh"
    assert rec.settle(str(fresh), files_in(fresh, **{"a": "A"}), [str(fresh)], check_mode=True)["written"] == ["a"]
    assert not fresh.exists()


def test_files_outside_the_directory_are_refused(tmp_path):
    with pytest.raises(rec.RecoverError, match="files outside"):
        rec.settle(str(tmp_path / "credentials"), {str(tmp_path / "elsewhere"): ("x", 0o600)}, [])


def test_a_ca_key_the_hosts_lack_is_carried_over_beside_the_same_certificate(tmp_path):
    cluster = Cluster(tmp_path, tls_mode="bootstrap")
    os.remove(os.path.join(cluster.credentials, "pki", "sa.key"))  # what the operator deleted by mistake
    recovery = rec.recover(cluster.plan, cluster.reports(), REQUIRED, cluster.credentials)
    assert set(recovery.lacking_ca_keys) == {os.path.join(cluster.credentials, "pki", name) for name in ("etcd/ca.key", "front-proxy-ca.key")}
    assert rec.carry_over(recovery, cluster.credentials) == ["pki/etcd/ca.key", "pki/front-proxy-ca.key"]
    outcome = rec.settle(cluster.credentials, recovery.files, cluster.plan["directories"])
    assert outcome["moved_aside_to"] is None and outcome["written"] == ["pki/sa.key"]
    # Beside another CA certificate, the existing key is not taken.
    put(os.path.join(cluster.credentials, "pki", "etcd", "ca.crt"), issue.certificate_pem(make_ca("etcd-ca")[0]).decode(), 0o644)
    recovery = rec.recover(cluster.plan, cluster.reports(), REQUIRED, cluster.credentials)
    assert rec.carry_over(recovery, cluster.credentials) == ["pki/front-proxy-ca.key"]
