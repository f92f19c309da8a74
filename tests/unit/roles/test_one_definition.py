# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One definition per setting: each default lives in one place, and everything else reads it.

The cluster settings etcd_client_port and artifacts_bin_dir are set to non-default values in a
copy of the sample inventory's group_vars (where their one definition is); the files the roles
write are then rendered with Ansible's own templating (tests/unit/roles/test_node_manifests.py's
variables(): role defaults < inventory < host vars < role vars) and must carry both values. The
tree is also scanned for a second definition: the same variable defined in two places, a literal
`| default(...)` of a setting defined elsewhere, the literal 2379 or /usr/local/bin in a role.
"""
from __future__ import annotations

import glob
import os
import re
import shutil

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

import test_node_manifests as manifests  # the Templar set-up of the node roles' tests (same directory)

# Ansible's plugin and collection loaders for every test here (tests/unit/roles/conftest.py).
pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")
REPO = manifests.REPO
PORT = 12379
BIN = "/opt/kf/bin"
# Files the roles write from a template, what each must carry, and the loop item the task gives it.
RENDERED = [
    ("control_plane", "kube-component.service.j2", {"service": "kube-apiserver"}, [f"ExecStart={BIN}/kube-apiserver "]),
    ("control_plane", "kube-component.service.j2", {"service": "kube-scheduler"}, [f"ExecStart={BIN}/kube-scheduler "]),
    ("etcd", "etcd.service.j2", None, [f"ExecStart={BIN}/etcd\n"]),
    ("etcd", "etcd.env.j2", None, [f"ETCD_LISTEN_CLIENT_URLS=https://192.168.56.11:{PORT},https://127.0.0.1:{PORT}\n",
                                   f"ETCD_ADVERTISE_CLIENT_URLS=https://192.168.56.11:{PORT}\n"]),
    ("etcd", "etcd-backup.sh.j2", None, [f"{BIN}/etcdctl --endpoints=https://192.168.56.11:{PORT} ", f"{BIN}/etcdutl snapshot status"]),
    ("kubelet_bootstrap", "kubelet.service.j2", None, [f"ExecStart={BIN}/kubelet "]),
    ("ipvs", "kube-proxy.service.j2", None, [f"ExecStart={BIN}/kube-proxy "]),
    ("container_runtime", "containerd.service.j2", None, [f"ExecStart={BIN}/containerd "]),
    ("container_runtime", "config.toml.j2", None, [f'BinaryName = "{BIN}/runc"']),
]


@pytest.fixture
def inventory(tmp_path, monkeypatch):
    """The sample inventory with the two settings changed where the operator changes them."""
    sample = tmp_path / "inventory"
    shutil.copytree(manifests.SAMPLE, sample)
    group_vars = sample / "group_vars" / "all.yml"
    settings = yaml.safe_load(group_vars.read_text())
    assert (settings["etcd_client_port"], settings["artifacts_bin_dir"]) == (2379, "/usr/local/bin")
    group_vars.write_text(group_vars.read_text().replace("etcd_client_port: 2379\n", f"etcd_client_port: {PORT}\n")
                          .replace("artifacts_bin_dir: /usr/local/bin\n", f"artifacts_bin_dir: {BIN}\n"))
    monkeypatch.setattr(manifests, "SAMPLE", str(sample))


def render(role: str, src: str, item: dict | None, host: str = "cp1") -> str:
    """The text a template of the role renders to on host, as the template action renders it."""
    role_path = os.path.join(manifests.ROLES, role)
    scope = manifests.variables(role, host, {"item": item} if item else {}, {}, manifests.ROLES)
    templar = Templar(loader=DataLoader(), variables=scope)
    with open(os.path.join(role_path, "templates", src), encoding="utf-8") as handle:
        text = trust_as_template(handle.read())
    return templar.copy_with_new_env(searchpath=[os.path.join(role_path, "templates"), role_path], available_variables=scope).template(
        text, escape_backslashes=False, overrides={"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"})


@pytest.mark.parametrize("role, src, item, expected", RENDERED, ids=[f"{r[0]}/{r[1]}/{(r[2] or {}).get('service', '')}" for r in RENDERED])
def test_a_non_default_port_and_bin_dir_reach_every_file(inventory, role, src, item, expected):
    text = render(role, src, item)
    for line in expected:
        assert line in text, text
    assert not re.search(r"\b2379\b|/usr/local/bin", text), text


def test_the_apiservers_reach_etcd_on_its_client_port(inventory):
    unit = render("control_plane", "kube-component.service.j2", {"service": "kube-apiserver"})
    [servers] = re.findall(r"--etcd-servers=(\S+)", unit)
    assert servers.split(",") == [f"https://192.168.56.{n}:{PORT}" for n in (11, 12, 13)]
    # The etcd members listen there: the URL the apiservers use is one of each member's client URLs.
    env = render("etcd", "etcd.env.j2", None, host="cp2")
    assert f"https://192.168.56.12:{PORT}" in re.search(r"ETCD_LISTEN_CLIENT_URLS=(\S+)", env).group(1).split(",")


def test_the_control_plane_and_etcd_vars_read_the_settings(inventory):
    control_plane = manifests.variables("control_plane", "cp1", {}, {}, manifests.ROLES)
    etcd = manifests.variables("etcd", "cp1", {}, {}, manifests.ROLES)
    templar = Templar(loader=DataLoader(), variables={**control_plane})
    assert templar.template(control_plane["control_plane_bin_dir"]) == BIN
    assert [url.rsplit(":", 1)[1] for url in templar.template(control_plane["control_plane_settings"])["etcd_servers"]] == [str(PORT)] * 3
    templar = Templar(loader=DataLoader(), variables={**etcd})
    assert templar.template(etcd["etcd_bin_dir"]) == BIN
    assert templar.template(etcd["etcd_endpoints"]) == [f"https://192.168.56.{n}:{PORT}" for n in (11, 12, 13)]


# --------------------------------------------------------------------------- no second definition

def _yaml(path: str):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def definitions() -> dict:
    """{variable: places defining it}: role defaults, role vars (a role's OS files count once), the
    sample inventory's cluster settings, and play vars of every playbook."""
    places: dict = {}
    for path in sorted(glob.glob(os.path.join(REPO, "roles", "*", "defaults", "main.yml")) + glob.glob(os.path.join(REPO, "roles", "*", "vars", "*.yml"))):
        role, kind = os.path.relpath(path, REPO).split(os.sep)[1:3]
        for name in _yaml(path):
            places.setdefault(name, set()).add(f"roles/{role}/{kind}")
    for name in _yaml(os.path.join(REPO, "inventory", "sample", "group_vars", "all.yml")):
        places.setdefault(name, set()).add("inventory/sample/group_vars/all.yml")
    for path in glob.glob(os.path.join(REPO, "playbooks", "**", "*.yml"), recursive=True) + [os.path.join(REPO, "site.yml")]:
        for play in _yaml(path) or []:
            if "hosts" in play:  # an import's vars say how to import, they define no setting
                for name in play.get("vars") or {}:
                    places.setdefault(name, set()).add(os.path.relpath(path, REPO))
    return places


def test_every_variable_is_defined_in_one_place():
    assert {name: sorted(where) for name, where in definitions().items() if len(where) > 1} == {}


def test_the_moved_settings_have_their_one_definition():
    places = definitions()
    assert places["etcd_client_port"] == places["artifacts_bin_dir"] == {"inventory/sample/group_vars/all.yml"}
    assert "ha_nginx_listen_address" in places and places["ha_nginx_listen_address"] == {"roles/ha_nginx/vars"}
    assert "renew_threshold_days" not in places and "user_kubeconfig_cluster" in places


def _role_files() -> list:
    return [path for path in glob.glob(os.path.join(REPO, "roles", "*", "*", "**", "*"), recursive=True)
            if os.path.isfile(path) and not path.endswith(".md") and os.sep + "meta" + os.sep not in path]


def _code_lines(path: str):
    """(number, line) of a file without its comment lines (YAML, Jinja and shell comments)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.lstrip().startswith(("#", "{#")):
                yield number, line


def test_no_literal_port_or_bin_dir_in_the_roles_and_the_control_plane_code():
    files = _role_files() + glob.glob(os.path.join(REPO, "plugins", "filter", "control_plane*")) + \
        [os.path.join(REPO, "plugins", "module_utils", "_control_plane.py")] + glob.glob(os.path.join(REPO, "playbooks", "**", "*.yml"), recursive=True)
    found = [f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}" for path in files for number, line in _code_lines(path)
             if re.search(r"\b2379\b|/usr/local/bin\b", line)]
    assert found == []


def test_no_literal_default_of_a_setting_defined_elsewhere():
    """`x | default('literal')` where x has its default in a defaults file or the cluster settings: two definitions."""
    settings = {name for name, where in definitions().items() if any("/defaults" in place or place.startswith("inventory/") for place in where)}
    pattern = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\|\s*default\(\s*['\"0-9]")
    found = [f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}"
             for path in _role_files() + glob.glob(os.path.join(REPO, "playbooks", "**", "*.yml"), recursive=True)
             for number, line in _code_lines(path) for match in pattern.finditer(line) if match.group(1) in settings]
    assert found == []


def test_python_has_no_second_default_for_the_pki_settings():
    """The validity and cluster name come from the pki role (required arguments), never from a fallback."""
    for path in ("plugins/filter/pki.py", "plugins/module_utils/_pki/spec.py"):
        with open(os.path.join(REPO, path), encoding="utf-8") as handle:
            text = handle.read()
        assert not re.search(r"\b(3650|365)\b", text), path
        assert not re.search(r"""get\(\s*["'](cluster_name|ca_valid_days|cert_valid_days|valid_days)["']\s*,""", text), path
        assert not re.search(r"""["'](cluster_name|ca_valid_days|cert_valid_days)["']\)\s*or\b""", text), path


@pytest.mark.parametrize("endpoint, listen, serves", [
    ("https://127.0.0.1:6443", "listen 127.0.0.1:6443;", True),
    ("https://localhost", "listen localhost:443;", True),
    ("https://[::1]:7443", "listen [::1]:7443;", True),
    ("https://192.168.56.10:6443", None, False),  # an external load balancer: no local nginx to run
])
def test_ha_nginx_listens_where_the_endpoint_points(endpoint, listen, serves):
    """ha_nginx has no listen setting of its own: the host and port of kube_apiserver_endpoint."""
    scope = manifests.variables("ha_nginx", "w1", {}, {"kube_apiserver_endpoint": endpoint}, manifests.ROLES)
    assert Templar(loader=DataLoader(), variables=scope).template(scope["ha_nginx_serves_endpoint"]) is serves
    if listen:
        with open(os.path.join(manifests.ROLES, "ha_nginx", "templates", "nginx.conf.j2"), encoding="utf-8") as handle:
            text = Templar(loader=DataLoader(), variables=scope).template(trust_as_template(handle.read()))
        assert f"        {listen}\n" in text, text
