# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The x509_cert module: its documentation against its argument spec, main(), and one run through the ansible CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import spec as spec_mod
from ansible_collections.kubeforge.cluster.plugins.modules import x509_cert
from module_checks import compare, run_main  # pylint: disable=import-error  # beside this file

ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
MODULE = "kubeforge.cluster.x509_cert"
DOC = yaml.safe_load(x509_cert.DOCUMENTATION)
SPEC = x509_cert.argument_spec()
PATH_INFO = {"state", "mode", "owner", "group", "uid", "gid", "size", "secontext"}


# -- documentation ------------------------------------------------------------------------------

def _module_tasks():
    for task in yaml.safe_load(x509_cert.EXAMPLES):
        if MODULE in task:
            yield task[MODULE]


def test_examples_use_only_options_that_exist():
    tasks = list(_module_tasks())
    assert len(tasks) >= 3
    for args in tasks:
        assert set(args) <= set(SPEC), set(args) - set(SPEC)
        for entry in args.get("certificates", []):
            assert set(entry) <= set(SPEC["certificates"]["options"]), set(entry) - set(SPEC["certificates"]["options"])


def test_examples_validate_as_specs():
    for args in _module_tasks():
        assert spec_mod.specs_from_params(args)


def test_documentation_matches_the_argument_spec():
    compare(DOC["options"], SPEC, "")


def test_documented_attributes():
    assert {name: DOC["attributes"][name]["support"] for name in ("check_mode", "diff_mode", "idempotent")} == dict.fromkeys(
        ("check_mode", "diff_mode", "idempotent"), "full")


def test_options_follow_the_spec_tables():
    assert set(SPEC) - {"certificates", "private_keys"} == set(spec_mod.CERT_OPTIONS)
    assert {name for name, option in SPEC["certificates"]["options"].items() if option.get("required")} == set(spec_mod.REQUIRED_OPTIONS)


def test_return_documents_every_result_key(tmp_path):
    returned = yaml.safe_load(x509_cert.RETURN)
    result = run_main(x509_cert, {"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"), "common_name": "ca",
                                  "profile": "ca", "valid_days": 3650})
    # exit_json adds the stat of a returned "path" (state, mode, owner, ...), as for every module that returns one.
    assert set(result) - {"invocation"} - PATH_INFO == set(returned) - {"results", "private_keys"}
    batch = run_main(x509_cert, {"certificates": [{"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"),
                                                   "common_name": "ca", "profile": "ca", "valid_days": 3650}],
                                 "private_keys": [{"path": str(tmp_path / "sa.key"), "key_type": "rsa"}]})
    assert set(batch) - {"invocation"} == {"changed", "results", "private_keys"}
    assert set(batch["results"][0]) == set(returned) - {"results", "private_keys"}
    assert set(returned["results"]["sample"][0]) == set(batch["results"][0])
    assert set(batch["private_keys"][0]) == set(returned["private_keys"]["contains"]) == set(returned["private_keys"]["sample"][0])


# -- private keys without a certificate -------------------------------------------------------------

def test_a_private_key_is_created_once_and_never_replaced_only_its_mode_fixed(tmp_path):
    ca = {"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"), "common_name": "ca", "profile": "ca",
          "valid_days": 3650}
    sa_key = tmp_path / "sa.key"
    args = {"certificates": [ca], "private_keys": [{"path": str(sa_key), "key_type": "rsa", "key_size": 2048}]}
    planned = run_main(x509_cert, args, check_mode=True)
    assert planned["changed"] and planned["private_keys"] == [{"path": str(sa_key), "created": True, "attributes_changed": False,
                                                               "changed": True}]
    assert not sa_key.exists()
    first = run_main(x509_cert, args)
    assert first["private_keys"][0]["created"] and os.stat(sa_key).st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(sa_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    again = run_main(x509_cert, args)
    assert not again["changed"] and again["private_keys"][0] == {"path": str(sa_key), "created": False, "attributes_changed": False,
                                                                 "changed": False}
    # Asked for another type, and readable by others: kept as it is (tokens it signed stay valid), mode fixed.
    original = sa_key.read_bytes()
    sa_key.chmod(0o644)
    other = run_main(x509_cert, {**args, "private_keys": [{"path": str(sa_key), "key_type": "ecdsa"}]})
    assert other["changed"] and other["private_keys"][0]["attributes_changed"] and not other["private_keys"][0]["created"]
    assert sa_key.read_bytes() == original and os.stat(sa_key).st_mode & 0o777 == 0o600


def test_a_private_key_file_that_is_no_key_fails_and_nothing_is_written(tmp_path):
    sa_key = tmp_path / "sa.key"
    sa_key.write_text("not a key\n")
    result = run_main(x509_cert, {"certificates": [{"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"),
                                                    "common_name": "ca", "profile": "ca", "valid_days": 3650}],
                                  "private_keys": [{"path": str(sa_key)}]})
    assert result["failed"] and str(sa_key) in result["msg"]
    assert sorted(os.listdir(tmp_path)) == ["sa.key"] and sa_key.read_text() == "not a key\n"


@pytest.mark.parametrize("private_keys, fragment", [
    ([{"path": "/srv/pki/sa.key", "key_type": "ecdsa", "key_size": 300}], "key_size 300 is not an ECDSA curve size"),
    ([{"path": "/srv/pki/sa.key", "key_type": "rsa", "key_size": 1024}], "key_size 1024 is too small for RSA (at least 2048)"),
    ([{"path": "/srv/pki/ca.key"}], "it is also a file of certificates"),
])
def test_private_keys_are_checked_with_the_batch(private_keys, fragment):
    result = run_main(x509_cert, {"certificates": [{"path": "/srv/pki/ca.crt", "privatekey_path": "/srv/pki/ca.key", "common_name": "ca",
                                                    "profile": "ca", "valid_days": 3650}], "private_keys": private_keys})
    assert result["failed"] and fragment in result["msg"], result["msg"]


def test_private_keys_need_the_batch_form(tmp_path):
    result = run_main(x509_cert, {"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"), "common_name": "ca",
                                  "profile": "ca", "valid_days": 3650, "private_keys": [{"path": str(tmp_path / "sa.key")}]})
    assert result["failed"] and "private_keys is taken with the batch form (certificates) only" in result["msg"]
    assert not os.listdir(tmp_path)


# -- main() -----------------------------------------------------------------------------------------

def test_main_single(tmp_path):
    ca = {"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"), "common_name": "ca", "profile": "ca", "valid_days": 3650}
    first = run_main(x509_cert, ca)
    assert first["changed"] and first["reasons"] == ["missing", "key_missing"] and not first.get("failed")
    again = run_main(x509_cert, ca)
    assert not again["changed"] and again["serial"] == first["serial"]


def test_main_check_and_diff(tmp_path):
    ca = {"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"), "common_name": "ca", "profile": "ca", "valid_days": 3650}
    result = run_main(x509_cert, ca, check_mode=True, diff=True)
    assert result["changed"] and result["diff"]["after"]["common_name"] == "ca" and os.listdir(tmp_path) == []


def test_main_reports_every_bad_entry(tmp_path):
    entries = [
        {"path": str(tmp_path / "a.crt"), "privatekey_path": str(tmp_path / "a.key"), "common_name": "a", "profile": "server", "dns_names": ["10.0.0.1"]},
        {"path": str(tmp_path / "b.crt"), "privatekey_path": str(tmp_path / "b.key"), "common_name": "b", "profile": "server", "ip_addresses": ["b"]},
    ]
    result = run_main(x509_cert, {"certificates": entries, "valid_days": 365})
    assert result["failed"] and len(result["errors"]) == 4  # two bad SANs, two entries without a CA
    assert "certificates[0]" in result["msg"] and "certificates[1]" in result["msg"]


@pytest.mark.parametrize("args, fragment", [
    ({"path": "/x.crt", "certificates": []}, "mutually exclusive"),
    ({"path": "/x.crt", "privatekey_path": "/x.key", "profile": "ca"}, "common_name"),
    ({}, "one of the following is required: path, certificates"),
    ({"path": "/x.crt", "privatekey_path": "/x.key", "common_name": "x", "profile": "kubelet"}, "value of profile must be one of"),
])
def test_main_argument_errors(args, fragment):
    result = run_main(x509_cert, args)
    assert result["failed"] and fragment in result["msg"], result["msg"]


# -- end to end through the ansible CLI ---------------------------------------------------------------

def ansible(collections_path, args: dict, *flags: str) -> dict:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_CONFIG=os.path.join(collections_path, "ansible.cfg"))
    done = subprocess.run([ANSIBLE, "localhost", "-m", MODULE, "-a", json.dumps(args), *flags],
                          env=env, capture_output=True, text=True, check=False, timeout=120)
    output, _end = json.JSONDecoder().raw_decode(done.stdout)
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.mark.skipif(not os.path.exists(ANSIBLE), reason="the ansible CLI is not installed beside this Python")
def test_end_to_end_through_ansible(collections_path, tmp_path):
    args = {
        "ca_cert": str(tmp_path / "ca.crt"), "ca_key": str(tmp_path / "ca.key"),
        "certificates": [
            {"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"), "common_name": "cluster-ca", "profile": "ca", "valid_days": 3650},
            {"path": str(tmp_path / "apiserver.crt"), "privatekey_path": str(tmp_path / "apiserver.key"), "common_name": "kube-apiserver",
             "profile": "server", "dns_names": ["kubernetes", "localhost"], "ip_addresses": ["10.96.0.1", "127.0.0.1"], "valid_days": 365},
            {"path": str(tmp_path / "admin.crt"), "privatekey_path": str(tmp_path / "admin.key"), "common_name": "admin",
             "organizations": ["system:masters"], "profile": "client", "valid_days": 365},
        ],
    }
    first = ansible(collections_path, args)
    assert first["changed"], first
    assert [r["reasons"] for r in first["results"]] == [["missing", "key_missing"]] * 3
    assert first["results"][1]["ip_addresses"] == ["10.96.0.1", "127.0.0.1"]
    second = ansible(collections_path, args, "--diff")
    assert not second["changed"] and [r["serial"] for r in second["results"]] == [r["serial"] for r in first["results"]]
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "apiserver.crt"), str(tmp_path / "admin.crt")],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


_WITHOUT_CRYPTOGRAPHY = """
import contextlib, io, json, sys


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "cryptography":
            raise ImportError("blocked " + name)


sys.meta_path.insert(0, Block())
from ansible.module_utils.testing import patch_module_args
from ansible_collections.kubeforge.cluster.plugins.modules import x509_cert
out = io.StringIO()
with patch_module_args({"path": "/x.crt", "privatekey_path": "/x.key", "common_name": "x", "profile": "ca"}), contextlib.redirect_stdout(out):
    try:
        x509_cert.main()
    except SystemExit:
        pass
print(json.loads(out.getvalue())["msg"])
"""


def test_without_cryptography_the_module_imports_and_fails_clearly(collections_path):
    env = dict(os.environ, PYTHONPATH=str(collections_path))
    done = subprocess.run([sys.executable, "-c", _WITHOUT_CRYPTOGRAPHY], env=env, capture_output=True, text=True, check=False, timeout=60)
    assert "Failed to import the required Python library (cryptography >= 42.0)" in done.stdout, done.stdout + done.stderr
