# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The host lock of the modules that change etcd's state; the spec is lock_argument_spec() in module_utils/_lock.py."""

    DOCUMENTATION = r"""
options:
  lock_timeout:
    description:
      - Seconds to wait for another kubeforge etcd operation running on the same host to end. When it still runs after
        that, the task fails with a message that names it (process ID, operation, start time and command line).
    type: float
    default: 30.0
notes:
  - "A change (not a read, not check mode) runs under an exclusive lock of the host it runs on, C(flock) on
    C(/run/lock/kubeforge/etcd.lock), shared by M(kubeforge.cluster.etcd_mirror), M(kubeforge.cluster.etcd_snapshot) with
    O(kubeforge.cluster.etcd_snapshot#module:state=restored) and M(kubeforge.cluster.etcd_member) with a
    O(kubeforge.cluster.etcd_member#module:state). A module keeps running on the host when its controller dies (a lost
    SSH session, a killed C(docker exec)); the lock stops the next run from starting the same change beside it. The
    kernel releases the lock when its holder ends, however it ends."
"""
