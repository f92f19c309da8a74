# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import spec as spec_mod
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.spec import (
    entry_options, parse_ip, parse_mode, spec_from_options, specs_from_params, validate_dns_name,
)

LEAF = {
    "path": "/pki/a.crt", "privatekey_path": "/pki/a.key", "common_name": "a", "profile": "server",
    "dns_names": ["a"], "ca_cert": "/pki/ca.crt", "ca_key": "/pki/ca.key", "valid_days": 365,
}


def problems_of(options):
    with pytest.raises(PkiError) as info:
        spec_from_options(options)
    return info.value.errors


@pytest.mark.parametrize("name", ["localhost", "kubernetes.default.svc.cluster.local", "*.apps.example.com", "node_1", "a" * 63, "x-1.y"])
def test_valid_dns_names(name):
    assert validate_dns_name(name) is None


@pytest.mark.parametrize("name, fragment", [
    ("10.0.0.1", "is an IP address"),
    ("::1", "is an IP address"),
    ("-bad.example", "bad label"),
    ("bad-.example", "bad label"),
    ("a..b", "bad label"),
    ("trailing.dot.", "bad label"),
    ("sp ace", "bad label"),
    ("*", "bad label"),
    ("a.*.b", "bad label"),
    ("a" * 64, "bad label"),
    ("bücher.example", "xn--"),
    ("", "is not a DNS name"),
    ((("a" * 60) + ".") * 5, "longer than 253"),
])
def test_invalid_dns_names(name, fragment):
    assert fragment in validate_dns_name(name)


@pytest.mark.parametrize("value, expected", [
    ("10.96.0.1", ipaddress.ip_address("10.96.0.1")),
    (" 127.0.0.1 ", ipaddress.ip_address("127.0.0.1")),
    ("fd00::1", ipaddress.ip_address("fd00::1")),
])
def test_parse_ip(value, expected):
    assert parse_ip(value) == (expected, None)


@pytest.mark.parametrize("value, fragment", [
    ("10.0.0.300", "is not an IP address"),
    ("kubernetes", "is not an IP address"),
    ("010.0.0.1", "is not an IP address"),
    ("10.0.0.0/24", "is a network"),
    ("", "is not an IP address"),
])
def test_parse_ip_errors(value, fragment):
    address, problem = parse_ip(value)
    assert address is None and fragment in problem


@pytest.mark.parametrize("value, expected", [("0644", 0o644), ("600", 0o600), (0o640, 0o640), (420, 0o644)])
def test_parse_mode(value, expected):
    assert parse_mode(value) == (expected, None)


@pytest.mark.parametrize("value", ["u+rw", "0x1a4", "99999", 644, 0o4755, True, None])
def test_parse_mode_errors(value):
    mode, problem = parse_mode(value)
    assert mode is None and "mode" in problem


def test_defaults_and_normalisation():
    spec = spec_from_options(dict(LEAF, dns_names=["A.example", "a.EXAMPLE", "b"], ip_addresses=["10.0.0.1", "10.0.0.1"], organizations=["o", "o"]))
    assert spec.dns_names == ("A.example", "b")
    assert spec.ip_addresses == (ipaddress.ip_address("10.0.0.1"),)
    assert spec.organizations == ("o",)
    assert (spec.key_type, spec.key_size, spec.valid_days, spec.renew_before_days, spec.mode, spec.force) == ("ecdsa", 256, 365, 30, 0o644, False)
    assert not spec.self_signed


def test_ca_is_self_signed_and_validity_has_no_default():
    options = {"path": "/pki/ca.crt", "privatekey_path": "/pki/ca.key", "common_name": "ca", "profile": "ca"}
    # The validity comes from the caller (the pki role's settings), never from a default here.
    assert problems_of(options) == ["valid_days is required: how many days a new certificate is valid"]
    spec = spec_from_options(dict(options, valid_days=3650))
    assert spec.self_signed and spec.valid_days == 3650


def test_rsa_default_size():
    assert spec_from_options(dict(LEAF, key_type="rsa")).key_size == 2048


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = spec_from_options(dict(LEAF, path="a.crt", privatekey_path="a.key"))
    assert spec.path == str(tmp_path / "a.crt") and spec.privatekey_path == str(tmp_path / "a.key")


@pytest.mark.parametrize("override, fragment", [
    ({"profile": "webserver"}, "unknown profile 'webserver'"),
    ({"ip_addresses": ["10.0.0.x"]}, "ip_addresses: '10.0.0.x' is not an IP address"),
    ({"dns_names": ["10.0.0.1"]}, "list it in ip_addresses"),
    ({"dns_names": [], "ip_addresses": []}, "a server certificate needs dns_names or ip_addresses"),
    ({"profile": "peer", "dns_names": []}, "a peer certificate needs"),
    ({"key_type": "dsa"}, "unknown key_type 'dsa'"),
    ({"key_size": 1024}, "not an ECDSA curve size"),
    ({"key_type": "rsa", "key_size": 1024}, "too small for RSA"),
    ({"valid_days": 0}, "valid_days must be at least 1"),
    ({"renew_before_days": -1}, "renew_before_days must be at least 0"),
    ({"valid_days": 30, "renew_before_days": 30}, "every run would re-issue"),
    ({"valid_days": "ten"}, "valid_days must be an integer"),
    ({"mode": "rw-r--r--"}, "symbolic modes are not supported"),
    ({"ca_key": None}, "ca_cert and ca_key must be given together"),
    ({"ca_cert": None, "ca_key": None}, "ca_cert and ca_key are required for profile server"),
    ({"privatekey_path": "/pki/a.crt"}, "path and privatekey_path must differ"),
    ({"ca_cert": "/pki/a.crt"}, "cannot be signed by itself"),
    ({"common_name": "x" * 65}, "longer than 64"),
    ({"common_name": ""}, "common_name is required"),
    ({"organizations": [""]}, "organizations: ''"),
    ({"organizations": "system:masters"}, "organizations must be a list"),
    ({"path": None}, "path is required"),
])
def test_bad_input(override, fragment):
    problems = problems_of(dict(LEAF, **override))
    assert any(fragment in problem for problem in problems), problems


def test_every_problem_of_an_entry_is_reported():
    problems = problems_of(dict(LEAF, profile="srv", ip_addresses=["1.2.3.4.5", "x"], mode="u+r"))
    assert len(problems) == 4, problems


def test_an_unknown_profile_adds_no_follow_up_problems():
    assert problems_of(dict(LEAF, profile="kubelet", dns_names=[], ca_cert=None, ca_key=None)) == [
        "unknown profile 'kubelet' (choose one of: ca, server, client, peer)"]
    assert problems_of(dict(LEAF, profile=None, dns_names=[], ca_cert=None, ca_key=None)) == ["profile is required"]


def test_batch_entries_inherit_defaults_but_cas_do_not_inherit_the_signer():
    defaults = {"ca_cert": "/pki/ca.crt", "ca_key": "/pki/ca.key", "valid_days": 90, "owner": "root", "force": True, "mode": "0640"}
    leaf = entry_options(defaults, {"path": "/pki/a.crt", "profile": "client", "valid_days": 10, "force": False})
    assert (leaf["ca_cert"], leaf["valid_days"], leaf["owner"], leaf["force"], leaf["mode"]) == ("/pki/ca.crt", 10, "root", False, "0640")
    ca = entry_options(defaults, {"path": "/pki/ca.crt", "profile": "ca"})
    assert ca["ca_cert"] is None and ca["ca_key"] is None and ca["valid_days"] == 90
    intermediate = entry_options(defaults, {"path": "/pki/int.crt", "profile": "ca", "ca_cert": "/pki/root.crt", "ca_key": "/pki/root.key"})
    assert intermediate["ca_cert"] == "/pki/root.crt"


def test_batch_reports_every_bad_entry_at_once():
    entries = [
        dict(LEAF, path="/pki/0.crt", privatekey_path="/pki/0.key"),
        dict(LEAF, path="/pki/1.crt", privatekey_path="/pki/1.key", ip_addresses=["nope"]),
        dict(LEAF, path="/pki/2.crt", privatekey_path="/pki/2.key"),
        dict(LEAF, path="/pki/3.crt", privatekey_path="/pki/3.key", profile="ca-ish"),
    ]
    with pytest.raises(PkiError) as info:
        specs_from_params({"certificates": entries})
    assert len(info.value.errors) == 2
    assert info.value.errors[0].startswith("certificates[1] (/pki/1.crt): ip_addresses: 'nope'")
    assert info.value.errors[1].startswith("certificates[3] (/pki/3.crt): unknown profile")
    assert "2 problem(s)" in str(info.value)


def test_batch_rejects_files_written_twice():
    entries = [dict(LEAF), dict(LEAF, privatekey_path="/pki/other.key"), dict(LEAF, path="/pki/b.crt", privatekey_path="/pki/a.crt")]
    with pytest.raises(PkiError) as info:
        specs_from_params({"certificates": entries})
    assert [problem.split(":")[0] for problem in info.value.errors] == ["certificates[1] (/pki/a.crt)", "certificates[2] (/pki/b.crt)"]


def test_batch_allows_a_shared_key():
    entries = [dict(LEAF), dict(LEAF, path="/pki/b.crt", profile="peer")]
    assert len(specs_from_params({"certificates": entries})) == 2


def test_batch_rejects_per_certificate_options_at_top_level():
    with pytest.raises(PkiError, match="common_name, dns_names cannot be combined with certificates"):
        specs_from_params({"certificates": [LEAF], "common_name": "x", "dns_names": ["y"]})


def test_single_form():
    assert [spec.path for spec in specs_from_params(LEAF)] == ["/pki/a.crt"]


def test_option_tables_agree():
    assert set(spec_mod.BATCH_DEFAULT_OPTIONS) | set(spec_mod.PER_CERT_ONLY_OPTIONS) == set(spec_mod.CERT_OPTIONS)
    assert set(spec_mod.REQUIRED_OPTIONS) <= set(spec_mod.PER_CERT_ONLY_OPTIONS)
