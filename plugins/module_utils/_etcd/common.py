# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The connection options every etcd module takes (documented by the etcd_client doc fragment), and their main()'s run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.transport import GatewayTransport
from ansible_collections.kubeforge.cluster.plugins.module_utils._lock import host_lock, lock_argument_spec

if TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

CONNECTION_OPTIONS = ("endpoints", "ca_cert", "client_cert", "client_key", "timeout")
# The host lock every etcd change takes (module_utils/_lock.py, the host_lock doc fragment).
LOCK_DOMAIN = "etcd"


def connection_argument_spec() -> dict:
    return {
        "endpoints": {"type": "list", "elements": "str", "required": True},
        "ca_cert": {"type": "path"},
        "client_cert": {"type": "path"},
        "client_key": {"type": "path", "no_log": False},  # a path, not the key itself
        "timeout": {"type": "float", "default": 10.0},
    }


def module_argument_spec(**options: dict) -> dict:
    """The connection options, the host lock's, then the module's own."""
    return {**connection_argument_spec(), **lock_argument_spec(), **options}


def client_from_params(params: dict) -> EtcdClient:
    """A client for the connection options in params (the module's, or a destination's sub-options)."""
    return EtcdClient(GatewayTransport(
        params["endpoints"], ca_cert=params.get("ca_cert"), client_cert=params.get("client_cert"),
        client_key=params.get("client_key"), timeout=params.get("timeout") or 10.0))


def run_module(module: AnsibleModule, run: Callable[..., dict], *connections: dict, operation: str = "") -> None:
    """Exit ``module`` with ``run(*clients)``'s result, a client opened for each of ``connections`` and closed after.

    With ``operation`` (what the module is about to change, in words another run can show), the
    run holds the host's etcd lock, waiting up to the module's ``lock_timeout`` for another holder.
    A KubeforgeError fails the module with its message and the partial results it carries
    (``EtcdError.result``); the result's ``diff`` is dropped unless the task runs with --diff.
    """
    try:
        clients: list[EtcdClient] = []
        lock = host_lock(LOCK_DOMAIN, operation, module.params["lock_timeout"]) if operation else contextlib.nullcontext()
        with lock:
            try:
                for params in connections:
                    clients.append(client_from_params(params))
                result = run(*clients)
            finally:
                for client in clients:
                    client.close()
    except KubeforgeError as exc:
        module.fail_json(msg=str(exc), **getattr(exc, "result", {}))
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
