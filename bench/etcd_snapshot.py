# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_snapshot's save, by each path it has, against `etcdctl snapshot save` in the same run; prints the times.

One etcd member on loopback with TLS and client-cert auth (fsync on), filled to about --keys x
--value-size bytes. Each path saves --rounds times; the median is printed, with the ratio to
etcdctl. The module's paths include what it adds: the SHA-256 trailer check, fsync and rename.
Prints figures only.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from etcd_bench_common import load
from etcd_harness import Cluster, etcd_binary, make_certs

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import client_from_params
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.snapshot import EtcdSnapshotBackend


def runner(args):
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=12000, help="keys to write (default 12000: a ~16 MB database)")
    parser.add_argument("--value-size", type=int, default=1000, help="bytes per value (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="saves per path (default 5)")
    options = parser.parse_args()

    base = tempfile.mkdtemp(prefix="kubeforge-bench-snapshot-")
    cluster = Cluster(f"{base}/etcd", make_certs(f"{base}/pki"), token="bench-snapshot", fast=False).start()
    try:
        params = {**cluster.client_params(), "etcdctl_path": etcd_binary("etcdctl")}
        client = client_from_params(params)
        load(client, b"/registry/bench/", options.keys, options.value_size)
        print(f"etcd {client.status()['version']}, {options.keys} keys of {options.value_size} bytes, TLS, fsync on, "
              f"median of {options.rounds} saves")
        c = cluster.certs
        etcdctl = [etcd_binary("etcdctl"), f"--endpoints={cluster.endpoints[0]}", f"--cacert={c.ca}", f"--cert={c.client_cert}",
                   f"--key={c.client_key}", "snapshot", "save"]

        def plain_etcdctl(path: str) -> None:
            subprocess.run(etcdctl + [path], check=True, capture_output=True)

        def module(method: str):
            def save(path: str) -> None:
                result = EtcdSnapshotBackend(dict(params, state="saved", path=path, method=method), runner,
                                             client_factory=lambda: client_from_params(params)).run()
                assert result["changed"] and result["method"] == method
            return save

        paths = {"etcdctl snapshot save": plain_etcdctl, "etcd_snapshot method=etcdctl": module("etcdctl"),
                 "etcd_snapshot method=gateway": module("gateway")}
        medians = {}
        for name, save in paths.items():
            times = []
            for round_ in range(options.rounds):
                path = f"{base}/{len(medians)}-{round_}.db"
                started = time.monotonic()
                save(path)
                times.append(time.monotonic() - started)
                size = os.path.getsize(path)
                os.unlink(path)
            medians[name] = statistics.median(times)
            print(f"{name:30s}: {medians[name]:6.3f} s  ({size / 1e6:.1f} MB, {size / 1e6 / medians[name]:6.1f} MB/s)")
        reference = medians["etcdctl snapshot save"]
        print(f"etcdctl path / etcdctl: {medians['etcd_snapshot method=etcdctl'] / reference:5.2f}x  (target: within 1.2x)")
        print(f"gateway path / etcdctl: {medians['etcd_snapshot method=gateway'] / reference:5.2f}x  (target: within 4x)")
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
