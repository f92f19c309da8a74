#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_preflight
short_description: Validate a kubeforge inventory, its settings and the node kernels before any host is changed
version_added: 0.1.0
description:
  - Reads the whole inventory (groups and host variables), the cluster-wide settings and the
    kernel facts of the nodes on the controller and fails with one message that lists every
    problem found.
  - "Checks: the C(etcd), C(kube_control_plane), C(kube_node) and C(k8s_cluster) groups; hosts in
    no group that needs them; an even-sized etcd group (unless C(etcd_even_members_enabled));
    duplicate host names or addresses; node names; pod and service CIDRs (validity, overlap with
    each other and with host addresses); C(kube_node_cidr_mask_size) (longer than the pod CIDR's
    prefix, at most /30 or /126, and enough node subnets for every host of C(k8s_cluster));
    the cluster DNS IP and the first service IP; a load-balancer address when there is more
    than one control-plane host; supported C(kube_version) and C(etcd_version), and X.Y.Z
    releases for C(containerd_version), C(runc_version), C(cni_plugins_version) and
    C(crictl_version); C(kube_proxy_mode) (ipvs, iptables or nftables), C(flannel_backend)
    (vxlan or host-gw), C(kubelet_fail_cgroup_v1) (a boolean); component extra arguments
    against the flag list of the target Kubernetes version; offline artifacts, each at its own
    version, and their checksums."
  - "CIS check: the final settings of kube-apiserver, kube-controller-manager, kube-scheduler, the
    kubelet and kube-proxy (the roles' flags and config files with the C(kube_*_extra_args) over
    them, a null dropping a default) against the CIS Kubernetes Benchmark items the roles enforce.
    An item that no longer holds is a problem unless C(kube_cis_exceptions) lists it
    (C(component), C(setting), C(reason)); an exception without a reason is a problem too."
  - "Node checks, on the facts M(kubeforge.cluster.node_facts) returned for each host of
    C(k8s_cluster): cgroup v1 hosts while C(kubelet_fail_cgroup_v1) is true (kubelet 1.35 and
    later refuses them); no IP_VS in the kernel (not loaded, built in or loadable) with
    C(kube_proxy_mode=ipvs); a kernel older than 5.13 with C(kube_proxy_mode=nftables); a host
    of the play without facts (unreachable, or the task failed there). A host the play left out
    (C(--limit)) is checked only if its facts are cached from an earlier run."
  - The action itself runs on the controller and contacts no host; the preflight play runs
    M(kubeforge.cluster.node_facts), which only reads, on the nodes first.
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
  - Deprecated flags in extra arguments are reported as warnings, not problems; so are
    C(kube_proxy_mode=ipvs) (deprecated since Kubernetes 1.35, KEP-5495) and cgroup v1 hosts
    accepted with C(kubelet_fail_cgroup_v1=false).
  - Every CIS exception used is reported as a warning with its reason, so each run prints it.
seealso:
  - module: kubeforge.cluster.node_facts
"""

EXAMPLES = r"""
- name: Read the kernel facts of every Kubernetes node
  kubeforge.cluster.node_facts:
  when: inventory_hostname in groups['k8s_cluster']

- name: Check the inventory, settings and node facts before changing any host
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
