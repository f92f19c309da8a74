# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command lines: unknown flags fail as the real binaries do, deprecated ones warn, --version, --help."""
from __future__ import annotations

import pytest

from .helpers import COMPONENTS, OLD_VERSION, VERSION


@pytest.mark.parametrize("name, flag", [
    ("kube-apiserver", "--insecure-port=8080"),
    ("kube-apiserver", "--kubelet-https=true"),
    ("kube-apiserver", "--audit-dynamic-configuration"),
    ("kube-controller-manager", "--insecure-port=0"),
    ("kube-scheduler", "--port=0"),
    ("kube-proxy", "--resource-container=/kube-proxy"),
])
def test_unknown_flag_is_rejected_naming_it(standins, name, flag):
    result = standins.run(name, "--v=2", flag)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"Error: unknown flag: {flag.split('=')[0]}"
    assert "TEST STAND-IN" in result.stderr  # the usage printed before the error says what this is


def test_kubelet_uses_its_own_wording(standins):
    result = standins.run("kubelet", "--network-plugin=cni")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: failed to parse kubelet flag: unknown flag: --network-plugin"


def test_flag_list_is_per_version(standins):
    """--tls-curve-preferences exists from 1.36: a 1.35 apiserver rejects it, a 1.36 one does not."""
    old = standins.run("kube-apiserver", "--tls-curve-preferences=X25519", version=OLD_VERSION)
    assert old.stderr.splitlines()[-1] == "Error: unknown flag: --tls-curve-preferences"
    new = standins.run("kube-apiserver", "--tls-curve-preferences=X25519")
    assert new.returncode == 1 and "unknown flag" not in new.stderr and "--etcd-servers must be specified" in new.stderr


@pytest.mark.parametrize("name, flag", [
    ("kube-apiserver", "--admission-control=NodeRestriction"),
    ("kube-scheduler", "--kubeconfig=/nonexistent"),
    ("kubelet", "--cgroup-driver=systemd"),
])
def test_deprecated_flag_warns(standins, name, flag):
    result = standins.check(name, flag)
    assert f"Flag {flag.split('=')[0]} has been deprecated, " in result.stderr


@pytest.mark.parametrize("name", COMPONENTS)
def test_version(standins, name):
    result = standins.run(name, "--version")
    assert result.returncode == 0
    assert result.stdout == f"Kubernetes v{VERSION}\n"
    assert "kubeforge TEST STAND-IN" in result.stderr and "official Kubernetes binaries" in result.stderr


def test_version_raw_and_old_version(standins):
    assert 'GitVersion:"v1.36.4"' in standins.run("kube-apiserver", "--version=raw").stdout
    assert standins.run("kubelet", "--version", version=OLD_VERSION).stdout == f"Kubernetes v{OLD_VERSION}\n"


@pytest.mark.parametrize("name", ["kube-apiserver", "kubelet"])
def test_help_says_stand_in_and_lists_flags(standins, name):
    result = standins.run(name, "--help")
    assert result.returncode == 0
    assert "kubeforge TEST STAND-IN, not the real" in result.stdout
    assert "      --version" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--anonymous-auth", "false"], '"kube-apiserver" does not take any arguments, got ["false"]'),
    (["--anonymous-auth=yes"], 'invalid argument "yes" for "--anonymous-auth" flag: strconv.ParseBool'),
    (["--feature-gates=DynamicAuditing=true"], "unrecognized feature gate: DynamicAuditing"),
    (["--tls-cipher-suites=TLS_RSA_WITH_NULL_SHA"], "Cipher suite TLS_RSA_WITH_NULL_SHA not supported or doesn't exist"),
    (["--tls-min-version=VersionTLS14"], 'unknown tls version "VersionTLS14"'),
    (["--etcd-servers"], "flag needs an argument: --etcd-servers"),
    (["-x"], "unknown shorthand flag: 'x' in -x"),
    (["---etcd-servers=x"], "bad flag syntax: ---etcd-servers=x"),
])
def test_flag_syntax_errors(standins, args, message):
    result = standins.run("kube-apiserver", *args)
    assert result.returncode == 1
    assert message in result.stderr


def test_short_and_underscore_forms(standins):
    """-v 2 is --v; component-base normalizes '_' to '-' (kube-proxy lists --log_dir)."""
    result = standins.run("kube-proxy", "-v", "2", "--log_dir=/tmp", "--log-file=/tmp/x", "--logtostderr")
    assert "unknown" not in result.stderr
    assert "no kubeconfig" in result.stderr


def test_kubectl_version_and_unknown(standins):
    result = standins.run("kubectl", "version", "--client", "-o", "json")
    assert result.returncode == 0 and '"gitVersion": "v1.36.4"' in result.stdout
    assert "TEST STAND-IN" in result.stderr
    result = standins.run("kubectl", "--insecure-port=1", "version")
    assert result.returncode == 1 and result.stderr.startswith("error: unknown flag: --insecure-port")
    result = standins.run("kubectl", "apply", "-f", "x.yaml")
    assert result.returncode == 1 and "does not implement" in result.stderr
