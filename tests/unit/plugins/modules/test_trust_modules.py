# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""trust_anchor_info, trust_anchor_check and credentials_recover: their documentation matches what they take
and return, and trust_anchor_info's main() reads this machine in check mode without a secret in the result."""
from __future__ import annotations

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.action import credentials_recover as recover_action
from ansible_collections.kubeforge.cluster.plugins.action import trust_anchor_check as check_action
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import trust
from ansible_collections.kubeforge.cluster.plugins.modules import credentials_recover, trust_anchor_check, trust_anchor_info
from module_checks import run_main  # pylint: disable=import-error  # beside this file


@pytest.mark.parametrize("module, options", [
    (trust_anchor_info, {"include_content", "etcd_data_dir"}),
    (trust_anchor_check, set(check_action.ActionModule._VALID_ARGS)),
    (credentials_recover, set(recover_action.ActionModule._VALID_ARGS)),
])
def test_documentation(module, options):
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert set(doc["options"]) == options
    assert doc["author"] == ["kubeforge developers (@kubeforge)"]
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert all(attribute["description"] for attribute in doc["attributes"].values())
    name = f"kubeforge.cluster.{doc['module']}"
    examples = [task[name] or {} for task in yaml.safe_load(module.EXAMPLES) if name in task]
    assert examples and all(set(example) <= options for example in examples)
    assert all("returned" in value and "type" in value for value in yaml.safe_load(module.RETURN).values())


def test_the_check_documents_the_escape_hatch_by_its_name():
    assert trust.REINITIALISE_VAR in yaml.safe_load(trust_anchor_check.DOCUMENTATION)["options"]["reinitialise"]["description"][0]


@pytest.mark.parametrize("include_content", [False, True])
def test_main_reads_this_machine_in_check_mode(include_content):
    result = run_main(trust_anchor_info, {"include_content": include_content}, check_mode=True)
    returned = yaml.safe_load(trust_anchor_info.RETURN)
    always = {name for name, value in returned.items() if value["returned"] == "always"}
    assert result["changed"] is False
    assert set(result) - {"invocation"} == (set(returned) if include_content else always) | {"changed"}
    assert result == {**trust.TrustAnchorInfoBackend(include_content).run(), "invocation": result["invocation"]}
