# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kubelet and kube-proxy stand-ins: after their checks they stay up and serve /healthz; SIGTERM ends them cleanly."""
from __future__ import annotations

import json

from .helpers import free_port, http_get, wait_for


def test_kubelet_serves_healthz(standins, configs):
    port = free_port()
    kubelet = standins.start("kubelet", f"--config={configs.kubelet_config}", f"--kubeconfig={configs.kubelet_kubeconfig}",
                             f"--healthz-port={port}", "--node-ip=127.0.0.1", "--hostname-override=w1")
    wait_for(lambda: http_get(port, "/healthz") == (200, "ok"), kubelet, what="kubelet /healthz")
    assert http_get(port, "/healthz?verbose")[1].endswith("healthz check passed\n")
    assert kubelet.stop() == 0


def test_kube_proxy_serves_healthz(standins, configs):
    port = free_port()
    proxy = standins.start("kube-proxy", f"--config={configs.proxy_config}", f"--healthz-bind-address=127.0.0.1:{port}")
    wait_for(lambda: http_get(port, "/healthz")[0] == 200, proxy, what="kube-proxy /healthz")
    status, body = http_get(port, "/healthz")
    assert status == 200 and "lastUpdated" in json.loads(body)
    assert proxy.stop() == 0
