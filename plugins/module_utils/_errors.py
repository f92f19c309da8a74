# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule


class KubeforgeError(Exception):
    """An error the collection explains to the operator; modules turn it into fail_json(msg=...)."""


def exit_with_backend(module: AnsibleModule, backend) -> None:
    """Exit ``module`` with ``backend.run()``'s result.

    A KubeforgeError fails the module with its message and every problem in ``errors`` (the
    error's own list where it has one, else the message alone).
    """
    try:
        result = backend.run()
    except KubeforgeError as exc:
        module.fail_json(msg=str(exc), errors=getattr(exc, "errors", [str(exc)]))
    module.exit_json(**result)
