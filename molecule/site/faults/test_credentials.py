# SPDX-License-Identifier: GPL-3.0-or-later
"""A controller that lost its credentials directory cannot reset the cluster (issue 10, section 1), on the
converged site scenario; run by side_effect.yml before test_faults.py (file order):

1. a Secret is written, and every file the roles write on the hosts is checksummed;
2. the controller's credentials directory is moved away, as a new laptop or a fresh CI runner would
   lack it; site.yml, and site.yml --check, fail in the preflight with the trust check's message
   (the hosts, the fingerprints, the way out), and no file on any host changed;
3. recover_credentials.yml rebuilds the directory from the hosts; site.yml then changes nothing, the
   Secret written before still reads, and the recovered files are the ones the controller had.

The original directory is put back at the end whatever happens (the recovered one kept beside it), so
the later fault tests run with it."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import time

from kubeforge_verify import (apiserver_request, changed_counts, changed_tasks, create_namespace, credentials_dir, delete_namespace, docker, host_kubectl,
                              inventory_file, playbook, playbook_refused, project_dir, wait_for)

SITE = os.path.join(project_dir(), "site.yml")
RECOVER = os.path.join(project_dir(), "playbooks", "recover_credentials.yml")
CONTROL_PLANE = {"site-cp1": "172.30.41.11", "site-cp2": "172.30.41.12", "site-cp3": "172.30.41.13"}
HOSTS = (*CONTROL_PLANE, "site-w1")
KUBECTL = "site-cp1"
NAMESPACE = "kubeforge-credentials"
# Where the roles write on the hosts: certificates, keys, kubeconfigs and configs (pki, etcd,
# control_plane, kubelet_bootstrap, ipvs), units, the binaries and their links (artifacts), containerd,
# CNI and nginx configs, host preparation. Data directories (/var/lib/...) and logs change on their own.
WATCHED = ("/etc/kubernetes", "/etc/etcd", "/etc/systemd/system", "/usr/local/bin", "/usr/local/sbin", "/opt/kubeforge", "/opt/cni/bin",
           "/etc/containerd", "/etc/cni/net.d", "/etc/nginx", "/etc/crictl.yaml", "/etc/profile.d/etcdctl.sh", "/etc/sysctl.d",
           "/etc/modules-load.d")
# Runs inside a host: path -> sha256 and mode of every file, or the target of every link, below the arguments.
CHECKSUMS = r"""
import hashlib, json, os, stat, sys
found = {}
def note(path):
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        found[path] = "link " + os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        found[path] = "%s %o %d:%d" % (digest.hexdigest(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
for top in sys.argv[1:]:
    if os.path.isdir(top) and not os.path.islink(top):
        for directory, _dirs, names in os.walk(top):
            for name in names:
                note(os.path.join(directory, name))
    elif os.path.lexists(top):
        note(top)
print(json.dumps(found))
"""
GUARD = "is not, or cannot be shown to be, the one this cluster's hosts got their CAs and encryption keys from"
REFUSAL_TIMEOUT = 900.0


def checksums() -> dict:
    return {host: json.loads(docker("exec", "-i", host, "python3", "-", *WATCHED, stdin=CHECKSUMS, timeout=300).stdout) for host in HOSTS}


def differences(before: dict, after: dict) -> list:
    return [f"{host}:{path}: {before[host].get(path)} -> {after[host].get(path)}"
            for host in HOSTS for path in sorted(set(before[host]) | set(after[host])) if before[host].get(path) != after[host].get(path)]


def refused_run(*extra: str) -> str:
    """site.yml that must fail; its output."""
    return playbook_refused(inventory_file(), SITE, *extra, timeout=REFUSAL_TIMEOUT)


def fingerprint(pem_path: str) -> str:
    """SHA-256 of a PEM certificate's DER bytes, as the trust check prints it."""
    with open(pem_path, encoding="ascii") as handle:
        body = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", handle.read(), re.DOTALL).group(1)
    return ":".join(f"{byte:02X}" for byte in hashlib.sha256(base64.b64decode("".join(body.split()))).digest())


def secret_value() -> str:
    out = host_kubectl(KUBECTL, "-n", NAMESPACE, "get", "secret", "kept", "-o", "jsonpath={.data.value}").stdout
    return base64.b64decode(out).decode()


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def test_a_controller_without_its_credentials_cannot_reset_the_cluster_and_recovers_them_from_the_hosts():
    credentials = credentials_dir()
    original = f"{credentials}.original-{int(time.time())}"
    value = secrets.token_hex(16)
    create_namespace(KUBECTL, NAMESPACE)
    host_kubectl(KUBECTL, "-n", NAMESPACE, "create", "secret", "generic", "kept", f"--from-literal=value={value}")
    cluster_ca = fingerprint(os.path.join(credentials, "pki", "ca.crt"))
    before = checksums()
    shutil.move(credentials, original)
    try:
        # The lost directory: site.yml and its check mode stop in the preflight, naming the hosts and fingerprints.
        for extra in ((), ("--check",)):
            output = refused_run(*extra)
            assert GUARD in output, output[-6000:]
            assert f"cluster CA: the controller has none ({credentials}/pki/ca.crt); site-cp1, site-cp2, site-cp3 hold SHA256 {cluster_ca}" \
                in output, output[-6000:]
            assert "encryption keys: site-cp1, site-cp2, site-cp3 hold key-" in output and "playbooks/recover_credentials.yml" in output
            assert "PLAY [Prepare" not in output and "PLAY [PKI" not in output
            assert not os.path.exists(credentials), "the refused run created the credentials directory"
        assert differences(before, checksums()) == []

        # The way out, then a converge that changes nothing, and the Secret reads as before.
        recovered = playbook(inventory_file(), RECOVER)
        assert "pki/etcd/ca.key: no host holds this CA key" in recovered, recovered[-6000:]
        for name in ("pki/ca.crt", "pki/ca.key", "pki/sa.key", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt", "kubeconfig/admin.kubeconfig"):
            assert read(os.path.join(credentials, name)).strip() == read(os.path.join(original, name)).strip(), name
        kept = json.loads(read(os.path.join(original, "encryption-keys.json")))["keys"]
        assert json.loads(read(os.path.join(credentials, "encryption-keys.json")))["keys"] == kept
        assert os.path.exists(os.path.join(credentials, "admin.kubeconfig"))
        assert apiserver_request(CONTROL_PLANE["site-cp2"], "/readyz")[0] == 200  # the recovered admin certificate is the cluster's
        output = playbook(inventory_file(), SITE)
        counts = changed_counts(output)
        assert counts and all(changed == 0 for changed in counts.values()), changed_tasks(output)
        wait_for(lambda: secret_value() == value, timeout=60, what="the Secret written before the recovery", interval=2)
    finally:
        if os.path.exists(original):
            if os.path.lexists(credentials):
                shutil.move(credentials, f"{credentials}.recovered-{int(time.time())}")
            shutil.move(original, credentials)
        delete_namespace(KUBECTL, NAMESPACE)
