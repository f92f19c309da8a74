# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a kubeforge module inside the task's worker process when the task runs on the controller.

A module run through the local connection costs about 0.2 s before it does anything (the AnsiballZ
payload, a new Python, its imports), and the roles' controller tasks (the PKI, the API objects, the
node waits) are many. Ansible forks a worker for every task and host, so a module run in that worker
is as isolated from the next task as a new process: it gets the same arguments (the task's check,
diff and no_log settings included), validated by the same AnsibleModule, and returns the same JSON.

The task's own Python is then the controller's: ``ansible_python_interpreter`` of localhost is not
used. A task with become, async or an ``environment`` runs the module the usual way.
"""

from __future__ import annotations

import contextlib
import io
import json
import runpy

from ansible.module_utils import basic
from ansible.module_utils.common.json import Direction, get_module_encoder
from ansible.plugins.action import ActionBase
from ansible.vars.clean import remove_internal_keys

PROFILE = "legacy"  # the serialization profile of every kubeforge module (no METADATA)


def runs_in_process(action) -> bool:
    """Whether ``action``'s task can run its module in the worker: the local connection as the same user."""
    return (action._connection.transport == "local" and not action._play_context.become
            and not action._task.async_val and not any(action._task.environment or []))


def execute_module(action, module_name: str, module_args: dict, task_vars: dict) -> dict:
    """What ``action._execute_module`` returns, from a run in this process when the task allows it."""
    if not runs_in_process(action):
        return action._execute_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
    args = dict(module_args)
    action._update_module_args(module_name, args, task_vars)
    params = json.dumps({"ANSIBLE_MODULE_ARGS": args}, cls=get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE))
    data = action._parse_returned_data({"stdout": run_module_main(module_name, params.encode("utf-8")),
                                        "stderr": "", "rc": 0}, PROFILE)
    remove_internal_keys(data)
    return data


def run_module_main(module_name: str, params: bytes) -> str:
    """The module's output: run as its own ``__main__`` with ``params``, as the AnsiballZ wrapper does."""
    namespace, collection, short = module_name.rsplit(".", 2)
    module_fqn = f"ansible_collections.{namespace}.{collection}.plugins.modules.{short}"
    basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = params, PROFILE
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            runpy.run_module(module_fqn, run_name="__main__", alter_sys=False)
    except SystemExit:
        pass  # exit_json and fail_json end the run; their JSON is in the output
    finally:
        basic._ANSIBLE_ARGS = basic._ANSIBLE_PROFILE = None
    return output.getvalue()


class InProcessModuleAction(ActionBase):
    """The action of a module that often runs on the controller (``delegate_to: localhost``)."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result.update(execute_module(self, self._task.resolved_action, self._task.args, task_vars or {}))
        return result
