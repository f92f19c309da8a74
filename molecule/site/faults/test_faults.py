# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault injection on the converged site scenario: run by side_effect.yml (molecule's side_effect
step), never by verify. Each test puts back what it changed and waits, bounded, until the cluster
is healthy again, so the verify step after it checks the cluster as converged:

- one apiserver stopped, then a whole control-plane host stopped: the HA endpoint answers on every
  remaining node; both come back healthy;
- a control-plane host leaving kube_control_plane (the ha_nginx phase alone): every node's nginx
  gets the new upstream list by a reload, and the old list back the same way;
- a kube-scheduler flag changed: only kube-scheduler restarts, one host at a time; then the
  scenario's settings are converged again (the control_plane phase).

The tests run in file order."""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

from kubeforge_verify import (apiserver_request, docker, docker_exec, edited_inventory, inventory_file, playbook, probe, project_dir, recap,
                              unit_active, unit_properties, wait_for)

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = os.path.join(project_dir(), "site.yml")
HA_NGINX = os.path.join(project_dir(), "playbooks", "phases", "ha_nginx.yml")
CONTROL_PLANE = {"site-cp1": "172.30.41.11", "site-cp2": "172.30.41.12", "site-cp3": "172.30.41.13"}
HOSTS = {**CONTROL_PLANE, "site-w1": "172.30.41.21"}
SERVICES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
SCHEDULER_UNIT = "/etc/systemd/system/kube-scheduler.service"
# Seconds a restarted service or host has to be healthy again.
RECOVERY_TIMEOUT = 240


def answers(name: str) -> bool:
    """The HA endpoint on a host answers /readyz with 200 ok (authenticated, the name verified)."""
    status, body = probe(name, "/readyz")
    return (status, body.strip()) == (200, "ok")


def answers_every_time(name: str, times: int = 6) -> None:
    for attempt in range(times):
        status, body = probe(name, "/readyz")
        assert (status, body.strip()) == (200, "ok"), f"{name}, request {attempt + 1}: {status} {body[:500]}"


def healthy_everywhere() -> bool:
    return all(answers(name) for name in HOSTS)


def apiserver_ready(name: str) -> bool:
    """The apiserver of a host, on its own address, from the controller (admin client certificate)."""
    return apiserver_request(CONTROL_PLANE[name], "/readyz")[0] == 200


def all_healthy(timeout: float = RECOVERY_TIMEOUT) -> None:
    """etcd and every control-plane service active on every control-plane host, every apiserver
    ready on its own address, the HA endpoint answering on every host; each within the timeout."""
    wait_for(lambda: all(unit_active(name, unit) for name in CONTROL_PLANE for unit in ("etcd", *SERVICES)), timeout=timeout,
             what="etcd and the control-plane services active on every control-plane host", interval=2)
    wait_for(lambda: all(apiserver_ready(name) for name in CONTROL_PLANE), timeout=timeout, what="every apiserver ready", interval=2)
    wait_for(healthy_everywhere, timeout=timeout, what="the HA endpoint on every host", interval=2)


@pytest.fixture(scope="module", autouse=True)
def healthy_before_and_after():
    all_healthy()
    yield
    all_healthy()


# --------------------------------------------------------------------------- HA access

def test_the_ha_endpoint_answers_everywhere_with_one_apiserver_stopped():
    docker_exec("site-cp2", "systemctl", "stop", "kube-apiserver")
    try:
        assert not unit_active("site-cp2", "kube-apiserver")
        for name in HOSTS:
            answers_every_time(name)
    finally:
        docker_exec("site-cp2", "systemctl", "start", "kube-apiserver")
    wait_for(lambda: apiserver_ready("site-cp2"), timeout=RECOVERY_TIMEOUT, what="site-cp2's apiserver back", interval=2)
    all_healthy()


def test_the_ha_endpoint_answers_on_every_remaining_host_with_a_control_plane_host_stopped():
    docker("stop", "site-cp3")
    try:
        for name in ("site-cp1", "site-cp2", "site-w1"):
            # The stopped host may have led etcd: the remaining members elect a leader within
            # seconds, and the apiservers report ready again; from then on every request is answered.
            wait_for(lambda name=name: answers(name), timeout=30, what=f"{name}'s HA endpoint with site-cp3 stopped", interval=1)
            answers_every_time(name)
    finally:
        docker("start", "site-cp3")
    wait_for(lambda: apiserver_ready("site-cp3"), timeout=RECOVERY_TIMEOUT, what="site-cp3's apiserver back", interval=2)
    all_healthy()


def without_site_cp3(inventory: dict) -> None:
    """site-cp3 taken out of kube_control_plane: what an operator edits."""
    del inventory["kube_control_plane"]["hosts"]["site-cp3"]


def test_the_upstream_list_follows_kube_control_plane_by_reload_only():
    """site-cp3 leaves kube_control_plane (the ha_nginx phase alone), then comes back: every node's
    nginx gets the new upstream list by a reload, the master process stays."""
    masters = {name: docker_exec(name, "systemctl", "show", "nginx", "-p", "MainPID", "--value").strip() for name in HOSTS}
    directory = tempfile.mkdtemp(prefix="kubeforge-site-ha-")
    try:
        counts = recap(playbook(edited_inventory(directory, SCENARIO, without_site_cp3), HA_NGINX))
        assert {name: c["changed"] > 0 for name, c in counts.items()} == {name: True for name in HOSTS}, counts
        for name in HOSTS:
            assert "172.30.41.13:6443" not in docker_exec(name, "cat", "/etc/nginx/nginx.conf"), name
            # nginx applies a reload asynchronously: wait, bounded, until it answers, then every time.
            wait_for(lambda name=name: answers(name), timeout=30, what=f"{name}'s HA endpoint after the reload", interval=1)
            answers_every_time(name, 3)
    finally:
        playbook(inventory_file(), HA_NGINX)
        shutil.rmtree(directory, ignore_errors=True)
    for name in HOSTS:
        assert "server 172.30.41.13:6443" in docker_exec(name, "cat", "/etc/nginx/nginx.conf"), name
        assert docker_exec(name, "systemctl", "show", "nginx", "-p", "MainPID", "--value").strip() == masters[name], f"nginx restarted on {name}"
    wait_for(healthy_everywhere, timeout=60, what="the HA endpoint on every host", interval=1)


# --------------------------------------------------------------------------- one-host-at-a-time restarts

def service_states() -> dict:
    return {name: {service: unit_properties(name, service, "MainPID", "ActiveState", "ActiveEnterTimestampMonotonic",
                                            "InactiveEnterTimestampMonotonic")
                   for service in SERVICES} for name in CONTROL_PLANE}


def test_changing_a_scheduler_flag_restarts_only_the_scheduler_one_host_at_a_time():
    unit = docker_exec("site-cp1", "cat", SCHEDULER_UNIT)
    level = 4 if "--v=3" in unit else 3  # a value different from the current one, so the test can be re-run
    before = service_states()
    try:
        playbook(inventory_file(), SITE, "--tags", "control_plane", "-e", json.dumps({"kube_scheduler_extra_args": {"v": level}}))
        after = service_states()
        units = {name: docker_exec(name, "cat", SCHEDULER_UNIT) for name in CONTROL_PLANE}
    finally:
        # Back to the scenario's settings: the same phase, converged with them.
        playbook(inventory_file(), SITE, "--tags", "control_plane")
    for name in CONTROL_PLANE:
        assert f"--v={level}" in units[name], name
        scheduler_before, scheduler_after = before[name]["kube-scheduler"], after[name]["kube-scheduler"]
        assert scheduler_after["MainPID"] != scheduler_before["MainPID"], f"kube-scheduler not restarted on {name}"
        assert int(scheduler_after["ActiveEnterTimestampMonotonic"]) > int(scheduler_before["ActiveEnterTimestampMonotonic"]), name
        assert scheduler_after["ActiveState"] == "active", name
        for service in ("kube-apiserver", "kube-controller-manager"):
            for prop in ("MainPID", "ActiveEnterTimestampMonotonic"):
                assert after[name][service][prop] == before[name][service][prop], f"{service} restarted on {name} ({prop})"
    # One host at a time: each host's scheduler stopped only after the previous one was running again.
    order = sorted(CONTROL_PLANE)
    for previous, following in zip(order, order[1:]):
        assert int(after[following]["kube-scheduler"]["InactiveEnterTimestampMonotonic"]) > \
            int(after[previous]["kube-scheduler"]["ActiveEnterTimestampMonotonic"]), (previous, following)
    # The converge put the scenario's flag back.
    for name in CONTROL_PLANE:
        assert f"--v={level}" not in docker_exec(name, "cat", SCHEDULER_UNIT), name
    all_healthy()
