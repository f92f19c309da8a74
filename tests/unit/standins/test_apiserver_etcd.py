# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The stand-in kube-apiserver against a REAL etcd on loopback, then controller-manager, scheduler and kubectl.

The etcd binaries come from tests/harness/fetch-etcd.sh (.cache/etcd/bin, or KUBEFORGE_ETCD_BIN_DIR);
when they are missing these tests fail, they are never skipped. Ports are chosen at run time.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import sys

import pytest

from .helpers import REPO, free_port, tls_get, wait_for, write_kubeconfig, write_yaml

sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from etcd_harness import Certs, Cluster, etcd_binary  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def etcd(tmp_path_factory, pki):
    etcd_binary("etcd")  # raises when missing: the tests fail, they do not skip
    certs = Certs(directory=pki.dir, ca=pki.etcd_ca.cert, server_cert=pki.etcd_server.cert, server_key=pki.etcd_server.key,
                  client_cert=pki.etcd_client.cert, client_key=pki.etcd_client.key)
    cluster = Cluster(str(tmp_path_factory.mktemp("etcd")), certs, size=1)
    cluster.start()
    yield cluster
    cluster.stop(remove=True)


@pytest.fixture(scope="module")
def apiserver(standins, apiserver_args, etcd, tmp_path_factory):
    port = free_port()
    audit_log = str(tmp_path_factory.mktemp("audit") / "audit.log")
    process = standins.start("kube-apiserver", *apiserver_args(etcd=etcd.members[0].client_url, port=port),
                             f"--audit-log-path={audit_log}")
    process.port = port
    process.audit_log = audit_log
    yield process
    assert process.stop() == 0, process.log()


def _ready(apiserver, pki):
    return wait_for(lambda: tls_get(apiserver.port, "/readyz", pki.ca.cert, pki.admin)[0] == 200, apiserver, what="/readyz 200")


def test_authenticated_healthz_reports_identity(apiserver, pki):
    _ready(apiserver, pki)
    assert tls_get(apiserver.port, "/healthz", pki.ca.cert, pki.admin) == (200, "ok")
    assert tls_get(apiserver.port, "/livez", pki.ca.cert, pki.admin, server_name="kubernetes.default.svc") == (200, "ok")
    status, body = tls_get(apiserver.port, "/kubeforge-standin/whoami", pki.ca.cert, pki.admin)
    who = json.loads(body)
    assert status == 200 and who["user"] == "admin" and who["groups"] == ["system:masters", "system:authenticated"]
    status, body = tls_get(apiserver.port, "/version", pki.ca.cert, pki.admin)
    assert status == 200 and json.loads(body)["gitVersion"] == "v1.36.4"
    status, body = tls_get(apiserver.port, "/readyz?verbose", pki.ca.cert, pki.admin)
    assert status == 200 and "[+]etcd ok" in body and "readyz check passed" in body


def test_anonymous_is_401(apiserver, pki):
    _ready(apiserver, pki)
    status, body = tls_get(apiserver.port, "/healthz", pki.ca.cert)
    assert status == 401 and json.loads(body)["reason"] == "Unauthorized"


def test_client_certificate_from_another_ca_is_rejected(apiserver, pki):
    _ready(apiserver, pki)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        tls_get(apiserver.port, "/healthz", pki.ca.cert, pki.rogue_admin)
    wait_for(lambda: "TLS handshake error" in apiserver.log(), apiserver, timeout=5, what="the handshake error in the log")


def test_serving_certificate_is_verified_by_the_cluster_ca(apiserver, pki):
    _ready(apiserver, pki)
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_get(apiserver.port, "/healthz", pki.other_ca.cert, pki.admin)
    with pytest.raises(ssl.SSLCertVerificationError):  # a name not in the SANs
        tls_get(apiserver.port, "/healthz", pki.ca.cert, pki.admin, server_name="kubernetes.example")


def test_apiserver_wrote_and_read_under_the_prefix(apiserver, etcd, pki):
    _ready(apiserver, pki)
    key = f"/registry/kubeforge-standin/apiservers/{socket.gethostname()}"
    answer = etcd.call(etcd.members[0], "/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()})
    stored = json.loads(base64.b64decode(answer["kvs"][0]["value"]))
    assert stored["endpoint"] == etcd.members[0].client_url


def test_audit_log_records_the_callers(apiserver, pki):
    _ready(apiserver, pki)

    def admin_audited() -> bool:
        with open(apiserver.audit_log, encoding="utf-8") as handle:
            return any(json.loads(line)["user"]["username"] == "admin" for line in handle if line.endswith("\n"))

    wait_for(admin_audited, apiserver, timeout=5, what="an audit event of admin")


def test_kubectl_through_a_kubeconfig(standins, apiserver, pki, tmp_path):
    _ready(apiserver, pki)
    kubeconfig = write_kubeconfig(str(tmp_path / "admin.kubeconfig"), f"https://127.0.0.1:{apiserver.port}", pki.ca.cert, pki.admin)
    result = standins.run("kubectl", f"--kubeconfig={kubeconfig}", "get", "--raw", "/healthz")
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
    whoami = standins.run("kubectl", "--kubeconfig", kubeconfig, "auth", "whoami", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == "admin"
    missing = standins.run("kubectl", f"--kubeconfig={kubeconfig}", "get", "--raw", "/api/v1/nodes")
    assert missing.returncode == 1 and missing.stderr.startswith("Error from server (NotFound)")


def _seen(apiserver, pki) -> dict:
    return json.loads(tls_get(apiserver.port, "/kubeforge-standin/seen", pki.ca.cert, pki.admin)[1])


def test_controller_manager_and_scheduler_authenticate_and_serve_health(standins, apiserver, pki, tmp_path):
    _ready(apiserver, pki)
    server = f"https://127.0.0.1:{apiserver.port}"
    cm_port, scheduler_port = free_port(), free_port()
    cm_kubeconfig = write_kubeconfig(str(tmp_path / "cm.kubeconfig"), server, pki.ca.cert, pki.controller_manager)
    scheduler_kubeconfig = write_kubeconfig(str(tmp_path / "scheduler.kubeconfig"), server, pki.ca.cert, pki.scheduler, embed=True)
    config = write_yaml(str(tmp_path / "scheduler.yaml"), {
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": scheduler_kubeconfig}, "leaderElection": {"leaderElect": True}})
    manager = standins.start("kube-controller-manager", f"--kubeconfig={cm_kubeconfig}", f"--authentication-kubeconfig={cm_kubeconfig}",
                             f"--authorization-kubeconfig={cm_kubeconfig}", "--bind-address=127.0.0.1", f"--secure-port={cm_port}",
                             "--leader-elect=true", "--use-service-account-credentials", f"--service-account-private-key-file={pki.sa.key}",
                             f"--root-ca-file={pki.ca.cert}", "--profiling=false")
    scheduler = standins.start("kube-scheduler", f"--config={config}", "--bind-address=127.0.0.1", f"--secure-port={scheduler_port}")
    for process, port in ((manager, cm_port), (scheduler, scheduler_port)):
        wait_for(lambda port=port: tls_get(port, "/healthz", "", insecure=True) == (200, "ok"), process, what="component /healthz")
    seen = _seen(apiserver, pki)
    assert "system:kube-controller-manager" in seen and "system:kube-scheduler" in seen
    assert "authenticated us as user='system:kube-scheduler'" in scheduler.log()
    assert manager.stop() == 0 and scheduler.stop() == 0


def test_component_rejected_by_the_apiserver_exits(standins, apiserver, pki, tmp_path):
    """Client certificate from a CA the apiserver does not trust (the kubeconfig trusts both CAs)."""
    _ready(apiserver, pki)
    bundle = str(tmp_path / "both-cas.crt")
    with open(bundle, "w", encoding="utf-8") as handle:
        for path in (pki.ca.cert, pki.other_ca.cert):
            with open(path, encoding="utf-8") as part:
                handle.write(part.read())
    kubeconfig = write_kubeconfig(str(tmp_path / "rogue.kubeconfig"), f"https://127.0.0.1:{apiserver.port}", bundle, pki.rogue_admin)
    result = standins.run("kube-controller-manager", f"--kubeconfig={kubeconfig}", f"--secure-port={free_port()}", timeout=20)
    assert result.returncode == 1
    assert "cannot authenticate to the apiserver" in result.stderr


def test_etcd_down_makes_readyz_500_and_back(apiserver, etcd, pki):
    _ready(apiserver, pki)
    member = etcd.members[0]
    etcd.stop_member(member)
    try:
        wait_for(lambda: tls_get(apiserver.port, "/readyz", pki.ca.cert, pki.admin)[0] == 500, apiserver, what="/readyz 500")
        status, body = tls_get(apiserver.port, "/readyz?verbose", pki.ca.cert, pki.admin)
        assert status == 500 and "[-]etcd failed" in body
        assert tls_get(apiserver.port, "/healthz", pki.ca.cert, pki.admin)[0] == 500
        assert tls_get(apiserver.port, "/livez", pki.ca.cert, pki.admin)[0] == 200
    finally:
        etcd.start_member(member)
    _ready(apiserver, pki)


def test_apiserver_fails_without_etcd(standins, apiserver_args):
    result = standins.run("kube-apiserver", *apiserver_args(etcd=f"https://127.0.0.1:{free_port()}", port=free_port()),
                          env={"KUBEFORGE_STANDIN_STARTUP_TIMEOUT": "1"})
    assert result.returncode == 1
    assert "etcd is not usable: https://127.0.0.1:" in result.stderr
