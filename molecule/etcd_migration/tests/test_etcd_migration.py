# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/etcd_migrate.yml on a single etcd (mig-1) holding 20,000 keys, some with leases, with a
writer running throughout: first both methods in check mode, which change nothing; then by grow
(interrupted once, then finished by a second run), then, after the scenario puts a single etcd back,
by mirror, and once more by mirror on the same hosts with the controller killed during the copy.
Each time: no key lost or stale, leased keys still expire, the revision never goes backwards, 3
voting members, and a second run changes nothing. Every cluster built on these hosts has an ID of
its own (a new token each time), and a copy left running by a killed controller is never run twice
at once (the host lock).

The tests run in file order; each one changes the cluster."""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from kubeforge_verify import (Writer, ansible_env, changed_counts, check_run_changes_nothing, credentials_dir, docker, docker_exec, edited_inventory,
                              etcd_data_directories, host_state, inventory_file, playbook, playbook_command, project_dir, unit_active, wait_for)
from seed import KEYS, LEASE_TTL, LEASED, client, endpoints, seed, seed_key, seed_value

PROJECT = project_dir()
SCENARIO = os.path.join(PROJECT, "molecule", "etcd_migration")
MIGRATE = os.path.join(PROJECT, "playbooks", "etcd_migrate.yml")
ALL = ["mig-1", "mig-2", "mig-3"]
SHORT_TTL = 100  # seconds: outlives the copy, expires within the test
ETCD_BIN = os.path.join(PROJECT, ".cache", "etcd", "bin")
# A put is retried for this long on the writer's current endpoints (its client's retries); one
# still failing then is a write lost to the operator.
WRITER_RETRY_SECONDS = 10.0
# The host lock the etcd modules take (module_utils/_lock.py) and the controller's token file.
ETCD_LOCK = "/run/lock/kubeforge/etcd.lock"
TOKEN_FILE = "etcd-cluster-token.json"
# The ID of each cluster built on these hosts, by the test that built it: none may repeat.
CLUSTER_IDS: dict[str, str] = {}


def everything(etcd, prefix):
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return {kv.key.decode(): (kv.value.decode(), kv.lease) for page in etcd.pages(prefix, end) for kv in page.kvs}


def writer_thread(urls, gate=False, switched_urls=None):
    """Puts one key after another under /writer/, as an apiserver would (kubeforge_verify.Writer).
    With ``gate`` it writes only while kube-apiserver.service is active on mig-1 (mirror: the
    playbook stops the writers for the final copy), and after such a pause it writes to
    ``switched_urls`` (the switch)."""
    return Writer(lambda: client(urls), "/writer/", lambda number: f"w{number}",
                  gate=(lambda: unit_active("mig-1", "kube-apiserver")) if gate else None,
                  switch=(lambda: client(switched_urls)) if switched_urls else None, retry_seconds=WRITER_RETRY_SECONDS)


def cluster_id(names) -> str:
    """The ID (hexadecimal, as the role names directories after it) of the cluster answering on these hosts."""
    return format(client(endpoints(names)).status()["cluster_id"], "x")


def record_cluster(label: str, names) -> str:
    """Records the ID of the cluster on ``names`` as built by ``label``; fails if an earlier cluster had it."""
    found = cluster_id(names)
    assert found not in CLUSTER_IDS.values(), f"{label}: cluster ID {found} again, as {CLUSTER_IDS}"
    CLUSTER_IDS[label] = found
    return found


def add_mig_2_and_3(inventory):
    """mig-2 and mig-3 added to the etcd group: what an operator edits."""
    inventory["etcd"]["hosts"].update({name: {"ansible_connection": "community.docker.docker"} for name in ("mig-2", "mig-3")})


@pytest.fixture(scope="module")
def workdir():
    directory = tempfile.mkdtemp(prefix="kubeforge-etcd-migration-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def inventory(workdir):
    return edited_inventory(workdir, SCENARIO, add_mig_2_and_3)


def short_lived_keys(etcd):
    """50 keys on a lease of SHORT_TTL seconds, written just before a migration; (created at, keys)."""
    lease = etcd.lease_grant(SHORT_TTL)[0]
    keys = [f"/short/{n:02d}" for n in range(50)]
    for key in keys:
        etcd.put(key, "expires", lease)
    return time.monotonic(), keys


def check_migrated(writer, short, final_reads):
    """What every migration must give, read on each member of the final cluster."""
    members = client(endpoints(ALL)).member_list()[0]
    assert sorted(m.name for m in members) == ALL and not [m for m in members if m.is_learner], members
    reads = {}
    for name in ALL:
        etcd = client(endpoints([name]))
        reads[name] = (everything(etcd, "/seed/"), everything(etcd, "/writer/"), everything(etcd, "/short/"))
    first = reads["mig-1"]
    for name in ALL:  # one data set on every member
        assert {k: v for k, (v, _l) in reads[name][0].items()} == {k: v for k, (v, _l) in first[0].items()}, name
        assert {k: v for k, (v, _l) in reads[name][1].items()} == {k: v for k, (v, _l) in first[1].items()}, name
    seeds, writes, shorts = first
    # Not a key lost, not one stale: the seed, and every put the writer saw acknowledged.
    assert len(seeds) == KEYS
    assert [k for k in (seed_key(n) for n in range(KEYS)) if seeds.get(k, ("",))[0] != seed_value(int(k[6:]))] == []
    assert [k for k, v in writer.written.items() if writes.get(k, ("",))[0] != v] == []
    assert set(writes) - set(writer.written) <= writer.uncertain
    assert writer.failed == [], writer.failed[:5]
    # Leased keys keep a lease that counts down.
    leased = {seed_key(n) for n in range(LEASED)}
    assert all(seeds[k][1] for k in leased) and not any(seeds[k][1] for k in list(seeds)[LEASED:LEASED + 100])
    etcd = client(endpoints(ALL))
    ttls = {etcd.lease_time_to_live(lease)[0] for lease in {seeds[k][1] for k in leased}}
    assert all(0 < ttl <= LEASE_TTL for ttl in ttls), ttls
    # The revision never went backwards for the writer, across the migration.
    assert writer.revisions == sorted(writer.revisions) and len(set(writer.revisions)) == len(writer.revisions)
    assert len(writer.written) > 100, "the writer ran throughout"
    # The short-lived keys were carried over and expire on the new cluster.
    created_at, keys = short
    if time.monotonic() - created_at < SHORT_TTL - 5:
        assert sorted(shorts) == keys
    wait_for(lambda: etcd.count("/short/", "/short0")[0] == 0, timeout=SHORT_TTL + 30, what="the short-lived keys to expire")
    for compare in final_reads:
        compare(reads)
    print(f"writer: {len(writer.written)} puts, {writer.retried} attempts retried, paused {writer.paused} times")


def migration_state(workdir) -> dict:
    """What a check-mode migration must leave as it was: the single etcd's members, each host's etcd and apiserver
    units and etcd files, the data directories (etcd's own writes aside), and the controller's files."""
    members = client(endpoints(["mig-1"])).member_list()[0]
    return {
        "members": sorted((member.name, member.is_learner) for member in members),
        "hosts": {name: host_state(name, ("etcd", "kube-apiserver"), ("/etc/etcd", "/etc/systemd/system", "/etc/hosts")) for name in ALL},
        "data directories": {name: etcd_data_directories(name) for name in ALL},
        "controller files": sorted(glob.glob(os.path.join(workdir, "**"), recursive=True)
                                   + glob.glob(os.path.join(credentials_dir(), "**"), recursive=True)),
    }


@pytest.mark.parametrize("method", ["grow", "mirror"])
def test_a_migration_in_check_mode_finishes_and_changes_nothing(inventory, workdir, method):
    """An operator previews the migration first: the run finishes and changes nothing, not a member, not a file, not
    a snapshot. A mirror's preview ends where the new cluster's etcd would first start (the copy needs it)."""
    output = check_run_changes_nothing(inventory, MIGRATE, "-e", f"etcd_migrate_method={method}", state=lambda: migration_state(workdir))
    ended = "Check mode ends here: etcd has never run on mig-2, mig-3" in output
    assert ended == (method == "mirror"), output[-6000:]


def test_grow_interrupted_after_a_learner_was_added_then_finished(inventory, workdir):
    source = client(endpoints(["mig-1"]))
    assert source.count("/seed/", "/seed0")[0] == KEYS and len(source.member_list()[0]) == 1
    record_cluster("converge's single etcd", ["mig-1"])
    short = short_lived_keys(source)
    writer = writer_thread(endpoints(ALL))
    writer.start()
    try:
        started = time.monotonic()
        with open(os.path.join(workdir, "interrupted.log"), "w", encoding="utf-8") as log:
            run = subprocess.Popen(playbook_command(inventory, MIGRATE), stdout=log, stderr=subprocess.STDOUT, env=ansible_env(),
                                   start_new_session=True)
            # Interrupt as soon as the first learner is in the member list.
            wait_for(lambda: len(source.member_list()[0]) >= 2 or run.poll() is not None, timeout=600, what="a learner")
            assert run.poll() is None, "the playbook ended before it added a member"
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(60)
        print(f"interrupted after {time.monotonic() - started:.1f}s with members {[m.name for m in source.member_list()[0]]}")
        playbook(inventory, MIGRATE)
        writer.finish()

        def members_agree(reads):
            # grow: the source is the cluster: each member read on its own is the same data.
            assert len({len(r[0]) + len(r[1]) for r in reads.values()}) == 1
        check_migrated(writer, short, [members_agree])
        assert cluster_id(ALL) == CLUSTER_IDS["converge's single etcd"], "grow keeps the cluster"
        # Snapshots went to the controller before the cluster grew.
        assert glob.glob(os.path.join(os.path.dirname(inventory), "etcd-backups", "etcd-*-r*.db"))
        assert set(changed_counts(playbook(inventory, MIGRATE)).values()) == {0}
    finally:
        writer.finish()


def single_etcd_again():
    """Puts a single etcd back on mig-1: the grown cluster's data moved aside on every host, the
    etcd phase run with mig-1 alone in the group, the seed written again."""
    for name in ALL:
        docker_exec(name, "sh", "-c", f"systemctl stop etcd && if [ -d /var/lib/etcd ]; then mv /var/lib/etcd /var/lib/etcd.test-grown-{int(time.time())}; fi")
    playbook(inventory_file(), os.path.join(PROJECT, "playbooks", "phases", "etcd.yml"))
    written, seconds = seed(client(endpoints(["mig-1"])))
    print(f"seed: {written} keys in {seconds:.2f}s ({written / seconds:.0f} keys/s)")
    # A placeholder kube-apiserver unit (this scenario has no control plane): the playbook stops it for
    # the final copy, the writer obeys it.
    docker_exec("mig-1", "sh", "-c", "printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/kube-apiserver.service"
                " && systemctl daemon-reload && systemctl start kube-apiserver")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_snapshot(path, workdir):
    """An independent read of the single etcd as it was at the end: its last snapshot, restored on
    loopback with etcd's own tools."""
    data = os.path.join(workdir, "restored")
    subprocess.run([os.path.join(ETCD_BIN, "etcdutl"), "snapshot", "restore", path, "--data-dir", data], check=True, capture_output=True)
    port, peer = free_port(), free_port()
    proc = subprocess.Popen([os.path.join(ETCD_BIN, "etcd"), "--data-dir", data, "--listen-client-urls", f"http://127.0.0.1:{port}",
                             "--advertise-client-urls", f"http://127.0.0.1:{port}", "--listen-peer-urls", f"http://127.0.0.1:{peer}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import client_from_params  # pylint: disable=import-outside-toplevel
        etcd = client_from_params({"endpoints": [f"http://127.0.0.1:{port}"]})
        wait_for(etcd.status, what="the restored snapshot to serve")
        return everything(etcd, "/seed/"), everything(etcd, "/writer/")
    finally:
        proc.terminate()
        proc.wait(30)


def mirror_vars(backups):
    """ansible-playbook's -e for a mirror migration: the single etcd reached as one kubeforge did not
    install would be, by its URL and the apiserver's client certificate where the control-plane host has it."""
    return ["-e", "etcd_migrate_method=mirror", "-e", f"etcd_controller_backup_dir={backups}",
            "-e", '{"etcd_migrate_source_endpoints": ["https://172.30.43.11:2379"]}',
            "-e", "etcd_migrate_source_ca_file=/etc/kubernetes/pki/etcd-ca.crt",
            "-e", "etcd_migrate_source_cert_file=/etc/kubernetes/pki/apiserver-etcd-client.crt",
            "-e", "etcd_migrate_source_key_file=/etc/kubernetes/pki/apiserver-etcd-client.key"]


def test_mirror_into_a_new_cluster_then_the_old_host_rejoins(inventory, workdir):
    single_etcd_again()
    source = client(endpoints(["mig-1"]))
    assert source.count("/seed/", "/seed0")[0] == KEYS and len(source.member_list()[0]) == 1
    # The same host and peer URL as converge's single etcd, a new token: another cluster ID.
    record_cluster("the single etcd again", ["mig-1"])
    short = short_lived_keys(source)
    backups = os.path.join(workdir, "mirror-backups")
    source_vars = mirror_vars(backups)
    writer = writer_thread(endpoints(["mig-1"]), gate=True, switched_urls=endpoints(["mig-2", "mig-3", "mig-1"]))
    writer.start()
    try:
        wait_for(lambda: len(writer.written) > 50, what="the writer to start")
        before = source.status()["revision"]
        playbook(inventory, MIGRATE, *source_vars)
        time.sleep(2)  # the writer, switched, writes to the new cluster
        writer.finish()
        assert writer.paused, "the writer was stopped for the final copy"
        # The old data was moved aside, not deleted, after a snapshot to the controller.
        assert docker_exec("mig-1", "sh", "-c", "ls -d /var/lib/etcd.migrated-*").strip()
        [last] = sorted(glob.glob(os.path.join(backups, "etcd-*-r*.db")))[-1:]
        snapshot_seeds, snapshot_writes = read_snapshot(last, workdir)

        def same_as_the_source(reads):
            seeds, writes, _shorts = reads["mig-1"]
            assert {k: v for k, (v, _l) in snapshot_seeds.items()} == {k: v for k, (v, _l) in seeds.items()}
            # Every key the source held at the end is on the new cluster with its value; what the
            # new cluster holds beyond that was written after the switch.
            assert [k for k, (v, _l) in snapshot_writes.items() if writes.get(k, ("",))[0] != v] == []
            source_revision = int(last.rsplit("-r", 1)[1][:-3])
            assert min(writer.revisions[len(snapshot_writes):] or [source_revision + 1]) > source_revision
        check_migrated(writer, short, [same_as_the_source])
        assert client(endpoints(ALL)).status()["revision"] > before
        record_cluster("mirror", ALL)
        assert set(changed_counts(playbook(inventory, MIGRATE, *source_vars)).values()) == {0}
    finally:
        writer.finish()


def lock_holder(host):
    """What the holder of the host's etcd lock wrote ({} when nobody holds it)."""
    text = docker_exec(host, "sh", "-c", f"cat {ETCD_LOCK} 2>/dev/null || true").strip()
    return json.loads(text) if text else {}


def running(host, pid):
    return docker("exec", host, "kill", "-0", str(pid), check=False).returncode == 0


def initial_token(host):
    """ETCD_INITIAL_CLUSTER_TOKEN of the host's /etc/etcd/etcd-initial.env ("" when it has none)."""
    text = docker_exec(host, "cat", "/etc/etcd/etcd-initial.env")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")).get("ETCD_INITIAL_CLUSTER_TOKEN", "")


def test_mirror_again_on_the_same_hosts_with_the_copy_left_running_by_a_killed_controller(inventory, workdir):
    """A second mirror onto the hosts of the first: the new cluster must not take the first one's ID
    (the directory moved aside for it would pass for this one's). The controller is killed during the
    first copy, as a lost SSH session would: the copy goes on on mig-1, and the next run refuses to
    start a second one beside it, naming it; stopped, the run after finishes the migration."""
    single_etcd_again()
    record_cluster("the single etcd a third time", ["mig-1"])
    source = client(endpoints(["mig-1"]))
    short = short_lived_keys(source)
    source_vars = mirror_vars(os.path.join(workdir, "mirror-again-backups"))
    writer = writer_thread(endpoints(["mig-1"]), gate=True, switched_urls=endpoints(["mig-2", "mig-3", "mig-1"]))
    writer.start()
    orphan = {}
    try:
        wait_for(lambda: len(writer.written) > 50, what="the writer to start")
        # The first copy follows the source for 10 minutes: it is still running when the next run comes.
        with open(os.path.join(workdir, "killed.log"), "w", encoding="utf-8") as log:
            run = subprocess.Popen(playbook_command(inventory, MIGRATE, *source_vars, "-e", "etcd_migrate_follow_seconds=600"), stdout=log,
                                   stderr=subprocess.STDOUT, env=ansible_env(), start_new_session=True)
            wait_for(lambda: lock_holder("mig-1").get("operation", "").startswith("etcd_mirror") or run.poll() is not None, timeout=900,
                     what="the first copy to start on mig-1")
            assert run.poll() is None, "the playbook ended before the copy"
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(60)
        orphan = lock_holder("mig-1")
        assert running("mig-1", orphan["pid"]), f"the copy did not outlive its controller: {orphan}"
        # The next run must not copy beside it: it waits for the lock, then names the holder.
        refused = subprocess.run(playbook_command(inventory, MIGRATE, *source_vars), capture_output=True, text=True, check=False, timeout=1800,
                                 env=dict(ansible_env(), ANSIBLE_CALLBACK_RESULT_FORMAT="json"))  # one line per result
        # (The other hosts then stop at the etcd role's check that every etcd host takes part.)
        failed = [json.loads(line.split("FAILED! => ", 1)[1]) for line in refused.stdout.splitlines() if line.startswith("fatal: [mig-1]: FAILED! => ")]
        assert refused.returncode != 0 and len(failed) == 1, refused.stdout[-4000:]
        assert failed[0]["msg"].startswith(f"another etcd operation holds this host's lock {ETCD_LOCK}: PID {orphan['pid']} (etcd_mirror from")
        assert failed[0]["lock_holder"]["pid"] == orphan["pid"], failed[0]
        assert running("mig-1", orphan["pid"]) and lock_holder("mig-1")["pid"] == orphan["pid"], "one copy, the first, ran all along"
        # What the message says: stop it, run again.
        docker_exec("mig-1", "kill", str(orphan["pid"]))
        wait_for(lambda: not running("mig-1", orphan["pid"]), what="the left-over copy to stop")
        playbook(inventory, MIGRATE, *source_vars)
        time.sleep(2)  # the writer, switched, writes to the new cluster
        writer.finish()
        assert writer.switched, "the writer was switched to the new cluster"
        check_migrated(writer, short, [])
        second = record_cluster("mirror again", ALL)
        # Both moved-aside directories are there, each named after its own cluster.
        moved = docker_exec("mig-1", "sh", "-c", "ls -d /var/lib/etcd.migrated-to-*").split()
        assert {CLUSTER_IDS["mirror"], second} <= {re.sub(r"^/var/lib/etcd\.migrated-to-([0-9a-f]+)-.*$", r"\1", path) for path in moved}, moved
        # The controller keeps every cluster's token, the current one that of the new cluster's first members.
        with open(os.path.join(credentials_dir(), TOKEN_FILE), encoding="utf-8") as handle:
            tokens = json.load(handle)
        assert tokens["current"] == initial_token("mig-2") == initial_token("mig-3") != ""
        assert initial_token("mig-1") == "", "the old host joined: it never bootstraps with a token"
        bootstrapped = [c["token"] for c in tokens["clusters"] if c["how"] == "bootstrap"]
        # converge's single etcd, again twice, and two mirrors: five clusters, five tokens.
        assert len(bootstrapped) >= 5 and len(set(bootstrapped)) == len(bootstrapped), tokens
        # (in the order the hosts registered, which varies: etcd reads the list as a set)
        assert sorted(tokens["clusters"][-1]["initial_cluster"].split(",")) == ["mig-2=https://172.30.43.12:2380",
                                                                                "mig-3=https://172.30.43.13:2380"]
        assert set(changed_counts(playbook(inventory, MIGRATE, *source_vars)).values()) == {0}
    finally:
        writer.finish()
        if orphan and running("mig-1", orphan["pid"]):
            docker_exec("mig-1", "kill", str(orphan["pid"]), check=False)
