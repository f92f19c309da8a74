# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Connection options of the etcd modules; the spec is connection_argument_spec() in module_utils/_etcd/common.py."""

    DOCUMENTATION = r"""
options:
  endpoints:
    description:
      - Client URLs of the etcd cluster, such as V(https://10.0.0.11:2379).
      - The modules talk to etcd's JSON gateway on these URLs (HTTP/1.1 + JSON, on by default on the client port). When etcd
        runs with C(--listen-client-http-urls), give those URLs instead.
      - Tried in order; when one cannot be connected to, the next one is used. Membership changes must reach a voting
        member (a learner refuses them), so list voters first.
    type: list
    elements: str
    required: true
  ca_cert:
    description:
      - CA certificate (PEM) that signed etcd's serving certificate. Without it, the system's trust store is used.
    type: path
  client_cert:
    description:
      - Client certificate (PEM) presented to etcd, needed when etcd runs with C(--client-cert-auth).
    type: path
  client_key:
    description:
      - Private key (PEM) of O(client_cert).
    type: path
  timeout:
    description:
      - Seconds to wait for a connection and for each answer (for a stream, for each piece of it).
    type: float
    default: 10.0
notes:
  - The client uses only the Python standard library (no gRPC, no protobuf, no C(etcd3) package) on the host the module runs on.
  - etcd's own authentication (users and roles) must be off. With it on, etcd's gateway cannot pass the client certificate's
    identity on and refuses every call; the module then fails saying so. Clusters installed for Kubernetes run client-cert
    auth without etcd auth, as the C(kubeforge.cluster.etcd) role does.
"""
