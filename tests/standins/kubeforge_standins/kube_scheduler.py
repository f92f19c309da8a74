# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kube-scheduler TEST STAND-IN (tests only; real hosts run the official binary).

Checks flags, the KubeSchedulerConfiguration given with --config (every field against the
config-api lists) and the kubeconfig it names in clientConnection.kubeconfig (the deprecated
--kubeconfig flag is used only without --config, as the real scheduler does). Then authenticates to
the apiserver with the client certificate, keeps checking /healthz through it, and serves
/healthz, /livez, /readyz over HTTPS on --bind-address:--secure-port (10259).
"""
from __future__ import annotations

from kubeforge_standins import common

SPEC = common.Spec(
    name="kube-scheduler",
    file_flags={
        "--allow-metric-labels-manifest": "yaml",
        "--authentication-kubeconfig": "kubeconfig",
        "--authorization-kubeconfig": "kubeconfig",
        "--client-ca-file": "ca",
        "--config": "config",
        "--kubeconfig": "kubeconfig",
        "--requestheader-client-ca-file": "ca",
        "--tls-cert-file": "cert",
        "--tls-private-key-file": "key",
        "--tls-sni-cert-key": "sni",
    },
    config_flags={"--config": "KubeSchedulerConfiguration"},
    pairs=(("--tls-cert-file", "--tls-private-key-file", None, "server"),),
)
VALUE_FLAGS = frozenset(("--secure-port", "--bind-address", "--cert-dir", "--write-config-to"))


def body(argv: list) -> None:
    data, parsed, checks = common.start(SPEC, argv, VALUE_FLAGS)
    del data
    parsed.port("--secure-port", 10259)
    if parsed.value("--write-config-to"):
        checks.add("--write-config-to is not supported by the kubeforge TEST STAND-IN kube-scheduler")
    main_kubeconfig = ("--kubeconfig", checks.loaded.get("--kubeconfig"))
    config_path = parsed.value("--config")
    if config_path:
        if parsed.value("--kubeconfig"):
            common.log("--kubeconfig is ignored because --config is set (its clientConnection.kubeconfig is used)", "W")
        config = checks.loaded.get("--config")
        if config is not None:
            path = str((config.get("clientConnection") or {}).get("kubeconfig") or "")
            label = f"--config {config_path} clientConnection.kubeconfig"
            if not path:
                checks.add(f"{label} is empty: unable to load in-cluster configuration, "
                           "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined")
                main_kubeconfig = (label, None)
            else:
                main_kubeconfig = (label, checks.kubeconfig(path, label))
    elif not parsed.value("--kubeconfig"):
        checks.add("neither --config nor --kubeconfig is set: unable to load in-cluster configuration, "
                   "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined")
    kubeconfigs = common.client_kubeconfigs(checks, parsed, main_kubeconfig)
    common.finish_checks(SPEC, checks)
    common.run_client_component(SPEC, parsed, kubeconfigs, 10259)


def main(argv: list) -> int:
    return common.run_main(SPEC, body, argv)
