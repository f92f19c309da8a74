# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fresh converge of the lab topology, the idempotent re-run and adding one worker, timed in one run.

The lab hosts (tests/harness/lab.sh: 3 control-plane+etcd hosts and a worker) plus one more host,
kf-w2, not in the inventory at first, all new. Then, with the lab's settings and artifacts and a fact
cache of the bench's own (empty at first: facts left by an earlier lab would spare the fresh
converge and the new worker their fact gathering):
  1. site.yml (the fresh converge: the reference of the ratios);
  2. site.yml again (changed=0 expected);
  3. add_nodes.yml for kf-w2, put in kube_node.
Prints each wall time, the changed count of runs 2 and 3 outside kf-w2, the ratios of runs 2 and 3
to run 1 against the goals (re-run <= 0.3x, add one worker <= 0.2x), how run 3 splits at the new
kubelet's start (before it: the new host's install; after it: mostly the node's own start, which the
run waits for), where each run's CPU time went (the controller, the new host, the other lab hosts, the rest of
the machine: dockerd and the like) and the slowest tasks of each run (ansible.posix.profile_tasks). The lab
hosts are removed at the end unless --keep.
Prints figures only.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = os.path.join(REPO, "inventory", "lab")
LAB_SH = os.path.join(REPO, "tests", "harness", "lab.sh")
NEW, NEW_ADDRESS = "kf-w2", "172.30.40.22"
GOALS = {"re-run": 0.3, "add one worker": 0.2}
SLOWEST = 6
IDLE_SECONDS = 5
# Where a lab host's container counts its CPU time: cgroup v1 (cpuacct.usage, ns), then v2 with the systemd or the
# cgroupfs driver (cpu.stat usage_usec).
CGROUP_CPU = ("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage", "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat",
              "/sys/fs/cgroup/docker/{id}/cpu.stat")


def inventory(directory: str, with_new_worker: bool) -> str:
    """The lab inventory (with kf-w2 in kube_node when ``with_new_worker``; its container runs from the
    start), in ``directory`` with the lab's group_vars; the credentials and artifacts lock land beside it."""
    with open(os.path.join(LAB, "hosts.yml"), encoding="utf-8") as handle:
        hosts = yaml.safe_load(handle)
    if with_new_worker:
        hosts["all"]["hosts"][NEW] = {"kubeforge_node_ip": NEW_ADDRESS}
        hosts["all"]["children"]["kube_node"]["hosts"][NEW] = None
    path = os.path.join(directory, "hosts.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(hosts, handle)
    if not os.path.exists(os.path.join(directory, "group_vars")):
        os.symlink(os.path.join(LAB, "group_vars"), os.path.join(directory, "group_vars"))
    return path


def run_playbook(playbook: str, inventory_path: str, *extra: str) -> tuple[float, str]:
    """ansible-playbook as an operator runs it, with the task profiler and the fact cache beside the inventory;
    (seconds, output). Fails on error."""
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks", "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": os.path.join(os.path.dirname(inventory_path), "facts")}
    # The lab's settings find the artifacts relative to inventory/lab: give this inventory the same ones.
    cache = os.path.join(REPO, ".cache")
    settings = ["-e", f"kubeforge_artifacts_dir={cache}/artifacts", "-e", f"kubeforge_images_dir={cache}/images"]
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory_path,
               os.path.join(REPO, playbook), *settings, *extra]
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{playbook} failed after {elapsed:.0f} s:\n{failures(done.stdout)}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def cpu_seconds(hosts: list[str]) -> dict[str, float]:
    """CPU seconds used so far: "controller" by this process's ended children (ansible-playbook, its workers and their
    docker calls), each lab host of ``hosts`` by its container (absent where its cgroup cannot be read), and
    "machine" by every core (/proc/stat)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open("/proc/stat", encoding="ascii") as handle:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(field) for field in handle.readline().split()[1:9])
    used = {"controller": children.ru_utime + children.ru_stime,
            "machine": (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")}
    listed = subprocess.run(["docker", "inspect", "--format", "{{.Name}} {{.Id}}", *hosts], capture_output=True, text=True, check=False)
    for line in listed.stdout.splitlines():
        name, container = line.lstrip("/").split()
        for pattern in CGROUP_CPU:
            try:
                with open(pattern.format(id=container), encoding="ascii") as handle:
                    text = handle.read()
            except OSError:
                continue
            usage = re.search(r"^usage_usec (\d+)", text, re.M)
            used[name] = int(usage.group(1)) / 1e6 if usage else int(text) / 1e9
            break
    return used


def cpu_split(before: dict, after: dict, new_host: str = "") -> str:
    """Where a run's CPU time went, from two cpu_seconds() snapshots (``new_host`` on its own)."""
    spent = {key: after[key] - before[key] for key in after if key in before}
    hosts = {key: value for key, value in spent.items() if key not in ("controller", "machine")}
    if not hosts:
        return f"controller {spent['controller']:.1f}, the lab hosts' share not readable here (no container cgroup found)"
    rest = spent["machine"] - spent["controller"] - sum(hosts.values())
    if new_host in hosts:
        lab = f"{new_host} {hosts[new_host]:.1f}, the other lab hosts {sum(hosts.values()) - hosts[new_host]:.1f}"
    else:
        lab = f"the lab hosts {sum(hosts.values()):.1f}"
    return f"controller {spent['controller']:.1f}, {lab}, the rest (dockerd, ...) {rest:.1f}"


def kubelet_started(host: str) -> float:
    """When the kubelet of lab host ``host`` started, on this process's monotonic clock (the lab's containers
    share the kernel's CLOCK_MONOTONIC, which systemd's ...Monotonic timestamps count in microseconds)."""
    shown = subprocess.run(["docker", "exec", host, "systemctl", "show", "--property", "ExecMainStartTimestampMonotonic", "kubelet"],
                           capture_output=True, text=True, check=True).stdout
    return int(shown.strip().split("=", 1)[1]) / 1e6


def failures(output: str) -> str:
    """What a failed run says: each failed task with its result (up to the next task), then the recap."""
    found = re.findall(r"^TASK \[[^\n]*\n(?:(?!^TASK \[|^PLAY RECAP).*\n)*?^fatal: (?:(?!^TASK \[|^PLAY RECAP).*\n)*", output, re.M)
    recap = output.rsplit("PLAY RECAP", 1)[-1].split("\n\n", 1)[0]
    return "\n".join(found)[-8000:] + "\nPLAY RECAP" + recap


def changed(output: str) -> dict[str, int]:
    """{host: changed} from the PLAY RECAP."""
    recap = output.rsplit("PLAY RECAP", 1)[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", recap, re.M)}


def slowest(output: str) -> list[str]:
    """The profiler's slowest tasks (its summary after the recap)."""
    summary = output.rsplit("PLAY RECAP", 1)[-1]
    return [line.strip() for line in summary.splitlines() if re.search(r"-{3,} \d+\.\d+s$", line.strip())][:SLOWEST]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="the node image (make image writes its name to .cache/node-image)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the lab hosts running at the end, and their inventory (its credentials and facts) in place")
    parser.add_argument("--logs", help="a directory to write each run's whole output to (every task's time)")
    options = parser.parse_args()

    env = {**os.environ, "LAB_EXTRA_HOSTS": f"{NEW}:{NEW_ADDRESS}"}
    subprocess.run(["bash", LAB_SH, "down"], env=env, check=True)
    directory = tempfile.mkdtemp(prefix="kubeforge-bench-converge-")
    try:
        subprocess.run(["bash", LAB_SH, "up", options.image], env=env, check=True)
        before = inventory(directory, with_new_worker=False)
        with open(before, encoding="utf-8") as handle:
            hosts = [*yaml.safe_load(handle)["all"]["hosts"], NEW]
        cpu = [cpu_seconds(hosts)]
        fresh, fresh_out = run_playbook("site.yml", before)
        cpu.append(cpu_seconds(hosts))
        rerun, rerun_out = run_playbook("site.yml", before)
        cpu.append(cpu_seconds(hosts))
        # What the running cluster itself uses, which an add shares the machine's cores with and a fresh converge
        # only in its second half.
        time.sleep(IDLE_SECONDS)
        idle = cpu_seconds(hosts)
        after = inventory(directory, with_new_worker=True)
        cpu.append(cpu_seconds(hosts))
        added, added_out = run_playbook("playbooks/add_nodes.yml", after, "-e", f"add_nodes_hosts={NEW}")
        cpu.append(cpu_seconds(hosts))
        after_kubelet = time.monotonic() - kubelet_started(NEW)
    finally:
        if options.keep:
            print(f"Kept: the lab hosts and their inventory {directory}", file=sys.stderr)
        else:
            subprocess.run(["bash", LAB_SH, "down"], env=env, check=False)
            shutil.rmtree(directory, ignore_errors=True)

    if options.logs:
        os.makedirs(options.logs, exist_ok=True)
        for name, output in (("fresh", fresh_out), ("rerun", rerun_out), ("add-worker", added_out)):
            with open(os.path.join(options.logs, f"{name}.log"), "w", encoding="utf-8") as handle:
                handle.write(output)
    others = {host: count for host, count in changed(added_out).items() if host != NEW}
    print(f"Lab topology (3 control-plane+etcd hosts, 1 worker), {os.cpu_count()} cores; one more worker added")
    print(f"  fresh converge (site.yml)      {fresh:7.1f} s   reference")
    for name, seconds, output in (("re-run", rerun, rerun_out), ("add one worker", added, added_out)):
        ratio = seconds / fresh
        verdict = "meets" if ratio <= GOALS[name] else "misses"
        print(f"  {name:<30} {seconds:7.1f} s   {ratio:.2f}x fresh ({verdict} the goal <= {GOALS[name]}x)")
    print(f"  add one worker, until the new kubelet starts {added - after_kubelet:.1f} s; from then to the run's end "
          f"{after_kubelet:.1f} s (the node registers, starts flannel and turns Ready; the hosts that stay learn its address)")
    print(f"  re-run changed: {sum(changed(rerun_out).values())}; add one worker changed on the other hosts: {others}")
    cores = os.cpu_count() or 1
    print(f"CPU seconds of each run ({cores} cores):")
    machine = {}
    for name, seconds, start, end, new_host in (("fresh converge", fresh, cpu[0], cpu[1], ""), ("re-run", rerun, cpu[1], cpu[2], ""),
                                                ("add one worker", added, cpu[3], cpu[4], NEW)):
        machine[name] = end["machine"] - start["machine"]
        print(f"  {name:<16} {cpu_split(start, end, new_host)}; the machine {machine[name] / (seconds * cores):.0%} busy")
    idle_rate = (idle["machine"] - cpu[2]["machine"]) / IDLE_SECONDS
    print(f"  the converged cluster, idle for {IDLE_SECONDS} s before the add: {cpu_split(cpu[2], idle)}; "
          f"{idle_rate:.2f} of the {cores} cores, {idle_rate * added:.1f} CPU seconds over the add's time")
    own = machine["add one worker"] - idle_rate * added
    print(f"  add one worker's own CPU seconds (its total {machine['add one worker']:.1f} less the idle cluster's {idle_rate * added:.1f}): "
          f"{own:.1f}, {own / machine['fresh converge']:.2f}x the fresh converge's {machine['fresh converge']:.1f}")
    # The add's floor on this machine without less work: no wait, no idle core.
    print(f"  add one worker with all {cores} cores busy throughout: {machine['add one worker'] / cores:.1f} s; "
          f"the goal: {GOALS['add one worker'] * fresh:.1f} s")
    for name, output in (("fresh converge", fresh_out), ("re-run", rerun_out), ("add one worker", added_out)):
        print(f"Slowest tasks, {name}:")
        for line in slowest(output):
            print(f"  {line}")


if __name__ == "__main__":
    main()
