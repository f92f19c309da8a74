# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The x509_info module: its documentation, and main() reading a directory with the real openssl."""
from __future__ import annotations

import datetime
import shutil

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import issue
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.spec import spec_from_options
from ansible_collections.kubeforge.cluster.plugins.modules import x509_info
from module_checks import run_main  # pylint: disable=import-error  # beside this file

DOC = yaml.safe_load(x509_info.DOCUMENTATION)


def test_documentation():
    assert DOC["options"] == {"paths": {"description": DOC["options"]["paths"]["description"], "type": "list", "elements": "path", "required": True}}
    assert DOC["author"] == ["kubeforge developers (@kubeforge)"]
    assert all(attribute["description"] for attribute in DOC["attributes"].values())
    for task in yaml.safe_load(x509_info.EXAMPLES):
        if "kubeforge.cluster.x509_info" in task:
            assert set(task["kubeforge.cluster.x509_info"]) == {"paths"}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_main_reads_a_directory(tmp_path):
    spec = spec_from_options({"path": "/ca.crt", "privatekey_path": "/ca.key", "common_name": "report-ca", "profile": "ca", "valid_days": 3650})
    key = issue.generate_private_key("ecdsa", 256)
    now = datetime.datetime.now(datetime.timezone.utc)
    (tmp_path / "ca.crt").write_bytes(issue.certificate_pem(issue.build_certificate(spec, key.public_key(), key, None, now)))
    result = run_main(x509_info, {"paths": [str(tmp_path), str(tmp_path / "missing")]})
    assert not result["changed"] and result["missing"] == [str(tmp_path / "missing")]
    assert [cert["subject"] for cert in result["certificates"]] == ["CN=report-ca"]
    returned = yaml.safe_load(x509_info.RETURN)
    assert set(result["certificates"][0]) == set(returned["certificates"]["contains"]) - {"error"}
