# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of file_bundle: read every ``src`` on the controller and run the module once with the contents.

Contents travel base64-encoded in the module's arguments (declared no_log there), so one task
copies all of a host's files in a single module run, with no per-file transfer.

With ``record``, one shell command first asks the host for the record of the module's last runs and the state of
every file, directory and unit: when nothing would change, that is the result, and the module does not run
(plugins/module_utils/_file_record.py). A host whose node facts (kubeforge.cluster.node_facts, read by each
playbook's preflight) say it has no record, a new host, is not asked.
"""

from __future__ import annotations

import base64

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.kubeforge.cluster.plugins.module_utils import _file_record
from ansible_collections.kubeforge.cluster.plugins.module_utils._files import FilesError, asked_state
from ansible_collections.kubeforge.cluster.plugins.plugin_utils._in_process import execute_module, runs_in_process

MODULE = "kubeforge.cluster.file_bundle"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        entries = args.get("files", [])
        if not isinstance(entries, list):
            raise AnsibleActionFail("files must be a list of dicts")
        check_mode = bool(self._play_context.check_mode)

        sent, pending, problems = [], [], []
        for index, raw in enumerate(entries):
            if not isinstance(raw, dict):
                problems.append(f"files[{index}] is not a dict")
                continue
            entry = dict(raw)
            src = entry.pop("src", None)
            content = entry.pop("content", None)
            if src is not None and (content is not None or entry.get("content_base64") is not None):
                problems.append(f"files[{index}] ({entry.get('dest')}): src cannot be combined with content")
                continue
            if src is not None:
                data, problem = self._read_source(str(src))
                if data is None:
                    if check_mode and problem == "missing":
                        pending.append((index, entry))
                        continue
                    problems.append(f"files[{index}] ({entry.get('dest')}): " + (f"src {src} does not exist" if problem == "missing" else problem))
                    continue
                entry["content_base64"] = base64.b64encode(data).decode("ascii")
            elif content is not None:
                entry["content_base64"] = base64.b64encode(str(content).encode("utf-8")).decode("ascii")
            sent.append((index, entry))
        if problems:
            raise AnsibleActionFail(f"{len(problems)} problem(s) in files, nothing written: " + "; ".join(problems))

        args["files"] = [entry for _index, entry in sent]
        node = (task_vars.get("ansible_facts") or {}).get("kubeforge_node") or {}
        asking = boolean(args.get("record", False), strict=False) and node.get("file_record") is not False and not pending and not runs_in_process(self)
        settled = self._settled(args) if asking else None
        if settled is not None:
            result.update(settled)
            return result
        module_result = execute_module(self, MODULE, args, task_vars)
        result.update(module_result)
        if result.get("failed") or not pending:
            return result
        # Check mode: files whose source an earlier task would have written are reported as changes.
        by_index = dict(zip((index for index, _entry in sent), result.get("files", [])))
        for index, entry in pending:
            by_index[index] = {"dest": entry.get("dest"), "changed": True, "changes": ["source_pending"]}
        result["files"] = [by_index[index] for index in sorted(by_index)]
        result["changed_files"] = [item["dest"] for item in result["files"] if item["changed"]]
        services = set(result.get("services_changed", []))
        for _index, entry in pending:
            services.update(entry.get("services") or [])
        result["services_changed"] = sorted(services)
        result["changed"] = True
        return result

    def _settled(self, args: dict) -> dict | None:
        """The result of a module run that would change nothing, from one shell command on the host; None when the
        module must run (something differs, or an argument is wrong: the module says what)."""
        try:
            asked = asked_state(args)
        except FilesError:
            return None
        command = _file_record.probe_command(_file_record.RECORD_PATH, [entry["dest"] for entry in asked["files"]],
                                             [path for path, _mode, _owner, _group in asked["directories"]], asked["absent"],
                                             asked["running"] + asked["stopped"], _file_record.services_named(asked["files"]))
        answer = self._low_level_execute_command(command)
        return _file_record.settled_result(asked["files"], asked["directories"], asked["running"], asked["stopped"], str(answer.get("stdout", "")))

    def _read_source(self, src: str) -> tuple[bytes | None, str]:
        """(content, '') or (None, 'missing' | a problem)."""
        try:
            path = self._find_needle("files", src)
        except AnsibleError:
            return None, "missing"
        try:
            with open(path, "rb") as handle:
                return handle.read(), ""
        except FileNotFoundError:
            return None, "missing"
        except OSError as exc:
            return None, f"cannot read {path}: {exc.strerror}"
