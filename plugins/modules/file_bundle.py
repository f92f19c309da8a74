#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_bundle
short_description: Copy many controller files (or given contents) to a host in one task, atomically, with owner and mode
version_added: 0.1.0
description:
  - Writes a list of files on the host in one task, for example every certificate, key and kubeconfig a host needs.
  - The action plugin reads each O(files[].src) on the controller and sends its content with the module; O(files[].content)
    gives the content inline instead.
  - A file is written only when its content differs; its mode, owner or group are fixed when only they differ. Each file
    is written to a temporary file in its own directory, with its mode and owner already set, fsynced and renamed over the
    target. Missing parent directories are created with O(directory_mode) and the file's owner and group.
  - Contents are treated as secrets - they are never logged or returned, and shown in a diff only for the files marked
    O(files[].diff); the result and the diff name the files and what changed about them.
  - Each file can name the O(files[].services) that read it; RV(services_changed) lists those of the files that changed,
    so that a play restarts only what is affected. With O(record), a service that was running when its file changed is
    listed by every later run too, while the process that ran then still runs (its systemd invocation ID), so that a
    restart owed by a run that stopped before it is not lost.
  - After the files, the systemd units of O(running_units) are enabled and started where they are not, and those of
    O(stopped_units) stopped and disabled where they are installed, with one systemctl call per kind of change. A role
    writes its files and starts its services in one task; restarts for changed files stay with the role's handlers.
author:
  - kubeforge developers (@kubeforge)
options:
  files:
    description:
      - The files to write. Each needs exactly one of O(files[].src), O(files[].content) or O(files[].block).
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path of the file on the host.
        type: path
        required: true
      src:
        description:
          - A file on the controller whose content is copied (read by the action plugin). A relative path is looked up
            like M(ansible.builtin.copy) looks up its O(ansible.builtin.copy#module:src) (the role's C(files/), then the playbook's).
        type: path
      content:
        description: The file's content, as text.
        type: str
      content_base64:
        description: The file's content, base64-encoded. The action plugin fills it from O(files[].src) or O(files[].content).
        type: str
      block:
        description:
          - Text kept between two marker lines of the file, the rest of the file left as it is (the block is appended
            when the file has no such markers; a missing file is created with it). The layout
            M(ansible.builtin.blockinfile) writes, so a block it wrote is taken over without a change.
        type: str
      marker:
        description:
          - The marker lines of O(files[].block), with C({mark}) where V(BEGIN) and V(END) go, such as
            V(# {mark} kubeforge cluster hosts). Required with O(files[].block).
        type: str
      unsafe_writes:
        description:
          - When the file cannot be renamed over (a bind mount such as a container's C(/etc/hosts)), rewrite it in place
            instead of failing. Readers may then see a partial file while it is written.
        type: bool
        default: false
      mode:
        description: The file's mode, an octal string such as V('0600'). Defaults to O(mode).
        type: raw
      owner:
        description: Owner (name or uid). Defaults to O(owner).
        type: str
      group:
        description: Group (name or gid). Defaults to O(group).
        type: str
      services:
        description: Services that read this file; reported in RV(services_changed) when the file changes.
        type: list
        elements: str
        default: []
      diff:
        description:
          - Show the file's old and new content in the diff (C(--diff)). Only for files that hold no secret, such as a
            unit or a configuration file; other files show only what changed about them.
        type: bool
        default: false
      validate:
        description:
          - A command that checks the new content before the file is written, with C(%s) where the path goes, for example
            V(nginx -t -q -c %s). It runs on a temporary copy (in the file's directory when that exists), only when the
            content changes, not in check mode. When any file's check fails, no file of the bundle is written.
        type: str
      force:
        description:
          - When V(false), a file that exists is left as it is (content, mode and owner); only a missing one is written.
            One whose content differs is named in RV(stale_files).
        type: bool
        default: true
  mode:
    description: Mode of the files that do not set their own.
    type: raw
    default: '0644'
  owner:
    description: Owner of the files (and created directories) that do not set their own; left as created when not set.
    type: str
  group:
    description: Group of the files (and created directories) that do not set their own; left as created when not set.
    type: str
  absent:
    description:
      - Files to remove when they exist, such as what a host received before its role in the cluster changed. A path may
        not also be in O(files); a directory is an error.
    type: list
    elements: path
    default: []
  directories:
    description:
      - Directories to ensure (created with their missing parents), also when no file is written in them. Their mode is
        set to O(directory_mode), and their owner and group to O(owner) and O(group) when those are set.
      - An entry is a path, or a dict with C(path) and its own C(mode).
    type: list
    elements: raw
    default: []
  directory_mode:
    description:
      - Mode of the directories in O(directories) that do not set their own, and of the parent directories of files
        that the module creates. Other existing directories are left as they are.
    type: raw
    default: '0755'
  running_units:
    description:
      - systemd units (V(kube-proxy), V(etcd-backup.timer)) to enable and start, after the files are written. When a
        written file is a unit file, or systemd reports a unit file changed on disk, systemd reads them again first
        (daemon-reload). A unit that does not exist is an error (in check mode, unless the bundle would create it).
    type: list
    elements: str
    default: []
  reload_units:
    description:
      - Units of O(running_units) that are reloaded when a file of the bundle changed and they were running already,
        such as a firewall whose reload loads new rules in one step.
    type: list
    elements: str
    default: []
  stopped_units:
    description:
      - systemd units to stop and disable where they are installed (one that does not exist is left alone).
    type: list
    elements: str
    default: []
  record:
    description:
      - Note each file's content digest and stat (inode, size, times) on the host after the run, in
        C(/var/lib/kubeforge/file_bundle.json). A later run of the same task, when every file still has the stat noted
        with the content asked, and the directories, absent paths and units are as asked, is answered by the action
        plugin from one shell command, without running the module. Any write to a file moves its ctime, which no
        program can set back, so a changed file always makes the module run.
    type: bool
    default: false
attributes:
  action:
    support: full
    description: An action plugin reads O(files[].src) on the controller.
  check_mode:
    support: full
    description: Writes nothing and starts or stops nothing; reports which files and units would change and how. A O(files[].src) that does not exist yet is
      reported as a change in check mode (an earlier task of the same check run would have created it) and is an error
      otherwise.
  diff_mode:
    support: full
    description: Shows, per changed file, whether it is created, removed or what changes (content, mode, owner, group); the
      content only of the files marked O(files[].diff); and what changes about each unit.
  idempotent:
    support: full
    description: A second run with the same files changes nothing.
notes:
  - Files that are no longer in the list are left alone unless they are listed in O(absent).
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Send the control-plane certificates and keys
  kubeforge.cluster.file_bundle:
    owner: root
    group: root
    files:
      - src: /srv/credentials/pki/apiserver.crt
        dest: /etc/kubernetes/pki/apiserver.crt
        mode: '0644'
        services: [kube-apiserver]
      - src: /srv/credentials/pki/apiserver.key
        dest: /etc/kubernetes/pki/apiserver.key
        mode: '0600'
        services: [kube-apiserver]
  register: pki_files

- name: Restart the apiserver when its files changed
  ansible.builtin.systemd_service:
    name: kube-apiserver
    state: restarted
  when: "'kube-apiserver' in pki_files.services_changed"

- name: Write the kube-proxy configuration and unit, and keep kube-proxy running
  kubeforge.cluster.file_bundle:
    files:
      - {dest: /etc/kubernetes/kube-proxy-config.yaml, content: "{{ proxy_config }}", diff: true}
      - {dest: /etc/systemd/system/kube-proxy.service, content: "{{ proxy_unit }}", diff: true}
    running_units: [kube-proxy]
  register: proxy_written

- name: Create a private directory and write a file from inline content on the controller
  kubeforge.cluster.file_bundle:
    directories: [/srv/credentials/kubeconfig]
    directory_mode: '0700'
    files:
      - dest: /srv/credentials/kubeconfig/admin.kubeconfig
        content: "{{ admin_kubeconfig }}"
        mode: '0600'
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
changed:
  description: Whether any file was (or in check mode would be) written or had its mode, owner or group fixed, or a unit changed.
  returned: always
  type: bool
  sample: true
files:
  description: One entry per file, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    dest:
      description: The file's path.
      type: str
    changed:
      description: Whether it changed.
      type: bool
    changes:
      description: What changed - V(created), V(content), V(mode), V(owner), V(group), or V(source_pending) in check mode.
      type: list
      elements: str
  sample:
    - dest: /etc/kubernetes/pki/apiserver.crt
      changed: true
      changes: [content]
changed_directories:
  description: The directories of O(directories) that were (or would be) created or had their mode, owner or group fixed.
  returned: always
  type: list
  elements: str
  sample: []
removed_files:
  description: The files of O(absent) that were (or would be) removed.
  returned: always
  type: list
  elements: str
  sample: [/etc/kubernetes/pki/ca.key]
changed_files:
  description: The paths of the files that changed.
  returned: always
  type: list
  elements: str
  sample: [/etc/kubernetes/pki/apiserver.crt]
stale_files:
  description: The paths of the files with O(files[].force=false) that exist with other content than given (left as they are).
  returned: always
  type: list
  elements: str
  sample: [/etc/kubernetes/encryption-config.yaml]
services_changed:
  description:
    - The services named by the files that changed, sorted, each once.
    - With O(record), also those named by a file written while they ran, by this run or an earlier one, that still run
      the process that ran then.
  returned: always
  type: list
  elements: str
  sample: [kube-apiserver]
unit_changes:
  description:
    - What changed (or would in check mode) about each unit of O(running_units) and O(stopped_units) - any of
      V(enabled), V(started), V(reloaded), V(stopped), V(disabled); units without a change are left out.
  returned: always
  type: dict
  sample: {kube-proxy: [enabled, started]}
started_units:
  description: The units of O(running_units) this task started, for a play that should not restart them again.
  returned: always
  type: list
  elements: str
  sample: [kube-proxy]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import exit_with_backend
from ansible_collections.kubeforge.cluster.plugins.module_utils._file_record import RECORD_PATH
from ansible_collections.kubeforge.cluster.plugins.module_utils._files import FileBundleBackend


def argument_spec() -> dict:
    entry = {
        "dest": {"type": "path", "required": True},
        "src": {"type": "path"},
        "content": {"type": "str", "no_log": True},
        "content_base64": {"type": "str", "no_log": True},
        "mode": {"type": "raw"},
        "owner": {"type": "str"},
        "group": {"type": "str"},
        "services": {"type": "list", "elements": "str", "default": []},
        "diff": {"type": "bool", "default": False},
        "validate": {"type": "str"},
        "force": {"type": "bool", "default": True},
        "block": {"type": "str"},
        "marker": {"type": "str"},
        "unsafe_writes": {"type": "bool", "default": False},
    }
    return {
        "files": {"type": "list", "elements": "dict", "default": [], "options": entry,
                  "mutually_exclusive": [("src", "content", "content_base64", "block")], "required_together": [("block", "marker")]},
        "directories": {"type": "list", "elements": "raw", "default": []},
        "absent": {"type": "list", "elements": "path", "default": []},
        "mode": {"type": "raw", "default": "0644"},
        "owner": {"type": "str"},
        "group": {"type": "str"},
        "directory_mode": {"type": "raw", "default": "0755"},
        "running_units": {"type": "list", "elements": "str", "default": []},
        "reload_units": {"type": "list", "elements": "str", "default": []},
        "stopped_units": {"type": "list", "elements": "str", "default": []},
        "record": {"type": "bool", "default": False},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    backend = FileBundleBackend(module.params, check_mode=module.check_mode, diff=module._diff,
                                run_command=module.run_command, record_path=RECORD_PATH if module.params["record"] else "")
    exit_with_backend(module, backend)


if __name__ == "__main__":
    main()
