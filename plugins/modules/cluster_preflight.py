#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_preflight
short_description: Validate a kubeforge inventory and its settings before any host is touched
version_added: 0.1.0
description:
  - Reads the whole inventory (groups and host variables) and the cluster-wide settings on the
    controller and fails with one message that lists every problem found.
  - "Checks: the C(etcd), C(kube_control_plane), C(kube_node) and C(k8s_cluster) groups; hosts in
    no group that needs them; an even-sized etcd group (unless C(etcd_even_members_enabled));
    duplicate host names or addresses; node names; pod and service CIDRs (validity, overlap with
    each other and with host addresses); the cluster DNS IP and the first service IP;
    a load-balancer address when there is more than one control-plane host; supported
    C(kube_version) and C(etcd_version); component extra arguments against the flag list of the
    target Kubernetes version; offline artifacts and their checksums."
  - Runs entirely on the controller (an action plugin); no host is contacted.
  - The settings are read from the play's variables, not passed as options.
author:
  - kubeforge developers (@kubeforge)
options: {}
attributes:
  check_mode:
    support: full
    description: Makes no changes in any mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
  idempotent:
    support: full
    description: Reads the inventory only.
  action:
    support: full
    description: Runs on the controller as an action plugin and contacts no host.
notes:
  - Deprecated flags in extra arguments are reported as warnings, not problems.
"""

EXAMPLES = r"""
- name: Check the inventory and settings before touching any host
  kubeforge.cluster.cluster_preflight:
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
problems:
  description: Every problem found; the task fails when the list is not empty.
  returned: always
  type: list
  elements: str
  sample: ["kube_pod_cidr 10.96.0.0/12 overlaps kube_service_cidr 10.96.0.0/16"]
warnings_found:
  description: Findings that do not stop the run, such as deprecated flags.
  returned: always
  type: list
  elements: str
  sample: ["kube_apiserver_extra_args: --admission-control is deprecated in kube-apiserver 1.36"]
hosts_checked:
  description: Number of inventory hosts checked.
  returned: always
  type: int
  sample: 4
"""
