#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_facts
short_description: Read the kernel facts of a node that the kubeforge preflight checks
version_added: 0.1.0
description:
  - Reads, without changing anything, what the preflight needs to know about a node's kernel and
    returns it as the fact C(kubeforge_node).
  - C(cgroup_version) is V(2) when C(/sys/fs/cgroup) itself is a cgroup2 mount (the unified
    hierarchy), read from C(/proc/self/mounts), or from C(/sys/fs/cgroup/cgroup.controllers)
    when the mount table cannot be read. It is V(1) for cgroup v1 and for the hybrid layout
    (cgroup2 only on C(/sys/fs/cgroup/unified)), as the kubelet counts it.
  - C(ip_vs) says whether kube-proxy's ipvs mode can have the C(ip_vs) kernel module - V(loaded)
    (listed in C(/proc/modules), or C(/sys/module/ip_vs) with an C(initstate)), V(builtin)
    (C(ip_vs.ko) in C(/lib/modules/<release>/modules.builtin)), V(loadable) (in C(modules.dep),
    compressed or not) or V(missing).
  - C(hostname) is the kernel's hostname and the one set for boot (C(/etc/hostname)); the prepare role
    sets the hostname only where one of them differs from the inventory name.
  - C(fstab_swap) lists the C(/etc/fstab) lines that mount swap at boot; the prepare role comments them
    out only where there are some.
  - C(installed_packages) lists the packages C(/var/lib/dpkg/status) says are installed (V(null) on a host without dpkg);
    the prepare role installs what is missing from it instead of running C(dpkg-query) again.
  - C(os) and C(swap_total_mb) are what the prepare role would otherwise gather Ansible facts for (C(os_family),
    C(distribution), C(swaptotal_mb)), read from C(/etc/os-release) and C(/proc/meminfo).
  - C(linked_versions) maps each program linked in O(bin_dir) into the artifacts layout
    (C(<install_dir>/<name>/v<version>/)) to that version, the one the phases installed there last. The preflight
    compares the Kubernetes and etcd programs' with C(kube_version) and C(etcd_version).
  - With O(trust_anchors), it also reads what M(kubeforge.cluster.trust_anchor_info) reads (the trust anchors'
    fingerprints and the encryption key names), in the same call.
  - The preflight play (C(playbooks/preflight.yml)) runs it on every host of C(k8s_cluster), C(kube_control_plane)
    and C(etcd), with O(trust_anchors) on the control-plane and etcd hosts; M(kubeforge.cluster.cluster_preflight)
    reads the facts from the host variables and M(kubeforge.cluster.trust_anchor_check) the registered anchors.
author:
  - kubeforge developers (@kubeforge)
options:
  bin_dir:
    description:
      - The directory where the phases link the programs they install (C(artifacts_bin_dir)). Not given,
        RV(ansible_facts.kubeforge_node.linked_versions) is empty.
    type: path
  trust_anchors:
    description:
      - Also return RV(anchors), RV(encryption_key_names) and RV(errors), as M(kubeforge.cluster.trust_anchor_info)
        returns them (fingerprints and names only, no secret).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
  idempotent:
    support: full
    description: Reads only.
  facts:
    support: full
    description: Returns C(ansible_facts.kubeforge_node).
seealso:
  - module: kubeforge.cluster.cluster_preflight
"""

EXAMPLES = r"""
- name: Read the kernel facts the preflight checks, and the versions of the programs linked in /usr/local/bin
  kubeforge.cluster.node_facts:
    bin_dir: /usr/local/bin

- name: Show the cgroup version and IP_VS state of every node
  ansible.builtin.debug:
    msg: >-
      cgroup v{{ ansible_facts.kubeforge_node.cgroup_version }}, ip_vs {{ ansible_facts.kubeforge_node.ip_vs }},
      kernel {{ ansible_facts.kubeforge_node.kernel_release }}
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host's variables.
  returned: always
  type: dict
  contains:
    kubeforge_node:
      description: The node's kernel facts, its operating system and swap, and its installed packages.
      returned: always
      type: dict
      contains:
        cgroup_version:
          description: V(2) when C(/sys/fs/cgroup) is the unified cgroup2 hierarchy, V(1) otherwise (v1 or hybrid).
          returned: always
          type: int
          sample: 2
        ip_vs:
          description: State of the C(ip_vs) kernel module.
          returned: always
          type: str
          choices: [loaded, builtin, loadable, missing]
          sample: loadable
        kernel_release:
          description: The running kernel's release (C(uname -r)).
          returned: always
          type: str
          sample: 6.8.0-60-generic
        hostname:
          description: The kernel's hostname (C(transient)) and the one set for boot (C(static), C(/etc/hostname)); empty when unreadable.
          returned: always
          type: dict
          sample: {transient: kf-cp1, static: kf-cp1}
        fstab_swap:
          description: The C(/etc/fstab) lines that mount swap at boot (type C(swap), not commented out); empty when none.
          returned: always
          type: list
          elements: str
          sample: ["/swapfile none swap sw 0 0"]
        installed_packages:
          description:
            - The packages installed on a dpkg host (Debian, Ubuntu), read from C(/var/lib/dpkg/status); V(null) on other hosts.
            - The prepare role installs what it needs from it without asking the package database again.
          returned: always
          type: list
          elements: str
          sample: [ca-certificates, conntrack, curl]
        file_record:
          description:
            - Whether the host has the record of kubeforge.cluster.file_bundle's runs (C(/var/lib/kubeforge/file_bundle.json)).
              Without one (a new host), the file_bundle action does not ask the host whether a run would change nothing.
          returned: always
          type: bool
          sample: true
        linked_versions:
          description:
            - For each program linked in O(bin_dir) into the artifacts layout (C(<install_dir>/<name>/v<version>/<file>)),
              that version. Programs that are no link, or link elsewhere, are left out.
          returned: always
          type: dict
          sample: {kube-apiserver: 1.36.4, kubelet: 1.36.4, etcd: 3.5.33, containerd: 2.4.2}
        phase_units:
          description:
            - For each phase that writes a unit file on every host of its group (etcd, control_plane, kubelet_bootstrap),
              whether this host holds that file (C(etcd.service), C(kube-apiserver.service), C(kubelet.service) in
              C(/etc/systemd/system)).
            - The preflight refuses a run that leaves out a phase its other phases need where a host of that phase's group
              lacks the file (the phase has not run there).
          returned: always
          type: dict
          sample: {etcd: true, control_plane: true, kubelet_bootstrap: true}
        os:
          description:
            - The operating system, from C(/etc/os-release). C(family) is V(Debian) or V(RedHat) for a distribution of
              those families (its ID or ID_LIKE), else its ID; C(name) is its NAME.
            - The prepare role chooses its packages by it (the playbooks gather no Ansible facts).
          returned: always
          type: dict
          sample: {family: Debian, name: Debian GNU/Linux}
        swap_total_mb:
          description: The swap space the host has, in MiB (C(SwapTotal) of C(/proc/meminfo)); V(0) without swap.
          returned: always
          type: int
          sample: 0
anchors:
  description: The trust anchor files the host holds, each with its fingerprint (see M(kubeforge.cluster.trust_anchor_info)).
  returned: with O(trust_anchors)
  type: list
  elements: dict
  sample: [{anchor: cluster-ca, path: /etc/kubernetes/pki/ca.crt, fingerprint_sha256: "AB:CD:..."}]
encryption_key_names:
  description: Names of the keys in the encryption configuration, in order; empty without one.
  returned: with O(trust_anchors)
  type: list
  elements: str
  sample: [key-20260301T120000000000Z]
errors:
  description: Trust anchor files that exist but could not be read as what they should be.
  returned: with O(trust_anchors)
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import exit_with_backend
from ansible_collections.kubeforge.cluster.plugins.module_utils._node_facts import NodeFactsBackend
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.trust import TrustAnchorInfoBackend


class _WithTrustAnchors:
    """The node's facts and, in the same result, what trust_anchor_info reads: one call for the preflight."""

    def __init__(self, *backends) -> None:
        self.backends = backends

    def run(self) -> dict:
        result = {}
        for backend in self.backends:
            result.update(backend.run())
        return result


def main() -> None:
    module = AnsibleModule(argument_spec={"bin_dir": {"type": "path"}, "trust_anchors": {"type": "bool", "default": False}},
                           supports_check_mode=True)
    backend = NodeFactsBackend("/", bin_dir=module.params["bin_dir"] or "")
    exit_with_backend(module, _WithTrustAnchors(backend, TrustAnchorInfoBackend()) if module.params["trust_anchors"] else backend)


if __name__ == "__main__":
    main()
