# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backend against real files in a temporary directory: the module's behaviour without AnsibleModule."""
from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import stat
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import issue
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.backend import X509CertBackend, signing_order
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.spec import specs_from_params

from .helpers import load_cert, run


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def public_der(path) -> bytes:
    return load_cert(path).public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def snapshot(directory) -> dict:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


@pytest.fixture
def with_ca(pki):
    run(pki.ca)
    return pki


# -- idempotence, files ---------------------------------------------------------------------------

def test_first_run_issues_and_second_run_keeps(with_ca):
    pki = with_ca
    first = run(pki.leaf())
    assert first["changed"] and first["reasons"] == ["missing", "key_missing"]
    assert first["dns_names"] == ["apiserver", "localhost"] and first["ip_addresses"] == ["127.0.0.1"]
    assert first["subject"] == "CN=apiserver" and first["issuer"] == "CN=cluster-ca"
    second = run(pki.leaf())
    assert not second["changed"] and second["reasons"] == []
    for name in ("serial", "fingerprint_sha256", "not_after"):
        assert first[name] == second[name]
    assert second["backup_file"] is None and sorted(os.listdir(pki.dir)) == ["apiserver.crt", "apiserver.key", "ca.crt", "ca.key"]


def test_file_modes(with_ca):
    pki = with_ca
    run(pki.leaf())
    run(pki.leaf("kubelet", mode="0640"))
    assert mode_of(pki.dir / "ca.key") == 0o600 and mode_of(pki.dir / "ca.crt") == 0o644
    assert mode_of(pki.dir / "apiserver.key") == 0o600 and mode_of(pki.dir / "apiserver.crt") == 0o644
    assert mode_of(pki.dir / "kubelet.key") == 0o600 and mode_of(pki.dir / "kubelet.crt") == 0o640


def test_wrong_modes_are_fixed_without_reissue(with_ca):
    pki = with_ca
    first = run(pki.leaf())
    os.chmod(pki.dir / "apiserver.key", 0o644)
    os.chmod(pki.dir / "apiserver.crt", 0o600)
    result = run(pki.leaf(), diff=True)
    assert result["changed"] and result["attributes_changed"] and result["reasons"] == []
    assert result["serial"] == first["serial"]
    assert mode_of(pki.dir / "apiserver.key") == 0o600 and mode_of(pki.dir / "apiserver.crt") == 0o644
    assert result["diff"]["before"]["files"] == {first["path"]: {"mode": "0600"}, first["privatekey_path"]: {"mode": "0644"}}
    assert result["diff"]["after"]["files"] == {first["path"]: {"mode": "0644"}, first["privatekey_path"]: {"mode": "0600"}}
    assert not run(pki.leaf())["changed"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing the owner needs root")
def test_owner_and_group(with_ca):
    pki = with_ca
    nobody = pwd.getpwnam("nobody")
    result = run(pki.leaf(owner="nobody", group=str(nobody.pw_gid)))
    for name in ("apiserver.crt", "apiserver.key"):
        st = os.stat(pki.dir / name)
        assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert result["changed"]
    assert not run(pki.leaf(owner="nobody", group=str(nobody.pw_gid)))["changed"]
    fixed = run(pki.leaf(owner="root"))
    assert fixed["attributes_changed"] and os.stat(pki.dir / "apiserver.crt").st_uid == 0


# -- each re-issue reason through the files -------------------------------------------------------

@pytest.mark.parametrize("change, reasons", [
    ({"common_name": "kube-apiserver"}, ["subject_changed"]),
    ({"organizations": ["kubernetes"]}, ["subject_changed"]),
    ({"dns_names": ["apiserver", "localhost", "lb.example"]}, ["sans_changed"]),
    ({"ip_addresses": ["127.0.0.1", "192.0.2.100"]}, ["sans_changed"]),
    ({"profile": "peer"}, ["profile_changed"]),
    ({"force": True}, ["forced"]),
])
def test_reissue_keeps_the_key_and_backs_up_the_certificate(with_ca, change, reasons):
    pki = with_ca
    first = run(pki.leaf())
    old_pem = (pki.dir / "apiserver.crt").read_bytes()
    old_key = (pki.dir / "apiserver.key").read_bytes()
    result = run(pki.leaf(**change))
    assert result["changed"] and result["reasons"] == reasons
    assert result["serial"] != first["serial"]
    assert (pki.dir / "apiserver.key").read_bytes() == old_key and result["privatekey_backup_file"] is None
    backup = result["backup_file"]
    assert backup.startswith(first["path"] + ".") and backup.endswith("Z.bak")
    assert open(backup, "rb").read() == old_pem
    assert not run(pki.leaf(**change))["changed"] or change == {"force": True}


def test_expiring(with_ca):
    pki = with_ca
    first = run(pki.leaf(valid_days=100, renew_before_days=10))
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=85)
    assert run(pki.leaf(valid_days=100, renew_before_days=10), now=later)["reasons"] == []
    later += datetime.timedelta(days=6)
    result = run(pki.leaf(valid_days=100, renew_before_days=10), now=later)
    assert result["reasons"] == ["expiring"] and result["not_after"] > first["not_after"]


def test_a_ca_certificate_without_its_key_is_kept_and_what_it_signed_too(with_ca):
    """recover_credentials.yml gives back the etcd and front-proxy CA certificates without their keys
    (no host holds them): a new key would be a new CA, which no host trusts."""
    pki = with_ca
    run(pki.leaf())
    before = snapshot(pki.dir)
    os.unlink(pki.dir / "ca.key")
    result = run(pki.ca)
    assert not result["changed"] and result["reasons"] == [] and not (pki.dir / "ca.key").exists()
    assert run(pki.leaf())["reasons"] == []
    assert snapshot(pki.dir) == {name: data for name, data in before.items() if name != "ca.key"}
    batch = run({"certificates": [pki.ca, pki.leaf()]})
    assert not batch["changed"] and [r["reasons"] for r in batch["results"]] == [[], []]


def test_without_its_ca_key_a_certificate_that_must_be_issued_fails_and_nothing_is_written(with_ca):
    pki = with_ca
    run(pki.leaf())
    os.unlink(pki.dir / "ca.key")
    before = snapshot(pki.dir)
    error = error_of(pki.leaf(dns_names=["apiserver", "localhost", "new.example"]))
    assert str(error).startswith("must be issued (sans_changed) but the key of its CA, ") and "restore it from a backup" in str(error)
    error = error_of(pki.leaf("other"))
    assert "must be issued (missing, key_missing)" in str(error)
    error = error_of(dict(pki.ca, force=True))
    assert str(error).startswith("this CA certificate must be issued again (forced) but its key ")
    assert snapshot(pki.dir) == before


def test_a_ca_without_certificate_nor_key_is_created(pki):
    assert run(pki.ca)["reasons"] == ["missing", "key_missing"]


def test_ca_renewed_with_its_key_keeps_the_leaves(with_ca):
    pki = with_ca
    run(pki.leaf())
    assert run(dict(pki.ca, force=True))["reasons"] == ["forced"]
    assert run(pki.leaf())["reasons"] == []


def test_key_mismatch_reissues_for_the_key_in_place(with_ca):
    pki = with_ca
    run(pki.leaf())
    other = issue.generate_private_key("ecdsa", 256)
    (pki.dir / "apiserver.key").write_bytes(issue.private_key_pem(other))
    result = run(pki.leaf())
    assert result["reasons"] == ["key_mismatch"]
    assert load_cert(pki.dir / "apiserver.crt").public_key().public_numbers() == other.public_key().public_numbers()


def test_key_missing(with_ca):
    pki = with_ca
    run(pki.leaf())
    os.unlink(pki.dir / "apiserver.key")
    assert run(pki.leaf())["reasons"] == ["key_missing"]
    assert not run(pki.leaf())["changed"]


def test_key_type_changed_regenerates_and_backs_up_the_key(with_ca):
    pki = with_ca
    run(pki.leaf())
    old_key = (pki.dir / "apiserver.key").read_bytes()
    result = run(pki.leaf(key_type="rsa"))
    assert result["reasons"] == ["key_type_changed", "profile_changed"]
    assert open(result["privatekey_backup_file"], "rb").read() == old_key
    assert mode_of(result["privatekey_backup_file"]) == 0o600
    assert load_cert(pki.dir / "apiserver.crt").public_key().key_size == 2048
    assert not run(pki.leaf(key_type="rsa"))["changed"]


def test_invalid_certificate_file_is_replaced(with_ca):
    pki = with_ca
    (pki.dir / "apiserver.crt").write_text("not a certificate\n")
    result = run(pki.leaf())
    assert result["reasons"] == ["invalid", "key_missing"]
    assert open(result["backup_file"]).read() == "not a certificate\n"


# -- chain verification -------------------------------------------------------------------------

def test_chain_verifies_with_cryptography(with_ca):
    pki = with_ca
    run(pki.leaf("apiserver", dns_names=["kubernetes.default.svc"], ip_addresses=["10.96.0.1"]))
    run(pki.leaf("etcd-1", profile="peer", dns_names=["etcd-1"], ip_addresses=["192.0.2.11"]))
    run(pki.leaf("admin", profile="client", organizations=["system:masters"], dns_names=[], ip_addresses=[]))
    store = verification.Store([load_cert(pki.dir / "ca.crt")])
    builder = verification.PolicyBuilder().store(store)
    apiserver, etcd = load_cert(pki.dir / "apiserver.crt"), load_cert(pki.dir / "etcd-1.crt")
    for name in (verification.DNSName("kubernetes.default.svc"), verification.IPAddress(ipaddress.ip_address("10.96.0.1"))):
        assert builder.build_server_verifier(name).verify(apiserver, [])[-1].subject.rfc4514_string() == "CN=cluster-ca"
    with pytest.raises(verification.VerificationError):
        builder.build_server_verifier(verification.IPAddress(ipaddress.ip_address("10.27.53.32"))).verify(apiserver, [])
    builder.build_server_verifier(verification.DNSName("etcd-1")).verify(etcd, [])
    assert builder.build_client_verifier().verify(etcd, []).subjects == [x509.DNSName("etcd-1"), x509.IPAddress(ipaddress.ip_address("192.0.2.11"))]
    with pytest.raises(verification.VerificationError):  # EKU clientAuth missing
        builder.build_client_verifier().verify(apiserver, [])
    # Kubernetes client certificates carry no SAN, which the default web PKI policy requires.
    relaxed_ee = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None)
    relaxed = builder.extension_policies(ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=relaxed_ee)
    relaxed.build_client_verifier().verify(load_cert(pki.dir / "admin.crt"), [])


@pytest.mark.parametrize("profile, purpose, ok", [
    ("server", "sslserver", True),
    ("server", "sslclient", False),
    ("client", "sslclient", True),
    ("client", "sslserver", False),
    ("peer", "sslserver", True),
    ("peer", "sslclient", True),
])
def test_chain_verifies_with_openssl(with_ca, profile, purpose, ok):
    pki = with_ca
    run(pki.leaf("leaf", profile=profile))
    done = subprocess.run(["openssl", "verify", "-CAfile", str(pki.dir / "ca.crt"), "-purpose", purpose, str(pki.dir / "leaf.crt")],
                          capture_output=True, text=True, check=False)
    assert (done.returncode == 0) is ok, done.stdout + done.stderr


def test_intermediate_ca_chain_verifies_with_openssl(pki):
    root = pki.dir / "root"
    params = {"valid_days": 365, "certificates": [
        {"path": f"{pki.dir}/leaf.crt", "privatekey_path": f"{pki.dir}/leaf.key", "common_name": "leaf", "profile": "server",
         "dns_names": ["leaf"], "ca_cert": f"{pki.dir}/int.crt", "ca_key": f"{pki.dir}/int.key"},
        {"path": f"{pki.dir}/int.crt", "privatekey_path": f"{pki.dir}/int.key", "common_name": "intermediate", "profile": "ca",
         "ca_cert": f"{root}.crt", "ca_key": f"{root}.key"},
        {"path": f"{root}.crt", "privatekey_path": f"{root}.key", "common_name": "root", "profile": "ca"},
    ]}
    assert [r["issuer"] for r in run(params)["results"]] == ["CN=intermediate", "CN=root", "CN=root"]
    done = subprocess.run(["openssl", "verify", "-CAfile", f"{root}.crt", "-untrusted", f"{pki.dir}/int.crt", f"{pki.dir}/leaf.crt"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# -- check mode and diff ----------------------------------------------------------------------------

def test_check_mode_on_nothing_writes_nothing(pki):
    result = run(pki.ca, check_mode=True)
    assert result["changed"] and result["reasons"] == ["missing", "key_missing"]
    assert result["serial"] is None and result["fingerprint_sha256"] is None and result["not_after"]
    assert os.listdir(pki.dir) == []


def test_check_mode_reports_a_change_and_writes_nothing(with_ca):
    pki = with_ca
    first = run(pki.leaf())
    before = snapshot(pki.dir)
    result = run(pki.leaf(ip_addresses=["127.0.0.1", "192.0.2.10"]), check_mode=True)
    assert result["changed"] and result["reasons"] == ["sans_changed"] and result["ip_addresses"] == ["127.0.0.1", "192.0.2.10"]
    assert result["backup_file"] is None and result["serial"] is None
    assert snapshot(pki.dir) == before
    unchanged = run(pki.leaf(), check_mode=True)
    assert not unchanged["changed"] and unchanged["serial"] == first["serial"]


def test_check_mode_does_not_fix_modes(with_ca):
    pki = with_ca
    run(pki.leaf())
    os.chmod(pki.dir / "apiserver.crt", 0o600)
    assert run(pki.leaf(), check_mode=True)["attributes_changed"]
    assert mode_of(pki.dir / "apiserver.crt") == 0o600


def test_check_mode_batch_with_a_new_ca(pki):
    params = dict(pki.signer, certificates=[pki.ca, pki.leaf("a"), pki.leaf("b", profile="client")])
    result = run(params, check_mode=True)
    assert [r["reasons"] for r in result["results"]] == [["missing", "key_missing"]] * 3
    assert result["changed"] and os.listdir(pki.dir) == []


def test_diff_shows_subject_and_san_changes(with_ca):
    pki = with_ca
    run(pki.leaf())
    result = run(pki.leaf(common_name="kube-apiserver", dns_names=["apiserver", "lb.example"]), diff=True, check_mode=True)
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert (before["common_name"], before["dns_names"]) == ("apiserver", ["apiserver", "localhost"])
    assert (after["common_name"], after["dns_names"]) == ("kube-apiserver", ["apiserver", "lb.example"])
    assert before["ip_addresses"] == after["ip_addresses"] == ["127.0.0.1"]
    assert before["key"] == after["key"] == "ecdsa-256" and before["profile"] == after["profile"] == "server"
    assert result["diff"]["before_header"] == result["path"]


def test_diff_of_a_new_certificate(pki):
    result = run(pki.ca, diff=True)
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["profile"] == "ca" and result["diff"]["after"]["key"] == "ecdsa-256"


def test_batch_diff_lists_only_changed_entries(with_ca):
    pki = with_ca
    run(pki.leaf("a"))
    result = run(dict(pki.signer, certificates=[pki.leaf("a"), pki.leaf("b")]), diff=True)
    assert [d["after_header"] for d in result["diff"]] == [str(pki.dir / "b.crt")]


# -- bad input ----------------------------------------------------------------------------------------

def error_of(params, **kwargs) -> PkiError:
    with pytest.raises(PkiError) as info:
        run(params, **kwargs)
    return info.value


def test_unknown_profile_and_bad_ip(with_ca):
    error = error_of(with_ca.leaf(profile="kubelet", ip_addresses=["10.0.0.256"]))
    assert "unknown profile 'kubelet'" in str(error) and "'10.0.0.256' is not an IP address" in str(error)


def test_ca_that_is_not_a_ca(with_ca):
    pki = with_ca
    run(pki.leaf())
    error = error_of(pki.leaf("other", ca_cert=str(pki.dir / "apiserver.crt"), ca_key=str(pki.dir / "apiserver.key")))
    assert str(error) == f"ca_cert {pki.dir}/apiserver.crt (CN=apiserver) is not a CA certificate (CA:FALSE)"
    assert not (pki.dir / "other.crt").exists()


def test_ca_key_that_does_not_match(with_ca):
    pki = with_ca
    run(pki.leaf())
    error = error_of(pki.leaf("other", ca_key=str(pki.dir / "apiserver.key")))
    assert str(error) == f"ca_key {pki.dir}/apiserver.key does not match ca_cert {pki.dir}/ca.crt"


def test_missing_ca(pki):
    assert str(error_of(pki.leaf())) == f"ca_cert {pki.dir}/ca.crt does not exist"


def test_unreadable_keys(with_ca):
    pki = with_ca
    (pki.dir / "apiserver.key").write_text("garbage")
    assert "is not a readable PEM private key" in str(error_of(pki.leaf()))
    assert (pki.dir / "apiserver.key").read_text() == "garbage"  # never replaced
    os.unlink(pki.dir / "apiserver.key")
    os.mkdir(pki.dir / "apiserver.key")
    assert f"cannot read private key {pki.dir}/apiserver.key" in str(error_of(pki.leaf()))


def test_encrypted_ca_key(with_ca):
    pki = with_ca
    key = serialization.load_pem_private_key((pki.dir / "ca.key").read_bytes(), None)
    (pki.dir / "ca.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.BestAvailableEncryption(b"secret")))
    assert str(error_of(pki.leaf())) == f"private key {pki.dir}/ca.key is encrypted: only unencrypted keys are supported"


def test_missing_directory(pki):
    assert str(error_of(dict(pki.ca, path=str(pki.dir / "no" / "ca.crt")))) == f"directory {pki.dir}/no does not exist"


def test_check_mode_reports_a_certificate_in_a_directory_the_run_would_create(with_ca):
    """user_kubeconfig.yml --check for the first user: the task before would create the users directory."""
    pki = with_ca
    result = run(pki.leaf(path=str(pki.dir / "users" / "jane.crt"), privatekey_path=str(pki.dir / "users" / "jane.key")), check_mode=True)
    assert result["changed"] and result["reasons"] == ["missing", "key_missing"]
    assert not (pki.dir / "users").exists()


def test_unknown_owner(pki):
    assert "no such user" in str(error_of(dict(pki.ca, owner="no-such-user-kf")))


# -- batch ----------------------------------------------------------------------------------------------

def test_batch_with_the_ca_in_the_same_batch_in_any_position(pki):
    leaves = [pki.leaf(f"node-{i}", profile="peer") for i in range(3)]
    params = dict(pki.signer, certificates=[leaves[0], pki.ca, leaves[1], leaves[2]])
    result = run(params)
    assert result["changed"] and [r["path"] for r in result["results"]] == [e["path"] for e in params["certificates"]]
    assert all(r["reasons"] == ["missing", "key_missing"] for r in result["results"])
    assert {r["issuer"] for r in result["results"]} == {"CN=cluster-ca"}
    again = run(params)
    assert not again["changed"] and all(not r["changed"] for r in again["results"])


def test_batch_with_a_new_ca_reissues_the_leaves(pki):
    """A new CA only when its certificate goes too (the key alone missing keeps the CA, see above)."""
    params = dict(pki.signer, certificates=[pki.ca, pki.leaf("a"), pki.leaf("b")])
    run(params)
    os.unlink(pki.dir / "ca.key")
    os.unlink(pki.dir / "ca.crt")
    assert [r["reasons"] for r in run(params)["results"]] == [["missing", "key_missing"], ["ca_mismatch"], ["ca_mismatch"]]


def test_batch_reports_every_bad_entry_and_writes_nothing(with_ca):
    pki = with_ca
    run(pki.leaf("server"))
    (pki.dir / "broken.key").write_text("garbage")
    before = snapshot(pki.dir)
    params = dict(pki.signer, certificates=[
        pki.leaf("good"),
        pki.leaf("not-signed-by-a-ca", ca_cert=str(pki.dir / "server.crt"), ca_key=str(pki.dir / "server.key")),
        pki.leaf("broken"),
        pki.leaf("good-too"),
    ])
    error = error_of(params)
    assert [problem.split(":")[0] for problem in error.errors] == [
        f"certificates[1] ({pki.dir}/not-signed-by-a-ca.crt)", f"certificates[2] ({pki.dir}/broken.crt)"]
    assert "is not a CA certificate" in error.errors[0] and "not a readable PEM private key" in error.errors[1]
    assert str(error).startswith("2 problem(s) in certificates, nothing written: ")
    assert snapshot(pki.dir) == before


def test_batch_entries_signed_by_a_failed_ca_are_reported(pki):
    (pki.dir / "ca.key").write_text("garbage")
    error = error_of(dict(pki.signer, certificates=[pki.ca, pki.leaf("a")]))
    assert "not a readable PEM private key" in error.errors[0]
    assert error.errors[1] == f"certificates[1] ({pki.dir}/a.crt): not signed: its CA, planned in the same batch, has errors"


def test_batch_force_at_top_level(pki):
    params = dict(pki.signer, certificates=[pki.ca, pki.leaf("a")])
    run(params)
    result = run(dict(params, force=True))
    assert [r["reasons"] for r in result["results"]] == [["forced"], ["forced"]]
    assert [r["reasons"] for r in run(dict(params, certificates=[dict(pki.ca, force=True), pki.leaf("a")]))["results"]] == [["forced"], []]


def test_batch_shared_key(pki):
    params = dict(pki.signer, certificates=[pki.ca, pki.leaf("server"), pki.leaf("peer", profile="peer", privatekey_path=str(pki.dir / "server.key"))])
    run(params)
    assert public_der(pki.dir / "server.crt") == public_der(pki.dir / "peer.crt")
    assert not run(params)["changed"]


def test_batch_loads_each_ca_once(pki, monkeypatch):
    run(pki.ca)
    calls = []
    original = X509CertBackend._load_authority

    def counting(self, ca_cert, ca_key):
        calls.append(ca_cert)
        return original(self, ca_cert, ca_key)
    monkeypatch.setattr(X509CertBackend, "_load_authority", counting)
    run(dict(pki.signer, certificates=[pki.leaf(f"n{i}") for i in range(10)]))
    assert calls == [str(pki.dir / "ca.crt")]


def test_signing_order_and_cycles(pki):
    a = dict(pki.leaf("a", profile="ca"), ca_cert=str(pki.dir / "b.crt"), ca_key=str(pki.dir / "b.key"))
    b = dict(pki.leaf("b", profile="ca"), ca_cert=str(pki.dir / "a.crt"), ca_key=str(pki.dir / "a.key"))
    specs = specs_from_params({"certificates": [a, b]})
    with pytest.raises(PkiError, match="sign each other in a cycle"):
        signing_order(specs, ["a", "b"])
    specs = specs_from_params({"certificates": [pki.leaf("x"), pki.leaf("y"), pki.ca]})
    assert signing_order(specs, ["x", "y", "ca"]) == [2, 0, 1]


def test_a_cluster_pki_in_one_batch_is_fast(pki, capsys):
    """3 masters + 50 workers in signed mode: about 120 ECDSA certificates."""
    certificates = [pki.ca]
    for i in range(3):
        certificates.append(pki.leaf(f"master-{i}", profile="peer"))
        certificates.append(pki.leaf(f"master-{i}-client", profile="client", dns_names=[], ip_addresses=[]))
    for i in range(50):
        certificates.append(pki.leaf(f"node-{i}", profile="client", common_name=f"system:node:node-{i}", organizations=["system:nodes"],
                                     dns_names=[], ip_addresses=[]))
        certificates.append(pki.leaf(f"node-{i}-serving", dns_names=[f"node-{i}"], ip_addresses=[f"192.0.2.{i + 1}"]))
    certificates += [pki.leaf(f"extra-{i}", profile="client", dns_names=[], ip_addresses=[]) for i in range(13)]
    params = dict(pki.signer, certificates=certificates)
    start = time.perf_counter()
    result = run(params)
    created = time.perf_counter() - start
    start = time.perf_counter()
    again = run(params)
    kept = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n{len(certificates)} ECDSA certificates: created in {created:.2f} s ({created / len(certificates) * 1000:.1f} ms each), "
              f"checked unchanged in {kept:.2f} s")
    assert len(result["results"]) == 120 and all(r["changed"] for r in result["results"])
    assert not again["changed"]
    assert created < 10 and kept < 5
