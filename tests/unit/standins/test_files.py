# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files named by flags: missing, unreadable, garbage, key/cert mismatch, wrong CA, key modes, config fields.

Every case starts from a command line that passes (asserted first) and changes one thing; the
stand-ins run with KUBEFORGE_STANDIN_CHECK_ONLY=1, so they check and exit without any network.
"""
from __future__ import annotations

import os
import shutil

import pytest
import yaml

from .helpers import write_kubeconfig, write_yaml


def _copy(pki, source: str, name: str, mode: int) -> str:
    target = os.path.join(pki.dir, name)
    shutil.copyfile(source, target)
    os.chmod(target, mode)
    return target


@pytest.fixture(scope="module")
def bad(pki, tmp_path_factory):
    """Broken files: garbage, a directory, an empty file, a world-readable key."""
    directory = tmp_path_factory.mktemp("bad")
    files = {"dir": str(directory / "a-directory"), "garbage": str(directory / "garbage.pem"), "empty": str(directory / "empty.pem"),
             "garbage_key": str(directory / "garbage.key"), "key_0644": _copy(pki, pki.etcd_client.key, "etcd-client-0644.key", 0o644),
             "key_0640": _copy(pki, pki.apiserver.key, "apiserver-0640.key", 0o640)}
    os.mkdir(files["dir"])
    for name in ("garbage", "garbage_key"):
        with open(os.open(files[name], os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as handle:
            handle.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n" if name == "garbage" else "junk\n")
    open(files["empty"], "w", encoding="utf-8").close()
    return files


def test_valid_apiserver_command_line_passes(standins, apiserver_args):
    result = standins.check("kube-apiserver", *apiserver_args())
    assert result.returncode == 0, result.stderr
    assert "kube-apiserver: kubeforge stand-in checks passed" in result.stdout


# Each run below breaks several flags at once: the stand-in reports every problem, and each
# message must name its flag and file.

def test_missing_unreadable_or_unparsable_files(standins, apiserver_args, bad):
    broken = {
        "--tls-cert-file": ("/nonexistent/apiserver.crt", "--tls-cert-file /nonexistent/apiserver.crt: no such file or directory"),
        "--client-ca-file": (bad["dir"], f"--client-ca-file {bad['dir']}: is a directory, not a file"),
        "--etcd-cafile": (bad["garbage"], f"--etcd-cafile {bad['garbage']}: not a valid PEM certificate"),
        "--kubelet-certificate-authority": (bad["empty"], f"--kubelet-certificate-authority {bad['empty']}: is empty"),
        "--etcd-keyfile": (bad["garbage_key"], f"--etcd-keyfile {bad['garbage_key']}: no PEM private key found"),
        "--encryption-provider-config": (bad["garbage"], f"--encryption-provider-config {bad['garbage']}: not a EncryptionConfiguration object"),
        "--audit-policy-file": ("/nonexistent/audit.yaml", "--audit-policy-file /nonexistent/audit.yaml: no such file or directory"),
        "--service-account-key-file": (bad["garbage_key"], "no PEM public key, private key or certificate found"),
    }
    result = standins.check("kube-apiserver", *apiserver_args(**{flag: value for flag, (value, message) in broken.items()}))
    assert result.returncode == 1
    assert f"{len(broken)} problems:" in result.stderr
    for value, message in broken.values():
        assert message in result.stderr, message


def test_key_and_certificate_mismatch(standins, apiserver_args, pki):
    result = standins.check("kube-apiserver", *apiserver_args(**{
        "--tls-private-key-file": pki.admin.key, "--etcd-keyfile": pki.apiserver.key, "--proxy-client-key-file": pki.scheduler.key}))
    assert result.returncode == 1
    assert f"--tls-private-key-file {pki.admin.key} does not match --tls-cert-file {pki.apiserver.cert}" in result.stderr
    assert f"--etcd-keyfile {pki.apiserver.key} does not match --etcd-certfile" in result.stderr
    assert f"--proxy-client-key-file {pki.scheduler.key} does not match --proxy-client-cert-file" in result.stderr


def test_certificate_not_from_its_ca(standins, apiserver_args, pki):
    """The pairs: etcd client cert / --etcd-cafile, kubelet client cert / --client-ca-file, proxy client / requestheader CA."""
    result = standins.check("kube-apiserver", *apiserver_args(**{
        "--etcd-certfile": pki.rogue_etcd_client.cert, "--etcd-keyfile": pki.rogue_etcd_client.key,
        "--kubelet-client-certificate": pki.rogue_admin.cert, "--kubelet-client-key": pki.rogue_admin.key,
        "--proxy-client-cert-file": pki.admin.cert, "--proxy-client-key-file": pki.admin.key,
        "--requestheader-allowed-names": None}))
    assert result.returncode == 1
    for message in (f"--etcd-certfile {pki.rogue_etcd_client.cert} (CN=kube-apiserver-etcd-client, issuer CN=other-ca) "
                    f"does not chain to --etcd-cafile {pki.etcd_ca.cert} (which holds CN=etcd-ca)",
                    f"--kubelet-client-certificate {pki.rogue_admin.cert} (CN=admin,O=system:masters, issuer CN=other-ca) "
                    f"does not chain to --client-ca-file {pki.ca.cert}",
                    f"--proxy-client-cert-file {pki.admin.cert} (CN=admin,O=system:masters, issuer CN=ca) "
                    f"does not chain to --requestheader-client-ca-file {pki.front_proxy_ca.cert}"):
        assert message in result.stderr, message
    assert "x509: certificate signed by unknown authority" in result.stderr


def test_certificate_used_for_the_wrong_purpose(standins, apiserver_args, pki):
    result = standins.check("kube-apiserver", *apiserver_args(**{
        "--kubelet-client-certificate": pki.server_only.cert, "--kubelet-client-key": pki.server_only.key,
        "--tls-cert-file": pki.admin.cert, "--tls-private-key-file": pki.admin.key}))
    assert "(CN=not-a-client) lacks the clientAuth extended key usage" in result.stderr
    assert "(CN=admin,O=system:masters) lacks the serverAuth extended key usage" in result.stderr


def test_key_readable_by_group_or_others(standins, apiserver_args, bad):
    result = standins.check("kube-apiserver", *apiserver_args(**{"--etcd-keyfile": bad["key_0644"], "--tls-private-key-file": bad["key_0640"]}))
    assert result.returncode == 1
    assert f"--etcd-keyfile {bad['key_0644']} has mode 0644" in result.stderr
    assert f"--tls-private-key-file {bad['key_0640']} has mode 0640" in result.stderr


def test_signing_key_must_be_among_the_verification_keys(standins, apiserver_args, pki):
    result = standins.check("kube-apiserver", *apiserver_args(**{"--service-account-key-file": pki.admin.cert}))
    assert "its public key is not in --service-account-key-file" in result.stderr


def test_required_apiserver_flags(standins, apiserver_args):
    result = standins.check("kube-apiserver", *apiserver_args(**{"--etcd-servers": None, "--service-account-issuer": None}))
    assert "--etcd-servers must be specified" in result.stderr
    assert "service-account-issuer is a required flag" in result.stderr


# ---------------------------------------------------------------- config files

def _edited(path: str, target: str, edit) -> str:
    with open(path, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    edit(doc)
    return write_yaml(target, doc, mode=0o600)


def test_apiserver_config_files(standins, apiserver_args, configs, tmp_path):
    def encryption(doc):
        doc.update(resource=[])
        doc["resources"][0]["providers"][0]["aescbc"].update(keyz=[])
        doc["resources"][0]["providers"][0]["aescbc"]["keys"][0].update(secret="c2hvcnQ=")

    def audit(doc):
        doc["rules"][0].update(levels="None")
        doc["rules"][1].update(level="Everything")

    result = standins.check("kube-apiserver", *apiserver_args(**{
        "--encryption-provider-config": _edited(configs.encryption, str(tmp_path / "enc.yaml"), encryption),
        "--audit-policy-file": _edited(configs.audit, str(tmp_path / "audit.yaml"), audit)}))
    assert result.returncode == 1
    for message in ('strict decoding error: unknown field "resource"', 'unknown field "resources[].providers[].aescbc.keyz"',
                    "secret is not of the expected length, got 5", 'unknown field "rules[].levels"',
                    "rules[1].level: Unsupported value: 'Everything'"):
        assert message in result.stderr, message
    wrong_version = _edited(configs.audit, str(tmp_path / "audit1.yaml"), lambda d: d.update(apiVersion="audit.k8s.io/v1beta1"))
    result = standins.check("kube-apiserver", *apiserver_args(**{"--audit-policy-file": wrong_version}))
    assert 'no kind "Policy" is registered for version "audit.k8s.io/v1beta1"' in result.stderr


def test_encryption_config_with_secrets_must_be_private(standins, apiserver_args, configs, tmp_path):
    path = _edited(configs.encryption, str(tmp_path / "enc.yaml"), lambda d: None)
    os.chmod(path, 0o644)
    result = standins.check("kube-apiserver", *apiserver_args(**{"--encryption-provider-config": path}))
    assert "has mode 0644" in result.stderr


def test_duplicate_yaml_field_is_rejected(standins, apiserver_args, configs, tmp_path):
    path = str(tmp_path / "audit.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  level: Metadata\n")
    result = standins.check("kube-apiserver", *apiserver_args(**{"--audit-policy-file": path}))
    assert 'duplicate field "level"' in result.stderr


def test_scheduler_config_and_its_kubeconfig(standins, configs, tmp_path):
    assert standins.check("kube-scheduler", f"--config={configs.scheduler_config}", "--bind-address=127.0.0.1").returncode == 0

    def fields(doc):
        doc.update(foo=1)
        doc["clientConnection"].update(kubeconfigg="x")
        doc["profiles"][0].update(plugins={"score": {"enabled": [{"nam": "X"}]}})

    result = standins.check("kube-scheduler", "--config=" + _edited(configs.scheduler_config, str(tmp_path / "s1.yaml"), fields))
    for message in ('unknown field "foo"', 'unknown field "clientConnection.kubeconfigg"', 'unknown field "profiles[].plugins.score.enabled[].nam"'):
        assert message in result.stderr, message
    missing = _edited(configs.scheduler_config, str(tmp_path / "s2.yaml"),
                      lambda d: d["clientConnection"].update(kubeconfig="/nonexistent.kubeconfig"))
    assert "clientConnection.kubeconfig /nonexistent.kubeconfig: no such file" in standins.check("kube-scheduler", f"--config={missing}").stderr
    kind = _edited(configs.scheduler_config, str(tmp_path / "s3.yaml"), lambda d: d.update(kind="KubeletConfiguration"))
    assert 'no kind "KubeletConfiguration" is registered' in standins.check("kube-scheduler", f"--config={kind}").stderr


def test_kubeconfig_client_certificate_checks(standins, pki, configs, tmp_path):
    """kubeconfig client cert vs kubeconfig CA, key vs cert, mode with an embedded key, no certificate."""
    wrong_ca = write_kubeconfig(str(tmp_path / "wrong-ca.kubeconfig"), configs.server, pki.ca.cert, pki.rogue_admin)
    mismatch = write_kubeconfig(str(tmp_path / "mismatch.kubeconfig"), configs.server, pki.ca.cert, pki.controller_manager)
    _edited(mismatch, mismatch, lambda d: d["users"][0]["user"].update({"client-key": pki.scheduler.key}))
    mode = write_kubeconfig(str(tmp_path / "mode.kubeconfig"), configs.server, pki.ca.cert, pki.controller_manager, embed=True)
    os.chmod(mode, 0o644)
    result = standins.check("kube-controller-manager", f"--kubeconfig={wrong_ca}", f"--authentication-kubeconfig={mismatch}",
                            f"--authorization-kubeconfig={mode}")
    assert result.returncode == 1
    assert f"--kubeconfig {wrong_ca} client-certificate (CN=admin,O=system:masters, issuer CN=other-ca) does not chain to" in result.stderr
    assert f"--authentication-kubeconfig {mismatch} client-key does not match" in result.stderr
    assert f"--authorization-kubeconfig {mode} (it embeds a client key or token) {mode} has mode 0644" in result.stderr
    token_only = write_kubeconfig(str(tmp_path / "token.kubeconfig"), configs.server, pki.ca.cert, None, token="abc")
    result = standins.check("kube-controller-manager", f"--kubeconfig={token_only}")
    assert "no client certificate" in result.stderr


def test_controller_manager_signing_pair_and_cidrs(standins, pki, configs):
    ok = standins.check("kube-controller-manager", f"--kubeconfig={configs.cm_kubeconfig}", f"--root-ca-file={pki.ca.cert}",
                        f"--cluster-signing-cert-file={pki.ca.cert}", f"--cluster-signing-key-file={pki.ca.key}",
                        f"--service-account-private-key-file={pki.sa.key}", "--use-service-account-credentials",
                        "--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16", "--leader-elect=true")
    assert ok.returncode == 0, ok.stderr
    bad = standins.check("kube-controller-manager", f"--kubeconfig={configs.cm_kubeconfig}",
                         f"--cluster-signing-cert-file={pki.admin.cert}", f"--cluster-signing-key-file={pki.admin.key}",
                         "--allocate-node-cidrs")
    assert "is not a CA certificate" in bad.stderr
    assert "--allocate-node-cidrs is true but --cluster-cidr is empty" in bad.stderr


def test_kubelet_config(standins, pki, configs, tmp_path):
    base = [f"--config={configs.kubelet_config}", f"--kubeconfig={configs.kubelet_kubeconfig}"]
    ok = standins.check("kubelet", *base)
    assert ok.returncode == 0, ok.stderr

    def broken(doc):
        doc.update(cgroupDrivr="systemd", tlsPrivateKeyFile=pki.admin.key)
        doc["authentication"]["x509"].update(clientCA="x")

    result = standins.check("kubelet", "--config=" + _edited(configs.kubelet_config, str(tmp_path / "k1.yaml"), broken))
    for message in ('strict decoding error: unknown field "cgroupDrivr"', 'unknown field "authentication.x509.clientCA"',
                    f"kubelet serving key {pki.admin.key} does not match"):
        assert message in result.stderr, message
    dropins = tmp_path / "kubelet.conf.d"
    dropins.mkdir()
    write_yaml(str(dropins / "10-x.conf"), {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "maxPod": 3})
    result = standins.check("kubelet", *base, f"--config-dir={dropins}")
    assert 'unknown field "maxPod"' in result.stderr


def test_kubelet_may_wait_for_its_bootstrap(standins, pki, configs, tmp_path):
    bootstrap = write_kubeconfig(str(tmp_path / "bootstrap.kubeconfig"), configs.server, pki.ca.cert, None, token="abcdef.0123456789abcdef")
    ok = standins.check("kubelet", f"--config={configs.kubelet_config}", f"--kubeconfig={tmp_path}/kubelet.kubeconfig",
                        f"--bootstrap-kubeconfig={bootstrap}")
    assert ok.returncode == 0, ok.stderr
    missing = standins.check("kubelet", f"--config={configs.kubelet_config}", f"--kubeconfig={tmp_path}/kubelet.kubeconfig")
    assert "no --bootstrap-kubeconfig" in missing.stderr


def test_kube_proxy_config(standins, configs, tmp_path):
    assert standins.check("kube-proxy", f"--config={configs.proxy_config}").returncode == 0
    unknown = _edited(configs.proxy_config, str(tmp_path / "p.yaml"), lambda d: d["conntrack"].update(maxPerCor=1))
    assert 'unknown field "conntrack.maxPerCor"' in standins.check("kube-proxy", f"--config={unknown}").stderr
