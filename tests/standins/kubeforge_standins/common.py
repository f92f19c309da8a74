# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared code of the kubeforge kube-* TEST STAND-INS (tests only; real hosts run the official binaries).

One module on purpose: flag parsing and checking against the baked flag list, the file checks
(certificates, keys, CA bundles, kubeconfigs, component config files against the config-api field
lists), the TLS client that talks to the apiserver through a kubeconfig, the HTTP(S) health
servers, and the runtime shared by the controller-manager and the scheduler.

Runs on Debian bookworm's python3 (3.11) with python3-yaml and python3-cryptography 38: no API of
a newer cryptography is used (no ``*_utc`` properties, no ``x509.verification``,
no ``load_pem_x509_certificates``).

Environment (the real binaries have no such flags, so these knobs are environment variables):

``KUBEFORGE_STANDIN_CHECK_ONLY=1``       run every check, print the result and exit (no network)
``KUBEFORGE_STANDIN_INTERVAL``           seconds between the periodic etcd / apiserver checks (5)
``KUBEFORGE_STANDIN_STARTUP_TIMEOUT``    seconds to wait at start for etcd or the apiserver (60)
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import http.client
import http.server
import ipaddress
import json
import os
import pkgutil
import re
import shutil
import signal
import socket
import ssl
import stat
import sys
import tempfile
import threading
import time
import urllib.parse

try:
    import yaml
except ImportError:  # reported by require_libraries()
    yaml = None

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # reported by require_libraries()
    x509 = None

NOTICE = "kubeforge TEST STAND-IN, not the real {name}: a deployment on real hosts uses the official Kubernetes binaries"

# Flags whose value is a boolean (pflag: "--x" alone means true and never takes the next argument).
# The flag lists carry no types; these are the boolean flags of the five components (the reference
# pages print no type after them). A flag missing here is parsed leniently, never wrongly rejected.
BOOL_FLAGS = frozenset((
    "--add-dir-header", "--aggregator-reject-forwarding-redirect", "--allocate-node-cidrs", "--allow-privileged",
    "--alsologtostderr", "--anonymous-auth", "--audit-log-batch-throttle-enable", "--audit-log-compress",
    "--audit-log-truncate-enabled", "--audit-webhook-batch-throttle-enable", "--audit-webhook-truncate-enabled",
    "--authentication-skip-lookup", "--authentication-token-webhook", "--authentication-tolerate-lookup-failure",
    "--bind-address-hard-fail", "--cgroups-per-qos", "--cleanup", "--configure-cloud-routes", "--conntrack-tcp-be-liberal",
    "--contention-profiling", "--cpu-cfs-quota", "--disable-attach-detach-reconcile-sync", "--disable-force-detach-on-timeout",
    "--disable-http2-serving", "--emulation-forward-compatible", "--enable-aggregator-routing", "--enable-bootstrap-token-auth",
    "--enable-controller-attach-detach", "--enable-debugging-handlers", "--enable-dynamic-provisioning",
    "--enable-garbage-collector", "--enable-hostpath-provisioner", "--enable-leader-migration", "--enable-logs-handler",
    "--enable-priority-and-fairness", "--enable-server", "--encryption-provider-config-automatic-reload",
    "--exit-on-lock-contention", "--experimental-allocatable-ignore-eviction", "--fail-cgroupv1", "--fail-swap-on",
    "--help", "--init-only", "--iptables-localhost-nodeports", "--ipvs-strict-arp", "--kernel-memcg-notification",
    "--leader-elect", "--local-storage-capacity-isolation", "--log-json-split-stream", "--log-text-split-stream",
    "--logtostderr", "--make-iptables-util-chains", "--masquerade-all", "--one-output", "--permit-address-sharing",
    "--permit-port-sharing", "--profiling", "--protect-kernel-defaults", "--register-node", "--register-schedulable",
    "--rotate-certificates", "--rotate-server-certificates", "--runonce", "--runtime-config-emulation-forward-compatible",
    "--seccomp-default", "--serialize-image-pulls", "--service-account-extend-token-expiration", "--service-account-lookup",
    "--skip-headers", "--skip-log-headers", "--use-service-account-credentials", "--watch-cache",
))
# pflag "NoOptDefVal" flags: "--version" alone means true, "--version=raw" prints the raw info.
OPTIONAL_VALUE_FLAGS = {"--version": "true"}
SHORT_FLAGS = {"v": "--v", "h": "--help"}
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")

# Config file kinds the stand-ins check, with the apiVersion the config-api lists describe.
CONFIG_KINDS = {
    "KubeletConfiguration": "kubelet.config.k8s.io/v1beta1",
    "KubeProxyConfiguration": "kubeproxy.config.k8s.io/v1alpha1",
    "KubeSchedulerConfiguration": "kubescheduler.config.k8s.io/v1",
    "EncryptionConfiguration": "apiserver.config.k8s.io/v1",
    "Policy": "audit.k8s.io/v1",
}
COMPONENT_CONFIGS = {
    "kube-apiserver": ("EncryptionConfiguration", "Policy"),
    "kube-controller-manager": (),
    "kube-scheduler": ("KubeSchedulerConfiguration",),
    "kubelet": ("KubeletConfiguration",),
    "kube-proxy": ("KubeProxyConfiguration",),
    "kubectl": (),
}
COMPONENTS = tuple(COMPONENT_CONFIGS)

# Feature gates that old guides still set and that no supported version has.
REMOVED_FEATURE_GATES = frozenset(("DynamicAuditing",))

# Go crypto/tls names accepted by --tls-cipher-suites (component-base cliflag), with the OpenSSL
# name for the TLS 1.2 suites the stand-ins can apply (TLS 1.3 suites are not configurable in Go either).
CIPHER_SUITES = {
    "TLS_AES_128_GCM_SHA256": "", "TLS_AES_256_GCM_SHA384": "", "TLS_CHACHA20_POLY1305_SHA256": "",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_RSA_WITH_RC4_128_SHA": "", "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "", "TLS_RSA_WITH_AES_128_CBC_SHA": "",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "", "TLS_RSA_WITH_AES_128_CBC_SHA256": "", "TLS_RSA_WITH_AES_128_GCM_SHA256": "",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "", "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "", "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "",
}
TLS_VERSIONS = {"VersionTLS10": ssl.TLSVersion.TLSv1, "VersionTLS11": ssl.TLSVersion.TLSv1_1,
                "VersionTLS12": ssl.TLSVersion.TLSv1_2, "VersionTLS13": ssl.TLSVersion.TLSv1_3}


class StandinError(Exception):
    """A check failed: printed as ``Error: <message>``, exit status 1."""


class FlagError(StandinError):
    """A command-line error: the usage is printed first, as cobra does for flag errors."""


class Exit(Exception):
    """Leave main() with this exit status (after --help, --version, or a check-only run)."""

    def __init__(self, code: int = 0):
        super().__init__(code)
        self.code = code


# --------------------------------------------------------------------------- data and logging

def load_data() -> dict:
    """The data baked into the installed stand-in at build time (tests/standins/build.py)."""
    try:
        raw = pkgutil.get_data("kubeforge_standins", "data.json")
    except OSError:
        raw = None
    if not raw:
        raise StandinError("this stand-in has no baked flag data: install it with tests/harness/build-standins.sh")
    return json.loads(raw.decode("utf-8"))


def require_libraries() -> None:
    missing = [name for name, module in (("python3-yaml", yaml), ("python3-cryptography", x509)) if module is None]
    if missing:
        raise StandinError("the kubeforge stand-ins need " + " and ".join(missing))


def log(message: str, level: str = "I") -> None:
    """A klog-style line on stderr (the journal shows it)."""
    now = datetime.datetime.now()
    sys.stderr.write(f"{level}{now:%m%d %H:%M:%S.%f} {os.getpid():>7} standin] {message}\n")
    sys.stderr.flush()


def env_seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# --------------------------------------------------------------------------- flags

def normalize(name: str) -> str:
    """component-base's WordSepNormalizeFunc: '_' and '-' are the same in flag names."""
    return name.replace("_", "-")


@dataclasses.dataclass
class Parsed:
    """Flag values as pflag keeps them: each occurrence in order, under the normalized name."""

    values: dict = dataclasses.field(default_factory=dict)
    args: list = dataclasses.field(default_factory=list)

    def given(self, name: str) -> bool:
        return name in self.values

    def value(self, name: str, default: str = "") -> str:
        occurrences = self.values.get(name)
        return occurrences[-1] if occurrences else default

    def all_values(self, name: str) -> list:
        return list(self.values.get(name, []))

    def csv(self, name: str) -> list:
        """A string-slice flag: every occurrence, comma-separated, empty items dropped."""
        return [item.strip() for value in self.values.get(name, []) for item in value.split(",") if item.strip()]

    def flag_bool(self, name: str, default: bool) -> bool:
        if name not in self.values:
            return default
        return self.values[name][-1] in _TRUE

    def port(self, name: str, default: int) -> int:
        value = self.value(name, str(default))
        try:
            port = int(value)
        except ValueError as exc:
            raise FlagError(f'invalid argument "{value}" for "{name}" flag: strconv.ParseInt: parsing "{value}": invalid syntax') from exc
        if not 0 <= port <= 65535:
            raise StandinError(f"{name} {port} must be between 0 and 65535, inclusive. 0 for turning off secure port")
        return port


def parse_flags(argv: list, known: dict, *, value_flags=frozenset(), deprecated_note: str = "") -> Parsed:
    """Parse argv the way spf13/pflag does for the known flags (name -> deprecated?).

    Errors use pflag's wording: ``unknown flag: --x``, ``unknown shorthand flag: 'x' in -x``,
    ``flag needs an argument: --x``, ``invalid argument "x" for "--y" flag: ...``.
    ``value_flags`` are flags known to take a value (pflag then consumes the next argument,
    whatever it is); other non-boolean flags followed by an argument starting with ``--`` are
    taken as given without a value rather than swallowing the next flag.
    """
    table = {"--" + normalize(name[2:]): bool(dep) for name, dep in known.items()}
    parsed = Parsed()
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            parsed.args.extend(argv[index:])
            break
        if arg.startswith("--"):
            body = arg[2:]
            if not body or body.startswith(("-", "=")):
                raise FlagError(f"bad flag syntax: {arg}")
            name, has_value, value = body.partition("=")
            key = "--" + normalize(name)
            if key not in table:
                raise FlagError(f"unknown flag: --{name}")
        elif arg.startswith("-") and len(arg) > 1:
            letter = arg[1]
            if letter not in SHORT_FLAGS or SHORT_FLAGS[letter] not in table:
                raise FlagError(f"unknown shorthand flag: '{letter}' in {arg}")
            key, rest = SHORT_FLAGS[letter], arg[2:]
            has_value, value = bool(rest), rest[1:] if rest.startswith("=") else rest
        else:
            parsed.args.append(arg)
            continue
        if not has_value:
            if key in BOOL_FLAGS:
                value = "true"
            elif key in OPTIONAL_VALUE_FLAGS:
                value = OPTIONAL_VALUE_FLAGS[key]
            elif key in value_flags or key == "--v":
                if index >= len(argv):
                    raise FlagError(f"flag needs an argument: {arg}")
                value = argv[index]
                index += 1
            elif index < len(argv) and not argv[index].startswith("--"):
                value = argv[index]
                index += 1
            else:
                value = ""
        if key in BOOL_FLAGS and value not in _TRUE + _FALSE:
            raise FlagError(f'invalid argument "{value}" for "{key}" flag: strconv.ParseBool: parsing "{value}": invalid syntax')
        if key == "--version" and value not in _TRUE + _FALSE + ("raw",):
            raise FlagError(f'invalid argument "{value}" for "{key}" flag: invalid syntax')
        if table[key]:
            sys.stderr.write(f"Flag {key} has been deprecated, {deprecated_note or 'it is marked deprecated in the flag list'}\n")
        parsed.values.setdefault(key, []).append(value)
    return parsed


def check_common_values(parsed: Parsed) -> None:
    """Values every component validates the same way: feature gates, TLS version and ciphers."""
    for value in parsed.all_values("--feature-gates"):
        for item in (part.strip() for part in value.split(",") if part.strip()):
            gate, has_value, setting = item.partition("=")
            if not has_value:
                raise FlagError(f'invalid argument "{value}" for "--feature-gates" flag: missing bool value for {gate}')
            if setting.strip() not in ("true", "false", "True", "False", "TRUE", "FALSE", "1", "0", "t", "f", "T", "F"):
                raise FlagError(f'invalid argument "{value}" for "--feature-gates" flag: invalid value of {gate}={setting}')
            if gate.strip() in REMOVED_FEATURE_GATES:
                raise FlagError(f'invalid argument "{value}" for "--feature-gates" flag: unrecognized feature gate: {gate.strip()}')
    version = parsed.value("--tls-min-version")
    if version and version not in TLS_VERSIONS:
        raise FlagError(f'invalid argument "{version}" for "--tls-min-version" flag: unknown tls version "{version}"')
    for suite in parsed.csv("--tls-cipher-suites"):
        if suite not in CIPHER_SUITES:
            raise FlagError(f"invalid argument \"{parsed.value('--tls-cipher-suites')}\" for \"--tls-cipher-suites\" flag: "
                            f"Cipher suite {suite} not supported or doesn't exist")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(flag: str, value: str, default: float) -> float:
    """A Go duration ("2s", "1m30s", "500ms")."""
    if not value:
        return default
    if value == "0":
        return 0.0
    parts = _DURATION.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        raise FlagError(f'invalid argument "{value}" for "{flag}" flag: time: invalid duration "{value}"')
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


# --------------------------------------------------------------------------- the component frame

@dataclasses.dataclass
class Spec:
    """What one stand-in checks: file flags by kind, cert/key/CA triples, defaults."""

    name: str
    file_flags: dict = dataclasses.field(default_factory=dict)
    # (certificate flag, key flag, CA flag or None, extended key usage the certificate is used for)
    pairs: tuple = ()
    config_flags: dict = dataclasses.field(default_factory=dict)  # flag -> config Kind
    flag_error_prefix: str = ""
    usage_on_flag_error: bool = True


def usage_text(spec: Spec, data: dict) -> str:
    lines = [f"{spec.name} v{data['version']}: " + NOTICE.format(name=spec.name) + ".",
             f"It accepts exactly the flags of {spec.name} {data['minor']} listed in {data['flag_list']}",
             "and checks the files they name, as described in tests/standins/README.md of kubeforge.cluster.",
             "", "Usage:", f"  {spec.name} [flags]", "", "Flags:"]
    for name in sorted(data["flags"]):
        lines.append(f"      {name}" + ("  (DEPRECATED)" if data["flags"][name] else ""))
    return "\n".join(lines) + "\n"


def print_version(spec: Spec, data: dict, mode: str) -> None:
    version = data["version"]
    if mode == "raw":
        major, minor = version.split(".")[:2]
        sys.stdout.write(f'version.Info{{Major:"{major}", Minor:"{minor}", GitVersion:"v{version}", '
                         'GitCommit:"kubeforge-test-standin", GitTreeState:"clean", BuildDate:"1970-01-01T00:00:00Z", '
                         'GoVersion:"none (python stand-in)", Compiler:"none", Platform:"linux/amd64"}\n')
    else:
        sys.stdout.write(f"Kubernetes v{version}\n")
    sys.stderr.write(NOTICE.format(name=spec.name) + "\n")


def start(spec: Spec, argv: list, value_flags=frozenset()) -> tuple:
    """Parse and check everything a stand-in checks before it does anything.

    Returns (data, parsed, checks). Raises Exit after --help / --version / a check-only run.
    """
    data = load_data()
    if data["component"] != spec.name:
        raise StandinError(f"this stand-in was built as {data['component']}, not {spec.name}")
    note = (f"the v{data['minor']} flag list ({data['flag_list']}) marks it deprecated "
            f"(kubeforge TEST STAND-IN: the real binary prints its own reason)")
    try:
        parsed = parse_flags(argv, data["flags"], value_flags=frozenset(spec.file_flags) | value_flags, deprecated_note=note)
    except FlagError as exc:
        if spec.flag_error_prefix:
            raise StandinError(spec.flag_error_prefix + str(exc)) from exc
        raise
    if parsed.flag_bool("--help", False):
        sys.stdout.write(usage_text(spec, data))
        raise Exit(0)
    version_mode = parsed.value("--version", "false")
    if version_mode not in _FALSE:
        print_version(spec, data, version_mode)
        raise Exit(0)
    extra = [arg for arg in parsed.args if arg]
    if extra:
        raise StandinError(f'"{spec.name}" does not take any arguments, got {json.dumps(extra)}')
    require_libraries()
    check_common_values(parsed)
    log(f"{spec.name} v{data['version']}: {NOTICE.format(name=spec.name)}; flags from {data['flag_list']}")
    checks = Checks(data)
    checks.file_flags(spec, parsed)
    return data, parsed, checks


def finish_checks(spec: Spec, checks: "Checks") -> None:
    """Fail with every problem found, or stop here in a check-only run."""
    checks.raise_if_problems()
    if os.environ.get("KUBEFORGE_STANDIN_CHECK_ONLY") == "1":
        sys.stdout.write(f"{spec.name}: kubeforge stand-in checks passed\n")
        raise Exit(0)


def run_main(spec: Spec, body, argv: list) -> int:
    """Run a stand-in's main body and turn its exceptions into cobra-like output and exit codes."""
    try:
        body(argv)
    except Exit as exc:
        return exc.code
    except FlagError as exc:
        if spec.usage_on_flag_error:
            sys.stderr.write(f"Usage:\n  {spec.name} [flags]\n\n({NOTICE.format(name=spec.name)}; --help lists the flags)\n\n")
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except StandinError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


# --------------------------------------------------------------------------- file checks

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.S)
_YAML_ERRORS = (ValueError, TypeError) if yaml is None else (yaml.YAMLError, ValueError, TypeError)

if yaml is not None:
    class _StrictLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        """SafeLoader that rejects duplicate keys, as the apiserver's strict decoding does."""

    def _mapping(loader, node, deep=False):
        seen = set()
        for key_node, value_node in node.value:
            del value_node
            key = loader.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError as exc:
                raise yaml.constructor.ConstructorError(None, None, f"unhashable key {key!r}", key_node.start_mark) from exc
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f'duplicate field "{key}"', key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def cert_times(cert) -> tuple:
    before = getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before
    after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    return _utc(before), _utc(after)


def describe(cert) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def signed_by(cert, issuer) -> bool:
    """True when ``issuer`` (a certificate) signed ``cert``: names match and the signature verifies."""
    if cert.issuer != issuer.subject:
        return False
    public_key = issuer.public_key()
    data, signature = cert.tbs_certificate_bytes, cert.signature
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            try:
                public_key.verify(signature, data, padding.PKCS1v15(), cert.signature_hash_algorithm)
            except InvalidSignature:
                public_key.verify(signature, data, padding.PSS(mgf=padding.MGF1(cert.signature_hash_algorithm),
                                                               salt_length=padding.PSS.AUTO), cert.signature_hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            public_key.verify(signature, data)
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False
    return True


def is_ca(cert) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.version == x509.Version.v1


def names(cert) -> tuple:
    """(CN, [O...]) of a certificate subject."""
    common = [attr.value for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [attr.value for attr in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (common[0] if common else ""), orgs


_EKU = {"client": "1.3.6.1.5.5.7.3.2", "server": "1.3.6.1.5.5.7.3.1"}
_ANY_EKU = "2.5.29.37.0"


@dataclasses.dataclass
class Kubeconfig:
    """The parts of a kubeconfig's current context that a client needs."""

    path: str
    server: str
    host: str
    port: int
    ca_pem: bytes = b""
    insecure: bool = False
    server_name: str = ""
    cert_pem: bytes = b""
    key_pem: bytes = b""
    token: str = ""
    user: str = ""
    client_cn: str = ""
    client_orgs: tuple = ()
    _context: ssl.SSLContext | None = None

    @property
    def endpoint(self) -> str:
        return self.server

    def ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = client_context(self.ca_pem, self.cert_pem, self.key_pem, insecure=self.insecure)
        return self._context


class Checks:
    """Collects every problem with the files a stand-in is given; the loaded objects are kept."""

    def __init__(self, data: dict):
        self.data = data
        self.problems: list = []
        self.loaded: dict = {}

    def add(self, message: str) -> None:
        self.problems.append(message)

    def raise_if_problems(self) -> None:
        if len(self.problems) == 1:
            raise StandinError(self.problems[0])
        if self.problems:
            raise StandinError(f"{len(self.problems)} problems:\n  - " + "\n  - ".join(self.problems))

    # ---- raw files
    def read(self, path: str, what: str, secret: bool = False) -> bytes | None:
        if not path:
            self.add(f"{what}: the path is empty")
            return None
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            self.add(f"{what} {path}: no such file or directory")
            return None
        except IsADirectoryError:
            self.add(f"{what} {path}: is a directory, not a file")
            return None
        except PermissionError:
            self.add(f"{what} {path}: not readable: permission denied")
            return None
        except OSError as exc:
            self.add(f"{what} {path}: cannot be read: {exc.strerror or exc}")
            return None
        if not data.strip():
            self.add(f"{what} {path}: is empty")
            return None
        if secret:
            self.secret_mode(path, what)
        return data

    def secret_mode(self, path: str, what: str) -> None:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            self.add(f"{what} {path} has mode {mode:04o}: it holds a private key or secret, so group and others "
                     "must have no access (0600 or stricter)")

    # ---- PEM
    def certs(self, path: str, what: str, data: bytes | None = None) -> list | None:
        """Every CERTIFICATE block of a PEM file (leaf first for a certificate file)."""
        data = self.read(path, what) if data is None else data
        if data is None:
            return None
        blocks = [match.group(0) for match in _PEM_BLOCK.finditer(data) if match.group(1) == b"CERTIFICATE"]
        if not blocks:
            self.add(f"{what} {path}: no PEM certificate found (unparsable)")
            return None
        certs = []
        for block in blocks:
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError as exc:
                self.add(f"{what} {path}: not a valid PEM certificate: {exc}")
                return None
        return certs

    def key(self, path: str, what: str, data: bytes | None = None, check_mode: bool = True):
        data = self.read(path, what, secret=check_mode) if data is None else data
        if data is None:
            return None
        blocks = [match for match in _PEM_BLOCK.finditer(data) if match.group(1).endswith(b"PRIVATE KEY")]
        if not blocks:
            self.add(f"{what} {path}: no PEM private key found (unparsable)")
            return None
        if blocks[0].group(1) == b"ENCRYPTED PRIVATE KEY":
            self.add(f"{what} {path}: the private key is encrypted; Kubernetes needs an unencrypted key")
            return None
        try:
            return serialization.load_pem_private_key(blocks[0].group(0), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            self.add(f"{what} {path}: not a valid PEM private key: {exc}")
            return None

    def public_keys(self, path: str, what: str) -> list | None:
        """Public keys of a service-account key file: PUBLIC KEY, private key or certificate blocks."""
        data = self.read(path, what)
        if data is None:
            return None
        keys = []
        for match in _PEM_BLOCK.finditer(data):
            label, block = match.group(1), match.group(0)
            try:
                if label.endswith(b"PRIVATE KEY"):
                    self.secret_mode(path, what)
                    keys.append(serialization.load_pem_private_key(block, password=None).public_key())
                elif label.endswith(b"PUBLIC KEY"):
                    keys.append(serialization.load_pem_public_key(block))
                elif label == b"CERTIFICATE":
                    keys.append(x509.load_pem_x509_certificate(block).public_key())
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                self.add(f"{what} {path}: invalid PEM {label.decode()}: {exc}")
                return None
        if not keys:
            self.add(f"{what} {path}: no PEM public key, private key or certificate found (unparsable)")
            return None
        return keys

    # ---- relations
    def pair(self, certs: list, key, cert_what: str, key_what: str) -> bool:
        if spki(certs[0].public_key()) != spki(key.public_key()):
            self.add(f"{key_what} does not match {cert_what} (certificate {describe(certs[0])}): "
                     "the private key is not the certificate's key")
            return False
        return True

    def valid_now(self, cert, what: str) -> None:
        before, after = cert_times(cert)
        now = datetime.datetime.now(datetime.timezone.utc)
        if now < before:
            self.add(f"{what} ({describe(cert)}) is not valid before {before:%Y-%m-%dT%H:%M:%SZ}")
        elif now > after:
            self.add(f"{what} ({describe(cert)}) expired at {after:%Y-%m-%dT%H:%M:%SZ}")

    def usage(self, cert, what: str, usage: str) -> None:
        try:
            ekus = {oid.dotted_string for oid in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
        except x509.ExtensionNotFound:
            return
        if _EKU[usage] not in ekus and _ANY_EKU not in ekus:
            self.add(f"{what} ({describe(cert)}) lacks the {usage}Auth extended key usage it is used for")

    def chain(self, certs: list, cas: list, cert_what: str, ca_what: str) -> bool:
        """The leaf (with the intermediates after it in its file) must chain to a CA of the bundle."""
        current, intermediates = certs[0], list(certs[1:])
        for depth in range(10):
            root = next((ca for ca in cas if signed_by(current, ca)), None)
            if root is not None:
                if not is_ca(root):
                    self.add(f"{ca_what}: the certificate that signed {cert_what} ({describe(root)}) is not a CA")
                    return False
                self.valid_now(root, ca_what)
                return True
            parent = next((cert for cert in intermediates if signed_by(current, cert)), None)
            if parent is None or depth == 9:
                break
            intermediates.remove(parent)
            if not is_ca(parent):
                self.add(f"{cert_what}: intermediate {describe(parent)} is not a CA")
                return False
            self.valid_now(parent, cert_what + " intermediate")
            current = parent
        self.add(f"{cert_what} ({describe(certs[0])}, issuer {certs[0].issuer.rfc4514_string()}) does not chain to "
                 f"{ca_what} (which holds {', '.join(describe(ca) for ca in cas)}): x509: certificate signed by unknown authority")
        return False

    def leaf(self, certs: list, what: str, usage: str | None) -> None:
        self.valid_now(certs[0], what)
        if usage:
            self.usage(certs[0], what, usage)

    # ---- YAML and config files
    def yaml_doc(self, path: str, what: str, secret: bool = False, data: bytes | None = None):
        data = self.read(path, what, secret=secret) if data is None else data
        if data is None:
            return None
        try:
            return yaml.load(data.decode("utf-8"), Loader=_StrictLoader)  # nosec B506 - a SafeLoader subclass
        except (UnicodeDecodeError,) + _YAML_ERRORS as exc:
            self.add(f"{what} {path}: not valid YAML/JSON (unparsable): {exc}")
            return None

    def config(self, path: str, what: str, kind: str, secret: bool = False) -> dict | None:
        """A component config file: right kind/apiVersion, every field in the config-api lists."""
        doc = self.yaml_doc(path, what, secret=secret)
        if doc is None:
            return None
        spec = self.data["configs"][kind]
        where = f"{what} {path}"
        if not isinstance(doc, dict):
            self.add(f"{where}: not a {kind} object (unparsable)")
            return None
        if doc.get("kind") != kind or doc.get("apiVersion") != spec["apiVersion"]:
            self.add(f'{where}: no kind "{doc.get("kind")}" is registered for version "{doc.get("apiVersion")}": '
                     f"expected kind {kind}, apiVersion {spec['apiVersion']}")
            return None
        unknown = unknown_fields(doc, set(spec["fields"]), set(spec["paths"]))
        for field in unknown:
            self.add(f'{where}: strict decoding error: unknown field "{field}" '
                     f"(not in the {kind} field list {spec['source']})")
        return doc

    # ---- kubeconfig
    def kubeconfig(self, path: str, what: str, *, client_cert_required: bool = False,
                   context: str = "") -> Kubeconfig | None:
        """Load a kubeconfig's current context; check its client certificate, key and CA."""
        doc = self.yaml_doc(path, what)
        if doc is None:
            return None
        where = f"{what} {path}"
        if not isinstance(doc, dict) or doc.get("kind", "Config") != "Config":
            self.add(f"{where}: not a kubeconfig (kind Config) file (unparsable)")
            return None
        base = os.path.dirname(os.path.abspath(path))

        def entry(section: str, name: str, field: str):
            for item in doc.get(section) or []:
                if isinstance(item, dict) and item.get("name") == name and isinstance(item.get(field), dict):
                    return item[field]
            return None

        context_name = context or doc.get("current-context") or ""
        ctx = entry("contexts", context_name, "context") if context_name else None
        if ctx is None:
            self.add(f"{where}: context {context_name!r} not found" if context_name else f"{where}: no current-context")
            return None
        cluster = entry("clusters", ctx.get("cluster", ""), "cluster")
        user = entry("users", ctx.get("user", ""), "user")
        if cluster is None or user is None:
            self.add(f"{where}: context {context_name!r} names cluster {ctx.get('cluster')!r} and user "
                     f"{ctx.get('user')!r}, which must both be defined")
            return None
        url = urllib.parse.urlsplit(str(cluster.get("server", "")))
        if url.scheme != "https" or not url.hostname:
            self.add(f"{where}: cluster server {cluster.get('server')!r} must be an https:// URL")
            return None
        result = Kubeconfig(path=path, server=cluster["server"], host=url.hostname, port=url.port or 443,
                            server_name=str(cluster.get("tls-server-name") or ""), user=str(ctx.get("user")))
        if cluster.get("insecure-skip-tls-verify"):
            self.add(f"{where}: insecure-skip-tls-verify is set: the apiserver certificate would not be verified")
        cas = self._embedded_or_file(cluster, "certificate-authority", base, where, "certs")
        if cas:
            result.ca_pem = b"".join(ca.public_bytes(serialization.Encoding.PEM) for ca in cas)
        certs = self._embedded_or_file(user, "client-certificate", base, where, "certs")
        key = self._embedded_or_file(user, "client-key", base, where, "key")
        if user.get("client-key-data") or user.get("token"):
            self.secret_mode(path, where + " (it embeds a client key or token)")
        token = str(user.get("token") or "")
        if user.get("tokenFile"):
            raw = self.read(os.path.join(base, user["tokenFile"]), f"{where} tokenFile", secret=True)
            token = raw.decode("utf-8", "replace").strip() if raw else ""
        result.token = token
        if "exec" in user or "auth-provider" in user:
            self.add(f"{where}: user {result.user!r} uses exec/auth-provider credentials, which the stand-ins do not support")
        has_cert = bool(user.get("client-certificate") or user.get("client-certificate-data"))
        has_key = bool(user.get("client-key") or user.get("client-key-data"))
        if has_cert != has_key:
            self.add(f"{where}: user {result.user!r} needs both a client certificate and a client key")
        if certs and key is not None:
            if self.pair(certs, key, f"{where} client-certificate", f"{where} client-key"):
                result.cert_pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)
                result.key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption())
                result.client_cn, orgs = names(certs[0])
                result.client_orgs = tuple(orgs)
            self.leaf(certs, f"{where} client-certificate", "client")
            if cas:
                self.chain(certs, cas, f"{where} client-certificate", f"{where} certificate-authority")
        elif client_cert_required and not has_cert:
            self.add(f"{where}: user {result.user!r} has no client certificate to authenticate with")
        return result

    def _embedded_or_file(self, section: dict, field: str, base: str, where: str, kind: str):
        data, label = None, ""
        if section.get(field + "-data"):
            label = f"{where} {field}-data"
            try:
                data = base64.b64decode(str(section[field + "-data"]), validate=True)
            except (binascii.Error, ValueError):
                self.add(f"{label}: not valid base64 (unparsable)")
                return None
            path = "(embedded)"
        elif section.get(field):
            path = os.path.join(base, str(section[field]))
            label = f"{where} {field}"
        else:
            return None
        if kind == "certs":
            return self.certs(path, label, data=data)
        return self.key(path, label, data=data, check_mode=data is None)

    # ---- flags naming files
    def file_flags(self, spec: Spec, parsed: Parsed) -> None:
        """Check every file a flag names, by kind, then the certificate/key/CA triples."""
        for flag, kind in spec.file_flags.items():
            values = parsed.all_values(flag) if kind in ("pubkeys", "sni") else [parsed.value(flag)]
            values = [value for value in values if value]
            if not values:
                continue
            what = flag
            if kind == "config":
                self.loaded[flag] = self.config(values[-1], what, spec.config_flags[flag],
                                                secret=spec.config_flags[flag] == "EncryptionConfiguration")
            elif kind in ("ca", "cert"):
                self.loaded[flag] = self.certs(values[-1], what)
            elif kind == "key":
                self.loaded[flag] = self.key(values[-1], what)
            elif kind == "pubkeys":
                self.loaded[flag] = [key for value in values for key in (self.public_keys(value, what) or [])]
            elif kind == "kubeconfig":
                self.loaded[flag] = self.kubeconfig(values[-1], what)
            elif kind == "yaml":
                self.loaded[flag] = self.yaml_doc(values[-1], what)
            elif kind == "sni":
                for value in values:
                    self.sni(value)
            else:
                self.loaded[flag] = self.read(values[-1], what)
        for cert_flag, key_flag, ca_flag, usage in spec.pairs:
            self.flag_pair(parsed, cert_flag, key_flag, ca_flag, usage)

    def flag_pair(self, parsed: Parsed, cert_flag: str, key_flag: str, ca_flag: str | None, usage: str) -> None:
        has_cert, has_key = bool(parsed.value(cert_flag)), bool(parsed.value(key_flag))
        if has_cert != has_key:
            self.add(f"{cert_flag} and {key_flag} must be set together")
            return
        certs, key = self.loaded.get(cert_flag), self.loaded.get(key_flag)
        if not certs or key is None:
            return
        self.pair(certs, key, f"{cert_flag} {parsed.value(cert_flag)}", f"{key_flag} {parsed.value(key_flag)}")
        self.leaf(certs, f"{cert_flag} {parsed.value(cert_flag)}", usage)
        cas = self.loaded.get(ca_flag) if ca_flag else None
        if cas:
            self.chain(certs, cas, f"{cert_flag} {parsed.value(cert_flag)}", f"{ca_flag} {parsed.value(ca_flag)}")

    def sni(self, value: str) -> None:
        files = value.split(":", 1)[0].split(",")
        if len(files) != 2:
            self.add(f'--tls-sni-cert-key "{value}": expected certfile,keyfile[:names]')
            return
        certs = self.certs(files[0], "--tls-sni-cert-key certificate")
        key = self.key(files[1], "--tls-sni-cert-key key")
        if certs and key is not None:
            self.pair(certs, key, f"--tls-sni-cert-key certificate {files[0]}", f"--tls-sni-cert-key key {files[1]}")


def unknown_fields(doc: dict, top: set, paths: set) -> list:
    """Dotted paths in ``doc`` that the field lists do not have.

    A path is descended into only when the lists name fields below it; anything else (maps such as
    featureGates, plugin args, metadata, types documented on another page) is opaque.
    """
    expandable = set()
    for path in paths:
        parts = path.split(".")
        for index in range(1, len(parts)):
            expandable.add(".".join(parts[:index]))
    unknown: list = []

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if (not prefix and key not in top) or (prefix and path not in paths):
                unknown.append(path)
                continue
            if isinstance(value, dict) and path in expandable:
                walk(value, path)
            elif isinstance(value, list) and path + "[]" in expandable:
                for item in value:
                    if isinstance(item, dict):
                        walk(item, path + "[]")

    walk(doc, "")
    return unknown


# --------------------------------------------------------------------------- TLS client

def client_context(ca_pem: bytes, cert_pem: bytes, key_pem: bytes, insecure: bool = False) -> ssl.SSLContext:
    """A verifying client context from PEM bytes (client certificate optional)."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode("ascii")) if ca_pem else ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_pem and key_pem:
        scratch = tempfile.mkdtemp(prefix="kubeforge-standin-")
        try:
            cert_file, key_file = os.path.join(scratch, "client.crt"), os.path.join(scratch, "client.key")
            for target, content in ((cert_file, cert_pem), (key_file, key_pem)):
                with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                    handle.write(content)
            ctx.load_cert_chain(cert_file, key_file)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return ctx


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPSConnection that verifies a given server name (kubeconfig tls-server-name)."""

    def __init__(self, host: str, port: int, *, context: ssl.SSLContext, server_name: str = "", timeout: float = 5.0):
        super().__init__(host, port, context=context, timeout=timeout)
        self._standin_context = context
        self._server_name = server_name or host

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._standin_context.wrap_socket(self.sock, server_hostname=self._server_name)


def https_request(host: str, port: int, ctx: ssl.SSLContext | None, method: str, path: str, *, body: bytes | None = None,
                  headers: dict | None = None, timeout: float = 5.0, server_name: str = "") -> tuple:
    """One request; returns (status, body bytes). ctx None means plain HTTP."""
    if ctx is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        conn = _HTTPSConnection(host, port, context=ctx, server_name=server_name, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def kube_request(kubeconfig: Kubeconfig, method: str, path: str, body: bytes | None = None, timeout: float = 5.0) -> tuple:
    headers = {"Accept": "application/json, */*", "User-Agent": "kubeforge-standin"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if kubeconfig.token and not kubeconfig.cert_pem:
        headers["Authorization"] = "Bearer " + kubeconfig.token
    return https_request(kubeconfig.host, kubeconfig.port, kubeconfig.ssl_context(), method, path, body=body,
                         headers=headers, timeout=timeout, server_name=kubeconfig.server_name)


def permanent_tls_error(exc: Exception) -> bool:
    """Errors retrying cannot fix: the peer's certificate is not trusted, or it rejected ours."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return True
    text = str(exc).lower()
    return isinstance(exc, ssl.SSLError) and any(word in text for word in (
        "unknown ca", "bad certificate", "certificate unknown", "certificate required", "unsupported certificate",
        "certificate expired", "handshake failure"))


# --------------------------------------------------------------------------- serving

def server_context(cert_file: str, key_file: str, parsed: Parsed, client_ca: str = "") -> ssl.SSLContext:
    """A serving context: the given certificate, client certificates verified against client_ca if set."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = TLS_VERSIONS.get(parsed.value("--tls-min-version"), ssl.TLSVersion.TLSv1_2)
    ciphers = [CIPHER_SUITES[name] for name in parsed.csv("--tls-cipher-suites") if CIPHER_SUITES.get(name)]
    if ciphers:
        ctx.set_ciphers(":".join(ciphers))
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def self_signed(directory: str, name: str) -> tuple:
    """A self-signed serving certificate, as the real components make without --tls-cert-file."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"localhost@{int(time.time())}")])
    alt = [x509.DNSName("localhost"), x509.DNSName(socket.gethostname()), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(key, hashes.SHA256()))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    cert_file, key_file = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    with open(cert_file, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_file, key_file


def serving_context(spec: Spec, parsed: Parsed, client_ca: str = "") -> ssl.SSLContext:
    """--tls-cert-file/--tls-private-key-file, or a self-signed pair in --cert-dir (or kept in memory)."""
    cert_file, key_file = parsed.value("--tls-cert-file"), parsed.value("--tls-private-key-file")
    if cert_file and key_file:
        return server_context(cert_file, key_file, parsed, client_ca)
    cert_dir = parsed.value("--cert-dir")
    scratch = "" if cert_dir else tempfile.mkdtemp(prefix="kubeforge-standin-")
    try:
        cert_file, key_file = self_signed(cert_dir or scratch, spec.name)
        log(f"generated a self-signed serving certificate {cert_file}" if cert_dir else "generated a self-signed serving certificate (in memory)")
        return server_context(cert_file, key_file, parsed, client_ca)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


class Server(http.server.ThreadingHTTPServer):
    """Threaded HTTP(S) server; the TLS handshake runs in the connection's thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, handler, ssl_context: ssl.SSLContext | None = None, app=None):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.ssl_context = ssl_context
        self.app = app
        super().__init__((host, port), handler)

    def finish_request(self, request, client_address):
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log(f"http: TLS handshake error from {client_address[0]}:{client_address[1]}: {exc}", "E")
            return
        try:
            tls.settimeout(30)
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


def listen(spec: Spec, host: str, port: int, handler, ctx: ssl.SSLContext | None, app) -> Server:
    try:
        server = Server(host or "0.0.0.0", port, handler, ctx, app)
    except OSError as exc:
        raise StandinError(f"failed to create listener: failed to listen on {host}:{port}: {exc.strerror or exc}") from exc
    scheme = "https" if ctx else "http"
    log(f"{spec.name}: serving {scheme} on {host or '0.0.0.0'}:{server.server_address[1]}")
    return server


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes requests to ``server.app.handle(handler, method)``."""

    protocol_version = "HTTP/1.1"
    server_version = "kubeforge-standin"
    sys_version = ""

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Requests are logged by the apps with the caller's identity."""

    def reply(self, status: int, body, content_type: str = "text/plain; charset=utf-8") -> None:
        data = body if isinstance(body, bytes) else str(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def reply_json(self, status: int, obj) -> None:
        self.reply(status, json.dumps(obj, indent=2, sort_keys=True) + "\n", "application/json")

    def reply_status(self, code: int, reason: str, message: str) -> None:
        self.reply_json(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": message, "reason": reason, "code": code})

    def peer_subject(self) -> tuple | None:
        """(CN, [O...]) of the verified client certificate, or None."""
        getpeercert = getattr(self.connection, "getpeercert", None)
        cert = getpeercert() if getpeercert else None
        if not cert:
            return None
        common, orgs = "", []
        for rdn in cert.get("subject", ()):
            for attr, value in rdn:
                if attr == "commonName" and not common:
                    common = value
                elif attr == "organizationName":
                    orgs.append(value)
        return common, orgs

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):  # pylint: disable=invalid-name
        self.server.app.handle(self, "GET")

    def do_HEAD(self):  # pylint: disable=invalid-name
        self.server.app.handle(self, "HEAD")

    def do_POST(self):  # pylint: disable=invalid-name
        self.server.app.handle(self, "POST")


def health(handler: Handler, path: str, checks: list) -> int:
    """Answer /healthz, /livez, /readyz (and /<kind>/<check>) the way the apiserver formats them.

    ``checks`` is a list of (name, callable returning an error string or ""). Returns the status.
    """
    parsed = urllib.parse.urlsplit(path)
    parts = parsed.path.strip("/").split("/")
    kind = parts[0]
    verbose = "verbose" in urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    if len(parts) > 1:
        wanted = [check for check in checks if check[0] == parts[1]]
        if not wanted:
            handler.reply(404, "404 page not found\n")
            return 404
        error = wanted[0][1]()
        if error:
            log(f"{kind} check {parts[1]} failed: {error}", "W")
            handler.reply(500, f"internal server error: {parts[1]} check failed\n")
            return 500
        handler.reply(200, "ok")
        return 200
    results = [(name, check()) for name, check in checks]
    failed = [(name, error) for name, error in results if error]
    for name, error in failed:
        log(f"{kind} check failed: {name}: {error}", "W")
    if not failed and not verbose:
        handler.reply(200, "ok")
        return 200
    lines = [f"[-]{name} failed: reason withheld" if error else f"[+]{name} ok" for name, error in results]
    lines.append(f"{kind} check {'failed' if failed else 'passed'}")
    status = 500 if failed else 200
    handler.reply(status, "\n".join(lines) + "\n")
    return status


def serve_forever(servers: list, stop: threading.Event) -> None:
    """Serve until SIGTERM/SIGINT, then shut every server down."""
    def on_signal(signum, frame):
        del frame
        log(f"received signal {signum}, shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    while not stop.wait(0.5):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- controller-manager and scheduler

class ApiserverWatch:
    """Checks /healthz through each kubeconfig (the HA endpoint) with its client certificate, now and periodically."""

    def __init__(self, name: str, kubeconfigs: dict):
        self.name = name
        self.kubeconfigs = kubeconfigs
        self.errors: dict = {}
        self.lock = threading.Lock()
        self.whoami_done: set = set()

    def check_one(self, label: str, kubeconfig: Kubeconfig) -> str:
        try:
            status, body = kube_request(kubeconfig, "GET", "/healthz")
        except (OSError, http.client.HTTPException) as exc:
            if permanent_tls_error(exc):
                return f"permanent: {kubeconfig.server}: {exc}"
            return f"{kubeconfig.server}: {exc}"
        if status in (401, 403):
            return (f"permanent: {kubeconfig.server} answered {status} to {label} (client certificate "
                    f"CN={kubeconfig.client_cn} O={list(kubeconfig.client_orgs)}): {body[:200].decode('utf-8', 'replace')}")
        if status != 200:
            return f"{kubeconfig.server}/healthz answered {status}: {body[:200].decode('utf-8', 'replace').strip()}"
        if label not in self.whoami_done:
            self.whoami_done.add(label)
            self.report_identity(label, kubeconfig)
        return ""

    def report_identity(self, label: str, kubeconfig: Kubeconfig) -> None:
        try:
            status, body = kube_request(kubeconfig, "GET", "/kubeforge-standin/whoami")
            who = json.loads(body) if status == 200 else {}
        except (OSError, http.client.HTTPException, ValueError):
            who = {}
        if who:
            log(f"{label}: {kubeconfig.server} authenticated us as user={who.get('user')!r} groups={who.get('groups')}")
        else:
            log(f"{label}: {kubeconfig.server} answered /healthz with our client certificate CN={kubeconfig.client_cn}")

    def check(self) -> dict:
        errors = {}
        for label, kubeconfig in self.kubeconfigs.items():
            error = self.check_one(label, kubeconfig)
            if error:
                errors[label] = error
                log(f"{label}: apiserver check failed: {error}", "E")
        with self.lock:
            recovered = set(self.errors) - set(errors)
            self.errors = errors
        for label in sorted(recovered):
            log(f"{label}: apiserver check succeeds again")
        return errors

    def health_error(self) -> str:
        with self.lock:
            return "; ".join(f"{label}: {error}" for label, error in sorted(self.errors.items()))

    def wait_first(self, timeout: float) -> None:
        """Retry until every kubeconfig works; fail on errors retrying cannot fix, go on after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            errors = self.check()
            permanent = [f"{label}: {error[len('permanent: '):]}" for label, error in errors.items() if error.startswith("permanent: ")]
            if permanent:
                raise StandinError("cannot authenticate to the apiserver: " + "; ".join(permanent))
            if not errors:
                log(f"{self.name}: apiserver reachable and authenticated through {', '.join(sorted(self.kubeconfigs))}")
                return
            if time.monotonic() >= deadline:
                log(f"{self.name}: apiserver still failing after {timeout:.0f}s; serving as unhealthy and retrying", "W")
                return
            time.sleep(min(1.0, max(0.1, deadline - time.monotonic())))

    def loop(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            self.check()


class ComponentApp:
    """Secure health serving of the controller-manager and the scheduler."""

    def __init__(self, spec: Spec, parsed: Parsed, watch: ApiserverWatch):
        self.spec = spec
        self.watch = watch
        self.always_allow = set(parsed.csv("--authorization-always-allow-paths")) if parsed.given(
            "--authorization-always-allow-paths") else {"/healthz", "/readyz", "/livez"}

    def handle(self, handler: Handler, method: str) -> None:
        path = urllib.parse.urlsplit(handler.path).path
        base = "/" + path.strip("/").split("/")[0]
        if method not in ("GET", "HEAD") or base not in ("/healthz", "/livez", "/readyz"):
            handler.reply(404, "404 page not found\n")
            return
        if path not in self.always_allow and base not in self.always_allow and handler.peer_subject() is None:
            handler.reply(403, f'forbidden: User "system:anonymous" cannot get path "{path}"\n')
            return
        checks = [("ping", lambda: "")]
        if base != "/livez":
            checks.append(("kubeforge-standin-apiserver-connection", self.watch.health_error))
        health(handler, handler.path, checks)


def run_client_component(spec: Spec, parsed: Parsed, kubeconfigs: dict, default_port: int) -> None:
    """Controller-manager / scheduler: authenticate to the apiserver, keep checking, serve health."""
    watch = ApiserverWatch(spec.name, kubeconfigs)
    watch.wait_first(env_seconds("KUBEFORGE_STANDIN_STARTUP_TIMEOUT", 60))
    stop = threading.Event()
    threading.Thread(target=watch.loop, args=(stop, env_seconds("KUBEFORGE_STANDIN_INTERVAL", 5)), daemon=True).start()
    servers = []
    port = parsed.port("--secure-port", default_port)
    if port:
        ctx = serving_context(spec, parsed, parsed.value("--client-ca-file"))
        servers.append(listen(spec, parsed.value("--bind-address", "0.0.0.0"), port, Handler, ctx, ComponentApp(spec, parsed, watch)))
    serve_forever(servers, stop)


def client_kubeconfigs(checks: Checks, parsed: Parsed, main: tuple) -> dict:
    """The kubeconfigs a controller-manager / scheduler talks through: main plus the delegated auth ones."""
    result = {}
    label, kubeconfig = main
    if kubeconfig is not None:
        result[label] = kubeconfig
    for flag in ("--authentication-kubeconfig", "--authorization-kubeconfig"):
        if parsed.value(flag) and checks.loaded.get(flag) is not None:
            result[flag] = checks.loaded[flag]
    for label_name, config in result.items():
        if not config.cert_pem:
            checks.add(f"{label_name} {config.path}: no client certificate: the stand-in authenticates with client certificates only")
    return result
