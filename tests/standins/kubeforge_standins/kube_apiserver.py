# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kube-apiserver TEST STAND-IN (tests only; real hosts run the official kube-apiserver).

Checks flags and files like the other stand-ins, then really writes and reads a key under
--etcd-prefix on every --etcd-servers endpoint (etcd's JSON gateway, with the etcd client TLS
flags), serves HTTPS on --bind-address:--secure-port with the serving certificate, verifies client
certificates against --client-ca-file and answers /healthz, /livez, /readyz, /version, the
SelfSubjectReview API and /kubeforge-standin/{whoami,seen,etcd}. etcd is re-checked periodically:
/healthz and /readyz answer 500 while no endpoint works.
"""
from __future__ import annotations

import base64
import binascii
import csv
import datetime
import http.client
import io
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

from kubeforge_standins import common

SPEC = common.Spec(
    name="kube-apiserver",
    file_flags={
        "--admission-control-config-file": "yaml",
        "--allow-metric-labels-manifest": "yaml",
        "--audit-policy-file": "config",
        "--audit-webhook-config-file": "kubeconfig",
        "--authentication-config": "yaml",
        "--authentication-token-webhook-config-file": "kubeconfig",
        "--authorization-config": "yaml",
        "--authorization-policy-file": "file",
        "--authorization-webhook-config-file": "kubeconfig",
        "--client-ca-file": "ca",
        "--egress-selector-config-file": "yaml",
        "--encryption-provider-config": "config",
        "--etcd-cafile": "ca",
        "--etcd-certfile": "cert",
        "--etcd-keyfile": "key",
        "--kubelet-certificate-authority": "ca",
        "--kubelet-client-certificate": "cert",
        "--kubelet-client-key": "key",
        "--oidc-ca-file": "ca",
        "--peer-ca-file": "ca",
        "--proxy-client-cert-file": "cert",
        "--proxy-client-key-file": "key",
        "--requestheader-client-ca-file": "ca",
        "--service-account-key-file": "pubkeys",
        "--service-account-signing-key-file": "key",
        "--tls-cert-file": "cert",
        "--tls-private-key-file": "key",
        "--tls-sni-cert-key": "sni",
        "--token-auth-file": "file",
        "--tracing-config-file": "yaml",
    },
    config_flags={"--audit-policy-file": "Policy", "--encryption-provider-config": "EncryptionConfiguration"},
    pairs=(
        ("--tls-cert-file", "--tls-private-key-file", None, "server"),
        ("--etcd-certfile", "--etcd-keyfile", "--etcd-cafile", "client"),
        ("--kubelet-client-certificate", "--kubelet-client-key", "--client-ca-file", "client"),
        ("--proxy-client-cert-file", "--proxy-client-key-file", "--requestheader-client-ca-file", "client"),
    ),
)
VALUE_FLAGS = frozenset(("--etcd-servers", "--etcd-prefix", "--secure-port", "--bind-address", "--authorization-mode",
                         "--service-account-issuer", "--etcd-healthcheck-timeout", "--audit-log-path"))
AUTHORIZATION_MODES = ("AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node")
AUDIT_LEVELS = ("None", "Metadata", "Request", "RequestResponse")
AUDIT_STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
KEY_SIZES = {"aescbc": (16, 24, 32), "aesgcm": (16, 24, 32), "secretbox": (32,)}


# --------------------------------------------------------------------------- apiserver-only checks

def check_encryption(checks: common.Checks, path: str, doc: dict) -> None:
    """Key names and lengths as the apiserver validates them (a wrong key breaks every secret)."""
    where = f"--encryption-provider-config {path}"
    for index, resource in enumerate(doc.get("resources") or []):
        if not isinstance(resource, dict):
            checks.add(f"{where}: resources[{index}] is not an object")
            continue
        if not resource.get("resources"):
            checks.add(f"{where}: resources[{index}].resources: Required value")
        providers = resource.get("providers") or []
        if not providers:
            checks.add(f"{where}: resources[{index}].providers: Required value")
        for number, provider in enumerate(providers):
            here = f"{where}: resources[{index}].providers[{number}]"
            if not isinstance(provider, dict) or len(provider) != 1:
                checks.add(f"{here}: exactly one provider type must be set")
                continue
            kind, settings = next(iter(provider.items()))
            if kind not in KEY_SIZES:
                continue
            keys = (settings or {}).get("keys") or []
            if not keys:
                checks.add(f"{here}.{kind}.keys: Required value")
            seen = set()
            for position, key in enumerate(keys):
                name, secret = str((key or {}).get("name") or ""), str((key or {}).get("secret") or "")
                if not name:
                    checks.add(f"{here}.{kind}.keys[{position}].name: Required value")
                elif name in seen:
                    checks.add(f"{here}.{kind}.keys[{position}].name: Duplicate value: {name!r}")
                seen.add(name)
                try:
                    size = len(base64.b64decode(secret, validate=True))
                except (binascii.Error, ValueError):
                    checks.add(f"{here}.{kind}.keys[{position}].secret: secrets must be base64 encoded")
                    continue
                if size not in KEY_SIZES[kind]:
                    checks.add(f"{here}.{kind}.keys[{position}].secret: secret is not of the expected length, got {size}, "
                               f"expected one of {list(KEY_SIZES[kind])}")


def check_audit_policy(checks: common.Checks, path: str, doc: dict) -> None:
    where = f"--audit-policy-file {path}"
    for index, rule in enumerate(doc.get("rules") or []):
        level = (rule or {}).get("level")
        if level not in AUDIT_LEVELS:
            checks.add(f"{where}: rules[{index}].level: Unsupported value: {level!r}: supported values: {', '.join(AUDIT_LEVELS)}")
        for stage in (rule or {}).get("omitStages") or []:
            if stage not in AUDIT_STAGES:
                checks.add(f"{where}: rules[{index}].omitStages: Unsupported value: {stage!r}")
    for stage in doc.get("omitStages") or []:
        if stage not in AUDIT_STAGES:
            checks.add(f"{where}: omitStages: Unsupported value: {stage!r}")


def load_tokens(checks: common.Checks, path: str, raw: bytes) -> dict:
    """--token-auth-file: token,user,uid[,"group1,group2"] per line."""
    tokens = {}
    for number, row in enumerate(csv.reader(io.StringIO(raw.decode("utf-8", "replace"))), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 3:
            checks.add(f"--token-auth-file {path}: line {number}: expected token,user,uid[,groups] (unparsable)")
            continue
        groups = [group.strip() for group in row[3].split(",") if group.strip()] if len(row) > 3 else []
        tokens[row[0]] = (row[1], groups)
    checks.secret_mode(path, "--token-auth-file")
    return tokens


def apiserver_checks(checks: common.Checks, parsed: common.Parsed) -> None:
    if not parsed.csv("--etcd-servers"):
        checks.add("--etcd-servers must be specified")
    for url in parsed.csv("--etcd-servers"):
        split = urllib.parse.urlsplit(url)
        if split.scheme not in ("http", "https") or not split.hostname:
            checks.add(f"--etcd-servers: {url!r} is not an http(s):// URL")
        elif split.scheme == "https" and not parsed.value("--etcd-certfile"):
            checks.add(f"--etcd-servers: {url} is https but --etcd-certfile/--etcd-keyfile are not set")
    if not parsed.value("--service-account-issuer"):
        checks.add("service-account-issuer is a required flag")
    if not parsed.value("--service-account-signing-key-file"):
        checks.add("--service-account-signing-key-file and --service-account-issuer are required flags")
    signing = checks.loaded.get("--service-account-signing-key-file")
    verifying = checks.loaded.get("--service-account-key-file")
    if signing is not None and verifying:
        if common.spki(signing.public_key()) not in {common.spki(key) for key in verifying}:
            checks.add("--service-account-signing-key-file: its public key is not in --service-account-key-file, "
                       "so the tokens it signs would not validate")
    for mode in parsed.csv("--authorization-mode"):
        if mode not in AUTHORIZATION_MODES:
            checks.add(f"--authorization-mode: authorization mode {mode!r} is not a valid mode "
                       f"(one of {', '.join(AUTHORIZATION_MODES)})")
    allowed = parsed.csv("--requestheader-allowed-names")
    proxy = checks.loaded.get("--proxy-client-cert-file")
    if allowed and proxy:
        common_name = common.names(proxy[0])[0]
        if common_name not in allowed:
            checks.add(f"--proxy-client-cert-file CN {common_name!r} is not in --requestheader-allowed-names {allowed}: "
                       "aggregated API servers would reject the apiserver's proxied requests")
    for flag, check in (("--encryption-provider-config", check_encryption), ("--audit-policy-file", check_audit_policy)):
        if checks.loaded.get(flag) is not None:
            check(checks, parsed.value(flag), checks.loaded[flag])
    if parsed.value("--audit-log-path") and parsed.value("--audit-log-path") != "-" and not parsed.value("--audit-policy-file"):
        common.log("--audit-log-path is set without --audit-policy-file: no audit events are written", "W")
    common.parse_duration("--etcd-healthcheck-timeout", parsed.value("--etcd-healthcheck-timeout"), 2.0)


# --------------------------------------------------------------------------- etcd

class Etcd:
    """Writes and reads a key under the prefix on each endpoint through etcd's JSON gateway."""

    def __init__(self, parsed: common.Parsed):
        self.urls = parsed.csv("--etcd-servers")
        self.prefix = parsed.value("--etcd-prefix", "/registry").rstrip("/") or ""
        self.timeout = common.parse_duration("--etcd-healthcheck-timeout", parsed.value("--etcd-healthcheck-timeout"), 2.0) or 2.0
        self.key = f"{self.prefix}/kubeforge-standin/apiservers/{socket.gethostname()}"
        cafile = parsed.value("--etcd-cafile")
        self.ctx = ssl.create_default_context(cafile=cafile or None)
        if parsed.value("--etcd-certfile"):
            self.ctx.load_cert_chain(parsed.value("--etcd-certfile"), parsed.value("--etcd-keyfile"))
        self.status: dict = {url: "not checked yet" for url in self.urls}
        self.lock = threading.Lock()

    def call(self, url: str, path: str, body: dict) -> dict:
        split = urllib.parse.urlsplit(url)
        ctx = self.ctx if split.scheme == "https" else None
        status, raw = common.https_request(split.hostname, split.port or 2379, ctx, "POST", path,
                                           body=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
                                           timeout=self.timeout)
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            answer = {}
        if status != 200 or not isinstance(answer, dict) or "error" in answer or ("message" in answer and "header" not in answer):
            raise OSError(f"etcd {path} answered HTTP {status}: {raw[:300].decode('utf-8', 'replace').strip()}")
        return answer

    def check(self, url: str) -> str:
        """'' when a write and a read of our key under the prefix work on this endpoint, else the error."""
        value = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(), "endpoint": url},
                           sort_keys=True).encode()
        key = base64.b64encode(self.key.encode()).decode()
        try:
            self.call(url, "/v3/kv/put", {"key": key, "value": base64.b64encode(value).decode()})
            answer = self.call(url, "/v3/kv/range", {"key": key})
        except (OSError, http.client.HTTPException) as exc:
            return f"{type(exc).__name__}: {exc}"
        stored = [base64.b64decode(kv.get("value", "")) for kv in answer.get("kvs") or []]
        if stored != [value]:
            return f"read back {stored!r} after writing {value!r} under {self.key}"
        return ""

    def check_all(self) -> dict:
        results = {url: self.check(url) for url in self.urls}
        with self.lock:
            previous = dict(self.status)
            self.status = results
        for url, error in results.items():
            if error:
                common.log(f"etcd endpoint {url} failed: {error}", "E")
            elif previous.get(url):
                common.log(f"etcd endpoint {url}: write and read under {self.prefix or '/'} succeed")
        return results

    def health_error(self) -> str:
        with self.lock:
            if any(not error for error in self.status.values()):
                return ""
            return "; ".join(f"{url}: {error}" for url, error in sorted(self.status.items())) or "no etcd endpoint"

    def wait_all(self, timeout: float) -> None:
        """At start every endpoint must work (retrying until timeout); TLS trust errors fail at once."""
        deadline = time.monotonic() + timeout
        while True:
            results = self.check_all()
            failing = {url: error for url, error in results.items() if error}
            if not failing:
                common.log(f"etcd: wrote and read {self.key} on {', '.join(self.urls)}")
                return
            fatal = {url: error for url, error in failing.items() if "CERTIFICATE_VERIFY_FAILED" in error or "alert" in error}
            if fatal or time.monotonic() >= deadline:
                raise common.StandinError("etcd is not usable: " + "; ".join(f"{url}: {error}" for url, error in sorted((fatal or failing).items())))
            time.sleep(min(1.0, max(0.1, deadline - time.monotonic())))

    def loop(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            self.check_all()


# --------------------------------------------------------------------------- serving

class App:
    """Authenticates callers (client certificate, token file, anonymous) and answers the endpoints."""

    def __init__(self, data: dict, parsed: common.Parsed, etcd: Etcd, tokens: dict):
        self.data = data
        self.etcd = etcd
        self.tokens = tokens
        self.anonymous = parsed.flag_bool("--anonymous-auth", True)
        self.seen: dict = {}
        self.lock = threading.Lock()
        self.audit_path = parsed.value("--audit-log-path") if parsed.value("--audit-policy-file") else ""
        if self.audit_path and self.audit_path != "-":
            os.makedirs(os.path.dirname(os.path.abspath(self.audit_path)), exist_ok=True)

    def authenticate(self, handler: common.Handler):
        """(user, groups, method), or None for 401."""
        subject = handler.peer_subject()
        if subject is not None:
            return subject[0], subject[1] + ["system:authenticated"], "x509"
        header = handler.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            found = self.tokens.get(header[len("Bearer "):].strip())
            return (found[0], found[1] + ["system:authenticated"], "token") if found else None
        if self.anonymous:
            return "system:anonymous", ["system:unauthenticated"], "anonymous"
        return None

    def note(self, handler: common.Handler, identity) -> None:
        """Remember who called (before answering, so /kubeforge-standin/seen never lags behind)."""
        if identity is None:
            common.log(f"401 Unauthorized: anonymous {handler.command} {handler.path} from {handler.client_address[0]}", "W")
            return
        user, groups, method = identity
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        with self.lock:
            first = user not in self.seen
            entry = self.seen.setdefault(user, {"groups": groups, "authenticatedBy": method, "requests": 0})
            entry.update(requests=entry["requests"] + 1, last=now, lastPath=handler.path, groups=groups)
        if first:
            common.log(f"first request from user={user!r} groups={groups} ({method}) from {handler.client_address[0]}: "
                       f"{handler.command} {handler.path}")

    def audit(self, handler: common.Handler, identity, status: int) -> None:
        """One audit event per request when --audit-policy-file and --audit-log-path are set."""
        if not self.audit_path:
            return
        user, groups = (identity[0], identity[1]) if identity else ("", [])
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        event = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "stage": "ResponseComplete",
                 "requestURI": handler.path, "verb": handler.command.lower(), "sourceIPs": [handler.client_address[0]],
                 "user": {"username": user, "groups": groups}, "responseStatus": {"code": status},
                 "requestReceivedTimestamp": now, "stageTimestamp": now, "annotations": {"kubeforge": "test stand-in"}}
        line = json.dumps(event, sort_keys=True) + "\n"
        with self.lock:
            if self.audit_path == "-":
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                with open(self.audit_path, "a", encoding="utf-8") as handle:
                    handle.write(line)

    def version(self) -> dict:
        major, minor = self.data["version"].split(".")[:2]
        previous = str(int(minor) - 1)
        return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
                "minCompatibilityMajor": major, "minCompatibilityMinor": previous,
                "gitVersion": "v" + self.data["version"], "gitCommit": "kubeforge-test-standin", "gitTreeState": "clean",
                "buildDate": "1970-01-01T00:00:00Z", "goVersion": "none (kubeforge TEST STAND-IN, python)",
                "compiler": "none", "platform": "linux/amd64"}

    def handle(self, handler: common.Handler, method: str) -> None:
        identity = self.authenticate(handler)
        self.note(handler, identity)
        status = self.respond(handler, method, identity)
        self.audit(handler, identity, status)

    def respond(self, handler: common.Handler, method: str, identity) -> int:
        path = urllib.parse.urlsplit(handler.path).path
        if identity is None:
            handler.reply_status(401, "Unauthorized", "Unauthorized")
            return 401
        user, groups, method_used = identity
        base = "/" + path.strip("/").split("/")[0]
        if method in ("GET", "HEAD") and base in ("/healthz", "/livez", "/readyz"):
            checks = [("ping", lambda: ""), ("log", lambda: "")]
            if base != "/livez":
                checks.append(("etcd", self.etcd.health_error))
            if base == "/readyz":
                checks.append(("etcd-readiness", self.etcd.health_error))
            checks.append(("kubeforge-test-standin", lambda: ""))
            return common.health(handler, handler.path, checks)
        if method in ("GET", "HEAD") and path == "/version":
            handler.reply_json(200, self.version())
            return 200
        if method in ("GET", "HEAD") and path == "/kubeforge-standin/whoami":
            handler.reply_json(200, {"user": user, "groups": groups, "authenticatedBy": method_used,
                                     "standin": common.NOTICE.format(name="kube-apiserver")})
            return 200
        if method == "POST" and path == "/apis/authentication.k8s.io/v1/selfsubjectreviews":
            handler.body()
            handler.reply_json(201, {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                                     "metadata": {"creationTimestamp": None},
                                     "status": {"userInfo": {"username": user, "groups": groups}}})
            return 201
        if user == "system:anonymous":
            handler.reply_status(403, "Forbidden", f'forbidden: User "system:anonymous" cannot {method.lower()} path "{path}"')
            return 403
        if method in ("GET", "HEAD") and path == "/kubeforge-standin/seen":
            with self.lock:
                handler.reply_json(200, self.seen)
            return 200
        if method in ("GET", "HEAD") and path == "/kubeforge-standin/etcd":
            with self.etcd.lock:
                handler.reply_json(200, {url: error or "ok" for url, error in self.etcd.status.items()})
            return 200
        handler.reply_status(404, "NotFound", f"the server could not find the requested resource "
                                              f"(the kubeforge TEST STAND-IN kube-apiserver does not serve {method} {path})")
        return 404


def body(argv: list) -> None:
    data, parsed, checks = common.start(SPEC, argv, VALUE_FLAGS)
    port = parsed.port("--secure-port", 6443)
    apiserver_checks(checks, parsed)
    tokens = {}
    if checks.loaded.get("--token-auth-file") is not None:
        tokens = load_tokens(checks, parsed.value("--token-auth-file"), checks.loaded["--token-auth-file"])
    common.finish_checks(SPEC, checks)
    etcd = Etcd(parsed)
    etcd.wait_all(common.env_seconds("KUBEFORGE_STANDIN_STARTUP_TIMEOUT", 60))
    stop = threading.Event()
    threading.Thread(target=etcd.loop, args=(stop, common.env_seconds("KUBEFORGE_STANDIN_INTERVAL", 5)), daemon=True).start()
    servers = []
    if port:
        ctx = common.serving_context(SPEC, parsed, parsed.value("--client-ca-file"))
        servers.append(common.listen(SPEC, parsed.value("--bind-address", "0.0.0.0"), port, common.Handler, ctx,
                                     App(data, parsed, etcd, tokens)))
    common.serve_forever(servers, stop)


def main(argv: list) -> int:
    return common.run_main(SPEC, body, argv)
