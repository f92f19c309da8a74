# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kube-controller-manager TEST STAND-IN (tests only; real hosts run the official binary).

Checks flags and files, then authenticates to the apiserver through --kubeconfig (and the
delegated --authentication-kubeconfig / --authorization-kubeconfig) with the client certificate,
keeps checking /healthz through it, and serves /healthz, /livez, /readyz over HTTPS on
--bind-address:--secure-port (10257), with a self-signed certificate when --tls-cert-file is unset.
"""
from __future__ import annotations

from kubeforge_standins import common

_SIGNERS = ("", "-kube-apiserver-client", "-kubelet-client", "-kubelet-serving", "-legacy-unknown")

SPEC = common.Spec(
    name="kube-controller-manager",
    file_flags={
        "--allow-metric-labels-manifest": "yaml",
        "--authentication-kubeconfig": "kubeconfig",
        "--authorization-kubeconfig": "kubeconfig",
        "--client-ca-file": "ca",
        "--cloud-config": "file",
        "--kubeconfig": "kubeconfig",
        "--leader-migration-config": "yaml",
        "--pv-recycler-pod-template-filepath-hostpath": "yaml",
        "--pv-recycler-pod-template-filepath-nfs": "yaml",
        "--requestheader-client-ca-file": "ca",
        "--root-ca-file": "ca",
        "--service-account-private-key-file": "key",
        "--tls-cert-file": "cert",
        "--tls-private-key-file": "key",
        "--tls-sni-cert-key": "sni",
        **{f"--cluster-signing{signer}-cert-file": "cert" for signer in _SIGNERS},
        **{f"--cluster-signing{signer}-key-file": "key" for signer in _SIGNERS},
    },
    pairs=(("--tls-cert-file", "--tls-private-key-file", None, "server"),)
    + tuple((f"--cluster-signing{signer}-cert-file", f"--cluster-signing{signer}-key-file", None, None) for signer in _SIGNERS),
)
VALUE_FLAGS = frozenset(("--secure-port", "--bind-address", "--cluster-cidr", "--cert-dir"))


def body(argv: list) -> None:
    data, parsed, checks = common.start(SPEC, argv, VALUE_FLAGS)
    del data
    parsed.port("--secure-port", 10257)
    for signer in _SIGNERS:
        certs = checks.loaded.get(f"--cluster-signing{signer}-cert-file")
        if certs and not common.is_ca(certs[0]):
            checks.add(f"--cluster-signing{signer}-cert-file {parsed.value(f'--cluster-signing{signer}-cert-file')}: "
                       f"{common.describe(certs[0])} is not a CA certificate, it cannot sign certificates")
    if not parsed.value("--kubeconfig"):
        checks.add("--kubeconfig is not set: unable to load in-cluster configuration, "
                   "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined")
    if parsed.flag_bool("--allocate-node-cidrs", False) and not parsed.value("--cluster-cidr"):
        checks.add("--allocate-node-cidrs is true but --cluster-cidr is empty: the node IPAM controller cannot allocate pod CIDRs")
    if parsed.flag_bool("--use-service-account-credentials", False) and not parsed.value("--service-account-private-key-file"):
        common.log("--use-service-account-credentials was specified without providing a --service-account-private-key-file", "W")
    kubeconfigs = common.client_kubeconfigs(checks, parsed, ("--kubeconfig", checks.loaded.get("--kubeconfig")))
    common.finish_checks(SPEC, checks)
    common.run_client_component(SPEC, parsed, kubeconfigs, 10257)


def main(argv: list) -> int:
    return common.run_main(SPEC, body, argv)
