# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcdctl make-mirror against etcd_mirror on the same keys, in one run; prints keys/s of both and the ratio.

Three single-member etcd clusters on loopback with TLS and client-cert auth (fsync on): one source
holding --keys keys, one destination for each tool. make-mirror never ends by itself: it is timed
until the destination holds every key, then stopped. etcd_mirror runs as the module does (copy,
catch-up, verification); both its copy and its whole run are reported. Prints figures only.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time

from etcd_bench_common import load
from etcd_harness import Cluster, etcd_binary, make_certs

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import client_from_params
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.mirror import EtcdMirrorBackend, settings_from_params

PREFIX = b"/registry/bench/"


def make_mirror(source: Cluster, dest: Cluster, keys: int, timeout: float) -> float:
    """Seconds until etcdctl make-mirror has put every key on dest."""
    c = source.certs
    args = [etcd_binary("etcdctl"), f"--endpoints={source.endpoints[0]}", f"--cacert={c.ca}", f"--cert={c.client_cert}",
            f"--key={c.client_key}", "make-mirror", f"--prefix={PREFIX.decode()}", f"--dest-cacert={c.ca}",
            f"--dest-cert={c.client_cert}", f"--dest-key={c.client_key}", "--dest-insecure-transport=false", dest.endpoints[0]]
    dest_client = client_from_params(dest.client_params())
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < timeout:
            if dest_client.count(PREFIX, PREFIX[:-1] + b"0")[0] >= keys:
                return time.monotonic() - started
            if process.poll() is not None:
                raise RuntimeError(f"etcdctl make-mirror exited {process.returncode}")
            time.sleep(0.05)
        raise RuntimeError(f"etcdctl make-mirror did not copy {keys} keys within {timeout}s")
    finally:
        process.terminate()
        process.wait(10)
        dest_client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=50000, help="keys to copy (default 50000)")
    parser.add_argument("--value-size", type=int, default=256, help="bytes per value (default 256)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed for make-mirror")
    options = parser.parse_args()

    base = tempfile.mkdtemp(prefix="kubeforge-bench-mirror-")
    certs = make_certs(base + "/pki")
    clusters = [Cluster(f"{base}/{name}", certs, token=f"bench-{name}", fast=False).start() for name in ("source", "etcdctl", "module")]
    source, dest_etcdctl, dest_module = clusters
    try:
        src = client_from_params(source.client_params())
        load(src, PREFIX, options.keys, options.value_size)
        print(f"etcd {src.status()['version']}, {options.keys} keys of {options.value_size} bytes, TLS, fsync on")

        etcdctl_seconds = make_mirror(source, dest_etcdctl, options.keys, options.timeout)
        etcdctl_rate = options.keys / etcdctl_seconds
        print(f"etcdctl make-mirror : {etcdctl_seconds:8.2f} s  {etcdctl_rate:9.0f} keys/s  (one put per key)")

        dst = client_from_params(dest_module.client_params())
        started = time.monotonic()
        result = EtcdMirrorBackend(src, dst, settings_from_params({"prefix": PREFIX.decode()})).run()
        total = time.monotonic() - started
        assert result["keys_copied"] == options.keys and result["verification"]["equal"]
        copy_rate = result["keys_per_second"]
        print(f"etcd_mirror copy    : {result['copy_seconds']:8.2f} s  {copy_rate:9.0f} keys/s  ({result['transactions']} txns)")
        print(f"etcd_mirror total   : {total:8.2f} s  {options.keys / total:9.0f} keys/s  (copy + catch-up + verification)")
        print(f"ratio copy  / make-mirror: {copy_rate / etcdctl_rate:6.1f}x")
        print(f"ratio total / make-mirror: {options.keys / total / etcdctl_rate:6.1f}x  (target: at least 10x)")
    finally:
        for cluster in clusters:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
