# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the stand-in tests: the stand-ins built once per session, a PKI, valid file sets."""
from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from .helpers import OLD_VERSION, REPO, VERSION, Pki, Standins, write_kubeconfig, write_yaml

sys.path.insert(0, os.path.join(REPO, "tests", "standins"))


@pytest.fixture(scope="session")
def standins(tmp_path_factory):
    """tests/harness/build-standins.sh into a temporary artifacts dir, for the lab version and an older one."""
    root = str(tmp_path_factory.mktemp("artifacts"))
    built = subprocess.run([os.path.join(REPO, "tests", "harness", "build-standins.sh"), root, VERSION, OLD_VERSION],
                           capture_output=True, text=True, check=False, timeout=120, env=dict(os.environ, PYTHON=sys.executable))
    assert built.returncode == 0, built.stderr
    made = Standins(root, str(tmp_path_factory.mktemp("logs")))
    yield made
    made.stop_all()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The certificates of a small cluster, plus a foreign CA and certificates it signed."""
    pki_dir = Pki(str(tmp_path_factory.mktemp("pki")))
    ns = types.SimpleNamespace(dir=pki_dir.directory)
    ns.ca = pki_dir.ca("ca")
    ns.other_ca = pki_dir.ca("other-ca")
    ns.etcd_ca = pki_dir.ca("etcd-ca")
    ns.front_proxy_ca = pki_dir.ca("front-proxy-ca")
    ns.apiserver = pki_dir.leaf("apiserver", ns.ca, "kube-apiserver", usage="server", rsa_key=True,
                                sans=("127.0.0.1", "localhost", "kubernetes", "kubernetes.default.svc"))
    ns.etcd_server = pki_dir.leaf("etcd-server", ns.etcd_ca, "etcd", usage="peer", sans=("127.0.0.1", "localhost"))
    ns.etcd_client = pki_dir.leaf("apiserver-etcd-client", ns.etcd_ca, "kube-apiserver-etcd-client")
    ns.kubelet_client = pki_dir.leaf("apiserver-kubelet-client", ns.ca, "kube-apiserver-kubelet-client", ("system:masters",))
    ns.front_proxy_client = pki_dir.leaf("front-proxy-client", ns.front_proxy_ca, "front-proxy-client")
    ns.admin = pki_dir.leaf("admin", ns.ca, "admin", ("system:masters",))
    ns.controller_manager = pki_dir.leaf("controller-manager", ns.ca, "system:kube-controller-manager")
    ns.scheduler = pki_dir.leaf("scheduler", ns.ca, "system:kube-scheduler")
    ns.kubelet_node = pki_dir.leaf("kubelet-node", ns.ca, "system:node:w1", ("system:nodes",))
    ns.kube_proxy = pki_dir.leaf("kube-proxy", ns.ca, "system:kube-proxy")
    ns.kubelet_serving = pki_dir.leaf("kubelet-serving", ns.ca, "w1", usage="server", sans=("127.0.0.1",))
    ns.sa = pki_dir.leaf("sa", ns.ca, "service-accounts")  # only its key pair is used
    ns.rogue_admin = pki_dir.leaf("rogue-admin", ns.other_ca, "admin", ("system:masters",))
    ns.rogue_etcd_client = pki_dir.leaf("rogue-etcd-client", ns.other_ca, "kube-apiserver-etcd-client")
    ns.server_only = pki_dir.leaf("server-only", ns.ca, "not-a-client", usage="server")
    ns.sa_pub = os.path.join(pki_dir.directory, "sa.pub")
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    with open(ns.sa_pub, "wb") as handle:
        handle.write(ns.sa.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
    return ns


@pytest.fixture(scope="session")
def configs(tmp_path_factory, pki):
    """Valid config files: encryption config, audit policy, scheduler/kubelet/kube-proxy configs and kubeconfigs."""
    directory = tmp_path_factory.mktemp("configs")
    ns = types.SimpleNamespace(dir=str(directory))
    ns.encryption = write_yaml(str(directory / "encryption.yaml"), {
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
        "resources": [{"resources": ["secrets"], "providers": [
            {"aescbc": {"keys": [{"name": "key1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]}},
            {"identity": {}}]}]})
    ns.audit = write_yaml(str(directory / "audit.yaml"), {
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
        "rules": [{"level": "None", "users": ["system:kube-proxy"]}, {"level": "Metadata"}]}, mode=0o644)
    ns.server = "https://127.0.0.1:6443"
    ns.admin_kubeconfig = write_kubeconfig(str(directory / "admin.kubeconfig"), ns.server, pki.ca.cert, pki.admin)
    ns.cm_kubeconfig = write_kubeconfig(str(directory / "cm.kubeconfig"), ns.server, pki.ca.cert, pki.controller_manager)
    ns.scheduler_kubeconfig = write_kubeconfig(str(directory / "scheduler.kubeconfig"), ns.server, pki.ca.cert, pki.scheduler,
                                               embed=True)
    ns.kubelet_kubeconfig = write_kubeconfig(str(directory / "kubelet.kubeconfig"), ns.server, pki.ca.cert, pki.kubelet_node)
    ns.proxy_kubeconfig = write_kubeconfig(str(directory / "proxy.kubeconfig"), ns.server, pki.ca.cert, pki.kube_proxy)
    ns.scheduler_config = write_yaml(str(directory / "scheduler.yaml"), {
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": ns.scheduler_kubeconfig}, "leaderElection": {"leaderElect": True},
        "profiles": [{"schedulerName": "default-scheduler",
                      "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}}]}]},
        mode=0o644)
    ns.kubelet_config = write_yaml(str(directory / "kubelet.yaml"), {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True}, "x509": {"clientCAFile": pki.ca.cert}},
        "authorization": {"mode": "Webhook"}, "tlsCertFile": pki.kubelet_serving.cert, "tlsPrivateKeyFile": pki.kubelet_serving.key,
        "featureGates": {"SomeGate": True}, "evictionHard": {"memory.available": "100Mi"}, "cgroupDriver": "systemd",
        "healthzBindAddress": "127.0.0.1", "healthzPort": 10248, "logging": {"format": "text", "verbosity": 2}}, mode=0o644)
    ns.proxy_config = write_yaml(str(directory / "kube-proxy.yaml"), {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration", "mode": "iptables",
        "clientConnection": {"kubeconfig": ns.proxy_kubeconfig}, "clusterCIDR": "10.244.0.0/16",
        "healthzBindAddress": "127.0.0.1:10256", "conntrack": {"maxPerCore": 0}}, mode=0o644)
    return ns


@pytest.fixture(scope="session")
def apiserver_args(pki, configs):
    """A valid kube-apiserver command line (etcd and port given by the caller)."""
    def make(etcd: str = "https://127.0.0.1:2379", port: int = 6443, **overrides) -> list:
        flags = {
            "--advertise-address": "127.0.0.1", "--bind-address": "127.0.0.1", "--secure-port": str(port),
            "--etcd-servers": etcd, "--etcd-cafile": pki.etcd_ca.cert, "--etcd-certfile": pki.etcd_client.cert,
            "--etcd-keyfile": pki.etcd_client.key, "--tls-cert-file": pki.apiserver.cert,
            "--tls-private-key-file": pki.apiserver.key, "--client-ca-file": pki.ca.cert, "--anonymous-auth": "false",
            "--authorization-mode": "Node,RBAC", "--enable-admission-plugins": "NodeRestriction",
            "--kubelet-certificate-authority": pki.ca.cert, "--kubelet-client-certificate": pki.kubelet_client.cert,
            "--kubelet-client-key": pki.kubelet_client.key, "--proxy-client-cert-file": pki.front_proxy_client.cert,
            "--proxy-client-key-file": pki.front_proxy_client.key, "--requestheader-client-ca-file": pki.front_proxy_ca.cert,
            "--requestheader-allowed-names": "front-proxy-client", "--service-account-issuer": "https://kubernetes.default.svc",
            "--service-account-key-file": pki.sa_pub, "--service-account-signing-key-file": pki.sa.key,
            "--encryption-provider-config": configs.encryption, "--audit-policy-file": configs.audit,
            "--profiling": "false", "--tls-min-version": "VersionTLS12",
            "--tls-cipher-suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        }
        flags.update(overrides)
        return [f"{name}={value}" for name, value in flags.items() if value is not None]
    return make
