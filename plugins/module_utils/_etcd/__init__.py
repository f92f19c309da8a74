# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private etcd logic of kubeforge.cluster: a v3 client over etcd's JSON gateway and the backends
of the etcd_member, etcd_mirror and etcd_snapshot modules. Standard library only, no gRPC.

errors     EtcdError: one exception type for every etcd and transport failure
codec      pure encoding: base64 bytes, int64 strings, key ranges, error bodies, chunked streams
transport  HTTP/1.1 + JSON with mutual TLS: a persistent connection with failover, and streams
client     EtcdClient: the calls the modules make (kv, txn, watch, lease, cluster, maintenance)
batching   pure: txn batches within max-txn-ops and the request size, de-duplicated per batch
hashing    pure: a client-side content hash of (key, value) pairs, comparable across clusters
common     the connection options shared by the modules, and the client built from them
member     etcd_member's backend and the quorum arithmetic
mirror     etcd_mirror's backend
snapshot   etcd_snapshot's backend, the SHA-256 trailer check and etcdutl output parsing
"""
