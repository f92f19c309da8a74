# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The control plane's command lines and config files, built from the cluster settings.

Controller side only. Every flag a kube-* component gets comes from ``component_args``: the
secure defaults below (CIS Kubernetes Benchmark, control-plane section), then the operator's
``kube_*_extra_args``, checked against the flag list of the target minor version the collection
carries (``_data/flags``). Config documents (KubeSchedulerConfiguration, the audit Policy, the
EncryptionConfiguration) are built here too and checked against the config-api field lists.

``settings`` is the dict the control_plane role passes (``control_plane_settings`` in its vars):
  version, node_ip, apiserver_port, service_cidr, pod_cidr, node_cidr_mask_size, cluster_domain, etcd_servers,
  kubelet_tls_mode, pki_dir, config_dir, audit_log_dir, audit_log_maxage, audit_log_maxbackup,
  audit_log_maxsize, tls_min_version, tls_cipher_suites, service_account_issuer,
  terminated_pod_gc_threshold, extra_args ({component: {flag: value}}).
"""

from __future__ import annotations

import base64
import datetime
import os

from ansible_collections.kubeforge.cluster.plugins.module_utils import _versions
from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError

CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ENCRYPTION_PROVIDER = "secretbox"
ENCRYPTION_KEY_BYTES = 32
ENCRYPTION_ACTIONS = ("ensure", "add", "promote", "prune")
# What the EncryptionConfiguration encrypts; the key-usage check before a prune reads each of them in etcd.
ENCRYPTED_RESOURCES = ("secrets",)
CONFIG_API_VERSIONS = {
    "KubeSchedulerConfiguration": "kubescheduler.config.k8s.io/v1",
    "EncryptionConfiguration": "apiserver.config.k8s.io/v1",
    "Policy": "audit.k8s.io/v1",
    # The kubelet's is the kubelet_bootstrap role's template; preflight checks kubelet_config_extra against this kind.
    "KubeletConfiguration": "kubelet.config.k8s.io/v1beta1",
}


class ControlPlaneError(KubeforgeError):
    """A setting the control plane cannot be built from (unknown flag, unknown field, bad key file)."""


def _minor(settings: dict) -> str:
    minor = _versions.minor_of(settings.get("version"))
    if minor not in _versions.SUPPORTED_KUBE_MINORS:
        raise ControlPlaneError(f"kube_version {settings.get('version')!r} is not supported ({', '.join(_versions.SUPPORTED_KUBE_MINORS)})")
    return minor


def _value(value) -> str:
    """A flag value as the command line takes it: booleans lower case, lists comma-joined, maps k=v."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_value(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={_value(item)}" for key, item in value.items())
    return str(value)


def paths(settings: dict) -> dict:
    """Every file the control plane reads: the pki role's layout and this role's own files."""
    pki, config = settings["pki_dir"], settings["config_dir"]
    return {
        "ca": f"{pki}/ca.crt", "ca_key": f"{pki}/ca.key",
        "apiserver_cert": f"{pki}/apiserver.crt", "apiserver_key": f"{pki}/apiserver.key",
        "kubelet_client_cert": f"{pki}/apiserver-kubelet-client.crt", "kubelet_client_key": f"{pki}/apiserver-kubelet-client.key",
        "etcd_ca": f"{pki}/etcd-ca.crt", "etcd_cert": f"{pki}/apiserver-etcd-client.crt", "etcd_key": f"{pki}/apiserver-etcd-client.key",
        "front_proxy_ca": f"{pki}/front-proxy-ca.crt",
        "front_proxy_cert": f"{pki}/front-proxy-client.crt", "front_proxy_key": f"{pki}/front-proxy-client.key",
        "sa_key": f"{pki}/sa.key", "sa_pub": f"{pki}/sa.pub",
        "controller_manager_kubeconfig": f"{config}/controller-manager.kubeconfig",
        "scheduler_kubeconfig": f"{config}/scheduler.kubeconfig",
        "admin_kubeconfig": f"{config}/admin.kubeconfig",
        "scheduler_config": f"{config}/kube-scheduler.yaml",
        "audit_policy": f"{config}/audit-policy.yaml",
        "encryption_config": f"{config}/encryption-config.yaml",
        "audit_log": f"{settings['audit_log_dir']}/audit.log",
    }


def _tls(settings: dict) -> dict:
    return {"--tls-min-version": settings["tls_min_version"], "--tls-cipher-suites": list(settings["tls_cipher_suites"])}


def apiserver_flags(settings: dict) -> dict:
    p = paths(settings)
    flags = {
        "--advertise-address": settings["node_ip"],
        # The node address only: ha_nginx listens on 127.0.0.1 at the same port on this host.
        "--bind-address": settings["node_ip"],
        "--secure-port": settings["apiserver_port"],
        "--allow-privileged": True,
        "--anonymous-auth": False,
        "--authorization-mode": ["Node", "RBAC"],
        "--enable-admission-plugins": ["NodeRestriction"],
        "--profiling": False,
        "--client-ca-file": p["ca"],
        "--tls-cert-file": p["apiserver_cert"],
        "--tls-private-key-file": p["apiserver_key"],
        "--kubelet-client-certificate": p["kubelet_client_cert"],
        "--kubelet-client-key": p["kubelet_client_key"],
        "--kubelet-certificate-authority": p["ca"],
        "--kubelet-preferred-address-types": ["InternalIP", "Hostname", "ExternalIP"],
        "--etcd-servers": list(settings["etcd_servers"]),
        "--etcd-cafile": p["etcd_ca"],
        "--etcd-certfile": p["etcd_cert"],
        "--etcd-keyfile": p["etcd_key"],
        "--service-cluster-ip-range": settings["service_cidr"],
        "--service-account-issuer": settings["service_account_issuer"],
        "--service-account-key-file": p["sa_pub"],
        "--service-account-signing-key-file": p["sa_key"],
        "--service-account-lookup": True,
        "--requestheader-client-ca-file": p["front_proxy_ca"],
        "--requestheader-allowed-names": ["front-proxy-client"],
        "--requestheader-username-headers": ["X-Remote-User"],
        "--requestheader-group-headers": ["X-Remote-Group"],
        "--requestheader-extra-headers-prefix": ["X-Remote-Extra-"],
        "--proxy-client-cert-file": p["front_proxy_cert"],
        "--proxy-client-key-file": p["front_proxy_key"],
        "--audit-policy-file": p["audit_policy"],
        "--audit-log-path": p["audit_log"],
        "--audit-log-maxage": settings["audit_log_maxage"],
        "--audit-log-maxbackup": settings["audit_log_maxbackup"],
        "--audit-log-maxsize": settings["audit_log_maxsize"],
        "--encryption-provider-config": p["encryption_config"],
        # At shutdown, end the watches (their clients watch again through the load balancer, which a restart takes
        # this apiserver out of first) instead of waiting out the HTTP server's 60 s for their connections: each
        # apiserver of a rolling restart took a minute to stop.
        "--shutdown-watch-termination-grace-period": "5s",
        **_tls(settings),
        "--v": 2,
    }
    if settings["kubelet_tls_mode"] == "bootstrap":
        # Kubelets join with bootstrap tokens (kubelet phase).
        flags["--enable-bootstrap-token-auth"] = True
    return flags


def controller_manager_flags(settings: dict) -> dict:
    p = paths(settings)
    return {
        "--bind-address": "127.0.0.1",
        "--secure-port": 10257,
        "--kubeconfig": p["controller_manager_kubeconfig"],
        "--authentication-kubeconfig": p["controller_manager_kubeconfig"],
        "--authorization-kubeconfig": p["controller_manager_kubeconfig"],
        "--client-ca-file": p["ca"],
        "--requestheader-client-ca-file": p["front_proxy_ca"],
        "--leader-elect": True,
        "--profiling": False,
        "--use-service-account-credentials": True,
        "--service-account-private-key-file": p["sa_key"],
        "--root-ca-file": p["ca"],
        "--cluster-signing-cert-file": p["ca"],
        "--cluster-signing-key-file": p["ca_key"],
        "--controllers": ["*", "bootstrapsigner", "tokencleaner"],
        "--allocate-node-cidrs": True,
        "--cluster-cidr": settings["pod_cidr"],
        "--node-cidr-mask-size": settings["node_cidr_mask_size"],
        "--service-cluster-ip-range": settings["service_cidr"],
        "--terminated-pod-gc-threshold": settings["terminated_pod_gc_threshold"],
        **_tls(settings),
        "--v": 2,
    }


def scheduler_flags(settings: dict) -> dict:
    p = paths(settings)
    # Leader election, profiling and the kubeconfig are in the KubeSchedulerConfiguration.
    return {
        "--config": p["scheduler_config"],
        "--bind-address": "127.0.0.1",
        "--secure-port": 10259,
        "--authentication-kubeconfig": p["scheduler_kubeconfig"],
        "--authorization-kubeconfig": p["scheduler_kubeconfig"],
        "--client-ca-file": p["ca"],
        "--requestheader-client-ca-file": p["front_proxy_ca"],
        **_tls(settings),
        "--v": 2,
    }


BUILDERS = {"kube-apiserver": apiserver_flags, "kube-controller-manager": controller_manager_flags, "kube-scheduler": scheduler_flags}


def flag_problems(component: str, minor: str, flags) -> tuple:
    """(unknown, deprecated) flag names of a command line for a component's minor version."""
    known = _versions.component_flags(minor, component)
    names = [flag.split("=", 1)[0] for flag in flags]
    return [name for name in names if name not in known], [name for name in names if known.get(name)]


def component_flags(component: str, settings: dict) -> dict:
    """The secure defaults, then the operator's extra arguments (which win), as {--flag: value}."""
    if component not in BUILDERS:
        raise ControlPlaneError(f"unknown control-plane component {component!r}; known: {', '.join(BUILDERS)}")
    flags = BUILDERS[component](settings)
    extra = (settings.get("extra_args") or {}).get(component) or {}
    if not isinstance(extra, dict):
        raise ControlPlaneError(f"extra arguments of {component} must be a mapping of flag to value, got {extra!r}")
    for raw, value in extra.items():
        flag = "--" + str(raw).lstrip("-")
        if value is None:
            flags.pop(flag, None)  # null drops a default flag
        else:
            flags[flag] = value
    return flags


def component_args(component: str, settings: dict) -> list:
    """The command-line arguments ('--flag=value') of a component; fails on a flag its version lacks."""
    minor = _minor(settings)
    args = [f"{flag}={_value(value)}" for flag, value in component_flags(component, settings).items()]
    unsafe = [arg for arg in args if any(char.isspace() or char in "\"'\\" for char in arg)]
    if unsafe:
        raise ControlPlaneError(f"{component}: spaces, quotes and backslashes are not supported in flag values: {', '.join(unsafe)}")
    unknown, _deprecated = flag_problems(component, minor, args)
    if unknown:
        raise ControlPlaneError(f"{component} {minor} has no flag {', '.join(unknown)} (removed or misspelled); "
                                "check kube_*_extra_args")
    return args


# --------------------------------------------------------------------------- config documents

def scheduler_config(settings: dict) -> dict:
    return {
        "apiVersion": CONFIG_API_VERSIONS["KubeSchedulerConfiguration"],
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": paths(settings)["scheduler_kubeconfig"]},
        "leaderElection": {"leaderElect": True},
        "enableProfiling": False,
        "enableContentionProfiling": False,
    }


def audit_policy(settings: dict) -> dict:
    """Metadata for everything, never the content of secrets, config maps or tokens; no noise from health probes."""
    del settings
    return {
        "apiVersion": CONFIG_API_VERSIONS["Policy"],
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version"]},
            {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"],
             "resources": [{"group": "", "resources": ["endpoints", "services", "services/status"]}]},
            {"level": "None", "userGroups": ["system:nodes"], "verbs": ["get"],
             "resources": [{"group": "", "resources": ["nodes", "nodes/status"]}]},
            {"level": "None", "users": ["system:kube-controller-manager", "system:kube-scheduler"], "verbs": ["get", "update"],
             "namespaces": ["kube-system"], "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]},
            {"level": "Metadata",
             "resources": [{"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
                           {"group": "authentication.k8s.io", "resources": ["tokenreviews"]}]},
            {"level": "Request", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
            {"level": "Metadata"},
        ],
    }


def encryption_config(keys: list) -> dict:
    """Secrets encrypted with the first key; every key listed decrypts; identity reads data written before."""
    if not keys:
        raise ControlPlaneError("no encryption key: the controller's key file is empty")
    return {
        "apiVersion": CONFIG_API_VERSIONS["EncryptionConfiguration"],
        "kind": "EncryptionConfiguration",
        "resources": [{
            "resources": list(ENCRYPTED_RESOURCES),
            "providers": [{ENCRYPTION_PROVIDER: {"keys": [{"name": k["name"], "secret": k["secret"]} for k in keys]}}, {"identity": {}}],
        }],
    }


def encryption_store(settings: dict) -> dict:
    """Where the apiservers keep what they encrypt, read from their final flags (extra arguments included): the
    encryption_key_usage module's etcd connection, etcd prefix and resources."""
    flags = component_flags("kube-apiserver", settings)
    servers = flags.get("--etcd-servers") or []
    return {
        "endpoints": servers.split(",") if isinstance(servers, str) else list(servers),
        "ca_cert": flags.get("--etcd-cafile"), "client_cert": flags.get("--etcd-certfile"), "client_key": flags.get("--etcd-keyfile"),
        "etcd_prefix": flags.get("--etcd-prefix") or "/registry",
        "resources": list(ENCRYPTED_RESOURCES),
    }


def new_key(now: datetime.datetime | None = None) -> dict:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {"name": "key-" + now.strftime("%Y%m%dT%H%M%S%fZ"),
            "secret": base64.b64encode(os.urandom(ENCRYPTION_KEY_BYTES)).decode("ascii")}


def _check_keys(keys) -> list:
    if not isinstance(keys, list):
        raise ControlPlaneError(f"the encryption keys must be a list of {{name, secret}}, got {type(keys).__name__}")
    seen = set()
    for key in keys:
        if not isinstance(key, dict) or not key.get("name") or not key.get("secret"):
            raise ControlPlaneError("every encryption key needs a name and a secret")
        if key["name"] in seen:
            raise ControlPlaneError(f"duplicate encryption key name {key['name']!r}")
        seen.add(key["name"])
        try:
            size = len(base64.b64decode(str(key["secret"]), validate=True))
        except ValueError as exc:
            raise ControlPlaneError(f"encryption key {key['name']!r} is not base64: {exc}") from exc
        if size != ENCRYPTION_KEY_BYTES:
            raise ControlPlaneError(f"encryption key {key['name']!r} has {size} bytes; {ENCRYPTION_PROVIDER} needs {ENCRYPTION_KEY_BYTES}")
    return list(keys)


def encryption_keys(keys, action: str = "ensure") -> list:
    """The key list after an action; the first key encrypts.

    ensure: a new key only when there is none (the first run); add: a new key at the end (it
    decrypts, it does not encrypt yet); promote: the newest key (the last) moves first; prune:
    only the first key is kept (after every secret was rewritten with it).
    """
    keys = _check_keys(list(keys or []))
    if action not in ENCRYPTION_ACTIONS:
        raise ControlPlaneError(f"unknown encryption key action {action!r}; one of {', '.join(ENCRYPTION_ACTIONS)}")
    if action == "ensure":
        return keys or [new_key()]
    if not keys:
        raise ControlPlaneError(f"cannot {action} an encryption key: there is none yet (run the control_plane phase first)")
    if action == "add":
        return keys + [new_key()]
    if action == "promote":
        return [keys[-1]] + keys[:-1]
    return keys[:1]


def encryption_key_file(data, action: str = "ensure", now: datetime.datetime | None = None) -> dict:
    """The controller's key file after an action: ``keys`` as encryption_keys() gives them, and ``retired``.

    A key an action drops (prune) is kept in ``retired`` with the time it left, so that a mistake
    can be undone, until the operator deletes it from the file. A retired key moved back into
    ``keys`` by the operator leaves ``retired``. ``retired`` is written only when it has keys, so a
    file without any stays as the first run wrote it.
    """
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ControlPlaneError(f"the encryption key file must be a mapping with keys (and retired), got {type(data).__name__}")
    keys = encryption_keys(data.get("keys"), action)
    retired = data.get("retired") or []
    if not isinstance(retired, list):
        raise ControlPlaneError("retired in the encryption key file must be a list of {name, secret, retired}")
    _check_keys([{"name": key.get("name"), "secret": key.get("secret")} if isinstance(key, dict) else key for key in retired])
    in_use = {key["name"]: key["secret"] for key in keys}
    clash = [key["name"] for key in retired if key["name"] in in_use and key["secret"] != in_use[key["name"]]]
    if clash:
        raise ControlPlaneError(f"encryption key names in both keys and retired with different secrets: {', '.join(clash)}; "
                                "give the retired one another name")
    when = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dropped = [{"name": key["name"], "secret": key["secret"], "retired": when}
               for key in _check_keys(list(data.get("keys") or [])) if key["name"] not in in_use]
    kept = [key for key in retired if key["name"] not in in_use and key["name"] not in {d["name"] for d in dropped}]
    result = {"keys": keys}
    if kept or dropped:
        result["retired"] = kept + dropped
    return result


# --------------------------------------------------------------------------- field checks

def unknown_config_fields(doc: dict, minor: str) -> list:
    """Fields of a config document that its kind does not have in the version's config-api list."""
    kind = doc.get("kind")
    if kind not in CONFIG_API_VERSIONS:
        return [f"kind {kind!r}"]
    problems = []
    if doc.get("apiVersion") != CONFIG_API_VERSIONS[kind]:
        problems.append(f"apiVersion {doc.get('apiVersion')!r} (expected {CONFIG_API_VERSIONS[kind]})")
    top = _versions.config_fields(minor, kind)
    nested = _versions.config_fields(minor, kind, nested=True)

    def walk(node, prefix: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, prefix + "[]")
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if path not in nested and not (not prefix and key in top):
                # A map the lists do not expand (metadata, plugin args) is not looked into.
                if prefix and not any(field.startswith(prefix + ".") or field.startswith(prefix + "[]") for field in nested):
                    continue
                problems.append(path)
                continue
            walk(value, path)

    walk(doc, "")
    return problems


def config_doc(kind: str, settings: dict, keys: list | None = None) -> dict:
    """A config document, checked against the version's field list."""
    builders = {"KubeSchedulerConfiguration": lambda: scheduler_config(settings), "Policy": lambda: audit_policy(settings),
                "EncryptionConfiguration": lambda: encryption_config(keys or [])}
    if kind not in builders:
        raise ControlPlaneError(f"unknown config kind {kind!r}; known: {', '.join(builders)}")
    doc = builders[kind]()
    unknown = unknown_config_fields(doc, _minor(settings))
    if unknown:
        raise ControlPlaneError(f"{kind} for Kubernetes {_minor(settings)} has no field {', '.join(unknown)}")
    return doc
