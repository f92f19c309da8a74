# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of the stand-in tests: a small PKI on disk, kubeconfigs, the built stand-ins as processes."""
from __future__ import annotations

import dataclasses
import datetime
import http.client
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VERSION = "1.36.4"
OLD_VERSION = "1.35.2"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Cert:
    name: str
    cert: str
    key: str
    obj: x509.Certificate
    private_key: object


class Pki:
    """CAs and leaves written as PEM files (keys 0600) in one directory."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def _write(self, name: str, cert, key) -> Cert:
        cert_path, key_path = os.path.join(self.directory, name + ".crt"), os.path.join(self.directory, name + ".key")
        with open(cert_path, "wb") as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        os.chmod(key_path, 0o600)
        return Cert(name, cert_path, key_path, cert, key)

    @staticmethod
    def _builder(subject, issuer, public_key, days: int = 2):
        now = datetime.datetime.now(datetime.timezone.utc)
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days)))

    def ca(self, name: str) -> Cert:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (self._builder(subject, subject, key.public_key())
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return self._write(name, cert, key)

    def leaf(self, name: str, issuer: Cert, cn: str, orgs: tuple = (), usage: str = "client", sans: tuple = (),
             rsa_key: bool = False, days: int = 2) -> Cert:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        ekus = {"client": [ExtendedKeyUsageOID.CLIENT_AUTH], "server": [ExtendedKeyUsageOID.SERVER_AUTH],
                "peer": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]}[usage]
        builder = (self._builder(x509.Name(attrs), issuer.obj.subject, key.public_key(), days)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(ekus), critical=False))
        if sans:
            alt = [x509.IPAddress(ipaddress.ip_address(san)) if san[0].isdigit() else x509.DNSName(san) for san in sans]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        return self._write(name, builder.sign(issuer.private_key, hashes.SHA256()), key)


def write_kubeconfig(path: str, server: str, ca: str, client: Cert | None = None, *, embed: bool = False, token: str = "") -> str:
    user: dict = {}
    if client is not None and embed:
        import base64  # pylint: disable=import-outside-toplevel
        with open(client.cert, "rb") as cert, open(client.key, "rb") as key:
            user = {"client-certificate-data": base64.b64encode(cert.read()).decode(),
                    "client-key-data": base64.b64encode(key.read()).decode()}
    elif client is not None:
        user = {"client-certificate": client.cert, "client-key": client.key}
    if token:
        user["token"] = token
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "default",
           "clusters": [{"name": "kubeforge", "cluster": {"server": server, "certificate-authority": ca}}],
           "users": [{"name": "user", "user": user}],
           "contexts": [{"name": "default", "context": {"cluster": "kubeforge", "user": "user"}}]}
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        yaml.safe_dump(doc, handle)
    return path


def write_yaml(path: str, doc, mode: int = 0o600) -> str:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w", encoding="utf-8") as handle:
        yaml.safe_dump(doc, handle)
    os.chmod(path, mode)
    return path


class Standins:
    """The built stand-ins, run with this interpreter (it has cryptography and PyYAML)."""

    def __init__(self, root: str, log_dir: str):
        self.root = root
        self.log_dir = log_dir
        self.processes: list = []

    def path(self, name: str, version: str = VERSION) -> str:
        return os.path.join(self.root, "release", f"v{version}", "bin", "linux", "amd64", name)

    @staticmethod
    def env(extra: dict | None = None) -> dict:
        env = dict(os.environ)
        env.update({"KUBEFORGE_STANDIN_INTERVAL": "0.3", "KUBEFORGE_STANDIN_STARTUP_TIMEOUT": "10"})
        env.pop("KUBEFORGE_STANDIN_CHECK_ONLY", None)
        env.update(extra or {})
        return env

    def run(self, name: str, *args: str, version: str = VERSION, env: dict | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, self.path(name, version), *args], capture_output=True, text=True,
                              timeout=timeout, check=False, env=self.env(env))

    def check(self, name: str, *args: str, version: str = VERSION) -> subprocess.CompletedProcess:
        """Run every check and exit (KUBEFORGE_STANDIN_CHECK_ONLY=1)."""
        return self.run(name, *args, version=version, env={"KUBEFORGE_STANDIN_CHECK_ONLY": "1"})

    def start(self, name: str, *args: str, env: dict | None = None) -> "Process":
        log_path = os.path.join(self.log_dir, f"{name}-{len(self.processes)}.log")
        with open(log_path, "wb") as log:
            popen = subprocess.Popen([sys.executable, self.path(name), *args], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env(env))
        process = Process(popen, log_path)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()


@dataclasses.dataclass
class Process:
    popen: subprocess.Popen
    log_path: str

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return self.popen.returncode


def tls_get(port: int, path: str, ca: str, client: Cert | None = None, *, method: str = "GET", host: str = "127.0.0.1",
            server_name: str = "", timeout: float = 5.0, insecure: bool = False) -> tuple:
    """(status, body text) of one HTTPS request verified against ``ca`` (or not verified)."""
    ctx = ssl.create_default_context(cafile=ca if not insecure else None)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client is not None:
        ctx.load_cert_chain(client.cert, client.key)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name or host) as tls:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.sock = tls
            conn.request(method, path, body=b"{}" if method == "POST" else None)
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")


def http_get(port: int, path: str, host: str = "127.0.0.1", timeout: float = 5.0) -> tuple:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def wait_for(probe, process: Process | None = None, timeout: float = 15.0, what: str = "condition"):
    """Call probe() until it returns a true value; fail early when the process exits."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.popen.poll() is not None:
            raise AssertionError(f"process exited {process.popen.returncode} while waiting for {what}:\n{process.log()}")
        try:
            result = probe()
            if result:
                return result
        except (OSError, http.client.HTTPException) as exc:
            last = exc
        time.sleep(0.1)
    log = process.log() if process is not None else ""
    raise AssertionError(f"timed out waiting for {what} ({last}):\n{log}")
