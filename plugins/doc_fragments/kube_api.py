# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """How the modules that talk to the Kubernetes API reach it; the client is client_from_kubeconfig() in module_utils/_kubelet_csr.py."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - A kubeconfig on the host the module runs on; its current-context is used. The CA, client certificate and
        key may be given as data or as file paths, or a bearer token.
    type: path
    required: true
requirements:
  - PyYAML (python3-yaml) when the kubeconfig is YAML
notes:
  - The module talks to the API with the Python standard library (no Kubernetes Python client), a few requests per
    run. On failure it returns the HTTP status of the API's answer (RV(status), 0 without one) and its reason as
    the API names it (RV(reason), V(Forbidden) for 403).
"""
