# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The cluster's PKI as data: every certificate, kubeconfig and host file, from the inventory.

``pki_plan`` is the whole design of the pki role in one pure function: which certificates the
controller signs (one ``kubeforge.cluster.x509_cert`` batch), which kubeconfigs it writes, and
which files each host receives, with the services that read each file. The role and the tests
call it; nothing here touches the file system, so the unit tests exercise it with plain dicts.

``pki_controller_files`` renders the kubeconfigs (certificates embedded) and the service-account
public key, and
``pki_report_table`` lays out the cert_report playbook's table.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.kubeforge.cluster.plugins.module_utils._inventory import node_address, url_host

try:
    from cryptography.hazmat.primitives import serialization
except ImportError:
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

# Where the files land on the hosts: the contract the etcd and control-plane phases read.
KUBE_DIR = "/etc/kubernetes"
KUBE_PKI_DIR = "/etc/kubernetes/pki"
ETCD_PKI_DIR = "/etc/etcd/pki"
CERT_MODE = "0644"
KEY_MODE = "0600"
KUBECONFIG_MODE = "0600"

KUBELET_TLS_MODES = ("bootstrap", "signed")
# What every Kubernetes node holds (never pruned: the kubelet phase may own files at these paths too).
_NODE_FILES = frozenset((f"{KUBE_PKI_DIR}/ca.crt", f"{KUBE_DIR}/kube-proxy.kubeconfig", f"{KUBE_PKI_DIR}/kubelet.crt",
                         f"{KUBE_PKI_DIR}/kubelet.key", f"{KUBE_DIR}/kubelet.kubeconfig"))
SERVICE_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")

# Subjects Kubernetes expects (CN, organizations). Only the break-glass super-admin is in
# system:masters, which no RBAC can restrict or revoke; it stays on the controller (no host
# receives it). The others get their rights from RBAC objects the control_plane role applies
# (roles/control_plane/templates/rbac.yaml.j2): the admin group is bound to cluster-admin, the
# apiserver's kubelet client to system:kubelet-api-admin, as kubeadm does since 1.29.
ADMIN_GROUP = "kubeforge:cluster-admins"
SUPERUSER_GROUP = "system:masters"
CLIENTS = {
    "admin": ("admin", [ADMIN_GROUP]),
    "super-admin": ("kubeforge:super-admin", [SUPERUSER_GROUP]),
    "kube-controller-manager": ("system:kube-controller-manager", []),
    "kube-scheduler": ("system:kube-scheduler", []),
    "kube-proxy": ("system:kube-proxy", []),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", []),
    # Approves kubelet serving CSRs (kubelet_bootstrap role); its RBAC allows that and nothing else.
    "kubelet-csr-approver": ("kubeforge:kubelet-csr-approver", []),
}
# Component kubeconfigs: name -> (client certificate, services that read it on the hosts).
KUBECONFIGS = {
    "admin": ("admin", []),
    "controller-manager": ("kube-controller-manager", ["kube-controller-manager"]),
    "scheduler": ("kube-scheduler", ["kube-scheduler"]),
    "kube-proxy": ("kube-proxy", ["kube-proxy"]),
    "kubelet-csr-approver": ("kubelet-csr-approver", []),
}


def _ip(value) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None


def _add(names: list, value) -> None:
    if value and value not in names:
        names.append(value)


def split_sans(values) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) of a mixed list, each once, in the order given."""
    dns: list[str] = []
    ips: list[str] = []
    for value in values:
        if value in (None, ""):
            continue
        address = _ip(value)
        if address is not None:
            _add(ips, str(address))
        else:
            _add(dns, str(value).strip().lower())
    return dns, ips


def first_service_ip(service_cidr: str) -> str:
    try:
        return str(ipaddress.ip_network(str(service_cidr), strict=True).network_address + 1)
    except ValueError as exc:
        raise AnsibleFilterError(f"pki_plan: kube_service_cidr {service_cidr!r} is not a CIDR (preflight reports it)") from exc


def node_addresses(groups: Mapping, hostvars: Mapping) -> dict[str, str]:
    """{host: address} of every cluster host: kubeforge_node_ip, else ansible_host, else its name."""
    members: list[str] = []
    for group in ("kube_control_plane", "etcd", "k8s_cluster"):
        for host in groups.get(group) or []:
            _add(members, host)
    nodes = {}
    for host in members:
        nodes[host] = node_address(hostvars.get(host), host)
    return nodes


def apiserver_sans(control_plane: list[str], nodes: Mapping, settings: Mapping) -> tuple[list[str], list[str]]:
    """The kube-apiserver serving certificate's DNS names and IP addresses.

    Every control-plane host's name and address, the load balancer's address and name, the
    loopback, the first service IP, the in-cluster names of the ``kubernetes`` service, and the
    operator's extra SANs.
    """
    domain = str(settings["cluster_domain"]).strip(".")
    values = []
    for host in control_plane:
        values += [host, nodes[host]]
    values += [settings.get("lb_address"), settings.get("lb_domain"), "127.0.0.1", "localhost", first_service_ip(settings["service_cidr"])]
    values += ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster", f"kubernetes.default.svc.{domain}"]
    values += list(settings.get("extra_sans") or [])
    return split_sans(values)


def operator_server(control_plane: list[str], nodes: Mapping, settings: Mapping) -> str:
    """The API URL for the operator's kubeconfig: the load balancer, else the first control-plane host."""
    address = settings.get("lb_address") or (nodes[control_plane[0]] if control_plane else "")
    if not address:
        raise AnsibleFilterError("pki_plan: no kube_apiserver_lb_address and no control-plane host for the operator's kubeconfig")
    return f"https://{url_host(address)}:{int(settings['apiserver_port'])}"


def _check_settings(settings: Mapping, groups: Mapping) -> None:
    problems = []
    # Every setting comes from the pki role (defaults and cluster settings): no second default here.
    for key in ("credentials_dir", "service_cidr", "cluster_domain", "apiserver_port", "endpoint", "kubelet_tls_mode", "cluster_name",
                "ca_valid_days", "cert_valid_days"):
        if settings.get(key) in (None, ""):
            problems.append(f"{key} is not set")
    if settings.get("kubelet_tls_mode") not in (None, "", *KUBELET_TLS_MODES):
        problems.append(f"kubelet_tls_mode {settings['kubelet_tls_mode']!r} must be one of {', '.join(KUBELET_TLS_MODES)}")
    if settings.get("credentials_dir") and not os.path.isabs(str(settings["credentials_dir"])):
        problems.append(f"credentials_dir {settings['credentials_dir']!r} must be an absolute path")
    endpoint = urlsplit(str(settings.get("endpoint") or ""))
    if settings.get("endpoint") and (endpoint.scheme != "https" or not endpoint.hostname):
        problems.append(f"endpoint {settings['endpoint']!r} must be an https:// URL")
    if not groups.get("kube_control_plane"):
        problems.append("group kube_control_plane is empty")
    if problems:
        raise AnsibleFilterError("pki_plan: " + "; ".join(problems))


class _Plan:
    """Accumulates the plan: certificates, kubeconfigs and each host's files."""

    def __init__(self, settings: Mapping) -> None:
        self.credentials = os.path.normpath(str(settings["credentials_dir"]))
        self.pki = os.path.join(self.credentials, "pki")
        self.ca_days = int(settings["ca_valid_days"])
        self.cert_days = int(settings["cert_valid_days"])
        self.certificates: list[dict] = []
        self.paths: dict[str, tuple[str, str]] = {}  # certificate name -> (cert path, key path)
        self.kubeconfigs: list[dict] = []
        self.hosts: dict[str, dict[str, dict]] = {}

    def cert(self, name: str, relpath: str, common_name: str, profile: str, signer: str | None = None,
             organizations=(), dns_names=(), ip_addresses=()) -> None:
        path = os.path.join(self.pki, relpath)
        entry = {
            "path": f"{path}.crt", "privatekey_path": f"{path}.key", "common_name": common_name, "profile": profile,
            "organizations": list(organizations), "dns_names": list(dns_names), "ip_addresses": list(ip_addresses),
            "valid_days": self.ca_days if profile == "ca" else self.cert_days,
        }
        if signer is not None:
            entry["ca_cert"], entry["ca_key"] = self.paths[signer]
        self.certificates.append(entry)
        self.paths[name] = (entry["path"], entry["privatekey_path"])

    def kubeconfig(self, name: str, client: str, server: str, cluster: str, path: str | None = None) -> str:
        cert, key = self.paths[client]
        common_name = next(entry["common_name"] for entry in self.certificates if entry["path"] == cert)
        dest = path or os.path.join(self.credentials, "kubeconfig", f"{name}.kubeconfig")
        self.kubeconfigs.append({
            "dest": dest, "server": server, "cluster": cluster, "user": common_name,
            "ca": self.paths["ca"][0], "cert": cert, "key": key,
        })
        return dest

    def give(self, host: str, src: str, dest: str, mode: str, services=()) -> None:
        """Send ``src`` (a controller file) to ``host`` as ``dest``; ``services`` read it there."""
        files = self.hosts.setdefault(host, {})
        entry = files.setdefault(dest, {"src": src, "dest": dest, "mode": mode, "services": []})
        if entry["src"] != src:
            raise AnsibleFilterError(f"pki_plan: {host}:{dest} would come from both {entry['src']} and {src}")
        for service in services:
            _add(entry["services"], service)

    def give_pair(self, host: str, name: str, dest_stem: str, services=()) -> None:
        cert, key = self.paths[name]
        self.give(host, cert, f"{dest_stem}.crt", CERT_MODE, services)
        self.give(host, key, f"{dest_stem}.key", KEY_MODE, services)


def _refuse_superusers_on_hosts(plan: _Plan) -> None:
    """No host receives a system:masters identity: its certificate, key, or a kubeconfig embedding them."""
    sources = {path for entry in plan.certificates if SUPERUSER_GROUP in entry["organizations"]
               for path in (entry["path"], entry["privatekey_path"])}
    sources |= {config["dest"] for config in plan.kubeconfigs if config["cert"] in sources}
    leaks = sorted(f"{host}:{entry['dest']}" for host, files in plan.hosts.items() for entry in files.values() if entry["src"] in sources)
    if leaks:
        raise AnsibleFilterError(f"pki_plan: {SUPERUSER_GROUP} material would reach a host: {', '.join(leaks)}")


def pki_plan(groups: Mapping, hostvars: Mapping, settings: Mapping) -> dict:
    """Every certificate, kubeconfig and host file of the cluster.

    ``groups`` and ``hostvars`` are Ansible's; ``settings`` holds the cluster-wide settings
    (credentials_dir, service_cidr, cluster_domain, apiserver_port, lb_address, lb_domain,
    extra_sans, endpoint, kubelet_tls_mode, cluster_name, ca_valid_days, cert_valid_days).
    """
    _check_settings(settings, groups)
    nodes = node_addresses(groups, hostvars)
    control_plane = list(groups.get("kube_control_plane") or [])
    etcd = list(groups.get("etcd") or [])
    k8s = [host for host in nodes if host in set(groups.get("k8s_cluster") or []) or host in control_plane]
    cluster = str(settings["cluster_name"])
    endpoint = str(settings["endpoint"])
    signed = settings["kubelet_tls_mode"] == "signed"
    plan = _Plan(settings)

    # Certificate authorities: the cluster's, etcd's, and the front proxy's (aggregated APIs).
    plan.cert("ca", "ca", "kubernetes-ca", "ca")
    plan.cert("etcd-ca", "etcd/ca", "etcd-ca", "ca")
    plan.cert("front-proxy-ca", "front-proxy-ca", "front-proxy-ca", "ca")
    dns, ips = apiserver_sans(control_plane, nodes, settings)
    plan.cert("apiserver", "apiserver", "kube-apiserver", "server", "ca", dns_names=dns, ip_addresses=ips)
    for name, (common_name, organizations) in CLIENTS.items():
        plan.cert(name, name, common_name, "client", "ca", organizations=organizations)
    plan.cert("apiserver-etcd-client", "apiserver-etcd-client", "kube-apiserver-etcd-client", "client", "etcd-ca")
    plan.cert("front-proxy-client", "front-proxy-client", "front-proxy-client", "client", "front-proxy-ca")
    for host in etcd:
        dns, ips = split_sans([host, nodes[host], "localhost", "127.0.0.1"])
        plan.cert(f"etcd-member-{host}", f"etcd/member-{host}", host, "peer", "etcd-ca", dns_names=dns, ip_addresses=ips)
    plan.cert("etcd-healthcheck-client", "etcd/healthcheck-client", "kube-etcd-healthcheck-client", "client", "etcd-ca")
    if signed:
        for host in k8s:
            dns, ips = split_sans([host, nodes[host]])
            node_user = f"system:node:{host}"
            plan.cert(f"kubelet-client-{host}", f"kubelet/{host}-client", node_user, "client", "ca", organizations=["system:nodes"])
            plan.cert(f"kubelet-{host}", f"kubelet/{host}", node_user, "server", "ca", organizations=["system:nodes"], dns_names=dns, ip_addresses=ips)

    kubeconfigs = {name: plan.kubeconfig(name, client, endpoint, cluster) for name, (client, _services) in KUBECONFIGS.items()}
    server = operator_server(control_plane, nodes, settings)
    operator = plan.kubeconfig("operator-admin", "admin", server, cluster, os.path.join(plan.credentials, "admin.kubeconfig"))
    # Break glass, and the first binding of the admin group (control_plane role): controller only.
    super_admin = plan.kubeconfig("super-admin", "super-admin", server, cluster, os.path.join(plan.credentials, "super-admin.kubeconfig"))
    # The serving-CSR approver's identity with the operator's server: the controller approves a run's new kubelets.
    approver = plan.kubeconfig("operator-kubelet-csr-approver", "kubelet-csr-approver", server, cluster,
                               os.path.join(plan.credentials, "kubelet-csr-approver.kubeconfig"))
    if signed:
        for host in k8s:
            kubeconfigs[f"kubelet-{host}"] = plan.kubeconfig(f"kubelet-{host}", f"kubelet-client-{host}", endpoint, cluster)

    ca_cert, ca_key = plan.paths["ca"]
    sa_key, sa_pub = os.path.join(plan.pki, "sa.key"), os.path.join(plan.pki, "sa.pub")
    for host in control_plane:
        plan.give(host, ca_cert, f"{KUBE_PKI_DIR}/ca.crt", CERT_MODE, ["kube-apiserver", "kube-controller-manager"])
        # kube-controller-manager signs the kubelets' certificates (TLS bootstrap, CSR API) with the cluster CA.
        plan.give(host, ca_key, f"{KUBE_PKI_DIR}/ca.key", KEY_MODE, ["kube-controller-manager"])
        plan.give_pair(host, "apiserver", f"{KUBE_PKI_DIR}/apiserver", ["kube-apiserver"])
        plan.give_pair(host, "apiserver-kubelet-client", f"{KUBE_PKI_DIR}/apiserver-kubelet-client", ["kube-apiserver"])
        plan.give_pair(host, "apiserver-etcd-client", f"{KUBE_PKI_DIR}/apiserver-etcd-client", ["kube-apiserver"])
        plan.give(host, plan.paths["etcd-ca"][0], f"{KUBE_PKI_DIR}/etcd-ca.crt", CERT_MODE, ["kube-apiserver"])
        plan.give(host, plan.paths["front-proxy-ca"][0], f"{KUBE_PKI_DIR}/front-proxy-ca.crt", CERT_MODE,
                  ["kube-apiserver", "kube-controller-manager", "kube-scheduler"])
        plan.give_pair(host, "front-proxy-client", f"{KUBE_PKI_DIR}/front-proxy-client", ["kube-apiserver"])
        plan.give(host, sa_key, f"{KUBE_PKI_DIR}/sa.key", KEY_MODE, ["kube-apiserver", "kube-controller-manager"])
        plan.give(host, sa_pub, f"{KUBE_PKI_DIR}/sa.pub", CERT_MODE, ["kube-apiserver"])
        for name in ("admin", "controller-manager", "scheduler", "kubelet-csr-approver"):
            plan.give(host, kubeconfigs[name], f"{KUBE_DIR}/{name}.kubeconfig", KUBECONFIG_MODE, KUBECONFIGS[name][1])
    for host in k8s:
        plan.give(host, ca_cert, f"{KUBE_PKI_DIR}/ca.crt", CERT_MODE, ["kubelet"])
        plan.give(host, kubeconfigs["kube-proxy"], f"{KUBE_DIR}/kube-proxy.kubeconfig", KUBECONFIG_MODE, ["kube-proxy"])
        if signed:
            plan.give_pair(host, f"kubelet-{host}", f"{KUBE_PKI_DIR}/kubelet", ["kubelet"])
            plan.give(host, kubeconfigs[f"kubelet-{host}"], f"{KUBE_DIR}/kubelet.kubeconfig", KUBECONFIG_MODE, ["kubelet"])
    for host in etcd:
        plan.give(host, plan.paths["etcd-ca"][0], f"{ETCD_PKI_DIR}/ca.crt", CERT_MODE, ["etcd"])
        plan.give_pair(host, f"etcd-member-{host}", f"{ETCD_PKI_DIR}/member", ["etcd"])
        plan.give_pair(host, "etcd-healthcheck-client", f"{ETCD_PKI_DIR}/healthcheck-client")

    # Files only control-plane hosts or etcd members hold: removed from a host that no longer is one.
    owned = {entry["dest"] for host in control_plane + etcd for entry in plan.hosts.get(host, {}).values()
             if entry["dest"].startswith(ETCD_PKI_DIR) or host in control_plane and entry["dest"] not in _NODE_FILES}
    absent = {host: sorted(owned - set(plan.hosts.get(host, {}))) for host in nodes}
    _refuse_superusers_on_hosts(plan)

    inputs: list[str] = [sa_key]
    for config in plan.kubeconfigs:
        for key in ("ca", "cert", "key"):
            _add(inputs, config[key])
    directories = [plan.credentials, plan.pki, os.path.join(plan.pki, "etcd"), os.path.join(plan.credentials, "kubeconfig")]
    if signed:
        directories.append(os.path.join(plan.pki, "kubelet"))
    return {
        "directories": directories,
        "certificates": plan.certificates,
        "service_account": {"private_key": sa_key, "public_key": sa_pub},
        "kubeconfigs": plan.kubeconfigs,
        "controller_inputs": inputs,
        "operator_kubeconfig": operator,
        "super_admin_kubeconfig": super_admin,
        "csr_approver_kubeconfig": approver,
        "hosts": {host: list(files.values()) for host, files in plan.hosts.items()},
        "absent": absent,
    }


def _pem(text: str) -> str:
    text = str(text).strip()
    if "-----BEGIN" not in text:
        raise AnsibleFilterError("an input of the kubeconfigs is not PEM")
    return text + "\n"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def kubeconfig(server: str, cluster: str, user: str, ca_pem: str, cert_pem: str, key_pem: str) -> str:
    """A kubeconfig (YAML) with the CA, the client certificate and its key embedded."""
    context = f"{user}@{cluster}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"certificate-authority-data": _b64(_pem(ca_pem)), "server": server}}],
        "users": [{"name": user, "user": {"client-certificate-data": _b64(_pem(cert_pem)), "client-key-data": _b64(_pem(key_pem))}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    return "# Managed by kubeforge.cluster; changes are overwritten.\n" + yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


def pki_kubeconfig(target: Mapping, ca_pem: str, cert_pem: str, key_pem: str) -> str:
    """A kubeconfig for ``target`` ({server, cluster, user}) with these PEM contents embedded."""
    missing = [key for key in ("server", "cluster", "user") if not target.get(key)]
    if missing:
        raise AnsibleFilterError(f"pki_kubeconfig: {', '.join(missing)} missing")
    return kubeconfig(str(target["server"]), str(target["cluster"]), str(target["user"]), ca_pem, cert_pem, key_pem)


def public_key_pem(private_pem: str) -> str:
    """The SubjectPublicKeyInfo PEM of an unencrypted PEM private key."""
    if not HAS_CRYPTOGRAPHY:
        raise AnsibleFilterError("the cryptography library is required on the controller")
    try:
        key = serialization.load_pem_private_key(_pem(private_pem).encode("ascii"), password=None)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"not an unencrypted PEM private key: {exc}") from exc
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def pki_controller_files(plan: Mapping, contents: list) -> list[dict]:
    """file_bundle entries for the controller: every kubeconfig of ``plan`` and the service-account public key.

    ``contents`` are the PEM contents of ``plan['controller_inputs']``, in that order.
    """
    paths = list(plan["controller_inputs"])
    if len(paths) != len(contents):
        raise AnsibleFilterError(f"pki_controller_files: {len(paths)} inputs but {len(contents)} contents")
    pems = dict(zip(paths, contents))
    files = []
    for config in plan["kubeconfigs"]:
        missing = [config[key] for key in ("ca", "cert", "key") if config[key] not in pems]
        if missing:
            raise AnsibleFilterError(f"pki_controller_files: no content for {', '.join(missing)}")
        content = kubeconfig(config["server"], config["cluster"], config["user"], pems[config["ca"]], pems[config["cert"]], pems[config["key"]])
        files.append({"dest": config["dest"], "content": content, "mode": KUBECONFIG_MODE})
    service_account = plan["service_account"]
    files.append({"dest": service_account["public_key"], "content": public_key_pem(pems[service_account["private_key"]]), "mode": CERT_MODE})
    return files


def pki_changed_services(services) -> list[str]:
    """Services in the order they restart: etcd first, then the control plane, then node services."""
    wanted = set(services or [])
    ordered = [name for name in SERVICE_ORDER if name in wanted]
    return ordered + sorted(wanted - set(ordered))


def pki_report_table(reports: Mapping, threshold_days: int = 30) -> str:
    """The cert_report table: one line per certificate, sorted by host and file, flagged under ``threshold_days``.

    ``reports`` maps a host name to the ``certificates`` list of kubeforge.cluster.x509_info. A CA
    certificate a kubeconfig embeds is left out when the host holds the same certificate as a file.
    """
    threshold = int(threshold_days)
    header = ("HOST", "FILE", "SUBJECT", "ISSUER", "DAYS", "FLAG", "SANS")
    rows = []
    for host in sorted(reports):
        certs = list(reports[host] or [])
        as_files = {cert.get("fingerprint_sha256") for cert in certs if cert.get("source") == "file"}
        for cert in sorted(certs, key=lambda item: (item.get("path", ""), item.get("source", ""))):
            if cert.get("source") == "kubeconfig cluster CA" and cert.get("fingerprint_sha256") in as_files:
                continue
            days = cert.get("days_left")
            if cert.get("error"):
                flag, days_text = "UNREADABLE", "-"
            else:
                flag = "EXPIRED" if days is not None and days < 0 else "RENEW" if days is not None and days <= threshold else ""
                days_text = str(days)
            where = cert.get("path", "")
            if cert.get("source") and cert["source"] != "file":
                where = f"{where} ({cert['source']})"
            sans = ",".join(list(cert.get("dns_names") or []) + list(cert.get("ip_addresses") or []))
            rows.append((str(host), where, cert.get("subject", cert.get("error", "")), cert.get("issuer", ""), days_text, flag, sans or "-"))
    if not rows:
        return "no certificates found"
    widths = [max(len(row[index]) for row in [header, *rows]) for index in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in [header, *rows]]
    flagged = sum(1 for row in rows if row[5])
    lines.append(f"{len(rows)} certificates, {flagged} flagged (expiring within {threshold} days, expired or unreadable)")
    return "\n".join(lines)


class FilterModule:
    """kubeforge.cluster PKI filters."""

    def filters(self):
        return {
            "pki_plan": pki_plan,
            "pki_controller_files": pki_controller_files,
            "pki_kubeconfig": pki_kubeconfig,
            "pki_changed_services": pki_changed_services,
            "pki_report_table": pki_report_table,
        }
