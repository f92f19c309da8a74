# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""encryption_key_usage: documentation against the argument spec, EXAMPLES, and main() without etcd.

The counting, the refusal and the rewrite are tested in tests/unit/plugins/module_utils/test_encryption.py."""
from __future__ import annotations

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.doc_fragments.etcd_client import ModuleDocFragment
from ansible_collections.kubeforge.cluster.plugins.modules import encryption_key_usage as module
from module_checks import run_main  # pylint: disable=import-error  # beside this file

DOC = yaml.safe_load(module.DOCUMENTATION)


def options() -> dict:
    """The module's options with the etcd_client fragment merged in as Ansible merges it (module keys win per option)."""
    assert DOC["extends_documentation_fragment"] == ["kubeforge.cluster.etcd_client"]
    merged = {name: dict(option) for name, option in yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"].items()}
    for name, option in DOC["options"].items():
        merged[name] = {**merged.get(name, {}), **option}
    return merged


def test_documentation_matches_the_argument_spec():
    documented, spec = options(), module.argument_spec()
    assert set(documented) == set(spec)
    for name, option in spec.items():
        for key in ("type", "default", "choices", "elements"):
            assert documented[name].get(key, "str" if key == "type" else None) == option.get(key, "str" if key == "type" else None), (name, key)
        assert bool(documented[name].get("required")) == bool(option.get("required")), name
        assert documented[name].get("description"), name
    assert DOC["attributes"]["check_mode"]["support"] == "full"


def test_examples_use_only_options_that_exist():
    tasks = [task["kubeforge.cluster.encryption_key_usage"] for task in yaml.safe_load(module.EXAMPLES)]
    assert len(tasks) == 3
    for args in tasks:
        assert set(args) <= set(module.argument_spec()), set(args) - set(module.argument_spec())


def test_return_is_documented_with_samples():
    for key, entry in yaml.safe_load(module.RETURN).items():
        assert {"description", "returned", "type", "sample"} <= set(entry), key


@pytest.mark.parametrize("args, fragment", [
    ({"resources": ["secrets"], "rewrite": True}, "rewrite is True but all of the following are missing: primary, kubeconfig"),
    ({"resources": ["*.*"]}, "wildcards are not supported"),
])
def test_argument_errors(args, fragment, closed_port):
    result = run_main(module, {"endpoints": [f"https://127.0.0.1:{closed_port}"], "timeout": 0.3, **args})
    assert result["failed"] and fragment in result["msg"], result["msg"]


def test_etcd_errors_become_failures(closed_port):
    result = run_main(module, {"endpoints": [f"https://127.0.0.1:{closed_port}"], "timeout": 0.3, "resources": ["secrets"], "drop": ["old"]})
    assert result["failed"] and "cannot connect to any etcd endpoint" in result["msg"], result["msg"]
