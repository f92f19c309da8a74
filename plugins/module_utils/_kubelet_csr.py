# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Approve the kubelets' serving-certificate requests, one at a time, when they ask for what the inventory knows.

Kubelets run with ``serverTLSBootstrap: true`` submit CertificateSigningRequests (certificates.k8s.io/v1)
with the signer ``kubernetes.io/kubelet-serving``; kube-controller-manager signs them only once they are
approved, and nothing in Kubernetes approves them. ``decide()`` judges one request against the names and
addresses the inventory gives for its node, ``reconcile()`` applies the decisions of one pass, ``wait()``
repeats passes until the nodes asked for have an approved request from their current kubelet.

This file needs only the Python standard library and ``cryptography`` (PyYAML to read a kubeconfig in
YAML): it imports nothing from Ansible, because it is also installed on the control-plane hosts and run
by a systemd timer as a script::

    python3 /usr/local/lib/kubeforge/kubelet_csr.py --kubeconfig KUBECONFIG --nodes NODES.json

which makes one pass and prints one JSON line per decision.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import dataclasses
import datetime
import http.client
import ipaddress
import json
import os
import re
import shutil
import ssl
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, NamedTuple

try:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

try:
    import yaml
except ImportError:
    HAS_YAML = False
else:
    HAS_YAML = True

KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving"
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
# The usages a kubelet asks for: digital signature and server auth (plus key encipherment with an RSA key).
ALLOWED_USAGES = frozenset(("digital signature", "key encipherment", "server auth"))
REQUIRED_USAGE = "server auth"
SETTLED_CONDITIONS = ("Approved", "Denied", "Failed")

APPROVE = "approve"
DENY = "deny"
IGNORE = "ignore"
REASONS = {APPROVE: "KubeforgeApproved", DENY: "KubeforgeDenied"}
CONDITION_TYPES = {APPROVE: "Approved", DENY: "Denied"}

CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
REQUEST_TIMEOUT = 10.0
# Seconds between the passes of a wait: a kubelet asks for its serving certificate about a second after it
# starts, and a pass is one list of the requests.
WAIT_INTERVAL = 0.25
LIST_PAGE_SIZE = 500
# Times a decision is made again on a fresh copy when the API answers 409 Conflict (the request changed
# between the list and the write: another approver, or this one running on another control-plane host).
CONFLICT_RETRIES = 3

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


class KubeletCSRError(Exception):
    """A failure explained to the operator; ``result`` carries what was decided before it (for a module's fail_json)."""

    def __init__(self, message: str, result: dict | None = None) -> None:
        super().__init__(message)
        self.result = dict(result or {})


class APIError(KubeletCSRError):
    """The Kubernetes API could not be reached, or answered with an error (``status`` is the HTTP status, 0 without one)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Decision(NamedTuple):
    action: str  # APPROVE, DENY or IGNORE
    reason: str


def require_cryptography() -> None:
    if not HAS_CRYPTOGRAPHY:
        cause = (CRYPTOGRAPHY_IMPORT_ERROR or "ImportError").strip().splitlines()[-1]
        raise KubeletCSRError("the Python library cryptography is needed to check certificate requests "
                              f"(install python3-cryptography, or cryptography with pip): {cause}")


# ---------------------------------------------------------------------------------------------------------
# The nodes the inventory knows


def normalize_nodes(raw: Any) -> dict[str, dict[str, list[str]]]:
    """``{node: {"dns_names": [...], "ip_addresses": [...]}}`` checked, DNS names lower-cased, IPs in canonical form."""
    if not isinstance(raw, dict):
        raise KubeletCSRError(f"the nodes must be a mapping of node name to its dns_names and ip_addresses, not {type(raw).__name__}")
    nodes = {}
    for name, entry in raw.items():
        if not isinstance(name, str) or not name:
            raise KubeletCSRError(f"node name {name!r} is not a non-empty string")
        nodes[name] = _node_entry(name, entry)
    return nodes


def _node_entry(name: str, entry: Any) -> dict[str, list[str]]:
    if not isinstance(entry, dict):
        raise KubeletCSRError(f"node {name!r}: expected a mapping with dns_names and ip_addresses")
    unknown = set(entry) - {"dns_names", "ip_addresses"}
    if unknown:
        raise KubeletCSRError(f"node {name!r}: unknown keys {sorted(unknown)} (only dns_names and ip_addresses)")
    lists = {}
    for key in ("dns_names", "ip_addresses"):
        values = entry.get(key) or []
        if not isinstance(values, (list, tuple)) or not all(isinstance(value, str) and value for value in values):
            raise KubeletCSRError(f"node {name!r}: {key} must be a list of non-empty strings")
        lists[key] = values
    dns_names = sorted({value.lower() for value in lists["dns_names"]})
    try:
        ips = sorted({str(ipaddress.ip_address(value)) for value in lists["ip_addresses"]})
    except ValueError as exc:
        raise KubeletCSRError(f"node {name!r}: {exc}") from exc
    if not dns_names and not ips:
        raise KubeletCSRError(f"node {name!r} has neither dns_names nor ip_addresses: no serving certificate could match")
    return {"dns_names": dns_names, "ip_addresses": ips}


def load_nodes(path: str) -> dict[str, dict[str, list[str]]]:
    """The nodes file of the CLI: JSON, ``{"node-1": {"dns_names": ["node-1"], "ip_addresses": ["10.0.0.21"]}}``."""
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except (OSError, ValueError) as exc:
        raise KubeletCSRError(f"cannot read the nodes file {path}: {exc}") from exc
    return normalize_nodes(raw)


# ---------------------------------------------------------------------------------------------------------
# Deciding


def requester_node(csr: dict) -> str | None:
    """The node name of a ``system:node:<name>`` requester, None for any other requester."""
    username = (csr.get("spec") or {}).get("username") or ""
    if username.startswith(NODE_USER_PREFIX) and len(username) > len(NODE_USER_PREFIX):
        return username[len(NODE_USER_PREFIX):]
    return None


def settled_conditions(csr: dict) -> list[str]:
    """The Approved, Denied and Failed conditions the request has."""
    conditions = (csr.get("status") or {}).get("conditions") or []
    return [kind for kind in SETTLED_CONDITIONS if any(c.get("type") == kind for c in conditions if isinstance(c, dict))]


def csr_state(csr: dict) -> str:
    """pending, approved, denied or failed (a request approved whose signing failed is failed)."""
    settled = settled_conditions(csr)
    for kind in ("Failed", "Denied", "Approved"):
        if kind in settled:
            return kind.lower()
    return "pending"


def parse_request(request_b64: Any):
    """spec.request (base64 of one PEM CERTIFICATE REQUEST block) as a cryptography CSR; ValueError when it is not one."""
    require_cryptography()
    if not isinstance(request_b64, str) or not request_b64:
        raise ValueError("spec.request is empty")
    try:
        pem = base64.b64decode(request_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"spec.request is not base64: {exc}") from exc
    blocks = _PEM_BLOCK.findall(pem)
    if blocks != [b"CERTIFICATE REQUEST"]:
        raise ValueError(f"want one PEM block CERTIFICATE REQUEST, found {[b.decode() for b in blocks]}")
    try:
        return x509.load_pem_x509_csr(pem)
    except Exception as exc:  # cryptography raises ValueError, or its own errors for bad DER inside
        raise ValueError(f"cannot parse the PEM block: {exc}") from exc


def decide(csr: dict, expected: dict) -> Decision:
    """Approve, deny or ignore one CertificateSigningRequest (the API object, as a dict).

    ``expected`` maps node names to the ``dns_names`` and ``ip_addresses`` the inventory knows for them.
    Requests for another signer, already settled, or from a requester that is not a node are ignored
    (left for someone else). A node's request is denied unless the node is known, the requester is in
    system:nodes, the request is signed by its key, its subject is exactly CN=system:node:<node>,
    O=system:nodes, its SANs are exactly the node's DNS names and IP addresses, and its usages are
    server auth with at most digital signature and key encipherment.
    """
    spec = csr.get("spec") or {}
    signer = spec.get("signerName")
    if signer != KUBELET_SERVING_SIGNER:
        return Decision(IGNORE, f"signer {signer!r} is not {KUBELET_SERVING_SIGNER}")
    settled = settled_conditions(csr)
    if settled:
        return Decision(IGNORE, "already " + " and ".join(settled))
    node = requester_node(csr)
    if node is None:
        return Decision(IGNORE, f"requester {spec.get('username')!r} is not a node (system:node:<name>): left pending")
    if node not in expected:
        return Decision(DENY, f"node {node!r} is not in the inventory")
    names = _node_entry(node, expected[node])
    groups = spec.get("groups") or []
    if NODES_GROUP not in groups:
        return Decision(DENY, f"requester {spec.get('username')} is not in the group {NODES_GROUP} (groups {list(groups)})")
    try:
        request = parse_request(spec.get("request"))
    except ValueError as exc:
        return Decision(DENY, f"spec.request is not a PEM certificate request: {exc}")
    if not request.is_signature_valid:
        return Decision(DENY, "the request's signature does not verify with its public key")
    for check in (lambda: _subject_problem(request, node), lambda: _san_problem(request, node, names),
                  lambda: _usage_problem(spec.get("usages"))):
        problem = check()
        if problem:
            return Decision(DENY, problem)
    return Decision(APPROVE, f"node {node!r} asks for its own names {names['dns_names']} and addresses {names['ip_addresses']}")


def created(csr: dict) -> str:
    """metadata.creationTimestamp. The API writes it in RFC 3339, in UTC, to the second: the strings order as the times do."""
    return (csr.get("metadata") or {}).get("creationTimestamp") or ""


def newest_client_requests(csrs: list[dict]) -> dict[str, str]:
    """{node: creationTimestamp of its newest kube-apiserver-client-kubelet request}, the node read from the request's
    subject (a kubelet's first request comes from its bootstrap token, whose name says nothing of the node).

    A kubelet asks for its serving certificate with the client certificate such a request gave it: a serving request
    older than the node's newest client request was made by an earlier kubelet of that name (a host removed and
    added again, within the hour kube-controller-manager keeps approved requests)."""
    newest: dict[str, str] = {}
    for csr in csrs:
        if (csr.get("spec") or {}).get("signerName") != KUBELET_CLIENT_SIGNER:
            continue
        try:
            names = [a.value for a in parse_request(csr["spec"].get("request")).subject if a.oid == NameOID.COMMON_NAME]
        except ValueError:
            continue
        if len(names) == 1 and names[0].startswith(NODE_USER_PREFIX):
            node = names[0][len(NODE_USER_PREFIX):]
            newest[node] = max(newest.get(node, ""), created(csr))
    return newest


def _subject_problem(request, node: str) -> str | None:
    want_cn = NODE_USER_PREFIX + node
    cns, orgs, others = [], [], []
    for attribute in request.subject:
        if attribute.oid == NameOID.COMMON_NAME:
            cns.append(attribute.value)
        elif attribute.oid == NameOID.ORGANIZATION_NAME:
            orgs.append(attribute.value)
        else:
            others.append(attribute.rfc4514_string())
    if others:
        return f"subject has attributes besides CN and O: {others}"
    if len(cns) != 1:
        return f"subject has {len(cns)} CNs {cns}, want exactly CN={want_cn}"
    if cns[0] != want_cn:
        if cns[0].startswith(NODE_USER_PREFIX):
            return f"subject CN={cns[0]} names node {cns[0][len(NODE_USER_PREFIX):]!r}, but the requester is node {node!r}"
        return f"subject CN is {cns[0]!r}, want {want_cn!r}"
    if orgs != [NODES_GROUP]:
        return f"subject O is {orgs}, want exactly [{NODES_GROUP!r}]"
    return None


def _san_problem(request, node: str, names: dict[str, list[str]]) -> str | None:
    try:
        extension = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return "the request has no subject alternative names"
    except Exception as exc:  # duplicate or malformed extensions
        return f"cannot read the request's extensions: {exc}"
    dns_names, ips, others = set(), set(), []
    for name in extension.value:
        if isinstance(name, x509.DNSName):
            dns_names.add(name.value.lower())
        elif isinstance(name, x509.IPAddress) and not isinstance(name.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            ips.add(str(name.value))
        elif isinstance(name, x509.RFC822Name):
            others.append(f"email:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            others.append(f"URI:{name.value}")
        else:
            others.append(f"{type(name).__name__}:{name.value}")
    if others:
        return f"SANs other than DNS names and IP addresses are never asked by a kubelet: {others}"
    if not dns_names and not ips:
        return "the request's subject alternative names are empty"
    for kind, got, want in (("DNS names", dns_names, set(names["dns_names"])), ("IP addresses", ips, set(names["ip_addresses"]))):
        if got != want:
            return (f"SAN {kind} {sorted(got)} are not the inventory's {sorted(want)} for node {node!r} "
                    f"(unexpected {sorted(got - want)}, missing {sorted(want - got)})")
    return None


def _usage_problem(usages: Any) -> str | None:
    usages = list(usages or [])
    extra = sorted(set(usages) - ALLOWED_USAGES)
    if extra:
        return f"usages {extra} are not for a serving certificate (allowed: {sorted(ALLOWED_USAGES)})"
    if REQUIRED_USAGE not in usages:
        return f"usages {usages} lack {REQUIRED_USAGE!r}"
    return None


# ---------------------------------------------------------------------------------------------------------
# The Kubernetes API


@dataclasses.dataclass
class KubeConfig:
    """What a kubeconfig's current (or named) context says about reaching the API server."""

    server: str
    ca_pem: bytes | None = None
    ca_file: str | None = None
    client_cert_pem: bytes | None = None
    client_cert_file: str | None = None
    client_key_pem: bytes | None = None
    client_key_file: str | None = None
    token: str | None = None


def _named(config: dict, kind: str, name: str, path: str) -> dict:
    for entry in config.get(kind + "s") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get(kind) or {}
    raise KubeletCSRError(f"kubeconfig {path}: no {kind} named {name!r}")


def load_kubeconfig(path: str, context: str | None = None) -> KubeConfig:
    """The server, CA, client certificate and key (as data or as paths, relative ones resolved from the
    kubeconfig's directory) and token of ``context`` (by default the current-context)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise KubeletCSRError(f"cannot read the kubeconfig {path}: {exc}") from exc
    if HAS_YAML:
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise KubeletCSRError(f"kubeconfig {path} is not valid YAML: {exc}") from exc
    else:
        try:
            config = json.loads(text)
        except ValueError as exc:
            raise KubeletCSRError(f"kubeconfig {path} is not JSON, and PyYAML (python3-yaml) is not installed to read YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise KubeletCSRError(f"kubeconfig {path} is not a mapping")
    context_name = context or config.get("current-context")
    if not context_name:
        raise KubeletCSRError(f"kubeconfig {path} has no current-context")
    ctx = _named(config, "context", context_name, path)
    cluster = _named(config, "cluster", ctx.get("cluster") or "", path)
    user = _named(config, "user", ctx.get("user") or "", path) if ctx.get("user") else {}
    base = os.path.dirname(os.path.abspath(path))

    def data(section: dict, key: str) -> bytes | None:
        value = section.get(key + "-data")
        if not value:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KubeletCSRError(f"kubeconfig {path}: {key}-data is not base64: {exc}") from exc

    def file(section: dict, key: str) -> str | None:
        value = section.get(key)
        return os.path.join(base, os.path.expanduser(value)) if value else None

    server = cluster.get("server")
    if not server or urllib.parse.urlsplit(server).scheme not in ("https", "http"):
        raise KubeletCSRError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no http(s) server URL")
    if cluster.get("insecure-skip-tls-verify"):
        raise KubeletCSRError(f"kubeconfig {path}: insecure-skip-tls-verify is refused: an approver must verify the API server")
    unsupported = sorted({"exec", "auth-provider"} & set(user))
    if unsupported:
        raise KubeletCSRError(f"kubeconfig {path}: user authentication by {unsupported} is not supported; use a client certificate or a token")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            with open(file(user, "tokenFile"), encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            raise KubeletCSRError(f"kubeconfig {path}: cannot read the tokenFile: {exc}") from exc
    result = KubeConfig(
        server=server.rstrip("/"),
        ca_pem=data(cluster, "certificate-authority"), ca_file=file(cluster, "certificate-authority"),
        client_cert_pem=data(user, "client-certificate"), client_cert_file=file(user, "client-certificate"),
        client_key_pem=data(user, "client-key"), client_key_file=file(user, "client-key"),
        token=token or None,
    )
    has_cert = bool(result.client_cert_pem or result.client_cert_file)
    has_key = bool(result.client_key_pem or result.client_key_file)
    if has_cert != has_key:
        raise KubeletCSRError(f"kubeconfig {path}: a client certificate needs its key and a key its certificate")
    return result


def _write_private(directory: str, name: str, content: bytes) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return path


def make_ssl_context(config: KubeConfig, tmp_parent: str | None = None) -> ssl.SSLContext:
    """A context verifying the server against the kubeconfig's CA (the system store without one) and presenting
    its client certificate. Certificate and key given as data are written for ``load_cert_chain`` to files of
    mode 0600 in a private temporary directory (under ``tmp_parent``), removed as soon as they are loaded."""
    try:
        if config.ca_pem:
            context = ssl.create_default_context(cadata=config.ca_pem.decode("ascii"))
        else:
            context = ssl.create_default_context(cafile=config.ca_file)
        tmp = None
        try:
            cert, key = config.client_cert_file, config.client_key_file
            if config.client_cert_pem or config.client_key_pem:
                tmp = tempfile.mkdtemp(prefix="kubeforge-kubelet-csr-", dir=tmp_parent)
                if config.client_cert_pem:
                    cert = _write_private(tmp, "client.crt", config.client_cert_pem)
                if config.client_key_pem:
                    key = _write_private(tmp, "client.key", config.client_key_pem)
            if cert:
                context.load_cert_chain(cert, key)
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise KubeletCSRError(f"cannot load the kubeconfig's TLS material: {exc}") from exc
    return context


class KubeClient:
    """The few calls the approver makes, on urllib; ``opener`` (an ``urllib.request.OpenerDirector``) can be
    injected, else one is built for ``ssl_context``. Every request has ``timeout`` seconds."""

    def __init__(self, server: str, ssl_context: ssl.SSLContext | None = None, token: str | None = None,
                 timeout: float = REQUEST_TIMEOUT, opener: urllib.request.OpenerDirector | None = None,
                 user_agent: str = "kubeforge-kubelet-csr-approver") -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        if opener is None:
            handlers = [urllib.request.HTTPSHandler(context=ssl_context)] if ssl_context is not None else []
            opener = urllib.request.build_opener(*handlers)
        self.opener = opener

    def request(self, method: str, path: str, body: dict | None = None, query: dict | None = None,
                content_type: str = "application/json") -> dict:
        """One call; ``body`` is sent as JSON with ``content_type`` (a patch type for PATCH)."""
        url = self.server + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise APIError(f"{method} {url}: HTTP {exc.code}: {_status_message(exc)}", status=exc.code) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:  # refused, TLS, timeout, cut short, bad URL
            raise APIError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from exc
        try:
            answer = json.loads(payload)
        except ValueError as exc:
            raise APIError(f"{method} {url}: the answer is not JSON: {payload[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise APIError(f"{method} {url}: the answer is not a JSON object")
        return answer

    def list_csrs(self) -> list[dict]:
        items, query = [], {"limit": LIST_PAGE_SIZE}
        while True:
            page = self.request("GET", CSR_PATH, query=query)
            if not isinstance(page.get("items"), list):
                raise APIError(f"GET {self.server}{CSR_PATH}: the answer has no items list")
            items.extend(page["items"])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            query = {"limit": LIST_PAGE_SIZE, "continue": token}

    def get_csr(self, name: str) -> dict:
        return self.request("GET", f"{CSR_PATH}/{urllib.parse.quote(name, safe='')}")

    def update_approval(self, csr: dict) -> dict:
        """PUT the request (with its resourceVersion, so a stale copy gets 409 Conflict) to its approval subresource."""
        name = (csr.get("metadata") or {}).get("name") or ""
        return self.request("PUT", f"{CSR_PATH}/{urllib.parse.quote(name, safe='')}/approval", body=csr)


def _status_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read()
    except OSError:
        body = b""
    try:
        return str(json.loads(body).get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(body[:200] or exc.reason)


def client_from_kubeconfig(path: str, context: str | None = None, timeout: float = REQUEST_TIMEOUT,
                           user_agent: str = "kubeforge-kubelet-csr-approver") -> KubeClient:
    config = load_kubeconfig(path, context)
    ssl_context = make_ssl_context(config) if config.server.startswith("https:") else None
    return KubeClient(config.server, ssl_context=ssl_context, token=config.token, timeout=timeout, user_agent=user_agent)


# ---------------------------------------------------------------------------------------------------------
# Applying decisions


def with_condition(csr: dict, decision: Decision, now: datetime.datetime | None = None) -> dict:
    """A copy of ``csr`` whose status.conditions gains the Approved or Denied condition of ``decision``."""
    updated = copy.deepcopy(csr)
    status = updated.setdefault("status", {}) or {}
    updated["status"] = status
    now = now or datetime.datetime.now(datetime.timezone.utc)
    status["conditions"] = list(status.get("conditions") or []) + [{
        "type": CONDITION_TYPES[decision.action],
        "status": "True",
        "reason": REASONS[decision.action],
        "message": decision.reason,
        "lastUpdateTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }]
    return updated


def _record(csr: dict, decision: Decision, state: str) -> dict:
    return {"name": (csr.get("metadata") or {}).get("name"), "node": requester_node(csr), "action": decision.action,
            "reason": decision.reason, "state": state}


def _apply(client, csr: dict, expected: dict, check_mode: bool) -> dict | None:
    """Decide one request and write the decision; on a conflict decide again on a fresh copy. None for another signer."""
    for _attempt in range(CONFLICT_RETRIES + 1):
        if (csr.get("spec") or {}).get("signerName") != KUBELET_SERVING_SIGNER:
            return None
        decision = decide(csr, expected)
        if decision.action == IGNORE or check_mode:
            return _record(csr, decision, csr_state(csr))
        try:
            client.update_approval(with_condition(csr, decision))
        except APIError as exc:
            name = (csr.get("metadata") or {}).get("name") or ""
            if exc.status == 404:
                return _record(csr, Decision(IGNORE, "deleted before the decision was written"), "deleted")
            if exc.status != 409:
                raise
            try:
                csr = client.get_csr(name)
            except APIError as again:
                if again.status == 404:
                    return _record(csr, Decision(IGNORE, "deleted before the decision was written"), "deleted")
                raise
            continue
        return _record(csr, decision, "approved" if decision.action == APPROVE else "denied")
    raise APIError(f"certificate signing request {csr.get('metadata', {}).get('name')!r} kept changing: "
                   f"{CONFLICT_RETRIES + 1} conflicts in a row", status=409)


def reconcile(client, expected: dict, check_mode: bool = False, csrs: list[dict] | None = None) -> list[dict]:
    """One pass over all the CertificateSigningRequests (``csrs``, else one list call): each kubelet-serving one is
    decided, and an approval or denial written for it alone (never in bulk); with ``check_mode`` nothing is written.

    Returns one dict per kubelet-serving request: name, node (None when the requester is not a node), action
    (approve, deny, ignore), reason, and state after the pass (pending, approved, denied, failed; in check mode
    the state before). Requests for other signers are not listed.
    """
    require_cryptography()
    expected = normalize_nodes(expected)
    decisions = []
    for csr in client.list_csrs() if csrs is None else csrs:
        record = _apply(client, csr, expected, check_mode)
        if record is not None:
            decisions.append(record)
    return decisions


def _merge(history: dict, decisions: list[dict]) -> None:
    """Keep, per request, the approval or denial made in any pass, else the latest word."""
    for record in decisions:
        previous = history.get(record["name"])
        if previous is None or previous["action"] == IGNORE:
            history[record["name"]] = record


def summary(decisions: list[dict]) -> dict:
    """The module's result: changed when a request was (or in check mode would be) approved or denied."""
    approved = sorted(d["name"] for d in decisions if d["action"] == APPROVE)
    denied = sorted(d["name"] for d in decisions if d["action"] == DENY)
    return {"changed": bool(approved or denied), "decisions": decisions, "approved": approved, "denied": denied}


def wait(client, expected: dict, nodes: list[str], timeout: float, interval: float = WAIT_INTERVAL,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> list[dict]:
    """Reconcile until each of ``nodes`` has an approved kubelet-serving request of its current kubelet (not older
    than the node's newest client request: newest_client_requests), and return the decisions of all the passes (per
    request, the approval or denial if one was made). After ``timeout`` seconds, raise a KubeletCSRError naming the
    nodes that never submitted a request, or whose requests were denied, are pending or came from an earlier kubelet.
    """
    expected = normalize_nodes(expected)
    unknown = sorted(set(nodes) - set(expected))
    if unknown:
        raise KubeletCSRError(f"cannot wait for nodes that are not in the nodes map: {unknown}")
    deadline = clock() + timeout
    history: dict[str, dict] = {}
    while True:
        csrs = client.list_csrs()
        decisions = reconcile(client, expected, csrs=csrs)
        _merge(history, decisions)
        newest_client = newest_client_requests(csrs)
        made = {(csr.get("metadata") or {}).get("name"): created(csr) for csr in csrs}
        earlier = {d["name"] for d in decisions if made.get(d["name"], "") < newest_client.get(d["node"], "")}
        done = {d["node"] for d in decisions if d["state"] == "approved" and d["name"] not in earlier}
        missing = [node for node in nodes if node not in done]
        if not missing:
            return list(history.values())
        remaining = deadline - clock()
        if remaining <= 0:
            problems = []
            for node in missing:
                mine = [d for d in history.values() if d["node"] == node]
                if not mine:
                    problems.append(f"{node}: never submitted a {KUBELET_SERVING_SIGNER} request")
                else:
                    problems.append(f"{node}: " + "; ".join(f"{d['name']} {d['state']} ({d['reason']})"
                                                            + (", an earlier kubelet's" if d["name"] in earlier else "") for d in mine))
            raise KubeletCSRError(
                f"after {timeout:g}s, no approved {KUBELET_SERVING_SIGNER} request for: " + " | ".join(problems)
                + " (approved requests are deleted by kube-controller-manager after an hour: wait only for kubelets "
                  "that were just started or asked for a new certificate)",
                result=summary(list(history.values())))
        sleep(min(interval, remaining))


class KubeletCSRApprover:
    """The module's backend: one pass, or passes until ``wait_for`` nodes are approved; check mode makes one pass
    that writes nothing and does not wait (the kubelets a check run would start are not running)."""

    def __init__(self, client, nodes: dict, wait_for: list[str] | None = None, timeout: float = 180,
                 interval: float = WAIT_INTERVAL, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.nodes = normalize_nodes(nodes)
        self.wait_for = list(wait_for or [])
        self.timeout = timeout
        self.interval = interval
        self.clock = clock
        self.sleep = sleep

    def run(self, check_mode: bool = False) -> dict:
        if check_mode or not self.wait_for:
            return summary(reconcile(self.client, self.nodes, check_mode=check_mode))
        return summary(wait(self.client, self.nodes, self.wait_for, self.timeout, self.interval, self.clock, self.sleep))


# ---------------------------------------------------------------------------------------------------------
# The script the systemd timer runs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubelet_csr.py",
        description="Approve pending kubernetes.io/kubelet-serving CertificateSigningRequests whose subject, names, "
                    "addresses and usages match the nodes file, deny the other node requests; one pass, one JSON line "
                    "per decision. Exit status: 0 done, 1 API error, 2 bad arguments, nodes file or kubeconfig.")
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of an identity allowed to list and approve CSRs")
    parser.add_argument("--nodes", required=True,
                        help='JSON file: {"node-1": {"dns_names": ["node-1"], "ip_addresses": ["10.0.0.21"]}, ...}')
    parser.add_argument("--context", help="kubeconfig context (default: its current-context)")
    parser.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT, help="seconds per API request (default %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="decide and print, write nothing")
    parser.add_argument("--all", action="store_true", help="print settled requests too (default: only pending ones and decisions)")
    return parser


def main(argv: list[str] | None = None, client_factory: Callable[..., Any] = client_from_kubeconfig, out=None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    # A script run by a systemd timer, not a module: its output is its journal.
    try:
        require_cryptography()
        expected = load_nodes(args.nodes)
        client = client_factory(args.kubeconfig, context=args.context, timeout=args.request_timeout)
        decisions = reconcile(client, expected, check_mode=args.dry_run)
    except APIError as exc:
        sys.stderr.write(f"kubelet_csr: {exc}\n")
        return 1
    except KubeletCSRError as exc:
        sys.stderr.write(f"kubelet_csr: {exc}\n")
        return 2
    for record in decisions:
        if args.all or record["action"] != IGNORE or record["state"] == "pending":
            out.write(json.dumps(dict(record, dry_run=args.dry_run), sort_keys=True) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
