# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kubelet TEST STAND-IN (tests only; real hosts run the official kubelet).

Checks flags (the kubelet's wording: "failed to parse kubelet flag: ..."), the
KubeletConfiguration of --config and of every *.conf drop-in in --config-dir (fields against the
config-api lists), the files the flags and the config name (client CA, serving certificate and key,
kubeconfig / bootstrap kubeconfig with their client certificates), then serves /healthz over plain
HTTP on healthzBindAddress:healthzPort (127.0.0.1:10248). It runs no pods.
"""
from __future__ import annotations

import os
import threading
import urllib.parse

from kubeforge_standins import common

SPEC = common.Spec(
    name="kubelet",
    file_flags={
        "--bootstrap-kubeconfig": "kubeconfig",
        "--client-ca-file": "ca",
        "--config": "config",
        "--image-credential-provider-config": "yaml",
        "--tls-cert-file": "cert",
        "--tls-private-key-file": "key",
    },
    config_flags={"--config": "KubeletConfiguration"},
    flag_error_prefix="failed to parse kubelet flag: ",
    usage_on_flag_error=False,
)
VALUE_FLAGS = frozenset(("--kubeconfig", "--config-dir", "--healthz-port", "--healthz-bind-address", "--cert-dir"))


class App:
    """The kubelet's healthz server."""

    def __init__(self):
        self.name = "kubelet"

    def handle(self, handler: common.Handler, method: str) -> None:
        path = urllib.parse.urlsplit(handler.path).path
        if method in ("GET", "HEAD") and path.split("/")[1] == "healthz":
            common.health(handler, handler.path, [("ping", lambda: ""), ("log", lambda: ""), ("syncloop", lambda: "")])
        else:
            handler.reply(404, "404 page not found\n")


def merged_config(checks: common.Checks, parsed: common.Parsed) -> dict:
    """--config, then the --config-dir drop-ins in name order (later fields win, as in the kubelet)."""
    config = dict(checks.loaded.get("--config") or {})
    directory = parsed.value("--config-dir")
    if directory:
        if not os.path.isdir(directory):
            checks.add(f"--config-dir {directory}: no such directory")
            return config
        for name in sorted(os.listdir(directory)):
            if name.endswith(".conf"):
                dropin = checks.config(os.path.join(directory, name), "--config-dir drop-in", "KubeletConfiguration")
                config.update(dropin or {})
    return config


def body(argv: list) -> None:
    data, parsed, checks = common.start(SPEC, argv, VALUE_FLAGS)
    del data
    config = merged_config(checks, parsed)
    source = f"--config {parsed.value('--config')}"
    base = os.path.dirname(os.path.abspath(parsed.value("--config") or "."))

    def config_path(value) -> str:
        """The kubelet resolves relative paths in its config file against the file's directory."""
        return os.path.join(base, str(value)) if value else ""

    x509 = ((config.get("authentication") or {}).get("x509") or {})
    if x509.get("clientCAFile") and not parsed.value("--client-ca-file"):
        checks.loaded["--client-ca-file"] = checks.certs(config_path(x509["clientCAFile"]), f"{source} authentication.x509.clientCAFile")
    cert_file = parsed.value("--tls-cert-file") or config_path(config.get("tlsCertFile"))
    key_file = parsed.value("--tls-private-key-file") or config_path(config.get("tlsPrivateKeyFile"))
    if bool(cert_file) != bool(key_file):
        checks.add("the kubelet serving certificate and key (tlsCertFile/tlsPrivateKeyFile or the flags) must be set together")
    elif cert_file:
        certs = checks.loaded.get("--tls-cert-file") if parsed.value("--tls-cert-file") else checks.certs(cert_file, f"{source} tlsCertFile")
        key = checks.loaded.get("--tls-private-key-file") if parsed.value("--tls-private-key-file") else checks.key(key_file, f"{source} tlsPrivateKeyFile")
        if certs and key is not None:
            checks.pair(certs, key, f"kubelet serving certificate {cert_file}", f"kubelet serving key {key_file}")
            checks.leaf(certs, f"kubelet serving certificate {cert_file}", "server")
    kubeconfig = parsed.value("--kubeconfig")
    if kubeconfig and os.path.exists(kubeconfig):
        checks.kubeconfig(kubeconfig, "--kubeconfig", client_cert_required=True)
    elif kubeconfig and not parsed.value("--bootstrap-kubeconfig"):
        checks.add(f"--kubeconfig {kubeconfig}: no such file or directory (and no --bootstrap-kubeconfig to obtain it)")
    elif kubeconfig:
        common.log(f"--kubeconfig {kubeconfig} does not exist yet: the real kubelet would bootstrap it with --bootstrap-kubeconfig")
    address = parsed.value("--healthz-bind-address") or str(config.get("healthzBindAddress") or "127.0.0.1")
    try:
        default_port = int(config.get("healthzPort", 10248))
    except (TypeError, ValueError):
        checks.add(f"{source}: healthzPort {config.get('healthzPort')!r} is not a number")
        default_port = 10248
    port = parsed.port("--healthz-port", default_port)
    common.finish_checks(SPEC, checks)
    servers = [common.listen(SPEC, address, port, common.Handler, None, App())] if port else []
    common.serve_forever(servers, threading.Event())


def main(argv: list) -> int:
    return common.run_main(SPEC, body, argv)
