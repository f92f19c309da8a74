# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kube-proxy TEST STAND-IN (tests only; real hosts run the official kube-proxy).

Checks flags, the KubeProxyConfiguration of --config (fields against the config-api lists) and
the kubeconfig (clientConnection.kubeconfig or --kubeconfig) with its client certificate, then
serves /healthz and /livez over plain HTTP on healthzBindAddress (0.0.0.0:10256). It programs no
iptables or IPVS rules.
"""
from __future__ import annotations

import datetime
import json
import threading
import urllib.parse

from kubeforge_standins import common

SPEC = common.Spec(
    name="kube-proxy",
    file_flags={"--config": "config", "--kubeconfig": "kubeconfig"},
    config_flags={"--config": "KubeProxyConfiguration"},
)
VALUE_FLAGS = frozenset(("--healthz-bind-address", "--write-config-to"))


class App:
    """kube-proxy's healthz server: JSON with lastUpdated / currentTime."""

    def __init__(self):
        self.started = datetime.datetime.now(datetime.timezone.utc)

    def handle(self, handler: common.Handler, method: str) -> None:
        path = urllib.parse.urlsplit(handler.path).path
        if method in ("GET", "HEAD") and path in ("/healthz", "/livez"):
            now = datetime.datetime.now(datetime.timezone.utc)
            handler.reply(200, json.dumps({"lastUpdated": now.isoformat(), "currentTime": now.isoformat(),
                                           "nodeEligible": True}), "application/json")
        else:
            handler.reply(404, "404 page not found\n")


def split_address(value: str) -> tuple:
    """'0.0.0.0:10256', '[::]:10256' or a CIDR form '0.0.0.0/0:10256' -> (host, port)."""
    host, found, port = value.rpartition(":")
    if not found:
        raise common.StandinError(f"healthz bind address {value!r}: missing port")
    host = host.strip("[]")
    if "/" in host:
        host = "::" if ":" in host else "0.0.0.0"
    try:
        return host, int(port)
    except ValueError as exc:
        raise common.StandinError(f"healthz bind address {value!r}: invalid port") from exc


def body(argv: list) -> None:
    data, parsed, checks = common.start(SPEC, argv, VALUE_FLAGS)
    del data
    if parsed.value("--write-config-to"):
        checks.add("--write-config-to is not supported by the kubeforge TEST STAND-IN kube-proxy")
    config = checks.loaded.get("--config") or {}
    path = str((config.get("clientConnection") or {}).get("kubeconfig") or "")
    if path and not parsed.value("--kubeconfig"):
        checks.kubeconfig(path, f"--config {parsed.value('--config')} clientConnection.kubeconfig", client_cert_required=True)
    elif not path and not parsed.value("--kubeconfig"):
        checks.add("no kubeconfig (--kubeconfig or clientConnection.kubeconfig): unable to load in-cluster configuration, "
                   "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined")
    address = parsed.value("--healthz-bind-address") or str(config.get("healthzBindAddress") or "0.0.0.0:10256")
    common.finish_checks(SPEC, checks)
    if parsed.flag_bool("--cleanup", False) or parsed.flag_bool("--init-only", False):
        common.log("--cleanup / --init-only: nothing to do in the stand-in")
        return
    host, port = split_address(address)
    common.serve_forever([common.listen(SPEC, host, port, common.Handler, None, App())], threading.Event())


def main(argv: list) -> int:
    return common.run_main(SPEC, body, argv)
