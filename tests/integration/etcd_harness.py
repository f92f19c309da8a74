# SPDX-License-Identifier: GPL-3.0-or-later
"""Real etcd processes on loopback for the integration tests and the benches.

Certificates are made here with ``cryptography`` (one CA, one serving/peer certificate for
127.0.0.1, one client certificate); every member runs with client-cert auth on the client and
the peer port. Ports are chosen at run time. The binaries come from ``KUBEFORGE_ETCD_BIN_DIR``
(default ``.cache/etcd/bin``, filled by ``tests/harness/fetch-etcd.sh``); a missing binary is an
error, never a skip.
"""
from __future__ import annotations

import atexit
import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Every etcd started here, killed at exit if a test run ends without stopping it.
_STARTED: list = []


@atexit.register
def _kill_leftovers() -> None:
    for process in _STARTED:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def bin_dir() -> str:
    return os.environ.get("KUBEFORGE_ETCD_BIN_DIR", os.path.join(REPO, ".cache", "etcd", "bin"))


def etcd_binary(name: str) -> str:
    """Path of etcd, etcdctl or etcdutl; raises (so tests fail, not skip) when it is missing."""
    path = os.path.join(bin_dir(), name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"{path} is missing: run tests/harness/fetch-etcd.sh (or set KUBEFORGE_ETCD_BIN_DIR)")
    return path


def terminate(process: subprocess.Popen | None, grace: float) -> None:
    """SIGTERM a process still running, SIGKILL it if it has not exited after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Certs:
    """PEM files: a CA, a serving + peer certificate for 127.0.0.1 and a client certificate."""

    directory: str
    ca: str = ""
    server_cert: str = ""
    server_key: str = ""
    client_cert: str = ""
    client_key: str = ""

    def client_params(self) -> dict:
        return {"ca_cert": self.ca, "client_cert": self.client_cert, "client_key": self.client_key}


def _write_key(path: str, key) -> None:
    with open(path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _sign(subject_cn: str, key, issuer_cert, issuer_key, *, ca: bool = False, server: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def make_certs(directory: str, client_cn: str = "kubeforge-test-client") -> Certs:
    os.makedirs(directory, exist_ok=True)
    certs = Certs(directory=directory)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _sign("kubeforge-test-ca", ca_key, None, None, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _sign("etcd-server", server_key, ca_cert, ca_key, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _sign(client_cn, client_key, ca_cert, ca_key)
    for attr, cert in (("ca", ca_cert), ("server_cert", server_cert), ("client_cert", client_cert)):
        path = os.path.join(directory, attr.replace("_cert", "") + ".crt")
        with open(path, "wb") as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
        setattr(certs, attr, path)
    certs.server_key = os.path.join(directory, "server.key")
    certs.client_key = os.path.join(directory, "client.key")
    _write_key(certs.server_key, server_key)
    _write_key(certs.client_key, client_key)
    return certs


@dataclass
class Member:
    name: str
    data_dir: str
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: str = ""

    @property
    def client_url(self) -> str:
        return f"https://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"https://127.0.0.1:{self.peer_port}"


class Cluster:
    """A set of etcd members sharing one certificate set, started and stopped as processes."""

    def __init__(self, base_dir: str, certs: Certs, size: int = 1, token: str = "kubeforge-test",
                 extra_args: tuple = (), fast: bool = True):
        self.base_dir = base_dir
        self.certs = certs
        self.token = token
        self.extra_args = list(extra_args)
        self.fast = fast
        self.members = [self.new_member(f"m{i}") for i in range(size)]

    def new_member(self, name: str) -> Member:
        return Member(name=name, data_dir=os.path.join(self.base_dir, name + ".etcd"))

    @property
    def endpoints(self) -> list:
        return [m.client_url for m in self.members if m.process is not None and m.process.poll() is None]

    def client_params(self, **extra) -> dict:
        params = dict(self.certs.client_params(), endpoints=self.endpoints, timeout=10.0)
        params.update(extra)
        return params

    def initial_cluster(self, members=None) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in (members or self.members))

    def command(self, member: Member, initial_cluster: str, state: str) -> list:
        c = self.certs
        args = [
            etcd_binary("etcd"), "--name", member.name, "--data-dir", member.data_dir,
            "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", state,
            "--initial-cluster-token", self.token,
            "--client-cert-auth", "--trusted-ca-file", c.ca, "--cert-file", c.server_cert, "--key-file", c.server_key,
            "--peer-client-cert-auth", "--peer-trusted-ca-file", c.ca,
            "--peer-cert-file", c.server_cert, "--peer-key-file", c.server_key,
            "--logger", "zap", "--log-level", "warn",
        ]
        if self.fast:
            args += ["--unsafe-no-fsync", "--heartbeat-interval", "50", "--election-timeout", "500"]
        return args + self.extra_args

    def start_member(self, member: Member, initial_cluster: str | None = None, state: str = "new",
                     wait: bool = True) -> None:
        os.makedirs(self.base_dir, exist_ok=True)
        member.log_path = os.path.join(self.base_dir, member.name + ".log")
        log = open(member.log_path, "ab")
        member.process = subprocess.Popen(
            self.command(member, initial_cluster or self.initial_cluster(), state),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _STARTED.append(member.process)
        log.close()
        if wait:
            self.wait_ready(member)

    def start(self) -> "Cluster":
        for member in self.members:
            self.start_member(member, wait=False)
        for member in self.members:
            self.wait_ready(member)
        return self

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.certs.ca)
        ctx.load_cert_chain(self.certs.client_cert, self.certs.client_key)
        return ctx

    def call(self, member: Member, path: str, body: dict, timeout: float = 5.0) -> dict:
        """One gateway call with urllib: an independent reader, not the code under test."""
        request = urllib.request.Request(member.client_url + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, context=self.ssl_context(), timeout=timeout) as response:
            return json.loads(response.read())

    def wait_ready(self, member: Member, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if member.process.poll() is not None:
                raise RuntimeError(f"etcd {member.name} exited {member.process.returncode}: {self.log_tail(member)}")
            try:
                status = self.call(member, "/v3/maintenance/status", {}, timeout=2.0)
                if status.get("leader") and status.get("leader") != "0":
                    return
            except (OSError, ValueError) as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"etcd {member.name} not ready after {timeout}s ({last}): {self.log_tail(member)}")

    @staticmethod
    def log_tail(member: Member, lines: int = 20) -> str:
        try:
            with open(member.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def stop_member(self, member: Member, kill: bool = False) -> None:
        """Stop a member (SIGTERM, or SIGKILL with kill: a crash). A graceful stop waits up to ~6 s for open watches."""
        if member.process is not None and kill:
            member.process.kill()
        terminate(member.process, grace=10)
        member.process = None

    def stop(self, remove: bool = False) -> None:
        for member in self.members:
            self.stop_member(member)
        if remove:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def etcdctl_env(self, member: Member | None = None) -> dict:
        env = dict(os.environ)
        env.update({
            "ETCDCTL_API": "3",
            "ETCDCTL_ENDPOINTS": (member.client_url if member else ",".join(self.endpoints)),
            "ETCDCTL_CACERT": self.certs.ca, "ETCDCTL_CERT": self.certs.client_cert,
            "ETCDCTL_KEY": self.certs.client_key,
        })
        return env

    def etcdctl(self, *args: str, member: Member | None = None, check: bool = True, timeout: float = 60):
        return subprocess.run([etcd_binary("etcdctl"), *args], env=self.etcdctl_env(member), check=check,
                              capture_output=True, text=True, timeout=timeout)
