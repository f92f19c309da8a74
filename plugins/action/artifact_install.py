# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of artifact_install: sources, the lock, offline copies.

1. Resolve each artifact's source and reference checksum (plugins/module_utils/_artifacts.py):
   the lock's once it holds the version, else the published one or the .sha256 beside the file.
2. An offline artifact whose version has no directory on the host (one shell command asks) is
   surely needed there: its file is copied to the host's temporary directory before the module runs,
   so that a new host installs its batch in one module run.
3. Run the module on the host: it verifies what is installed and installs what differs (with
   verify_recorded, it also checks the artifacts earlier installs recorded there against the lock).
4. When the host still lacks an offline file, the module installs nothing: the file is copied and
   the batch runs again.
   Each copied file is checked here against the reference while it is copied: a wrong one fails the
   task before the module installs anything, and leaves with the temporary directory. Its sha256 is
   the one the preflight keeps for its stat (controller_digests): a file whose stat moved is hashed again.
5. Record every verified checksum in the lock (first use of a version, or an update), under a
   file lock so that the hosts of a run record in turn; a mismatch fails showing both checksums.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts
from ansible_collections.kubeforge.cluster.plugins.module_utils._artifact_install import version_dir
from ansible_collections.kubeforge.cluster.plugins.plugin_utils._host_tmp import HostTmpCopies

MODULE = "kubeforge.cluster.artifact_install"
# Filled here; the module's other options pass through.
CONTROLLER_OPTIONS = ("arch", "artifacts_dir", "mirror", "checksum_source", "lock_file", "lock_update")


class ActionModule(HostTmpCopies, ActionBase):
    # A temporary directory is made only when an offline file must be copied (not on every run).
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        options = {key: args.pop(key, None) for key in CONTROLLER_OPTIONS}
        arch = options["arch"] or "amd64"
        lock_path = options["lock_file"] or ""
        update = boolean(options["lock_update"] or False, strict=False)
        check_mode = bool(self._play_context.check_mode)
        host = task_vars.get("inventory_hostname", "the host")

        entries = args.get("artifacts")
        if not isinstance(entries, list) or not all(isinstance(entry, dict) and entry.get("name") for entry in entries):
            raise AnsibleActionFail("artifacts must be a list of dicts, each with a name and a version")
        try:
            lock = _artifacts.load_lock(lock_path) if lock_path else {}
        except _artifacts.ArtifactsError as exc:
            raise AnsibleActionFail(str(exc)) from exc

        sources, problems = [], []
        for entry in entries:
            try:
                sources.append(_artifacts.resolve(entry["name"], str(entry.get("version", "")), arch, options["artifacts_dir"] or "",
                                                  options["mirror"] or "", options["checksum_source"] or "published", lock, lock_path, update))
            except _artifacts.ArtifactsError as exc:
                problems.append(str(exc))
        if problems:
            raise AnsibleActionFail(f"{len(problems)} problem(s) with the artifacts, nothing installed: " + "; ".join(problems),
                                    result={"errors": problems})

        host_entries = [dict(entry, **self._host_fields(source)) for entry, source in zip(entries, sources)]
        # The recorded artifacts are checked against the lock as it is; a lock update checks each install itself.
        args["verify_recorded"] = boolean(args.get("verify_recorded") or False, strict=False) and not update
        if args["verify_recorded"]:
            args["lock"] = lock
        try:
            needed = [] if check_mode else self._versions_the_host_lacks(args.get("install_dir"), sources)
            if needed:
                outcome = self._copy_and_install(args, host_entries, sources, needed, options["artifacts_dir"], task_vars)
            else:
                outcome = self._run_module(dict(args, artifacts=host_entries), task_vars)
            pending = [index for index, item in enumerate(outcome.get("artifacts") or []) if item.get("needs_source")]
            if pending and not outcome.get("failed"):
                if check_mode:
                    self._check_offline_files([sources[index] for index in pending], options["artifacts_dir"])
                else:
                    outcome = self._copy_and_install(args, host_entries, sources, pending, options["artifacts_dir"], task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

        result.update(outcome)
        result["lock_file"] = lock_path
        result["lock_changes"] = []
        if result.get("failed"):
            if any(source.locked for source in sources) and "locked sha256" in str(result.get("msg", "")):
                result["msg"] = f"{result['msg']}; {_artifacts.LOCK_UPDATE_HINT}"
            return result
        if lock_path:
            records = [(source.name, source.version, source.arch, item["sha256"], item.get("files") or {})
                       for source, item in zip(sources, result.get("artifacts") or []) if item.get("sha256")]
            try:
                result["lock_changes"] = _artifacts.update_lock_file(lock_path, records, update, where=f"installed on {host}",
                                                                     write=not check_mode)
            except _artifacts.ArtifactsError as exc:
                raise AnsibleActionFail(str(exc), result={"errors": exc.errors}) from exc
            if result["lock_changes"] and not check_mode:
                # First use trusts the source: say so, where the operator sees it.
                self._display.warning(f"Recorded in the artifacts lock {lock_path} (review it and keep it with the inventory): "
                                      + "; ".join(result["lock_changes"]))
        return result

    @staticmethod
    def _host_fields(source: _artifacts.Source) -> dict:
        return {"arch": source.arch, "filename": source.filename, "url": "" if source.src else source.url, "offline": bool(source.src),
                "location": source.src or source.url, "sha256": source.sha256, "checksum_url": source.checksum_url,
                "files": source.files, "origin": source.origin, "locked": source.locked}

    def _run_module(self, module_args: dict, task_vars: dict) -> dict:
        return self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)

    def _versions_the_host_lacks(self, install_dir, sources: list) -> list:
        """The indexes of the offline artifacts whose version directory the host does not have."""
        offline = {version_dir(install_dir, source.name, source.version): index
                   for index, source in enumerate(sources) if source.src} if install_dir else {}
        return sorted(offline[path] for path in self._absent_on_host(list(offline)))

    @staticmethod
    def _check_offline_files(sources: list, artifacts_dir) -> None:
        """The offline files the host lacks, checked here (while they are copied; in check mode, they would be)."""
        digest = _artifacts.controller_digests(artifacts_dir).digest if artifacts_dir else _artifacts.file_sha256
        problems = []
        for source in sources:
            found = digest(source.src)
            if source.sha256 and found != source.sha256:
                problems.append(f"{_artifacts.label(source.name, source.version, source.arch)}: "
                                + (f"locked sha256 {source.sha256} ({source.origin}), found {found} ({source.src})" if source.locked
                                   else f"{source.src} has sha256 {found}, {source.origin} says {source.sha256}"))
        if problems:
            hint = f"; {_artifacts.LOCK_UPDATE_HINT}" if any(source.locked for source in sources) else ""
            raise AnsibleActionFail("; ".join(problems) + "; nothing was installed" + hint, result={"errors": problems})

    def _copy_and_install(self, args: dict, host_entries: list, sources: list, pending: list, artifacts_dir, task_vars: dict) -> dict:
        """Copy the offline files the host lacks, each hashed here meanwhile, then run the whole batch (again:
        the module installs nothing while a file is missing). ``host_entries`` keep the copies' paths."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            checked = pool.submit(self._check_offline_files, [sources[index] for index in pending], artifacts_dir)
            copies = self._send_to_host_tmp([(sources[index].src, f"{index}-{sources[index].filename}") for index in pending])
            checked.result()
        for index, remote in zip(pending, copies):
            host_entries[index] = dict(host_entries[index], src=remote)
        return self._run_module(dict(args, artifacts=host_entries), task_vars)
