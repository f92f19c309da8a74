# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wall time to produce a whole cluster's PKI through the pki role, against openssl once per certificate.

The cluster: 3 control-plane+etcd hosts and 50 workers, kubelet_tls_mode=signed. The role runs as
operators run it (ansible-playbook playbooks/phases/pki.yml) against an inventory of those 53 hosts,
with --tags pki_sign: the controller side only (CAs, certificates, service-account key,
kubeconfigs), no host is contacted. Then the same certificates (the same list, from the role's
pki_plan filter) are made by calling the openssl command per certificate, as the guides do:
genpkey + req + x509 (a CA: genpkey + req -x509). Prints figures; asserts nothing.

    make collection && .venv/bin/python bench/pki.py [--workers 50] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
COLLECTIONS = os.path.join(REPO, ".cache", "collections")


def import_collection():
    """Make the checkout importable as ansible_collections.kubeforge.cluster (as tests/conftest.py does)."""
    root = tempfile.mkdtemp(prefix="kubeforge-bench-collections-")
    os.makedirs(os.path.join(root, "ansible_collections", "kubeforge"))
    os.symlink(REPO, os.path.join(root, "ansible_collections", "kubeforge", "cluster"))
    sys.path.insert(0, root)
    return root


def write_inventory(directory: str, control_plane: int, workers: int) -> str:
    """hosts.yml and group_vars/all/ (the sample settings, signed kubelets, credentials in ``directory``)."""
    masters = [f"cp{index}" for index in range(1, control_plane + 1)]
    nodes = [f"w{index:03d}" for index in range(1, workers + 1)]
    lines = ["all:", "  hosts:"]
    lines += [f"    {name}: {{ansible_host: 10.10.0.{index}}}" for index, name in enumerate(masters, 11)]
    lines += [f"    {name}: {{ansible_host: 10.10.{1 + index // 200}.{index % 200 + 20}}}" for index, name in enumerate(nodes)]
    lines += ["  children:", "    etcd:", "      hosts:"] + [f"        {name}:" for name in masters]
    lines += ["    kube_control_plane:", "      hosts:"] + [f"        {name}:" for name in masters]
    lines += ["    kube_node:", "      hosts:"] + [f"        {name}:" for name in nodes]
    lines += ["    k8s_cluster:", "      children:", "        kube_control_plane:", "        kube_node:"]
    with open(os.path.join(directory, "hosts.yml"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    group_vars = os.path.join(directory, "group_vars", "all")
    os.makedirs(group_vars)
    os.symlink(os.path.join(REPO, "inventory", "sample", "group_vars", "all.yml"), os.path.join(group_vars, "cluster.yml"))
    with open(os.path.join(group_vars, "overrides.yml"), "w", encoding="utf-8") as handle:
        handle.write("---\nkubelet_tls_mode: signed\nkube_apiserver_lb_address: 10.10.0.10\n"
                     f"kubeforge_credentials_dir: {os.path.join(os.path.dirname(directory), 'credentials')}\n")
    return os.path.join(directory, "hosts.yml")


def run_role(inventory: str) -> float:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    started = time.perf_counter()
    done = subprocess.run([os.path.join(BIN, "ansible-playbook"), "playbooks/phases/pki.yml", "-i", inventory, "--tags", "pki_sign",
                           "--skip-tags", "preflight"],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"ansible-playbook failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    return elapsed


def openssl_extensions(entry: dict) -> str:
    usage = "digitalSignature" + (",keyEncipherment" if entry.get("key_type") == "rsa" else "")
    lines = ["basicConstraints=critical,CA:FALSE", f"keyUsage=critical,{usage}"]
    lines.append("extendedKeyUsage=" + {"server": "serverAuth", "client": "clientAuth", "peer": "serverAuth,clientAuth"}[entry["profile"]])
    names = [f"DNS:{name}" for name in entry.get("dns_names") or []] + [f"IP:{ip}" for ip in entry.get("ip_addresses") or []]
    if names:
        lines.append("subjectAltName=" + ",".join(names))
    lines += ["subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
    return "\n".join(lines) + "\n"


def run_openssl(certificates: list, root: str, source_root: str) -> tuple[float, int]:
    """Each certificate with the openssl command: genpkey + req + x509 (a CA: genpkey + req -x509). (seconds, processes)."""
    def local(path):
        return os.path.join(root, os.path.relpath(path, source_root))

    processes = 0
    started = time.perf_counter()
    for entry in certificates:
        cert, key = local(entry["path"]), local(entry["privatekey_path"])
        os.makedirs(os.path.dirname(cert), exist_ok=True)
        subject = "".join(f"/O={org}" for org in entry.get("organizations") or []) + f"/CN={entry['common_name']}"
        commands = [["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]]
        if entry["profile"] == "ca":
            commands.append(["openssl", "req", "-x509", "-new", "-key", key, "-subj", subject, "-days", str(entry["valid_days"]), "-out", cert,
                             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        else:
            extfile = f"{cert}.ext"
            with open(extfile, "w", encoding="utf-8") as handle:
                handle.write(openssl_extensions(entry))
            commands.append(["openssl", "req", "-new", "-key", key, "-subj", subject, "-out", f"{cert}.csr"])
            commands.append(["openssl", "x509", "-req", "-in", f"{cert}.csr", "-CA", local(entry["ca_cert"]), "-CAkey", local(entry["ca_key"]),
                             "-CAcreateserial", "-days", str(entry["valid_days"]), "-sha256", "-extfile", extfile, "-out", cert])
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
            processes += 1
    return time.perf_counter() - started, processes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control-plane", type=int, default=3)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--keep", help="work in this directory and keep it (default: a temporary directory, removed)")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(COLLECTIONS, "ansible_collections", "kubeforge", "cluster")):
        sys.exit("run `make collection` first (links this checkout as kubeforge.cluster)")
    if shutil.which("openssl") is None:
        sys.exit("the openssl command is needed for the comparison")
    import_collection()
    from ansible_collections.kubeforge.cluster.plugins.filter.pki import pki_plan
    from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.backend import X509CertBackend

    work = args.keep or tempfile.mkdtemp(prefix="kubeforge-bench-pki-")
    os.makedirs(os.path.join(work, "inventory"), exist_ok=True)
    try:
        inventory = write_inventory(os.path.join(work, "inventory"), args.control_plane, args.workers)
        credentials = os.path.join(work, "credentials")
        hosts = args.control_plane + args.workers

        first = run_role(inventory)
        certificates = sorted(name for _root, _dirs, files in os.walk(os.path.join(credentials, "pki")) for name in files if name.endswith(".crt"))
        kubeconfigs = sum(1 for _root, _dirs, files in os.walk(credentials) for name in files if name.endswith(".kubeconfig"))
        second = run_role(inventory)

        # The same list of certificates, from the role's filter, for the in-process backend and for openssl.
        masters = [f"cp{index}" for index in range(1, args.control_plane + 1)]
        nodes = [f"w{index:03d}" for index in range(1, args.workers + 1)]
        groups = {"etcd": masters, "kube_control_plane": masters, "kube_node": nodes, "k8s_cluster": masters + nodes}
        hostvars = {name: {"ansible_host": f"10.10.0.{index}"} for index, name in enumerate(masters + nodes, 11)}
        settings = {"credentials_dir": os.path.join(work, "direct"), "service_cidr": "10.96.0.0/12", "cluster_domain": "cluster.local",
                    "apiserver_port": 6443, "lb_address": "10.10.0.10", "lb_domain": "", "extra_sans": [], "endpoint": "https://127.0.0.1:6443",
                    "kubelet_tls_mode": "signed", "cluster_name": "kubernetes", "ca_valid_days": 3650, "cert_valid_days": 365}
        plan = pki_plan(groups, hostvars, settings)
        for directory in plan["directories"]:
            os.makedirs(directory, exist_ok=True)
        started = time.perf_counter()
        X509CertBackend({"certificates": plan["certificates"], "key_type": "ecdsa", "renew_before_days": 30}).run()
        backend = time.perf_counter() - started
        openssl, processes = run_openssl(plan["certificates"], os.path.join(work, "openssl"), settings["credentials_dir"])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    count = len(certificates)
    planned = len(plan["certificates"])

    def line(label: str, seconds: float, per: int | None = None) -> None:
        each = f"   {seconds / per * 1000:6.1f} ms per certificate" if per else ""
        print(f"  {label:<72} {seconds:6.2f} s{each}")

    print(f"cluster: {args.control_plane} control-plane+etcd hosts, {args.workers} workers ({hosts} hosts), kubelet_tls_mode=signed")
    print(f"certificates: {count} (plan: {planned}), kubeconfigs: {kubeconfigs}, plus the service-account key pair")
    line("pki role, fresh PKI (playbooks/phases/pki.yml --tags pki_sign)", first, count)
    line("pki role, second run (nothing to change)", second)
    line(f"x509_cert backend alone, in process ({planned} certificates)", backend, planned)
    line(f"openssl command per certificate ({processes} processes: genpkey + req + x509)", openssl, planned)
    print(f"ratio openssl / pki role: {openssl / first:.2f}; openssl / x509_cert backend: {openssl / backend:.1f}")
    print("target: the whole PKI through the role in under 10 s")


if __name__ == "__main__":
    main()
