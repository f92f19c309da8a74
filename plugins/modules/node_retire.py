#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_retire
short_description: Retire a host leaving the cluster - remove its pods, stop and disable its services, move its state aside
version_added: 0.1.0
description:
  - Run on a host that leaves the cluster, once it is drained and its Node object deleted (C(remove_nodes.yml)). One call
    does the whole batch, in this order.
  - "Services: for each of O(services), in the order given, reads its state (C(systemctl show)); stops it when it is
    active, disables it when it is enabled. A unit systemd does not know is listed in RV(missing). The kubelet belongs
    here: stopped first, it starts no pod again."
  - "Pods: then, when O(crictl) is given, exists, and the container runtime listens on the socket of O(runtime_endpoint), lists
    the pod sandboxes (C(crictl pods -q)) and, if there are any, stops and removes every one with its containers
    (C(crictl rmp --all --force)). Without crictl, or with no runtime listening (no socket, or one a stopped runtime left
    behind), there is nothing to remove and no error."
  - "Runtime: then O(runtime_service), the container runtime the pods were removed through, is stopped and disabled the
    same way."
  - "Network devices: then each device of the host whose name matches one of O(links) is deleted (C(ip link delete)). These
    are the pod network's devices (the CNI bridge, the VXLAN device): the bridge keeps the node's pod subnet as its address,
    and on a host added to the cluster again, which gets another subnet, the bridge plugin would refuse every pod. A device
    that does not exist is left alone."
  - "Paths: each of O(paths) that exists is moved aside - every mount at or below it (from C(/proc/self/mountinfo)) is
    unmounted first, deepest first, then the path is renamed to C(<path>.removed-<stamp>) in its own directory, the stamp
    being the UTC time of the run (C(%Y%m%dT%H%M%SZ), the same for every path of a run), and that directory is fsynced.
    Nothing is deleted; the operator removes the moved-aside copies when they are no longer wanted. A path that does not
    exist is left alone, so a second run changes nothing."
  - "Refused before anything is changed, every problem in one message: a path that is not absolute, C(/) or a system
    directory (C(/etc), C(/var), C(/usr), C(/var/lib), C(/home), C(/root) and the other top-level directories); a path
    on another file system than its directory that is not a mount point (a btrfs subvolume - a rename cannot move it,
    and the module does not copy); a moved-aside name already taken; a device pattern of O(links) that matches any name, the
    loopback device or a device that carries one of the host's default routes. A mount point still on another file system than
    its directory once unmounted fails the same way."
  - A failed unmount (a mount still busy) fails the module with C(umount)'s message, after what was done before it.
author:
  - kubeforge developers (@kubeforge)
options:
  crictl:
    description:
      - The crictl binary. Not given, or not on the host, no pod is removed.
    type: path
  runtime_endpoint:
    description:
      - The container runtime's CRI endpoint; its socket file is the part after C(unix://).
    type: str
    default: unix:///run/containerd/containerd.sock
  services:
    description:
      - Units to stop and disable, in this order, before the pods are removed (V(kubelet), V(kube-proxy), V(nginx)). A
        name without a suffix is a C(.service) unit.
    type: list
    elements: str
    default: []
  runtime_service:
    description:
      - The container runtime's unit (V(containerd)), stopped and disabled after the pods are removed through it. Not
        given, no runtime unit is stopped.
    type: str
  links:
    description:
      - Names of network devices to delete once the pods are removed and the runtime stopped, each a name or a shell
        pattern (V(cni0), V(flannel.*)).
    type: list
    elements: str
    default: []
  paths:
    description:
      - Absolute paths to unmount and move aside, in this order (V(/var/lib/kubelet), V(/etc/kubernetes)).
    type: list
    elements: path
    default: []
  lock_timeout:
    description:
      - Seconds to wait for another node_retire running on the same host to end (one left running by a run whose
        controller was killed). When it still runs after that, the task fails with a message that names it (process
        ID, start time and command line).
    type: float
    default: 30.0
attributes:
  check_mode:
    support: full
    description:
      - Lists the pods (read only) and reads the services' states, the network devices and the mount table; reports the
        pods, services, devices, mounts and paths that would be removed, stopped, disabled, deleted, unmounted and moved,
        and changes nothing.
  diff_mode:
    support: none
    description:
      - Nothing is written whose content could be compared; RV(stopped), RV(disabled), RV(links_deleted), RV(unmounted)
        and RV(moved) say what changed.
  idempotent:
    support: full
    description:
      - A second run finds no pod, no active or enabled service, none of the devices and none of the paths, and reports
        no change.
notes:
  - "A run that changes the host (not check mode) holds an exclusive lock of the host, C(flock) on
    C(/run/lock/kubeforge/node_retire.lock). The module keeps running on the host when its controller dies (a lost SSH
    session, a killed C(docker exec)); a second run started beside it would remove the same pods at the same time
    (containerd refuses a container already being removed). The kernel releases the lock when its holder ends."
  - Needs root (systemctl, ip, umount, renames in system directories). A unit that is enabled only statically (C(static),
    C(indirect), C(generated)) cannot be disabled and is only stopped.
seealso:
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Remove the pods, stop the node's services and move its state aside
  kubeforge.cluster.node_retire:
    crictl: /usr/local/bin/crictl
    runtime_endpoint: unix:///run/containerd/containerd.sock
    services: [kubelet, kube-proxy, nginx]
    runtime_service: containerd
    links: [cni0, flannel.*]
    paths: [/var/lib/kubelet, /etc/kubernetes, /var/lib/containerd, /etc/cni/net.d]
  register: retired

- name: Show where the node's state went
  ansible.builtin.debug:
    msg: "{{ retired.moved | map(attribute='moved_to') | list }}"

- name: Move a leftover directory aside only
  kubeforge.cluster.node_retire:
    paths: [/var/lib/etcd]
"""

RETURN = r"""
changed:
  description:
    - Whether a pod was removed, a service stopped or disabled, a device deleted, a mount unmounted or a path moved (in
      check mode, would be).
  returned: always
  type: bool
  sample: true
pods_removed:
  description: The pod sandboxes removed (in check mode, that would be).
  returned: always
  type: int
  sample: 7
stopped:
  description: The units stopped, in the order given.
  returned: always
  type: list
  elements: str
  sample: [kubelet, containerd]
disabled:
  description: The units disabled, in the order given.
  returned: always
  type: list
  elements: str
  sample: [kubelet, containerd]
missing:
  description: The units systemd does not know (skipped).
  returned: always
  type: list
  elements: str
  sample: [kube-proxy, nginx]
links_deleted:
  description: The network devices deleted, in the order of O(links).
  returned: always
  type: list
  elements: str
  sample: [cni0, flannel.1]
unmounted:
  description: The mount points unmounted, in that order (deepest first for each path).
  returned: always
  type: list
  elements: str
  sample: [/var/lib/kubelet/pods/0c6e1f04-7a9d-4a4e-9a40-61d7f3c2b6a1/volumes/kubernetes.io~projected/kube-api-access-x2v9q]
moved:
  description: The paths moved aside, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path.
      type: str
    moved_to:
      description: Where it is now, C(<path>.removed-<stamp>).
      type: str
  sample:
    - {path: /var/lib/kubelet, moved_to: /var/lib/kubelet.removed-20250301T101500Z}
lock_holder:
  description: Who held this host's node_retire lock when the task stopped waiting for it (O(lock_timeout)); the task failed.
  returned: when another node_retire held the lock too long
  type: dict
  sample: {pid: 4242, operation: node_retire, command: /usr/bin/python3 ..., started: "2026-12-05T22:22:49Z"}
"""

import contextlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._lock import host_lock, lock_argument_spec
from ansible_collections.kubeforge.cluster.plugins.module_utils._retire import NodeRetirer, RetireError

# One node_retire at a time on a host (module_utils/_lock.py): the one a killed run left running ends first.
LOCK_DOMAIN = "node_retire"


def argument_spec() -> dict:
    return {
        "crictl": {"type": "path"},
        "runtime_endpoint": {"type": "str", "default": "unix:///run/containerd/containerd.sock"},
        "services": {"type": "list", "elements": "str", "default": []},
        "runtime_service": {"type": "str"},
        "links": {"type": "list", "elements": "str", "default": []},
        "paths": {"type": "list", "elements": "path", "default": []},
        **lock_argument_spec(),
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    binaries = {name: module.get_bin_path(name, opt_dirs=["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) or name
                for name in ("systemctl", "ip", "umount")}
    backend = NodeRetirer(module.params, module.run_command, **binaries)
    lock = contextlib.nullcontext() if module.check_mode else host_lock(LOCK_DOMAIN, "node_retire", module.params["lock_timeout"])
    try:
        with lock:
            result = backend.run(check_mode=module.check_mode)
    except RetireError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors, **exc.result)
    except KubeforgeError as exc:  # the host lock: held too long by another run (LockBusy names it), or not usable
        module.fail_json(msg=str(exc), **getattr(exc, "result", {}))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
