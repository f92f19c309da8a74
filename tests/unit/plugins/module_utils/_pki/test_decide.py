# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import dataclasses
import datetime

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import issue
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.decide import REASONS, key_reasons, reissue_reasons

from .helpers import NOW, make_ca, make_spec, sign

ISSUED = dict(common_name="kube-apiserver", organizations=["kubernetes"], dns_names=["kubernetes", "localhost"],
              ip_addresses=["10.96.0.1", "127.0.0.1"], valid_days=365, renew_before_days=30)


@pytest.fixture(scope="module")
def current():
    """A server certificate as issued for ISSUED, its key and its CA."""
    authority = make_ca()
    cert, key = sign(make_spec(**ISSUED), authority)
    return cert, key, authority


def reasons(current, cert="current", invalid=False, key="current", issuer="current", now=NOW, **asked):
    cur_cert, cur_key, authority = current
    return reissue_reasons(
        make_spec(**dict(ISSUED, **asked)),
        cur_cert if cert == "current" else cert, invalid,
        cur_key if key == "current" else key,
        authority[0] if issuer == "current" else issuer,
        now,
    )


@pytest.mark.parametrize("asked", [
    {},
    {"organizations": ["kubernetes", "kubernetes"]},
    {"dns_names": ["localhost", "KUBERNETES"]},
    {"ip_addresses": ["127.0.0.1", "10.96.0.1"]},
    {"valid_days": 90},
    {"owner": "root", "mode": "0600"},
])
def test_kept_when_nothing_relevant_differs(current, asked):
    assert reasons(current, **asked) == []


@pytest.mark.parametrize("asked, expected", [
    ({"force": True}, ["forced"]),
    ({"common_name": "apiserver"}, ["subject_changed"]),
    ({"organizations": []}, ["subject_changed"]),
    ({"organizations": ["kubernetes", "system:masters"]}, ["subject_changed"]),
    ({"dns_names": ["kubernetes", "localhost", "kubernetes.default"]}, ["sans_changed"]),
    ({"dns_names": ["kubernetes"]}, ["sans_changed"]),
    ({"ip_addresses": ["10.96.0.1", "127.0.0.1", "192.0.2.10"]}, ["sans_changed"]),
    ({"ip_addresses": ["10.96.0.2", "127.0.0.1"]}, ["sans_changed"]),
    ({"profile": "peer"}, ["profile_changed"]),
    ({"profile": "client"}, ["profile_changed"]),
    ({"key_size": 384}, ["key_type_changed"]),
    ({"key_type": "rsa"}, ["key_type_changed", "profile_changed"]),
    ({"common_name": "x", "dns_names": ["y"], "force": True}, ["forced", "subject_changed", "sans_changed"]),
])
def test_each_option_change_gives_its_reason(current, asked, expected):
    assert reasons(current, **asked) == expected


def test_missing(current):
    assert reasons(current, cert=None) == ["missing"]
    assert reasons(current, cert=None, key=None) == ["missing", "key_missing"]


def test_invalid(current):
    assert reasons(current, cert=None, invalid=True) == ["invalid"]


def test_key_missing(current):
    assert reasons(current, key=None) == ["key_missing"]


def test_key_mismatch(current):
    assert reasons(current, key=issue.generate_private_key("ecdsa", 256)) == ["key_mismatch"]


def test_ca_mismatch(current):
    assert reasons(current, issuer=make_ca()[0]) == ["ca_mismatch"]
    assert reasons(current, issuer=make_ca(common_name="other-ca")[0]) == ["ca_mismatch"]


def test_ca_reissued_with_the_same_key_still_signs(current):
    authority = current[2]
    renewed = issue.build_certificate(make_spec(path="/pki/ca.crt", privatekey_path="/pki/ca.key", common_name="test-ca", profile="ca"),
                                      authority[1].public_key(), authority[1], None, NOW + datetime.timedelta(days=1))
    assert reasons(current, issuer=renewed) == []


@pytest.mark.parametrize("days_later, expected", [(300, []), (334, []), (335, ["expiring"]), (400, ["expiring"])])
def test_expiring(current, days_later, expected):
    assert reasons(current, now=NOW + datetime.timedelta(days=days_later)) == expected


def test_renew_before_days_moves_the_threshold(current):
    assert reasons(current, now=NOW + datetime.timedelta(days=300), renew_before_days=90) == ["expiring"]


def test_self_signed_ca():
    cert, key = make_ca()
    spec = make_spec(path="/pki/ca.crt", privatekey_path="/pki/ca.key", common_name="test-ca", profile="ca")
    assert reissue_reasons(spec, cert, False, key, None, NOW) == []
    assert reissue_reasons(dataclasses.replace(spec, common_name="new-ca"), cert, False, key, None, NOW) == ["subject_changed"]
    signed_by_other, other_key = sign(spec, make_ca(common_name="root"))
    assert reissue_reasons(spec, signed_by_other, False, other_key, None, NOW) == ["ca_mismatch"]


def test_a_leaf_asked_as_ca_is_a_profile_change(current):
    cert, key, authority = current
    spec = make_spec(**dict(ISSUED, profile="ca", ca_cert=authority and "/pki/ca.crt", ca_key="/pki/ca.key"))
    assert reissue_reasons(spec, cert, False, key, authority[0], NOW) == ["profile_changed"]


def test_key_reasons():
    spec = make_spec()
    assert key_reasons(spec, None) == ["key_missing"]
    assert key_reasons(spec, issue.generate_private_key("ecdsa", 256)) == []
    assert key_reasons(spec, issue.generate_private_key("ecdsa", 521)) == ["key_type_changed"]


def test_reasons_are_reported_in_the_documented_order(current):
    got = reasons(current, key=issue.generate_private_key("ecdsa", 256), issuer=make_ca()[0], force=True, common_name="x",
                  dns_names=["z"], profile="peer", now=NOW + datetime.timedelta(days=360))
    assert got == ["forced", "key_mismatch", "ca_mismatch", "subject_changed", "sans_changed", "profile_changed", "expiring"]
    assert got == [reason for reason in REASONS if reason in got]
