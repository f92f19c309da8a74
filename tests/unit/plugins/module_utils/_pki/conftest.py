# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the _pki tests."""
from __future__ import annotations

import pytest

from .helpers import make_ca


@pytest.fixture(scope="session")
def ca():
    return make_ca()


@pytest.fixture
def pki(tmp_path):
    """A PKI directory with the paths of a CA and a leaf, as module options."""
    class Paths:
        dir = tmp_path
        ca = {"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key"), "common_name": "cluster-ca", "profile": "ca",
              "valid_days": 3650}
        signer = {"ca_cert": str(tmp_path / "ca.crt"), "ca_key": str(tmp_path / "ca.key")}

        @staticmethod
        def leaf(name="apiserver", **options):
            params = {
                "path": str(tmp_path / f"{name}.crt"), "privatekey_path": str(tmp_path / f"{name}.key"), "common_name": name,
                "profile": "server", "dns_names": [name, "localhost"], "ip_addresses": ["127.0.0.1"],
                "ca_cert": str(tmp_path / "ca.crt"), "ca_key": str(tmp_path / "ca.key"), "valid_days": 365,
            }
            params.update(options)
            return params
    return Paths
