# SPDX-License-Identifier: GPL-3.0-or-later
"""The control_plane role's encryption tasks (what playbooks/rotate_encryption_key.yml runs for its
prune step) on three control-plane hosts that are this machine (local connection), against a fake
etcd JSON gateway on loopback that the apiserver's --etcd-servers points at (kube_apiserver_extra_args).

- a key still in use: the prune fails naming the key and the count, before the controller's key
  file or any host's encryption configuration changes;
- nothing under the old key: the key file keeps it as retired, and no host's configuration is
  written by the tasks themselves (only the rolling restart writes it, one host at a time; the play
  ends before the handlers here);
- a new cluster: one key, saved on the controller before any host could use it."""
from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
COLLECTION = os.path.join(REPO, ".cache", "collections", "ansible_collections", "kubeforge", "cluster")

pytestmark = pytest.mark.skipif(not (os.path.exists(PLAYBOOK) and os.path.exists(COLLECTION)),
                                reason="needs ansible-playbook and `make collection`")

NEW = {"name": "key-new", "secret": base64.b64encode(b"n" * 32).decode()}
OLD = {"name": "key-old", "secret": base64.b64encode(b"o" * 32).decode()}
# The role's encryption tasks as the playbook's prune step includes them; the play ends before the
# handlers (the rolling restart), which this machine has no services for.
PRUNE_PLAY = [{
    "name": "Prune", "hosts": "kube_control_plane", "gather_facts": False,
    "tasks": [
        {"name": "Drop the keys nothing is under any more", "ansible.builtin.include_role": {
            "name": "kubeforge.cluster.control_plane", "tasks_from": "encryption"},
         "vars": {"control_plane_encryption_key_action": "prune"}},
        {"name": "Stop before the rolling restart", "ansible.builtin.meta": "end_play"},
    ],
}]


class Gateway(http.server.BaseHTTPRequestHandler):
    """etcd's /v3/kv/range, unpaginated, from the server's ``store``."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802  # http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v3/kv/range", self.path
        start, end = base64.b64decode(body["key"]), base64.b64decode(body.get("range_end", ""))
        kvs = [{"key": base64.b64encode(k).decode(), "value": base64.b64encode(v).decode()}
               for k, v in sorted(self.server.store.items()) if start <= k < end]
        self.server.ranges.append(start)
        data = json.dumps({"header": {"revision": "7"}, "kvs": kvs, "count": str(len(kvs))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def etcd():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    server.store, server.ranges = {}, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def cluster(tmp_path, etcd):
    """An inventory of three local control-plane hosts, the controller's key file [new, old], one host configuration."""
    inventory = tmp_path / "inv"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    os.symlink(os.path.join(REPO, "inventory", "sample", "group_vars", "all.yml"), inventory / "group_vars" / "all" / "cluster.yml")
    (inventory / "group_vars" / "all" / "overrides.yml").write_text(yaml.safe_dump({
        "kube_apiserver_extra_args": {"etcd-servers": f"http://127.0.0.1:{etcd.server_address[1]}"}}))
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {name: {**local, "ansible_host": f"192.168.56.1{n}"} for n, name in enumerate(("m1", "m2", "m3"), 1)}
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts, "children": {
        "etcd": {"hosts": dict.fromkeys(hosts)}, "kube_control_plane": {"hosts": dict.fromkeys(hosts)},
        "k8s_cluster": {"children": {"kube_control_plane": None}}}}}))
    (inventory / "credentials").mkdir(mode=0o700)
    keys_file = inventory / "credentials" / "encryption-keys.json"
    keys_file.write_text(json.dumps({"keys": [NEW, OLD]}, indent=2) + "\n")
    keys_file.chmod(0o600)
    config = tmp_path / "etc-kubernetes" / "encryption-config.yaml"
    config.parent.mkdir()
    config.write_text("# what the apiservers run: key-new first, key-old\n")
    (tmp_path / "play.yml").write_text(yaml.safe_dump(PRUNE_PLAY, sort_keys=False))
    return {"inventory": inventory / "hosts.yml", "keys_file": keys_file, "config": config, "play": tmp_path / "play.yml"}


def run(cluster, action: str = "prune") -> tuple[int, str]:
    play = cluster["play"].with_name(f"{action}.yml")
    play.write_text(yaml.safe_dump([{**PRUNE_PLAY[0], "name": action, "tasks": [
        {**PRUNE_PLAY[0]["tasks"][0], "vars": {"control_plane_encryption_key_action": action}}, PRUNE_PLAY[0]["tasks"][1]]}], sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CACHE_PLUGIN": "memory"}
    done = subprocess.run([PLAYBOOK, str(play), "-i", str(cluster["inventory"]),
                           "-e", f"control_plane_config_dir={cluster['config'].parent}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    # The YAML callback folds long messages: the output with its whitespace collapsed.
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sealed(key: dict) -> bytes:
    return f"k8s:enc:secretbox:v1:{key['name']}:".encode() + os.urandom(40)


def test_a_prune_while_a_secret_is_under_the_old_key_fails_before_any_change(cluster, etcd):
    etcd.store.update({b"/registry/secrets/default/before-rotation": sealed(OLD), b"/registry/secrets/default/after": sealed(NEW),
                       b"/registry/secrets/kube-system/plain": b"k8s\x00plain"})
    before = {path: digest(cluster[path]) for path in ("keys_file", "config")}
    code, out = run(cluster)
    assert code != 0, out
    assert "refusing to drop encryption keys still in use" in out and "key-old: 1 (1 secrets)" in out, out
    assert {path: digest(cluster[path]) for path in ("keys_file", "config")} == before
    assert etcd.ranges == [b"/registry/secrets/"]  # the apiserver's etcd, read once, on one host
    assert OLD["secret"] not in out and NEW["secret"] not in out


def test_a_prune_with_nothing_under_the_old_key_retires_it_and_leaves_the_hosts_to_the_rolling_restart(cluster, etcd):
    etcd.store.update({b"/registry/secrets/default/a": sealed(NEW), b"/registry/secrets/default/b": b"k8s\x00plain"})
    config_before = digest(cluster["config"])
    code, out = run(cluster)
    assert code == 0, out
    assert "secrets: 2 in etcd, 1 identity (plain), 1 under secretbox:key-new" in out, out
    saved = json.loads(cluster["keys_file"].read_text())
    assert saved["keys"] == [NEW]
    [retired] = saved["retired"]
    assert {key: retired[key] for key in ("name", "secret")} == OLD and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", retired["retired"])
    assert os.stat(cluster["keys_file"]).st_mode & 0o777 == 0o600
    # Compared on every host, written on none: the rolling restart writes it, one host at a time.
    assert digest(cluster["config"]) == config_before
    assert re.search(r"TASK \[kubeforge.cluster.control_plane : Compare the encryption configuration[^\]]*\]\W+(changed: \[m\d\] ){3}", out), out


def test_a_new_cluster_without_a_key_file_gets_one_key_kept_on_the_controller_first(cluster):
    """The first run (action ensure, no key file on the controller yet): one new key, written to the
    controller with mode 0600, never shown. The hosts' configuration is written later: by the role's
    configure.yml where there is none, by the rolling restart where it differs (reported here)."""
    cluster["keys_file"].unlink()
    cluster["config"].unlink()
    code, out = run(cluster, "ensure")
    assert code == 0, out
    saved = json.loads(cluster["keys_file"].read_text())
    [key] = saved["keys"]
    assert len(base64.b64decode(key["secret"])) == 32 and "retired" not in saved, saved
    assert os.stat(cluster["keys_file"]).st_mode & 0o777 == 0o600
    assert not cluster["config"].exists() and key["secret"] not in out
    assert re.search(r"TASK \[kubeforge.cluster.control_plane : Compare the encryption configuration[^\]]*\]\W+(changed: \[m\d\] ){3}", out), out
