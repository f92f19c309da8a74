# SPDX-License-Identifier: GPL-3.0-or-later
"""Rotating the encryption-at-rest key cannot destroy secrets (issue 10, section 6), tried the way an
operator did on the lab with real apiservers: a Secret written, playbooks/rotate_encryption_key.yml
(the new key becomes the encrypting one), then the rewrite forgotten and the prune run:

- the prune fails with the refusal naming the old key and how many secrets are still under it,
  before any change: the controller's key file, every host's encryption configuration (checksums)
  and every apiserver process are as they were, and every apiserver is ready;
- the rewrite step moves every secret to the new key (read raw from etcd);
- the prune then succeeds: the configuration is written one host at a time, each apiserver started
  again before the next host's file changes; the old key stays in the key file as retired; every
  Secret reads, the ones written before the rotation included.

Run by side_effect.yml (pytest on the controller) with the other fault tests; it leaves the cluster
on the new key, healthy, with its namespace deleted."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import uuid

from kubeforge_verify import (ansible_env, apiserver_request, create_namespace, credentials_dir, delete_namespace, docker_exec,
                              host_kubectl, inventory_file, kubectl_json, playbook, playbook_command, project_dir, unit_active,
                              unit_property, wait_for)

ROTATE = os.path.join(project_dir(), "playbooks", "rotate_encryption_key.yml")
CONTROL_PLANE = {"site-cp1": "172.30.41.11", "site-cp2": "172.30.41.12", "site-cp3": "172.30.41.13"}
KUBECTL = "site-cp1"
NAMESPACE = "kubeforge-rotation"
CONFIG = "/etc/kubernetes/encryption-config.yaml"
# What the apiserver stores for a secretbox-encrypted value (plugins/module_utils/_control_plane.py).
SEALED = "k8s:enc:secretbox:v1:"
RECOVERY_TIMEOUT = 240
# systemd's "Started <unit>" journal message ID (sd-messages.h).
UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"


def keys_file() -> dict:
    with open(os.path.join(credentials_dir(), "encryption-keys.json"), encoding="utf-8") as handle:
        return json.load(handle)


def checksums() -> dict[str, str]:
    return {name: docker_exec(name, "sha256sum", CONFIG).split()[0] for name in CONTROL_PLANE}


def apiserver_pids() -> dict[str, str]:
    return {name: unit_property(name, "kube-apiserver", "MainPID") for name in CONTROL_PLANE}


def every_apiserver_ready() -> None:
    wait_for(lambda: all(unit_active(name, "kube-apiserver") and apiserver_request(address, "/readyz")[0] == 200
                         for name, address in CONTROL_PLANE.items()),
             timeout=RECOVERY_TIMEOUT, what="every apiserver ready", interval=2)


def secret_keys() -> dict[str, str]:
    """{etcd key: the encryption key's name, or "identity"} of every Secret, read raw from etcd on site-cp1
    (etcdctl with the etcd role's profile: endpoints and client certificate)."""
    read = json.loads(docker_exec(KUBECTL, "bash", "-lc", "etcdctl get /registry/secrets/ --prefix -w json"))
    found = {}
    for kv in read.get("kvs") or []:
        value = base64.b64decode(kv["value"]).decode("latin-1")
        found[base64.b64decode(kv["key"]).decode()] = value[len(SEALED):].split(":", 1)[0] if value.startswith(SEALED) else "identity"
    return found


def create_secret(name: str) -> str:
    value = f"kubeforge-{name}-{uuid.uuid4().hex}"
    host_kubectl(KUBECTL, "-n", NAMESPACE, "create", "secret", "generic", name, f"--from-literal=probe={value}")
    return value


def read_secret(name: str) -> str:
    data = host_kubectl(KUBECTL, "-n", NAMESPACE, "get", "secret", name, "-o", "jsonpath={.data.probe}").stdout
    return base64.b64decode(data).decode()


def started_at(host: str, since: float) -> list[float]:
    """Wall-clock times kube-apiserver started on a host since ``since`` (the containers share the machine's clock)."""
    out = docker_exec(host, "journalctl", "--no-pager", "--output=json", f"--since=@{int(since)}", "UNIT=kube-apiserver.service")
    return [int(entry["__REALTIME_TIMESTAMP"]) / 1e6 for entry in map(json.loads, (line for line in out.splitlines() if line.startswith("{")))
            if entry.get("MESSAGE_ID") == UNIT_STARTED]


def test_a_prune_before_the_rewrite_is_refused_and_the_rewrite_then_prune_keep_every_secret():
    every_apiserver_ready()
    create_namespace(KUBECTL, NAMESPACE)
    try:
        [old] = [key["name"] for key in keys_file()["keys"]]
        # The keys retired by earlier rotations (a re-run of this test on the same cluster).
        retired_before = [key["name"] for key in keys_file().get("retired", [])]
        values = {"before-rotation": create_secret("before-rotation")}
        assert secret_keys()[f"/registry/secrets/{NAMESPACE}/before-rotation"] == old

        # The rotation: a new key, first from now on; the old one still decrypts.
        playbook(inventory_file(), ROTATE)
        new, second = [key["name"] for key in keys_file()["keys"]]
        assert second == old and new != old
        values["after-rotation"] = create_secret("after-rotation")
        stored = secret_keys()
        assert stored[f"/registry/secrets/{NAMESPACE}/after-rotation"] == new
        under_old = sum(1 for key in stored.values() if key == old)
        assert under_old >= 1

        # The prune, rewrite forgotten: refused before anything changes.
        sums, pids, key_file = checksums(), apiserver_pids(), keys_file()
        run = subprocess.run(playbook_command(inventory_file(), ROTATE, "-e", "rotate_encryption_key_step=prune"), capture_output=True,
                             text=True, env=ansible_env(), check=False, timeout=1800)
        # The YAML callback folds long messages: compare with the whitespace of the output collapsed.
        output = " ".join((run.stdout + run.stderr).split())
        assert run.returncode != 0, output[-6000:]
        assert "refusing to drop encryption keys still in use" in output, output[-6000:]
        named = re.search(rf"{re.escape(old)}: (\d+) \((\d+) secrets\)", output)
        assert named and named.group(1) == named.group(2), output[-6000:]
        # Secrets under the old key can only have been deleted since they were counted (new writes use the new key).
        assert 1 <= int(named.group(1)) <= under_old, (named.group(0), under_old)
        assert (checksums(), apiserver_pids(), keys_file()) == (sums, pids, key_file)
        every_apiserver_ready()
        assert read_secret("before-rotation") == values["before-rotation"]

        # The rewrite step: every secret under the new key, counted and shown.
        output = " ".join(playbook(inventory_file(), ROTATE, "-e", "rotate_encryption_key_step=rewrite").split())
        assert re.search(r"secrets: \d+ in etcd, [^;']*; [1-9]\d* rewritten", output), output[-6000:]
        assert set(secret_keys().values()) == {new}, secret_keys()
        assert checksums() == sums

        # The prune now goes through, one host at a time; the old key is kept as retired on the controller.
        since = time.time() - 1
        playbook(inventory_file(), ROTATE, "-e", "rotate_encryption_key_step=prune")
        kept = keys_file()
        assert [key["name"] for key in kept["keys"]] == [new]
        assert [key["name"] for key in kept["retired"]] == [*retired_before, old] and kept["retired"][-1]["retired"], kept["retired"]
        configs = {name: docker_exec(name, "cat", CONFIG) for name in CONTROL_PLANE}
        assert len(set(configs.values())) == 1 and f"name: {new}" in configs["site-cp1"] and f"name: {old}" not in configs["site-cp1"]
        written = {name: float(docker_exec(name, "stat", "-c", "%.9Y", CONFIG)) for name in CONTROL_PLANE}
        started = {name: started_at(name, since) for name in CONTROL_PLANE}
        order = sorted(CONTROL_PLANE)
        for name in order:
            assert started[name], f"kube-apiserver did not restart on {name}"
        for previous, following in zip(order, order[1:]):
            assert written[following] > max(started[previous]), (
                f"{following}'s configuration was written before {previous}'s apiserver started again", written, started)
        every_apiserver_ready()

        # Every Secret reads (the list fails on any the apiserver cannot decrypt), those written before the rotation included.
        assert kubectl_json(KUBECTL, "get", "secrets", "-A")["items"]
        for name, value in values.items():
            assert read_secret(name) == value, name
    finally:
        delete_namespace(KUBECTL, NAMESPACE)
    every_apiserver_ready()
