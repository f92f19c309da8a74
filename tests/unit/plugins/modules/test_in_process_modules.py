# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller tasks run their module in the task's worker (plugin_utils/_in_process.py): through
ansible-playbook, no module payload is sent, and the result, check mode, diff, no_log and failures are
those of a module run. A task the worker cannot stand in for still sends its module."""
from __future__ import annotations

import os

from one_task_play import module_runs, run_task  # pylint: disable=import-error  # beside this file


def _ca_task(tmp_path, **extra) -> dict:
    return {"kubeforge.cluster.x509_cert": {"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"),
                                            "common_name": "in-process-ca", "profile": "ca", "valid_days": 30,
                                            "renew_before_days": 5}, **extra}


def test_a_controller_task_runs_its_module_in_the_worker(tmp_path, collections_path):
    first = run_task(_ca_task(tmp_path), tmp_path, collections_path, "-vvv")
    assert first["changed"] is True and first["reasons"] == ["missing", "key_missing"], first["_stdout"][-2000:]
    assert module_runs(first["_stdout"], "x509_cert") == 0
    assert (tmp_path / "ca.crt").exists() and os.stat(tmp_path / "ca.key").st_mode & 0o777 == 0o600

    again = run_task(_ca_task(tmp_path), tmp_path, collections_path)
    assert again["changed"] is False and again["serial"] == first["serial"]


def test_check_mode_and_diff_reach_the_module_in_the_worker(tmp_path, collections_path):
    result = run_task(_ca_task(tmp_path), tmp_path, collections_path, "--check", "--diff")
    assert result["changed"] is True and result["serial"] is None
    assert result["diff"]["after"]["subject"] == "CN=in-process-ca"
    assert not (tmp_path / "ca.crt").exists()


def test_argument_errors_fail_the_task_as_a_module_run_does(tmp_path, collections_path):
    task = _ca_task(tmp_path)
    task["kubeforge.cluster.x509_cert"]["profile"] = "bogus"
    result = run_task(task, tmp_path, collections_path)
    assert result["failed"] is True
    assert "value of profile must be one of: ca, server, client, peer, got: bogus" in result["msg"]


def test_no_log_values_are_masked_in_the_worker_too(tmp_path, collections_path):
    # file_bundle's content travels in content_base64, declared no_log: a failure echoing it stays masked.
    secret = "c2VjcmV0LXZhbHVl"
    task = {"kubeforge.cluster.file_bundle": {"files": [{"dest": str(tmp_path / "file"), "content": "secret-value",
                                                         "mode": "not-a-mode"}]}}
    result = run_task(task, tmp_path, collections_path, "-vvv")
    assert result["failed"] is True, result
    assert secret not in result["_stdout"]
    assert module_runs(result["_stdout"], "file_bundle") == 0


def test_a_task_with_an_environment_sends_its_module(tmp_path, collections_path):
    # The worker cannot give the module the task's environment: the module runs as usual.
    result = run_task(_ca_task(tmp_path, environment={"KUBEFORGE_TEST": "1"}), tmp_path, collections_path, "-vvv")
    assert result["changed"] is True
    assert module_runs(result["_stdout"], "x509_cert") == 1
