# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The CIS Kubernetes Benchmark items the roles enforce, checked on what each component will run with.

``kube_*_extra_args`` win over the roles' flags and a null drops a control-plane default, so an
override can turn an item off. Preflight computes each component's final settings the way the
component reads them (command line over or instead of its config file, its own default where
nothing is set) and refuses every item that no longer holds, unless ``kube_cis_exceptions`` lists
it with a reason.

Where each component reads a setting from:
- kube-apiserver, kube-controller-manager: the command line (``_control_plane.component_flags``).
- kube-scheduler: the role's KubeSchedulerConfiguration; with ``--config`` only the leader
  election flags still count (cmd/kube-scheduler/app/options: ApplyTo); without it, every flag.
- kubelet: its KubeletConfiguration (the role's, kubelet_config_extra merged over it) with kubelet_extra_args over it
  (flags win over the file).
- kube-proxy: its KubeProxyConfiguration only; with ``--config`` it keeps the logging flags
  alone (cmd/kube-proxy/app/options.go: Complete). The role writes ``--config`` last, so it holds.

Pure functions: the preflight action renders the role variables named in ROLE_VARIABLES and passes
them in; nothing here reads files or templates.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable

from ansible_collections.kubeforge.cluster.plugins.module_utils import _control_plane, _durations

EXCEPTIONS_VAR = "kube_cis_exceptions"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
# The role variables the final settings are built from, by role (rendered by the preflight action).
ROLE_VARIABLES = {
    "control_plane": ("control_plane_settings",),
    "kubelet_bootstrap": ("kubelet_bootstrap_configuration", "kubelet_bootstrap_protect_kernel_defaults"),
    "ipvs": ("ipvs_configuration",),
}
# The suites the benchmark accepts (1.2.29, 4.2.13), in both of Go's spellings of the CHACHA20 ones.
STRONG_CIPHERS = frozenset({
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
})
STRONG_TLS_VERSIONS = ("VersionTLS12", "VersionTLS13")


class _Marker:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


UNSET = _Marker("unset")  # absent, and the component has no default for it
UNKNOWN = _Marker("unknown")  # in a file preflight cannot read


# --------------------------------------------------------------------------- reading values

_TRUE, _FALSE = ("true", "t", "1"), ("false", "f", "0")


def _bool(value) -> bool | None:
    """A boolean as Go's strconv.ParseBool reads the flag (true/false/t/f/1/0, any case), else None."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _int(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _items(value) -> list:
    """A list flag as the component splits it: a list, or comma-separated text."""
    if value in (UNSET, None):
        return []
    if isinstance(value, (list, tuple)):
        return [str(item).strip() for item in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _gates(value) -> dict:
    """--feature-gates as {gate: bool or None}: a mapping, or 'A=true,B=false'."""
    if isinstance(value, dict):
        return {str(key): _bool(item) for key, item in value.items()}
    return {key.strip(): _bool(item) for key, _sep, item in (part.partition("=") for part in _items(value))}


def _host(address) -> str:
    """The host of 'host', 'host:port' or '[v6]:port'."""
    text = str(address).strip()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


def _is_loopback(address) -> bool:
    host = _host(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_zero_duration(value) -> bool:
    """A Go duration ('0', '0s', '0h0m0s') or a number (a YAML value without its unit) that is zero."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0
    return _durations.go_duration_seconds(value) == 0


def show(value) -> str:
    """A value as the command line would carry it."""
    if isinstance(value, _Marker):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(show(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={show(item)}" for key, item in value.items())
    return str(value)


# --------------------------------------------------------------------------- the rules

def _false(value) -> bool:
    return _bool(value) is False


def _true(value) -> bool:
    return _bool(value) is True


def _given(value) -> bool:
    return value is not UNSET and value is not None and str(value).strip() != ""


def _absent(value) -> bool:
    return value is UNSET


def _at_least(minimum: int) -> Callable:
    return lambda value: (_int(value) or 0) >= minimum


def _strong_ciphers(value) -> bool:
    return bool(_items(value)) and set(_items(value)) <= STRONG_CIPHERS


def _strong_tls(value) -> bool:
    return str(value) in STRONG_TLS_VERSIONS


def _authorization(value) -> bool:
    modes = _items(value)
    return "Node" in modes and "RBAC" in modes and "AlwaysAllow" not in modes


def _admission_enabled(value) -> bool:
    plugins = _items(value)
    return "NodeRestriction" in plugins and "AlwaysAdmit" not in plugins


def _admission_disabled(value) -> bool:
    return not set(_items(value)) & {"ServiceAccount", "NamespaceLifecycle", "NodeRestriction"}


def _rotation_gate(value) -> bool:
    return _gates(value).get("RotateKubeletServerCertificate") is not False


def _ha(context: dict) -> bool:
    return context.get("control_planes", 0) > 1


def _bootstrap(context: dict) -> bool:
    return context.get("kubelet_tls_mode") == "bootstrap"


def _protect_kernel_defaults(context: dict) -> bool:
    return _bool(context.get("protect_kernel_defaults")) is True


@dataclass(frozen=True)
class Rule:
    """One item: ``setting`` is the flag name without dashes (what kube_cis_exceptions names)."""
    item: str  # "CIS 1.2.15", or "kubeforge" for the collection's own items
    component: str
    setting: str
    wants: str  # what holds, for the message
    holds: Callable[[Any], bool]
    default: Any = UNSET  # the component's own value when nothing sets it (its config-file default where it reads one)
    field: str = ""  # the config-file field (dotted) the component reads instead of, or under, the flag
    applies: Callable[[dict], bool] | None = None  # only where the role sets the item (HA, TLS bootstrap, a role switch)

    @property
    def flag(self) -> str:
        return "--" + self.setting


# Go's servers default to TLS 1.2 since Go 1.22 (crypto/tls); every supported Kubernetes is built with a later Go.
GO_TLS_DEFAULT = "VersionTLS12"
_LOOPBACK = "127.0.0.1 (loopback)"


def _tls_rules(component: str, item_ciphers: str, kubelet: bool = False) -> tuple:
    return (
        Rule("kubeforge", component, "tls-min-version", "VersionTLS12 or VersionTLS13", _strong_tls, GO_TLS_DEFAULT,
             "tlsMinVersion" if kubelet else ""),
        Rule(item_ciphers, component, "tls-cipher-suites", "only the benchmark's strong suites", _strong_ciphers, UNSET,
             "tlsCipherSuites" if kubelet else ""),
    )


RULES = (
    # kube-apiserver (CIS 1.2)
    Rule("CIS 1.2.1", "kube-apiserver", "anonymous-auth", "false", _false, True),
    Rule("CIS 1.2.2", "kube-apiserver", "token-auth-file", "not set", _absent),
    Rule("CIS 1.2.4", "kube-apiserver", "kubelet-client-certificate", "set", _given),
    Rule("CIS 1.2.4", "kube-apiserver", "kubelet-client-key", "set", _given),
    Rule("CIS 1.2.5", "kube-apiserver", "kubelet-certificate-authority", "set", _given),
    Rule("CIS 1.2.6-1.2.8", "kube-apiserver", "authorization-mode", "Node and RBAC, never AlwaysAllow", _authorization, "AlwaysAllow"),
    Rule("CIS 1.2.10, 1.2.14", "kube-apiserver", "enable-admission-plugins", "NodeRestriction, never AlwaysAdmit", _admission_enabled),
    Rule("CIS 1.2.12, 1.2.13", "kube-apiserver", "disable-admission-plugins",
         "none of ServiceAccount, NamespaceLifecycle, NodeRestriction", _admission_disabled),
    Rule("CIS 1.2.15", "kube-apiserver", "profiling", "false", _false, True),
    Rule("CIS 1.2.16", "kube-apiserver", "audit-log-path", "set", _given),
    Rule("CIS 1.2.17", "kube-apiserver", "audit-log-maxage", "30 or more", _at_least(30), 0),
    Rule("CIS 1.2.18", "kube-apiserver", "audit-log-maxbackup", "10 or more", _at_least(10), 0),
    Rule("CIS 1.2.19", "kube-apiserver", "audit-log-maxsize", "100 or more", _at_least(100), 0),
    Rule("CIS 1.2.21", "kube-apiserver", "service-account-lookup", "true", _true, True),
    Rule("CIS 1.2.22", "kube-apiserver", "service-account-key-file", "set", _given),
    Rule("CIS 1.2.23", "kube-apiserver", "etcd-certfile", "set", _given),
    Rule("CIS 1.2.23", "kube-apiserver", "etcd-keyfile", "set", _given),
    Rule("CIS 1.2.24", "kube-apiserver", "tls-cert-file", "set", _given),
    Rule("CIS 1.2.24", "kube-apiserver", "tls-private-key-file", "set", _given),
    Rule("CIS 1.2.25", "kube-apiserver", "client-ca-file", "set", _given),
    Rule("CIS 1.2.26", "kube-apiserver", "etcd-cafile", "set", _given),
    Rule("CIS 1.2.27", "kube-apiserver", "encryption-provider-config", "set", _given),
    *_tls_rules("kube-apiserver", "CIS 1.2.29"),
    # kube-controller-manager (CIS 1.3)
    Rule("CIS 1.3.1", "kube-controller-manager", "terminated-pod-gc-threshold", "more than 0", _at_least(1), 12500),
    Rule("CIS 1.3.2", "kube-controller-manager", "profiling", "false", _false, True),
    Rule("CIS 1.3.3", "kube-controller-manager", "use-service-account-credentials", "true", _true, False),
    Rule("CIS 1.3.4", "kube-controller-manager", "service-account-private-key-file", "set", _given),
    Rule("CIS 1.3.5", "kube-controller-manager", "root-ca-file", "set", _given),
    Rule("CIS 1.3.6", "kube-controller-manager", "feature-gates", "RotateKubeletServerCertificate not false", _rotation_gate),
    Rule("CIS 1.3.7", "kube-controller-manager", "bind-address", _LOOPBACK, _is_loopback, "0.0.0.0"),
    Rule("kubeforge", "kube-controller-manager", "leader-elect", "true with more than one control-plane host", _true, True,
         applies=_ha),
    *_tls_rules("kube-controller-manager", "kubeforge"),
    # kube-scheduler (CIS 1.4)
    Rule("CIS 1.4.1", "kube-scheduler", "profiling", "false", _false, True, "enableProfiling"),
    Rule("CIS 1.4.2", "kube-scheduler", "bind-address", _LOOPBACK, _is_loopback, "0.0.0.0"),
    Rule("kubeforge", "kube-scheduler", "leader-elect", "true with more than one control-plane host", _true, True,
         "leaderElection.leaderElect", _ha),
    *_tls_rules("kube-scheduler", "kubeforge"),
    # kubelet (CIS 4.2); defaults are KubeletConfiguration v1beta1's, the role always writes one.
    Rule("CIS 4.2.1", "kubelet", "anonymous-auth", "false", _false, False, "authentication.anonymous.enabled"),
    Rule("CIS 4.2.2", "kubelet", "authorization-mode", "Webhook", lambda value: str(value) == "Webhook", "Webhook", "authorization.mode"),
    Rule("CIS 4.2.3", "kubelet", "client-ca-file", "set", _given, UNSET, "authentication.x509.clientCAFile"),
    Rule("CIS 4.2.4", "kubelet", "read-only-port", "0", lambda value: _int(value) == 0, 0, "readOnlyPort"),
    Rule("CIS 4.2.5", "kubelet", "streaming-connection-idle-timeout", "not 0", lambda value: not _is_zero_duration(value), "4h0m0s",
         "streamingConnectionIdleTimeout"),
    Rule("CIS 4.2.6", "kubelet", "protect-kernel-defaults", "true while kubelet_bootstrap_protect_kernel_defaults is true", _true, False,
         "protectKernelDefaults", _protect_kernel_defaults),
    Rule("CIS 4.2.7", "kubelet", "make-iptables-util-chains", "true", _true, True, "makeIPTablesUtilChains"),
    Rule("CIS 4.2.11", "kubelet", "rotate-certificates", "true with kubelet_tls_mode bootstrap", _true, False, "rotateCertificates",
         _bootstrap),
    Rule("CIS 4.2.12", "kubelet", "rotate-server-certificates", "true with kubelet_tls_mode bootstrap", _true, False,
         "serverTLSBootstrap", _bootstrap),
    *_tls_rules("kubelet", "CIS 4.2.13", kubelet=True),
    # kube-proxy (CIS 4.3)
    Rule("CIS 4.3.1", "kube-proxy", "metrics-bind-address", _LOOPBACK, _is_loopback, "127.0.0.1:10249", "metricsBindAddress"),
)


def settings_of(component: str) -> list:
    return sorted({rule.setting for rule in RULES if rule.component == component})


# --------------------------------------------------------------------------- final settings

@dataclass(frozen=True)
class Final:
    value: Any
    source: str  # where the value comes from, in the operator's words


def _field(doc: dict, path: str, default):
    node = doc
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _normalised(extra) -> dict:
    return {"--" + str(raw).lstrip("-"): value for raw, value in (extra or {}).items()}


def _from_flags(rule: Rule, component: str, flags: dict, extra: dict, var: str) -> Final:
    if rule.flag in flags:
        return Final(flags[rule.flag], f"set by {var}" if rule.flag in extra else "the collection's setting")
    if rule.flag in extra:
        return Final(rule.default, f"dropped by a null in {var}, so {component}'s own default")
    return Final(rule.default, f"not set, so {component}'s own default")


# The only flags kube-scheduler still reads when it has a --config (cmd/kube-scheduler/app/options: ApplyTo).
SCHEDULER_FLAGS_OVER_CONFIG = ("leader-elect",)


def _control_plane_finals(settings: dict, var_of: dict) -> dict:
    finals = {}
    for component in _control_plane.CONTROL_PLANE:
        flags = _control_plane.component_flags(component, settings)
        extra = _normalised((settings.get("extra_args") or {}).get(component))
        var = var_of[component]
        config = flags.get("--config")
        own_config = _control_plane.paths(settings)["scheduler_config"]
        for rule in RULES:
            if rule.component != component:
                continue
            if not rule.field or config is None:
                # Flags only; for the scheduler without --config the flags and its defaults apply.
                final = _from_flags(rule, component, flags, extra, var)
                if rule.field:
                    final = Final(final.value, f"{final.source}; {var} drops --config (null), so kube-scheduler reads its flags")
            elif rule.flag in flags and rule.setting in SCHEDULER_FLAGS_OVER_CONFIG:
                final = Final(flags[rule.flag], f"set by {var}, which kube-scheduler honours over its --config")
            elif str(config) != own_config:
                final = Final(UNKNOWN, f"{var} points --config at {config}, which preflight cannot read")
            else:
                doc = _control_plane.scheduler_config(settings)
                final = Final(_field(doc, rule.field, rule.default), f"KubeSchedulerConfiguration {rule.field}")
            finals[component, rule.setting] = final
    return finals


def _config_file_finals(component: str, config: dict, extra: dict, var: str, flags_win: bool) -> dict:
    """kubelet (flags win over its config file) and kube-proxy (only its config file counts)."""
    extra = {flag: value for flag, value in _normalised(extra).items() if value is not None}
    replaced = flags_win and "--config" in extra
    finals = {}
    for rule in RULES:
        if rule.component != component:
            continue
        if flags_win and rule.flag in extra:
            final = Final(extra[rule.flag], f"set by {var}, which wins over the config file")
        elif replaced:
            final = Final(UNKNOWN, f"{var} points --config at {extra['--config']}, which preflight cannot read")
        else:
            kind = config.get("kind", "config") if isinstance(config, dict) else "config"
            final = Final(_field(config if isinstance(config, dict) else {}, rule.field, rule.default), f"{kind} {rule.field}")
        finals[component, rule.setting] = final
    return finals


def null_problems(extra_args: dict) -> list:
    """A null in kubelet_extra_args or kube_proxy_extra_args drops nothing (their settings are in config
    files); the unit template would write the flag with the value None."""
    problems = []
    for component in ("kubelet", "kube-proxy"):
        var, extra = extra_args.get(component, (None, {}))
        nulls = [str(raw) for raw, value in (extra or {}).items() if value is None]
        if nulls:
            problems.append(f"{var}: null cannot drop a {component} setting ({', '.join(nulls)}): {component} reads them from its "
                            "config file, and the unit file would carry the text None; remove the entries")
    return problems


def final_settings(role_vars: dict, extra_args: dict) -> dict:
    """{(component, setting): Final} for every rule whose inputs ``role_vars`` holds.

    ``role_vars``: the rendered ROLE_VARIABLES (a role missing from it is skipped: the action
    reports why it could not render it). ``extra_args``: {component: (variable name, its mapping)}.
    """
    var_of = {component: var for component, (var, _extra) in extra_args.items()}
    finals = {}
    if isinstance(role_vars.get("control_plane_settings"), dict):
        finals.update(_control_plane_finals(role_vars["control_plane_settings"], var_of))
    if "kubelet_bootstrap_configuration" in role_vars:
        var, extra = extra_args["kubelet"]
        finals.update(_config_file_finals("kubelet", role_vars["kubelet_bootstrap_configuration"], extra, var, flags_win=True))
    if "ipvs_configuration" in role_vars:
        var, extra = extra_args["kube-proxy"]
        finals.update(_config_file_finals("kube-proxy", role_vars["ipvs_configuration"], extra, var, flags_win=False))
    return finals


# --------------------------------------------------------------------------- exceptions and the check

def parse_exceptions(exceptions) -> tuple:
    """({(component, setting): reason}, problems) of kube_cis_exceptions; an entry needs all three keys."""
    if exceptions is None:
        return {}, []  # reported by check_settings_defined
    if not isinstance(exceptions, list):
        return {}, [f"{EXCEPTIONS_VAR} must be a list of {{component, setting, reason}}, got {type(exceptions).__name__}"]
    accepted, problems = {}, []
    for number, entry in enumerate(exceptions, 1):
        where = f"{EXCEPTIONS_VAR} entry {number}"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be a mapping with component, setting and reason, got {entry!r}")
            continue
        component, setting, reason = entry.get("component"), str(entry.get("setting") or "").lstrip("-"), entry.get("reason")
        if component not in COMPONENTS:
            problems.append(f"{where}: component {component!r} must be one of {', '.join(COMPONENTS)}")
            continue
        if setting not in settings_of(component):
            problems.append(f"{where}: {component} has no checked setting {entry.get('setting')!r}; "
                            f"the checked ones are {', '.join(settings_of(component))}")
            continue
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{where} ({component} {setting}) has no reason: an exception needs one, and the run prints it")
            continue
        accepted[component, setting] = reason.strip()
    return accepted, problems


def _exception_hint(rule: Rule) -> str:
    return f"{{component: {rule.component}, setting: {rule.setting}, reason: ...}}"


def check(role_vars: dict, extra_args: dict, exceptions: dict, context: dict) -> tuple:
    """(problems, notes): a problem per item that does not hold and is not excepted; a note per
    exception used (with its reason) or not needed.

    ``context``: control_planes (how many hosts), kubelet_tls_mode, protect_kernel_defaults.
    """
    finals = final_settings(role_vars, extra_args)
    problems, notes, used = null_problems(extra_args), [], set()
    for rule in RULES:
        final = finals.get((rule.component, rule.setting))
        if final is None or (rule.applies and not rule.applies(context)):
            continue
        if final.value is not UNKNOWN and rule.holds(final.value):
            continue
        what = (f"{rule.item}: {rule.component} {rule.flag}{f' ({rule.field})' if rule.field else ''} is {show(final.value)} "
                f"({final.source}); the collection enforces {rule.wants}")
        key = (rule.component, rule.setting)
        if key in exceptions:
            used.add(key)
            notes.append(f"CIS exception accepted: {what}. Reason given in {EXCEPTIONS_VAR}: {exceptions[key]}")
        else:
            problems.append(f"{what}. Remove the override, or accept it in {EXCEPTIONS_VAR} with {_exception_hint(rule)}")
    for component, setting in sorted(set(exceptions) & set(finals) - used):
        notes.append(f"{EXCEPTIONS_VAR}: {component} {setting} holds as the collection sets it; the exception is not needed")
    return problems, notes
