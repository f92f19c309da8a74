# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the control_plane role: command lines, config documents and encryption keys
(plugins/module_utils/_control_plane.py); documented in control_plane_*.yml beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _backend():
    """module_utils/_control_plane, imported when a filter is called, not with this file (README, Layout: plugins/filter/)."""
    from ansible_collections.kubeforge.cluster.plugins.module_utils import _control_plane
    return _control_plane


def _wrap(function):
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except _backend().ControlPlaneError as exc:
            raise AnsibleFilterError(f"{function.__name__}: {exc}") from exc
    run.__name__ = function.__name__
    return run


def control_plane_args(settings, component):
    return _backend().component_args(component, dict(settings))


def control_plane_config(settings, kind, keys=None):
    return _backend().config_doc(kind, dict(settings), list(keys or []))


def control_plane_encryption_keys(keys, action="ensure"):
    return _backend().encryption_keys(keys, action)


def control_plane_encryption_key_file(data, action="ensure"):
    return _backend().encryption_key_file(data, action)


def control_plane_encryption_store(settings):
    return _backend().encryption_store(dict(settings))


class FilterModule:
    def filters(self):
        return {
            "control_plane_args": _wrap(control_plane_args),
            "control_plane_config": _wrap(control_plane_config),
            "control_plane_encryption_keys": _wrap(control_plane_encryption_keys),
            "control_plane_encryption_key_file": _wrap(control_plane_encryption_key_file),
            "control_plane_encryption_store": _wrap(control_plane_encryption_store),
        }
