# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers the molecule verifiers (and the site scenario's fault tests) share: the scenario's paths
and settings, commands in the scenario's containers, bounded polling, ansible-playbook runs from
the verifier with the scenario's inventory, requests to the apiservers, a writer thread that
writes etcd keys while an operation runs, and test pods and the pod network (busybox pods, node
readiness, flannel's routes).

Each scenario's tests/conftest.py puts this directory on sys.path. Every wait here has a timeout;
every command has one too, so a hung container or playbook fails the test instead of the run.
"""
from __future__ import annotations

import contextlib
import glob
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPResponse
from typing import Any, Callable, Iterator

import yaml

# Seconds one command in a container may take; a playbook run; a request to an apiserver.
DOCKER_TIMEOUT = 120.0
PLAYBOOK_TIMEOUT = 3600.0
REQUEST_TIMEOUT = 8.0

# The kubeforge host layout (roles/pki, roles/control_plane).
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.kubeconfig"
KUBE_PROXY_KUBECONFIG = "/etc/kubernetes/kube-proxy.kubeconfig"
APISERVER_PORT = 6443
# The HA endpoint every node has (roles/ha_nginx), and the name the apiserver certificate carries for it.
HA_ADDRESS = "127.0.0.1"
APISERVER_NAME = "kubernetes.default.svc"
# Every service the phases run on a host: what a check-mode run must leave as it was.
SERVICES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet", "kube-proxy", "nginx")


# --------------------------------------------------------------------------- the scenario

def project_dir() -> str:
    """The collection checkout (molecule's project directory)."""
    return os.environ.get("MOLECULE_PROJECT_DIRECTORY") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ephemeral_dir() -> str:
    """Molecule's per-scenario state directory."""
    return os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]


def inventory_file() -> str:
    """The inventory molecule wrote for the scenario (its group_vars/host_vars are linked beside it)."""
    return os.environ.get("MOLECULE_INVENTORY_FILE") or os.path.join(ephemeral_dir(), "inventory", "ansible_inventory.yml")


def credentials_dir() -> str:
    """The controller's credentials directory (kubeforge_credentials_dir in every scenario's inventory)."""
    return os.path.join(ephemeral_dir(), "credentials")


def group_var(scenario_directory: str, name: str) -> Any:
    """A setting of the scenario's group_vars/all, as Ansible resolves it among those files: the
    files load in name order and a later one wins (cluster.yml is the sample's all.yml). Fails
    if no file sets it or its value is a template (the verifier does not render Jinja)."""
    found, value = False, None
    for path in sorted(glob.glob(os.path.join(scenario_directory, "inventory", "group_vars", "all", "*.yml"))):
        with open(path, encoding="utf-8") as handle:
            settings = yaml.safe_load(handle) or {}
        if name in settings:
            found, value = True, settings[name]
    assert found, f"no file of {scenario_directory}/inventory/group_vars/all sets {name}"
    assert "{{" not in str(value), f"{name} is a template ({value!r}); the verifier reads plain values only"
    return value


def edited_inventory(directory: str, scenario_directory: str, edit: Callable[[dict], None]) -> str:
    """Molecule's inventory changed by ``edit`` (what an operator edits), written to
    ``directory``/hosts.yml with the scenario's group_vars and host_vars linked beside it; its path.
    Molecule writes each group at the top level of its inventory file."""
    with open(inventory_file(), encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    edit(inventory)
    path = os.path.join(directory, "hosts.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    for part in ("group_vars", "host_vars"):
        os.symlink(os.path.join(scenario_directory, "inventory", part), os.path.join(directory, part))
    return path


# --------------------------------------------------------------------------- the containers

def docker(*args: str, check: bool = True, timeout: float = DOCKER_TIMEOUT, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``docker ARGS`` (text output); with ``check``, a non-zero exit fails with its stderr."""
    run = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, check=False, timeout=timeout)
    if check and run.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {run.returncode}: {run.stderr[-3000:]}")
    return run


def docker_exec(host: str, *command: str, check: bool = True, timeout: float = DOCKER_TIMEOUT) -> str:
    """The standard output of a command in a scenario container."""
    return docker("exec", host, *command, check=check, timeout=timeout).stdout


def etcd_data_directories(host: str) -> str:
    """The etcd data directory of a host and those moved aside beside it (a restore's, a migration's), one per line."""
    return docker_exec(host, "sh", "-c", "ls -d /var/lib/etcd* 2>/dev/null || true")


def lab_host(network: str, name: str, address: str) -> Iterator[str]:
    """A new host on a scenario's network, started as the lab starts its hosts (a fixture's body); removed at the end."""
    lab = os.path.join(project_dir(), "tests", "harness", "lab.sh")
    subprocess.run(["bash", lab, "host", os.environ["KUBEFORGE_NODE_IMAGE"], network, f"{name}:{address}"], check=True, timeout=300)
    yield name
    subprocess.run(["bash", lab, "remove", name], check=False, timeout=300)


def unit_properties(host: str, unit: str, *names: str) -> dict[str, str]:
    """``systemctl show`` properties of a unit on a host, e.g. MainPID, ActiveEnterTimestampMonotonic."""
    out = docker_exec(host, "systemctl", "show", unit, "-p", ",".join(names))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit_property(host: str, unit: str, name: str) -> str:
    """One ``systemctl show`` property of a unit on a host."""
    return docker_exec(host, "systemctl", "show", "-p", name, "--value", unit).strip()


def unit_active(host: str, unit: str) -> bool:
    """Whether a unit is active on a host (False when the host does not answer)."""
    return docker("exec", host, "systemctl", "is-active", unit, check=False).stdout.strip() == "active"


def host_state(host: str, units: tuple[str, ...], paths: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """What a run that changes nothing leaves as it was on a host, read in one command: each unit's main process and
    start (``systemctl show``; a unit the host lacks shows MainPID 0), and the sha256 of every file under ``paths``
    (absent paths are left out)."""
    script = ("systemctl show -p Id -p MainPID -p ActiveEnterTimestampMonotonic " + " ".join(map(shlex.quote, units)) + "; echo ---; "
              "find " + " ".join(map(shlex.quote, paths)) + " -type f -print0 2>/dev/null | xargs -0 -r sha256sum")
    shown, digests = docker_exec(host, "sh", "-c", script).split("---\n", 1)
    found: dict[str, dict[str, str]] = {"units": {}, "files": {}}
    for block in shown.strip().split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        found["units"][fields["Id"]] = f"{fields['MainPID']} {fields['ActiveEnterTimestampMonotonic']}"
    for line in digests.splitlines():
        digest, path = line.split(None, 1)
        found["files"][path] = digest
    return found


def host_kubectl(host: str, *args: str, kubeconfig: str = ADMIN_KUBECONFIG, check: bool = True,
                 timeout: float = DOCKER_TIMEOUT, stdin: str | None = None) -> subprocess.CompletedProcess:
    """kubectl on a control-plane host (the control_plane role installs it), through the host's HA endpoint;
    ``stdin`` is kubectl's standard input (``-f -``)."""
    interactive = ("-i",) if stdin is not None else ()
    return docker("exec", *interactive, host, "kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=20s", *args, check=check,
                  timeout=timeout, stdin=stdin)


# --------------------------------------------------------------------------- waiting

def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition", interval: float = 0.5) -> None:
    """Polls ``condition`` until it returns a true value; fails after ``timeout`` seconds with the
    last exception it raised (a service may refuse while it starts, that is not yet a failure)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as exc:  # pylint: disable=broad-except  # not ready yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


# --------------------------------------------------------------------------- ansible-playbook

def ansible_env() -> dict[str, str]:
    """The verifier's environment for ansible-playbook: the project's ansible.cfg, no colours (the
    output is parsed; molecule may force them)."""
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(project_dir(), "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    env.pop("ANSIBLE_FORCE_COLOR", None)
    return env


def playbook_command(inventory: str, path: str, *extra: str) -> list[str]:
    """The ansible-playbook command line: the one beside this Python (the venv's) when there is one."""
    beside = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    executable = beside if os.access(beside, os.X_OK) else (shutil.which("ansible-playbook") or "ansible-playbook")
    return [executable, "-i", inventory, path, *extra]


def playbook(inventory: str, path: str, *extra: str, timeout: float = PLAYBOOK_TIMEOUT) -> str:
    """Runs a playbook against an inventory from the verifier; fails with the end of its output
    unless it succeeds; its standard output."""
    started = time.monotonic()
    run = subprocess.run(playbook_command(inventory, path, *extra), capture_output=True, text=True, env=ansible_env(), check=False,
                         timeout=timeout)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
    print(f"{os.path.basename(path)} {' '.join(extra)}: {time.monotonic() - started:.1f}s")
    return run.stdout


def playbook_refused(inventory: str, path: str, *extra: str, timeout: float = PLAYBOOK_TIMEOUT) -> str:
    """Runs a playbook that must fail; fails with the end of its output if it succeeds; its output (stdout and stderr)."""
    run = subprocess.run(playbook_command(inventory, path, *extra), capture_output=True, text=True, env=ansible_env(), check=False,
                         timeout=timeout)
    output = run.stdout + run.stderr
    assert run.returncode != 0, f"{os.path.basename(path)} {' '.join(extra)} was not refused:\n{output[-6000:]}"
    return output


def playbook_killed_when(inventory: str, path: str, *extra: str, condition: Callable[[], Any], what: str,
                         timeout: float = PLAYBOOK_TIMEOUT, interval: float = 0.1) -> Any:
    """Runs a playbook and kills it, its whole process group at once (SIGKILL: none of Ansible's clean-up runs), as
    soon as ``condition()`` returns a true value: an operator's run that died half way. Returns that value; fails
    when the run ends first, with the end of its output."""
    seen: list = []
    with tempfile.TemporaryFile(mode="w+") as output:
        run = subprocess.Popen(playbook_command(inventory, path, *extra), stdout=output, stderr=subprocess.STDOUT, env=ansible_env(),
                               start_new_session=True)
        try:
            wait_for(lambda: seen.append(condition()) or seen[-1] or run.poll() is not None, timeout=timeout, what=what, interval=interval)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=60)
        output.seek(0)
        assert seen and seen[-1], f"{os.path.basename(path)} ended before {what}: {output.read()[-4000:]}"
    print(f"{os.path.basename(path)} {' '.join(extra)}: killed once {what} ({seen[-1]})")
    return seen[-1]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$")


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of ansible-playbook output: {host: {ok, changed, unreachable, failed, ...}}."""
    text = _ANSI.sub("", output)
    if "PLAY RECAP" not in text:
        return {}
    counts = {}
    for line in text.rsplit("PLAY RECAP", 1)[1].splitlines():
        match = _RECAP_LINE.match(line.strip())
        if match:
            counts[match.group(1)] = {key: int(value) for key, value in (item.split("=") for item in match.group(2).split())}
    return counts


_TASK_LINE = re.compile(r"^TASK \[(.*)\]")
_CHANGED_LINE = re.compile(r"^changed: \[([^\]\s]+)")


def changed_tasks(output: str) -> dict[str, list[str]]:
    """{host: [the name of each task that reported changed there]} from ansible-playbook output (a task run in a
    loop, once): what an assertion on the recap's changed counts shows when it fails."""
    found: dict[str, list[str]] = {}
    task = ""
    for line in _ANSI.sub("", output).splitlines():
        if match := _TASK_LINE.match(line):
            task = match.group(1)
        elif (match := _CHANGED_LINE.match(line.strip())) and task not in found.setdefault(match.group(1), []):
            found[match.group(1)].append(task)
    return found


def changed_counts(output: str) -> dict[str, int]:
    """{host: changed} from the PLAY RECAP."""
    return {host: counts["changed"] for host, counts in recap(output).items()}


def check_run_changes_nothing(inventory: str, path: str, *extra: str, state: Callable[[], dict]) -> str:
    """Runs a playbook with --check between two readings of ``state()`` ({part: value}): fails unless no host failed
    or was unreachable, naming the parts that differ afterwards; the run's output."""
    before = state()
    output = playbook(inventory, path, *extra, "--check")
    failed = {host: counts for host, counts in recap(output).items() if counts["failed"] or counts["unreachable"]}
    assert failed == {}, output[-6000:]
    after = state()
    differing = [part for part in before if after.get(part) != before[part]]
    assert not differing, f"{os.path.basename(path)} --check changed {', '.join(map(str, differing))}"
    return output


# --------------------------------------------------------------------------- the apiservers

# Runs inside a host (python3 and python3-yaml are in the node image): one HTTPS GET.
#   argv: address port path kubeconfig server_name
# With a kubeconfig: its client certificate, and the server certificate verified against its CA for
# server_name. Without: no client certificate and no verification (what `curl -k` does).
NODE_REQUEST = r"""
import base64, http.client, json, os, shutil, socket, ssl, sys, tempfile
address, port, path, kubeconfig, server_name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] or sys.argv[1]
tmp = tempfile.mkdtemp()
try:
    if kubeconfig:
        import yaml
        with open(kubeconfig) as handle:
            config = yaml.safe_load(handle)
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        files = []
        for field in ("client-certificate-data", "client-key-data"):
            files.append(os.path.join(tmp, field))
            with open(os.open(files[-1], os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
                handle.write(base64.b64decode(user[field]))
        context.load_cert_chain(*files)
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=8) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, server_name)).encode())
            response = http.client.HTTPResponse(tls)
            response.begin()
            body = response.read()
finally:
    shutil.rmtree(tmp)
print(json.dumps({"status": response.status, "body": body.decode("utf-8", "replace")}))
"""


def node_request(host: str, address: str, path: str, port: int = APISERVER_PORT, kubeconfig: str = "",
                 server_name: str = "", timeout: float = 30.0) -> tuple[int, str]:
    """(status, body) of one HTTPS GET made from inside a host (see NODE_REQUEST)."""
    run = docker("exec", "-i", host, "python3", "-", address, str(port), path, kubeconfig, server_name, stdin=NODE_REQUEST, timeout=timeout)
    answer = json.loads(run.stdout)
    return answer["status"], answer["body"]


def probe(host: str, path: str = "/readyz") -> tuple[int, str]:
    """(status, body) of a request through the host's HA endpoint 127.0.0.1:6443, authenticated with
    the node's kube-proxy client certificate (every node has that kubeconfig), the server
    certificate verified against the cluster CA for kubernetes.default.svc."""
    return node_request(host, HA_ADDRESS, path, kubeconfig=KUBE_PROXY_KUBECONFIG, server_name=APISERVER_NAME)


# Runs inside a host: GET PATH through the host's HA endpoint every INTERVAL seconds, each on a new
# connection with the kubeconfig's client certificate, until the file STOP exists; then prints one
# JSON list of [seconds since start, status or 0, error text] per request.
#   argv: kubeconfig server_name path interval stop_file
POLLER = r"""
import base64, http.client, json, os, socket, ssl, sys, tempfile, time
import yaml
kubeconfig, server_name, path, interval, stop = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
with open(kubeconfig) as handle:
    config = yaml.safe_load(handle)
cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
tmp = tempfile.mkdtemp()
files = [os.path.join(tmp, "cert"), os.path.join(tmp, "key")]
for name, field in zip(files, ("client-certificate-data", "client-key-data")):
    with open(os.open(name, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
        handle.write(base64.b64decode(user[field]))
context.load_cert_chain(*files)
results, start = [], time.monotonic()
while not os.path.exists(stop):
    began, now = time.monotonic(), time.time()
    clock = time.strftime("%H:%M:%S", time.gmtime(now)) + ".%02d" % int(now % 1 * 100)
    try:
        with socket.create_connection(("127.0.0.1", 6443), timeout=2) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, server_name)).encode())
                response = http.client.HTTPResponse(tls)
                response.begin()
                body = response.read()
        results.append([round(began - start, 2), response.status, "" if response.status == 200 else body.decode("utf-8", "replace")[:200], clock])
    except Exception as exc:
        results.append([round(began - start, 2), 0, repr(exc)[:200], clock])
    time.sleep(max(0.0, interval - (time.monotonic() - began)))
print(json.dumps(results))
"""


class ApiPoller:
    """A client on ``host`` polling the API through the host's HA endpoint every ``interval`` seconds
    (GET /readyz, the node's kube-proxy certificate) while an operation runs: start(), then stop()
    gives [[seconds, status (0: no answer), error, UTC time of day to match the hosts' journals]] per request."""

    def __init__(self, host: str, interval: float = 0.2, path: str = "/readyz") -> None:
        self.host, self.interval, self.path = host, interval, path
        self.stop_file = f"/tmp/kubeforge-poller-{os.getpid()}.stop"
        self.process: subprocess.Popen | None = None

    def start(self) -> "ApiPoller":
        docker_exec(self.host, "rm", "-f", self.stop_file)
        self.process = subprocess.Popen(["docker", "exec", "-i", self.host, "python3", "-", KUBE_PROXY_KUBECONFIG, APISERVER_NAME, self.path,
                                         str(self.interval), self.stop_file], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdin is not None
        self.process.stdin.write(POLLER)
        self.process.stdin.close()
        return self

    def stop(self) -> list:
        assert self.process is not None and self.process.stdout is not None
        docker_exec(self.host, "touch", self.stop_file)
        out = self.process.stdout.read()
        self.process.wait(timeout=60)
        return json.loads(out)


def poll_failures(results: list) -> tuple[list, list]:
    """(failed requests, failures not followed by a success on the next request) of an ApiPoller run."""
    failed = [entry for entry in results if entry[1] != 200]
    unanswered = [entry for entry, after in zip(results, results[1:] + [[None, 0, "end"]]) if entry[1] != 200 and after[1] != 200]
    return failed, unanswered


@contextlib.contextmanager
def api_polled(host: str, changed_hosts: int):
    """While the block runs, a client on ``host`` polls the API through its HA endpoint every 200 ms (ApiPoller):
    at most one failed request per host changed, each followed by a success."""
    poller = ApiPoller(host).start()
    try:
        yield
    finally:
        results = poller.stop()
    failed, unanswered = poll_failures(results)
    print(f"poller: {len(results)} requests, {len(failed)} failed: {failed}")
    assert len(results) > 100, results[:5]
    assert not unanswered, f"failures not followed by a success on the next request: {unanswered}"
    assert len(failed) <= changed_hosts, failed


def apiserver_request(address: str, path: str, client: str | None = "admin", server_name: str | None = None,
                      port: int = APISERVER_PORT) -> tuple[int, str]:
    """(status, body) of a GET from the controller straight to one apiserver, its certificate verified
    against the cluster CA, with a client certificate from the credentials directory (none if
    ``client`` is None)."""
    pki = os.path.join(credentials_dir(), "pki")
    context = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    if client:
        context.load_cert_chain(os.path.join(pki, f"{client}.crt"), os.path.join(pki, f"{client}.key"))
    with socket.create_connection((address, port), timeout=REQUEST_TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname=server_name or address) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name or address}\r\nConnection: close\r\n\r\n".encode())
            response = HTTPResponse(tls)  # type: ignore[arg-type]  # an SSL socket has makefile()
            response.begin()
            body = response.read()
    return response.status, body.decode("utf-8", "replace")


# --------------------------------------------------------------------------- etcd

def etcd_client(urls: list[str], timeout: float = 5.0) -> Any:
    """The collection's etcd client (module_utils/_etcd; the conftest makes the collection importable)
    with the apiserver's etcd client certificate from the credentials directory: what the apiservers use."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import client_from_params
    pki = os.path.join(credentials_dir(), "pki")
    return client_from_params({
        "endpoints": list(urls), "ca_cert": os.path.join(pki, "etcd", "ca.crt"),
        "client_cert": os.path.join(pki, "apiserver-etcd-client.crt"),
        "client_key": os.path.join(pki, "apiserver-etcd-client.key"), "timeout": timeout})


class Writer(threading.Thread):
    """Puts one key after another (``prefix`` + a 6-digit number) while an operation runs, as an
    apiserver would. A failed put (a leader or membership change may fail a request) is retried
    every second for up to ``retry_seconds`` (default: once), each time on a new client from
    ``connect``; a put still failing then counts as failed. A put that raised may still have been
    applied: its key is also kept in ``uncertain``.

    ``connect`` makes the client. With ``gate``, polled every 0.2 s, the writer pauses while it
    returns false. ``switch`` makes the client of the endpoints after a switch: the first pause
    switches the writer over, and from then on its clients, a retry's included, come from
    ``switch``, as an apiserver restarted with new ``--etcd-servers`` follows them; it never goes
    back to the endpoints it started with.

    After ``finish()``: ``written`` {key: value} acknowledged puts, ``failed`` [(key, error)],
    ``revisions`` the store revision of each acknowledged put in order, ``retried`` the failed
    attempts that were retried, ``paused`` the pauses, ``switched`` whether the switch happened.
    """

    def __init__(self, connect: Callable[[], Any], prefix: str, value: Callable[[int], str] = str, *,
                 gate: Callable[[], bool] | None = None, switch: Callable[[], Any] | None = None, retry_seconds: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.connect, self.prefix, self.value, self.gate, self.switch = connect, prefix, value, gate, switch
        self.retry_seconds = retry_seconds
        self.stop = threading.Event()
        self.active = threading.Event()
        self.active.set()
        self.written: dict[str, str] = {}
        self.failed: list[tuple[str, str]] = []
        self.uncertain: set[str] = set()
        self.revisions: list[int] = []
        self.retried = 0
        self.paused = 0
        self.switched = False

    def _poll_gate(self) -> None:
        while not self.stop.is_set():
            try:
                open_now = bool(self.gate())  # type: ignore[misc]
            except Exception:  # pylint: disable=broad-except  # a host that does not answer: pause
                open_now = False
            (self.active.set if open_now else self.active.clear)()
            time.sleep(0.2)

    @staticmethod
    def _close(etcd: Any) -> None:
        try:
            etcd.close()
        except Exception:  # pylint: disable=broad-except  # a client to a member that went away
            pass

    def _reconnect(self, etcd: Any) -> Any:
        self._close(etcd)
        return self.connect()

    def _put(self, etcd: Any, key: str, value: str) -> Any:
        """Puts one key, retrying on a new client of the current endpoints; the client to go on with."""
        deadline = None
        while True:
            try:
                self.revisions.append(etcd.put(key, value))
                self.written[key] = value
                return etcd
            except Exception as exc:  # pylint: disable=broad-except
                self.uncertain.add(key)
                deadline = deadline or time.monotonic() + self.retry_seconds  # counted from the first failure
                if time.monotonic() >= deadline:
                    self.failed.append((key, str(exc)))
                    return etcd
                self.retried += 1
                time.sleep(1)
                etcd = self._reconnect(etcd)

    def run(self) -> None:
        if self.gate:
            threading.Thread(target=self._poll_gate, daemon=True).start()
        etcd = self.connect()
        number = 0
        while not self.stop.is_set():
            if not self.active.is_set():
                self.paused += 1
                while not self.active.is_set() and not self.stop.is_set():
                    time.sleep(0.05)
                if self.switch and not self.switched:
                    self.connect, self.switched = self.switch, True
                etcd = self._reconnect(etcd)
                continue
            key = f"{self.prefix}{number:06d}"
            etcd = self._put(etcd, key, self.value(number))
            number += 1
            time.sleep(0.02)
        self._close(etcd)

    def finish(self, timeout: float = 30.0) -> None:
        """Stops the writer and waits (bounded) for its last put."""
        self.stop.set()
        if self.is_alive():
            self.join(timeout)


# --------------------------------------------------------------------------- pods and the pod network

# The test image every node imports offline (tests/harness/upstream/images.py): Debian's busybox-static
# (sh, httpd, wget, ping, nslookup); no registry is reachable, so pods never pull it.
BUSYBOX_REPOSITORY = "kubeforge.local/busybox"
HTTPD_PORT = 8080
# A busybox container that serves its hostname (the pod's name) on HTTPD_PORT and says so in its log first.
HTTPD_SCRIPT = (f'mkdir -p /www && hostname > /www/index.html && echo "httpd: $(hostname) serves /www on :{HTTPD_PORT}" && '
                f"exec httpd -f -p {HTTPD_PORT} -h /www")
CONTROL_PLANE_TOLERATION = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
# kube-flannel as roles/flannel deploys it.
FLANNEL_NAMESPACE = "kube-flannel"
FLANNEL_CONFIGMAP = "kube-flannel-cfg"
FLANNEL_DAEMONSET = "kube-flannel-ds"
FLANNEL_VXLAN_DEVICE = "flannel.1"


def httpd_started_line(pod: str) -> str:
    """The first line an HTTPD_SCRIPT container logs."""
    return f"httpd: {pod} serves /www on :{HTTPD_PORT}"


def kubectl_json(host: str, *args: str, timeout: float = DOCKER_TIMEOUT) -> Any:
    """``kubectl ARGS -o json`` on a control-plane host, parsed."""
    return json.loads(host_kubectl(host, *args, "-o", "json", timeout=timeout).stdout)


def kubectl_apply(host: str, *objects: dict, timeout: float = DOCKER_TIMEOUT) -> None:
    """``kubectl apply`` of API objects (dicts) on a control-plane host."""
    host_kubectl(host, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}), timeout=timeout)


def node_images(host: str) -> list[str]:
    """The images containerd holds on a host, by their tags (crictl), sorted."""
    return sorted(tag for image in json.loads(docker_exec(host, "crictl", "images", "-o", "json"))["images"] for tag in image.get("repoTags") or [])


def busybox_image(hosts: list[str]) -> str:
    """``kubeforge.local/busybox:<tag>`` as containerd holds it on every host (crictl; the tag is the
    Debian version the harness built it from); the newest tag if several."""
    common: set[str] | None = None
    for host in hosts:
        tags = {tag for tag in node_images(host) if tag.startswith(BUSYBOX_REPOSITORY + ":")}
        common = tags if common is None else common & tags
    assert common, (f"no {BUSYBOX_REPOSITORY}:<tag> image in containerd on every host of {hosts} "
                    "(the container_runtime role imports $MOLECULE_PROJECT_DIRECTORY/.cache/images/busybox-<tag>.tar)")
    return sorted(common)[-1]


def busybox_pod(name: str, namespace: str, image: str, script: str, node: str | None = None, labels: dict | None = None) -> dict:
    """A one-container busybox Pod running ``sh -c script``, tolerating the control-plane taint, pinned
    to ``node`` (nodeName) when given; stopped within a second when deleted."""
    spec: dict[str, Any] = {
        "tolerations": [CONTROL_PLANE_TOLERATION],
        "terminationGracePeriodSeconds": 1,
        "enableServiceLinks": False,
        "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", script]}],
    }
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec}


def pod_ready(pod: dict) -> bool:
    """A pod Running and Ready, not being deleted."""
    status = pod.get("status") or {}
    return (not pod["metadata"].get("deletionTimestamp") and status.get("phase") == "Running"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []))


def wait_pods_ready(host: str, namespace: str, names: list[str], timeout: float = 120.0) -> dict[str, dict]:
    """Waits, bounded, until the named pods are Ready; {name: pod}."""
    pods: dict[str, dict] = {}

    def ready() -> bool:
        pods.clear()
        for pod in kubectl_json(host, "-n", namespace, "get", "pods")["items"]:
            if pod["metadata"]["name"] in names:
                pods[pod["metadata"]["name"]] = pod
        return set(pods) == set(names) and all(pod_ready(pod) for pod in pods.values())
    wait_for(ready, timeout=timeout, what=f"pods {names} Ready in {namespace}", interval=2)
    return dict(pods)


def create_namespace(host: str, name: str, timeout: float = 180.0) -> None:
    """A fresh namespace (one a failed run left is deleted first)."""
    delete_namespace(host, name, timeout)
    host_kubectl(host, "create", "namespace", name)


def delete_namespace(host: str, name: str, timeout: float = 180.0) -> None:
    """Deletes a namespace and waits, bounded, until it is gone."""
    host_kubectl(host, "delete", "namespace", name, "--ignore-not-found", "--wait=false")

    def gone() -> bool:
        run = host_kubectl(host, "get", "namespace", name, check=False)
        return run.returncode != 0 and "NotFound" in run.stderr
    wait_for(gone, timeout=timeout, what=f"namespace {name} deleted", interval=2)


def nodes_ready(host: str, names: list[str]) -> bool:
    """Every named node is registered and Ready."""
    ready = {node["metadata"]["name"] for node in kubectl_json(host, "get", "nodes")["items"]
             if any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions") or [])}
    return set(names) <= ready


def node_pod_cidrs(host: str) -> dict[str, str]:
    """{node: spec.podCIDR} (kube-controller-manager allocates them)."""
    return {node["metadata"]["name"]: node["spec"].get("podCIDR", "") for node in kubectl_json(host, "get", "nodes")["items"]}


def flannel_net_conf(host: str) -> dict:
    """net-conf.json of the kube-flannel-cfg ConfigMap: what flanneld runs (Backend.Type vxlan or host-gw)."""
    configmap = kubectl_json(host, "-n", FLANNEL_NAMESPACE, "get", "configmap", FLANNEL_CONFIGMAP)
    return json.loads(configmap["data"]["net-conf.json"])


def pod_network_problems(name: str, addresses: dict[str, str], net_conf: dict, pod_cidrs: dict[str, str]) -> list[str]:
    """What on host ``name`` does not match flannel's backend (``net_conf``); empty when it does.

    vxlan: the VXLAN device flannel.1 with the VNI and UDP port of the config, and a route to each peer's
    podCIDR through flannel.1 (gateway: the peer subnet's first address, onlink). host-gw: a route to each
    peer's podCIDR via the peer's node address. ``addresses`` maps every node to its address."""
    backend = net_conf["Backend"]["Type"]
    problems = []
    if backend == "vxlan":
        link = docker("exec", name, "ip", "-d", "link", "show", FLANNEL_VXLAN_DEVICE, check=False)
        vni, port = net_conf["Backend"].get("VNI", 1), net_conf["Backend"].get("Port", 8472)
        if link.returncode != 0:
            problems.append(f"{name}: no {FLANNEL_VXLAN_DEVICE} ({link.stderr.strip()})")
        elif not re.search(rf"\bvxlan id {vni}\b", link.stdout) or not re.search(rf"\bdstport {port}\b", link.stdout):
            problems.append(f"{name}: {FLANNEL_VXLAN_DEVICE} is not vxlan id {vni} dstport {port}: {link.stdout.strip()}")
    elif backend != "host-gw":
        return [f"flannel backend {backend!r} is neither vxlan nor host-gw"]
    routes = {route["dst"]: route for route in json.loads(docker_exec(name, "ip", "-j", "route", "show") or "[]")}
    for peer, cidr in sorted(pod_cidrs.items()):
        if peer == name:
            continue
        if not cidr:
            problems.append(f"node {peer} has no podCIDR")
            continue
        route = routes.get(cidr)
        if backend == "host-gw":
            want = {"gateway": addresses[peer]}
        else:
            want = {"gateway": str(ipaddress.ip_network(cidr).network_address), "dev": FLANNEL_VXLAN_DEVICE}
        if route is None or any(route.get(key) != value for key, value in want.items()):
            problems.append(f"{name}: route to {peer}'s {cidr} is {route}, want {want}")
    return problems
