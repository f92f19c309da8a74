# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every Kubernetes object the node roles (flannel, coredns, kubelet_bootstrap) send to the API,
rendered by Ansible's own templating from the role's templates and variables, then validated in
strict mode against the API schemas of each supported Kubernetes minor that kubernetes-validate
carries; and the config files the kubelet and kube-proxy read, rendered the way the template action
writes them and read back as those programs would (field names, types, the CIS worker-node items).

Rendering: ansible.template.Templar over the variables a task of the role sees on a host, in
Ansible's precedence order (role defaults < inventory group_vars/all < host vars < role vars <
block/task vars < extra vars and facts), every file loaded as Ansible loads it (trusted templates).
The API objects are the value of the role's own kubeforge.cluster.kube_apply `objects:` expression,
templated as the task would template it and passed through JSON as module arguments are.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time

import kubernetes_validate
import pytest
import yaml
from ansible._internal._templating import _template_vars  # what the template action adds (template_path, ansible_managed)
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from kubernetes_validate.utils import all_versions, major_minor
from packaging.version import Version

from ansible_collections.kubeforge.cluster.plugins.module_utils import _versions

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = os.path.join(REPO, "roles")
SAMPLE = os.path.join(REPO, "inventory", "sample")
# The supported minors kubernetes-validate has schemas for, as it names them ('1.35.0', ...).
VERSIONS = sorted({v for v in all_versions() if major_minor(v) in _versions.SUPPORTED_KUBE_MINORS}, key=Version)
NODE_IPS = {"cp1": "192.168.56.11", "cp2": "192.168.56.12", "cp3": "192.168.56.13", "w1": "192.168.56.21"}
GROUPS = {"all": list(NODE_IPS), "ungrouped": [], "etcd": ["cp1", "cp2", "cp3"], "kube_control_plane": ["cp1", "cp2", "cp3"],
          "kube_node": ["w1"], "k8s_cluster": list(NODE_IPS)}
TOKEN = {"kubelet_bootstrap_token_id": "abc123", "kubelet_bootstrap_token_secret": "0123456789abcdef",
         "kubelet_bootstrap_token_expiration": "2030-01-01T00:00:00Z"}
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
STRONG_CIPHERS = {  # the suites the CIS benchmark accepts for the kubelet
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}


# Ansible's plugin and collection loaders for every test here (tests/unit/roles/conftest.py).
pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")


# --------------------------------------------------------------------------- rendering as Ansible does

def _load(path: str):
    """A YAML file as Ansible loads role, inventory and task files: its strings trusted as templates."""
    return DataLoader().load_from_file(path, cache="none", trusted_as_template=True) or {}


def _tasks(tasks, scope: dict):
    """(task, block and task vars) of every task in a task list, blocks flattened."""
    for task in tasks or []:
        inner = {**scope, **(task.get("vars") or {})}
        if "block" in task:
            for part in ("block", "rescue", "always"):
                yield from _tasks(task.get(part), inner)
        else:
            yield task, inner


def role_tasks(role_path: str) -> list:
    folder = os.path.join(role_path, "tasks")
    return [found for name in sorted(os.listdir(folder)) if name.endswith(".yml")
            for found in _tasks(_load(os.path.join(folder, name)), {})]


def variables(role: str, host: str, task_vars: dict, extra: dict, roles_dir: str) -> dict:
    """What a task of `role` on `host` sees: role defaults < inventory group_vars/all < host vars <
    role vars < block/task vars < facts and extra vars (here `extra`, e.g. -e key=value strings)."""
    role_path = os.path.join(roles_dir, role)
    found = {}
    found.update(_load(os.path.join(role_path, "defaults", "main.yml")))
    found.update(_load(os.path.join(SAMPLE, "group_vars", "all.yml")))
    found["kubeforge_node_ip"] = NODE_IPS[host]
    found.update(_load(os.path.join(role_path, "vars", "main.yml")))
    found.update({
        "inventory_hostname": host, "inventory_hostname_short": host, "inventory_dir": SAMPLE, "groups": GROUPS,
        "group_names": sorted(group for group, members in GROUPS.items() if host in members and group != "all"),
        "hostvars": {name: {"inventory_hostname": name, "kubeforge_node_ip": ip} for name, ip in NODE_IPS.items()},
        "ansible_play_hosts": list(NODE_IPS), "playbook_dir": os.path.join(REPO, "playbooks", "phases"),
        "role_name": f"kubeforge.cluster.{role}", "role_path": role_path,
        "ansible_search_path": [role_path, os.path.join(REPO, "playbooks", "phases")],
    })
    found.update(task_vars)
    found.update(extra)
    return found


def applied_objects(role: str, template: str, host: str = "cp1", roles_dir: str = ROLES, **extra) -> list:
    """The objects the role's kubeforge.cluster.kube_apply task built from `template` sends to the API."""
    role_path = os.path.join(roles_dir, role)
    [(task, task_vars)] = [(task, task_vars) for task, task_vars in role_tasks(role_path)
                           if f"'{template}'" in str((task.get("kubeforge.cluster.kube_apply") or {}).get("objects", ""))]
    scope = variables(role, host, task_vars, extra, roles_dir)
    objects = Templar(loader=DataLoader(), variables=scope).template(task["kubeforge.cluster.kube_apply"]["objects"])
    objects = json.loads(json.dumps(objects))  # module arguments travel as JSON
    return objects if isinstance(objects, list) else [objects]


def written_file(role: str, src: str, host: str = "cp1", roles_dir: str = ROLES, **extra) -> str:
    """The text the role writes from the template `src`: an ansible.builtin.template task, rendered the
    way the template action renders it (ansible/plugins/action/template.py of ansible-core 2.19), or a
    kubeforge.cluster.file_bundle task whose files (a list, one expression, the task's vars, or a role variable the
    files name, such as ipvs_files) look that template up."""
    role_path = os.path.join(roles_dir, role)
    role_vars_path = os.path.join(role_path, "vars", "main.yml")
    role_vars = (yaml.safe_load(open(role_vars_path, encoding="utf-8")) or {}) if os.path.exists(role_vars_path) else {}

    def bundle_text(task) -> str:
        files = str(task["kubeforge.cluster.file_bundle"].get("files"))
        named = [str(value) for name, value in role_vars.items() if name in files]
        return "\n".join([str([files, task.get("vars")]), *named])

    bundled = [task_vars for task, task_vars in role_tasks(role_path) if "kubeforge.cluster.file_bundle" in task
               and f"lookup('ansible.builtin.template', '{src}')" in bundle_text(task)]
    if bundled:
        [task_vars] = bundled
        scope = variables(role, host, task_vars, extra, roles_dir)
        return Templar(loader=DataLoader(), variables=scope).template(trust_as_template(f"{{{{ lookup('ansible.builtin.template', '{src}') }}}}"))
    [(task, task_vars, item)] = [
        (task, task_vars, item) for task, task_vars in role_tasks(role_path) if "ansible.builtin.template" in task
        for item in (task.get("loop") or [task["ansible.builtin.template"]]) if isinstance(item, dict) and item.get("src") == src]
    scope = variables(role, host, {**task_vars, "item": item}, extra, roles_dir)
    templar = Templar(loader=DataLoader(), variables=scope)
    source = os.path.join(role_path, "templates", src)
    searchpath = []
    for path in scope["ansible_search_path"] + [role_path, os.path.dirname(source)]:
        searchpath.extend([os.path.join(path, "templates"), path])
    scope.update(_template_vars.generate_ansible_template_vars(path=src, fullpath=source, dest_path=templar.template(item["dest"]),
                                                               include_ansible_managed=True))
    with open(source, encoding="utf-8") as handle:
        text = trust_as_template(handle.read())
    return templar.copy_with_new_env(searchpath=searchpath, available_variables=scope).template(
        text, escape_backslashes=False, overrides={"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"})


def copy_role(tmp_path, role: str, path: str, old: str, new: str) -> str:
    """roles_dir holding a copy of `role` whose file `path` has `old` replaced by `new` (once)."""
    roles_dir = str(tmp_path / "roles")
    shutil.copytree(os.path.join(ROLES, role), os.path.join(roles_dir, role))
    target = os.path.join(roles_dir, role, path)
    with open(target, encoding="utf-8") as handle:
        text = handle.read()
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(text.replace(old, new))
    return roles_dir


# --------------------------------------------------------------------------- reading them back

def validate(objects: list, version: str) -> list:
    """Validate every object strictly (unknown fields fail) against `version`'s schemas: the minors used."""
    return [kubernetes_validate.validate(obj, version, strict=True) for obj in objects]


def by_kind(objects: list) -> dict:
    found = {}
    for obj in objects:
        assert (obj["kind"], obj["metadata"]["name"]) not in found, f"{obj['kind']}/{obj['metadata']['name']} twice"
        found[obj["kind"], obj["metadata"]["name"]] = obj
    return found


def wiring_problems(objects: list) -> list:
    """What a schema cannot see: references between the objects of one manifest."""
    problems = []
    objs = by_kind(objects)
    namespaces = {name for kind, name in objs if kind == "Namespace"} | {"kube-system"}
    accounts = {(obj["metadata"]["namespace"], name) for (kind, name), obj in objs.items() if kind == "ServiceAccount"}
    roles = {name for kind, name in objs if kind == "ClusterRole"}
    for (kind, name), obj in objs.items():
        namespace = obj["metadata"].get("namespace")
        if namespace and namespace not in namespaces:
            problems.append(f"{kind}/{name}: namespace {namespace} is not created")
        if kind == "ClusterRoleBinding":
            ref = obj["roleRef"]["name"]
            if ref not in roles and not ref.startswith("system:"):
                problems.append(f"{kind}/{name}: ClusterRole {ref} does not exist")
            for subject in obj["subjects"]:
                if subject["kind"] == "ServiceAccount" and (subject["namespace"], subject["name"]) not in accounts:
                    problems.append(f"{kind}/{name}: ServiceAccount {subject['name']} does not exist")
        if kind in ("Deployment", "DaemonSet"):
            pod = obj["spec"]["template"]
            if not obj["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items():
                problems.append(f"{kind}/{name}: selector does not match the pod labels")
            if (namespace, pod["spec"].get("serviceAccountName", "default")) not in accounts:
                problems.append(f"{kind}/{name}: its ServiceAccount does not exist")
            for volume in pod["spec"].get("volumes", []):
                if "configMap" in volume:
                    config = objs.get(("ConfigMap", volume["configMap"]["name"]))
                    keys = [entry["key"] for entry in volume["configMap"].get("items", [])]
                    if config is None or not set(keys) <= set(config["data"]):
                        problems.append(f"{kind}/{name}: volume {volume['name']} names a ConfigMap or key that does not exist")
        if kind in ("Service", "PodDisruptionBudget"):
            selector = obj["spec"]["selector"].get("matchLabels", obj["spec"]["selector"])
            if not any(selector.items() <= pod_labels.items() for pod_labels in (
                    o["spec"]["template"]["metadata"]["labels"] for (k, _n), o in objs.items() if k in ("Deployment", "DaemonSet"))):
                problems.append(f"{kind}/{name}: selects no pods of this manifest")
    return problems


def grants(role: dict) -> set:
    """(apiGroup, resource, verb, resourceName or None) of every permission a (Cluster)Role gives."""
    found = set()
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [None]:
                        found.add((group, resource, verb, name))
    return found


def config_doc(text: str) -> dict:
    assert text.startswith("# Managed by kubeforge.cluster"), text.splitlines()[0]
    assert "{{" not in text and "{%" not in text, "template text left in the file"
    [doc] = list(yaml.safe_load_all(text))
    return doc


def unknown_fields(doc: dict, known: frozenset, prefix: str = "") -> list:
    """Keys not in the config kind's field list; maps the list does not expand are not looked into."""
    unknown = []
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else key
        if path not in known:
            unknown.append(path)
        elif isinstance(value, dict) and any(field.startswith(path + ".") for field in known):
            unknown.extend(unknown_fields(value, known, path))
    return unknown


def stringly_typed(node, path: str = "") -> list:
    """Paths of strings a YAML reader would have taken for a boolean or a number had they not been quoted:
    what '{{ x }}' gives when x arrives as a string (-e key=value)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(stringly_typed(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(stringly_typed(value, f"{path}[{index}]"))
    elif isinstance(node, str) and isinstance(yaml.safe_load(node) if node.strip() else node, (bool, int, float)):
        found.append(path)
    return found


def typed(value) -> str:
    """JSON text of a value: tells true from 1 and from 'true' (== does not)."""
    return json.dumps(value, sort_keys=True)


# --------------------------------------------------------------------------- the versions

def test_kubernetes_validate_knows_the_supported_minors():
    assert VERSIONS, f"kubernetes-validate {kubernetes_validate.version.__version__} has none of {_versions.SUPPORTED_KUBE_MINORS}"
    assert [major_minor(v) for v in VERSIONS] == sorted(set(major_minor(v) for v in VERSIONS), key=Version)


# --------------------------------------------------------------------------- flannel

def flannel(backend: str, **extra) -> dict:
    return by_kind(applied_objects("flannel", "kube-flannel.yaml.j2", flannel_backend=backend, **extra))


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
@pytest.mark.parametrize("version", VERSIONS)
def test_flannel_objects_are_valid(version, backend):
    objects = applied_objects("flannel", "kube-flannel.yaml.j2", flannel_backend=backend)
    assert validate(objects, version) == [major_minor(version)] * len(objects)
    assert [obj["kind"] for obj in objects] == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"]
    assert wiring_problems(objects) == []


@pytest.mark.parametrize("backend, expected", [
    ("vxlan", {"Type": "vxlan", "VNI": 1, "Port": 8472}),
    ("host-gw", {"Type": "host-gw"}),
])
def test_flannel_net_conf_is_json_with_the_backend(backend, expected):
    objs = flannel(backend)
    data = objs["ConfigMap", "kube-flannel-cfg"]["data"]
    net_conf = json.loads(data["net-conf.json"])
    assert typed(net_conf) == typed({"Network": "10.244.0.0/16", "SubnetLen": 24, "EnableNFTables": False, "Backend": expected})
    cni_conf = json.loads(data["cni-conf.json"])
    assert [plugin["type"] for plugin in cni_conf["plugins"]] == ["flannel", "portmap"]


def test_flannel_backend_switch_rolls_the_pods():
    annotations = {}
    for backend in ("vxlan", "host-gw"):
        objs = flannel(backend)
        annotation = objs["DaemonSet", "kube-flannel-ds"]["spec"]["template"]["metadata"]["annotations"]["kubeforge.io/config-sha256"]
        # The digest is the one of the config the pods read.
        data = objs["ConfigMap", "kube-flannel-cfg"]["data"]
        assert annotation == hashlib.sha256((data["cni-conf.json"] + data["net-conf.json"]).encode()).hexdigest()
        annotations[backend] = annotation
    assert annotations["vxlan"] != annotations["host-gw"]
    assert flannel("vxlan", flannel_vxlan_vni=4096)["DaemonSet", "kube-flannel-ds"]["spec"]["template"]["metadata"][
        "annotations"]["kubeforge.io/config-sha256"] != annotations["vxlan"]


def flannel_container(name: str) -> dict:
    [container] = [container for container in flannel("vxlan")["DaemonSet", "kube-flannel-ds"]["spec"]["template"]["spec"]["containers"]
                   if container["name"] == name]
    return container


def test_flanneld_reaches_the_apiserver_through_the_node_local_endpoint():
    container = flannel_container("kube-flannel")
    env = {entry["name"]: entry.get("value") for entry in container["env"]}
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "6443")
    assert container["image"] == "ghcr.io/flannel-io/flannel:v0.28.10"


def test_flannels_startup_probe_waits_for_the_subnet_file(tmp_path):
    """The probe's command, run against a file that appears while it runs, passes (one that only looked would have
    failed, and the kubelet would ask again a second later); it gives up before the kubelet's timeout."""
    probe = flannel_container("kube-flannel")["startupProbe"]
    subnet = tmp_path / "subnet.env"
    command = [part.replace("/run/flannel/subnet.env", str(subnet)) for part in probe["exec"]["command"]]
    assert command != probe["exec"]["command"]
    later = threading.Timer(0.3, subnet.touch)
    later.start()
    try:
        assert subprocess.run(command, check=False, timeout=probe["timeoutSeconds"]).returncode == 0
    finally:
        later.cancel()
    tries, pause = re.search(r"seq (\d+)\); do .*; sleep ([0-9.]+)", probe["exec"]["command"][-1]).groups()
    assert int(tries) * float(pause) < probe["timeoutSeconds"]


def install_cni_on(root, pod: dict) -> subprocess.Popen:
    """install-cni's command, started with the node's and the image's paths under ``root``."""
    script = pod["command"][-1]
    for path in ("/run/flannel/", "/opt/cni/bin/", "/etc/cni/net.d/", "/etc/kube-flannel/"):
        assert path in script
        (root / path.strip("/")).mkdir(parents=True, exist_ok=True)
        script = script.replace(path, f"{root}{path}")
    assert re.search(r"cp -f /flannel ", script)
    script = script.replace("cp -f /flannel ", f"cp -f {root}/flannel ")
    return subprocess.Popen([*pod["command"][:-1], script])


def wait_for(path, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.exists()


def test_install_cni_writes_the_cni_config_once_flanneld_wrote_the_subnet(tmp_path):
    """The plugin is put first; the configuration (which makes the node Ready) only after the subnet file; then the
    container waits, and a stopping pod's TERM ends it at once, without an error."""
    container = flannel_container("install-cni")
    cni_conf = flannel("vxlan")["ConfigMap", "kube-flannel-cfg"]["data"]["cni-conf.json"]
    (tmp_path / "flannel").write_bytes(b"plugin")
    (tmp_path / "etc/kube-flannel").mkdir(parents=True)
    (tmp_path / "etc/kube-flannel/cni-conf.json").write_text(cni_conf, encoding="utf-8")
    process = install_cni_on(tmp_path, container)
    try:
        assert wait_for(tmp_path / "opt/cni/bin/flannel")
        assert (tmp_path / "opt/cni/bin/flannel").read_bytes() == b"plugin"
        time.sleep(0.5)
        assert not (tmp_path / "etc/cni/net.d/10-flannel.conflist").exists()
        (tmp_path / "run/flannel/subnet.env").touch()
        assert wait_for(tmp_path / "etc/cni/net.d/10-flannel.conflist")
        assert (tmp_path / "etc/cni/net.d/10-flannel.conflist").read_text(encoding="utf-8") == cni_conf
        assert sorted(os.listdir(tmp_path / "etc/cni/net.d")) == ["10-flannel.conflist"]  # no temporary file left
        assert process.poll() is None
        process.terminate()
        assert process.wait(timeout=2) == 0
    finally:
        process.kill()
        process.wait()


def test_install_cni_fails_when_it_cannot_put_the_plugin(tmp_path):
    """A failed step ends the container with an error (the kubelet restarts it), not with a sleep."""
    process = install_cni_on(tmp_path, flannel_container("install-cni"))  # no plugin at /flannel
    try:
        assert process.wait(timeout=5) != 0
    finally:
        process.kill()
        process.wait()
    assert not (tmp_path / "etc/cni/net.d/10-flannel.conflist").exists()


def test_kubectl_reaches_flanneld_by_default():
    template = flannel("vxlan")["DaemonSet", "kube-flannel-ds"]["spec"]["template"]
    assert template["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "kube-flannel"
    assert "kube-flannel" in [container["name"] for container in template["spec"]["containers"]]


def test_install_cni_needs_no_privilege():
    container = flannel_container("install-cni")
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    mounts = {mount["mountPath"]: mount.get("readOnly", False) for mount in container["volumeMounts"]}
    assert mounts == {"/opt/cni/bin": False, "/etc/cni/net.d": False, "/etc/kube-flannel/": False, "/run/flannel": True}


# --------------------------------------------------------------------------- coredns

COREDNS_CASES = [
    # (upstream nameservers, expected forward targets, settings over the sample's)
    ([], "/etc/resolv.conf", {}),
    (["1.1.1.1", "9.9.9.9"], "1.1.1.1 9.9.9.9", {}),
    (["192.0.2.53"], "192.0.2.53", {"kube_cluster_domain": "k8s.corp.example", "kube_cluster_dns_ip": "10.96.0.53"}),
]


@pytest.mark.parametrize("upstream, forward, settings", COREDNS_CASES)
@pytest.mark.parametrize("version", VERSIONS)
def test_coredns_objects_are_valid(version, upstream, forward, settings):
    objects = applied_objects("coredns", "coredns.yaml.j2", coredns_upstream_nameservers=upstream, **settings)
    assert validate(objects, version) == [major_minor(version)] * len(objects)
    assert [obj["kind"] for obj in objects] == [
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service"]
    assert wiring_problems(objects) == []


@pytest.mark.parametrize("upstream, forward, settings", COREDNS_CASES)
def test_coredns_serves_the_cluster_domain_at_the_cluster_dns_ip(upstream, forward, settings):
    objs = by_kind(applied_objects("coredns", "coredns.yaml.j2", coredns_upstream_nameservers=upstream, **settings))
    domain = settings.get("kube_cluster_domain", "cluster.local")
    assert objs["Service", "kube-dns"]["spec"]["clusterIP"] == settings.get("kube_cluster_dns_ip", "10.96.0.10")
    corefile = objs["ConfigMap", "coredns"]["data"]["Corefile"]
    assert re.findall(r"^\s*kubernetes (\S+) in-addr\.arpa ip6\.arpa \{$", corefile, re.M) == [domain]
    assert re.findall(r"^\s*forward \. (.+) \{$", corefile, re.M) == [forward]
    assert typed(objs["Deployment", "coredns"]["spec"]["replicas"]) == "2"


def test_corednss_pods_are_seen_ready_within_a_second():
    """The readiness check runs every second: with the default ten seconds, a first check that came before CoreDNS had
    synced held its pods back ten seconds."""
    [container] = by_kind(applied_objects("coredns", "coredns.yaml.j2"))["Deployment", "coredns"]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8181, "scheme": "HTTP"}
    assert typed(container["readinessProbe"]["periodSeconds"]) == "1"


# --------------------------------------------------------------------------- kubelet_bootstrap: API objects

APPROVER_GRANTS = {
    ("certificates.k8s.io", "certificatesigningrequests", "get", None),
    ("certificates.k8s.io", "certificatesigningrequests", "list", None),
    ("certificates.k8s.io", "certificatesigningrequests", "watch", None),
    ("certificates.k8s.io", "certificatesigningrequests/approval", "update", None),
    ("certificates.k8s.io", "signers", "approve", "kubernetes.io/kubelet-serving"),
}


@pytest.mark.parametrize("version", VERSIONS)
def test_kubelet_bootstrap_objects_are_valid(version):
    objects = applied_objects("kubelet_bootstrap", "rbac.yaml.j2") + applied_objects("kubelet_bootstrap", "bootstrap-token.yaml.j2", **TOKEN)
    assert validate(objects, version) == [major_minor(version)] * len(objects)
    assert wiring_problems(objects) == []


def test_the_approver_may_approve_kubelet_serving_certificates_and_nothing_else():
    objs = by_kind(applied_objects("kubelet_bootstrap", "rbac.yaml.j2"))
    role = objs["ClusterRole", "kubeforge:kubelet-serving-approver"]
    assert grants(role) == APPROVER_GRANTS
    assert {grant for grant in grants(role) if grant[2] == "approve"} == {
        ("certificates.k8s.io", "signers", "approve", "kubernetes.io/kubelet-serving")}
    binding = objs["ClusterRoleBinding", "kubeforge:kubelet-serving-approver"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kubeforge:kubelet-serving-approver"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kubeforge:kubelet-csr-approver"}]


def test_bootstrap_tokens_may_only_ask_for_client_certificates():
    bindings = {(obj["roleRef"]["name"], subject["kind"], subject["name"])
                for obj in applied_objects("kubelet_bootstrap", "rbac.yaml.j2") if obj["kind"] == "ClusterRoleBinding" for subject in obj["subjects"]}
    assert bindings == {
        ("system:node-bootstrapper", "Group", "system:bootstrappers"),
        ("system:certificates.k8s.io:certificatesigningrequests:nodeclient", "Group", "system:bootstrappers"),
        ("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "Group", "system:nodes"),
        ("kubeforge:kubelet-serving-approver", "User", "kubeforge:kubelet-csr-approver"),
    }


def test_the_bootstrap_token_is_an_expiring_authentication_token():
    [secret] = applied_objects("kubelet_bootstrap", "bootstrap-token.yaml.j2", **TOKEN)
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"], secret["type"]) == (
        "bootstrap-token-abc123", "kube-system", "bootstrap.kubernetes.io/token")
    data = secret["stringData"]
    assert (data["token-id"], data["token-secret"], data["expiration"]) == ("abc123", "0123456789abcdef", "2030-01-01T00:00:00Z")
    assert data["usage-bootstrap-authentication"] == "true"
    assert "usage-bootstrap-signing" not in data and "auth-extra-groups" not in data


# --------------------------------------------------------------------------- kubelet_bootstrap: KubeletConfiguration

KUBELET_CASES = [
    # (case, host, settings over the sample's (strings are what -e key=value gives), fields expected)
    ("bootstrap, control plane", "cp1", {},
     {"rotateCertificates": True, "serverTLSBootstrap": True, "failCgroupV1": True, "registerWithTaints": [CONTROL_PLANE_TAINT]}),
    ("bootstrap, worker", "w1", {},
     {"rotateCertificates": True, "serverTLSBootstrap": True, "registerWithTaints": [],
      "shutdownGracePeriod": "60s", "shutdownGracePeriodCriticalPods": "20s"}),
    ("signed, control plane", "cp2", {"kubelet_tls_mode": "signed"},
     {"rotateCertificates": False, "serverTLSBootstrap": False, "tlsCertFile": "/etc/kubernetes/pki/kubelet.crt",
      "tlsPrivateKeyFile": "/etc/kubernetes/pki/kubelet.key", "registerWithTaints": [CONTROL_PLANE_TAINT]}),
    ("signed, worker", "w1", {"kubelet_tls_mode": "signed"},
     {"serverTLSBootstrap": False, "tlsCertFile": "/etc/kubernetes/pki/kubelet.crt", "registerWithTaints": []}),
    ("untainted control plane, cgroup v1 accepted", "cp3", {"kube_control_plane_taint_enabled": False, "kubelet_fail_cgroup_v1": False},
     {"failCgroupV1": False, "registerWithTaints": []}),
    ("settings given as -e strings", "cp1", {"kube_control_plane_taint_enabled": "false", "kubelet_fail_cgroup_v1": "false",
                                             "kubelet_bootstrap_max_pods": "200", "kubelet_bootstrap_protect_kernel_defaults": "true"},
     {"failCgroupV1": False, "registerWithTaints": [], "maxPods": 200, "protectKernelDefaults": True}),
    ("graceful node shutdown off", "w1", {"kubelet_bootstrap_shutdown_grace_period": "0s",
                                          "kubelet_bootstrap_shutdown_grace_period_critical_pods": "0s"},
     {"shutdownGracePeriod": "0s", "shutdownGracePeriodCriticalPods": "0s"}),
]


def kubelet_config(host: str = "cp1", roles_dir: str = ROLES, **settings) -> dict:
    return config_doc(written_file("kubelet_bootstrap", "kubelet-config.yaml.j2", host=host, roles_dir=roles_dir, **settings))


@pytest.mark.parametrize("case, host, settings, expected", KUBELET_CASES, ids=[case[0] for case in KUBELET_CASES])
def test_kubelet_configuration(case, host, settings, expected):  # pylint: disable=unused-argument
    doc = kubelet_config(host, **settings)
    assert stringly_typed(doc) == []
    assert typed({key: doc.get(key, []) if key == "registerWithTaints" else doc.get(key) for key in expected}) == typed(expected)
    if doc["serverTLSBootstrap"]:
        assert "tlsCertFile" not in doc and "tlsPrivateKeyFile" not in doc


@pytest.mark.parametrize("case, host, settings, expected", KUBELET_CASES, ids=[case[0] for case in KUBELET_CASES])
def test_kubelet_configuration_holds_the_cis_worker_items(case, host, settings, expected):  # pylint: disable=unused-argument
    doc = kubelet_config(host, **settings)
    assert (doc["apiVersion"], doc["kind"]) == ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration")
    assert typed(doc["authentication"]["anonymous"]) == typed({"enabled": False})  # anonymous requests refused
    assert doc["authentication"]["webhook"]["enabled"] is True
    assert doc["authentication"]["x509"]["clientCAFile"] == "/etc/kubernetes/pki/ca.crt"  # client certificates checked
    assert doc["authorization"]["mode"] == "Webhook"  # not AlwaysAllow
    assert typed(doc["readOnlyPort"]) == "0"  # no unauthenticated read-only port
    assert doc["protectKernelDefaults"] is True
    assert doc.get("makeIPTablesUtilChains", True) is True and "hostnameOverride" not in doc
    assert doc["streamingConnectionIdleTimeout"] not in ("0", "0s") and isinstance(doc["eventRecordQPS"], int)
    assert doc["tlsMinVersion"] in ("VersionTLS12", "VersionTLS13") and set(doc["tlsCipherSuites"]) <= STRONG_CIPHERS
    assert (doc["serverTLSBootstrap"] is True) != ("tlsCertFile" in doc)  # a serving certificate either way
    assert doc["failCgroupV1"] is expected.get("failCgroupV1", True)
    assert doc["clusterDNS"] == ["10.96.0.10"] and doc["clusterDomain"] == "cluster.local"


@pytest.mark.parametrize("minor", _versions.SUPPORTED_KUBE_MINORS)
@pytest.mark.parametrize("mode", ["bootstrap", "signed"])
def test_every_kubelet_configuration_field_exists(minor, mode):
    known = _versions.config_fields(minor, "KubeletConfiguration", nested=True)
    assert unknown_fields(kubelet_config(kubelet_tls_mode=mode), known) == []


# --------------------------------------------------------------------------- ipvs: KubeProxyConfiguration

@pytest.mark.parametrize("host", ["cp1", "w1"])
def test_kube_proxy_configuration(host):
    doc = config_doc(written_file("ipvs", "kube-proxy-config.yaml.j2", host=host))
    assert stringly_typed(doc) == []
    assert (doc["apiVersion"], doc["kind"], doc["mode"]) == ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration", "ipvs")
    assert (doc["hostnameOverride"], doc["bindAddress"], doc["healthzBindAddress"]) == (host, NODE_IPS[host], NODE_IPS[host] + ":10256")
    assert doc["metricsBindAddress"] == "127.0.0.1:10249"  # metrics on loopback only
    assert doc["clientConnection"]["kubeconfig"] == "/etc/kubernetes/kube-proxy.kubeconfig"
    assert doc["clusterCIDR"] == "10.244.0.0/16"
    assert typed(doc["ipvs"]) == typed({"scheduler": "rr", "strictARP": True})
    assert typed(doc["conntrack"]) == typed({"maxPerCore": 32768, "min": 131072, "tcpEstablishedTimeout": "24h0m0s",
                                            "tcpCloseWaitTimeout": "1h0m0s"})


@pytest.mark.parametrize("minor", _versions.SUPPORTED_KUBE_MINORS)
def test_every_kube_proxy_configuration_field_exists(minor):
    doc = config_doc(written_file("ipvs", "kube-proxy-config.yaml.j2"))
    assert unknown_fields(doc, _versions.config_fields(minor, "KubeProxyConfiguration", nested=True)) == []


# --------------------------------------------------------------------------- the checks can fail
# Each is shown failing on a copy of a role broken the way a template goes wrong.

def test_a_misspelled_field_fails_validation(tmp_path):
    roles_dir = copy_role(tmp_path, "flannel", "templates/kube-flannel.yaml.j2", "hostNetwork: true", "hostNetwrok: true")
    objects = applied_objects("flannel", "kube-flannel.yaml.j2", roles_dir=roles_dir, flannel_backend="vxlan")
    with pytest.raises(kubernetes_validate.ValidationError, match="hostNetwrok"):
        validate(objects, VERSIONS[-1])


def test_a_number_where_a_string_belongs_fails_validation(tmp_path):
    roles_dir = copy_role(tmp_path, "kubelet_bootstrap", "templates/bootstrap-token.yaml.j2",
                          'usage-bootstrap-authentication: "true"', "usage-bootstrap-authentication: true")
    objects = applied_objects("kubelet_bootstrap", "bootstrap-token.yaml.j2", roles_dir=roles_dir, **TOKEN)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(objects, VERSIONS[0])


def test_a_broken_reference_is_a_wiring_problem(tmp_path):
    roles_dir = copy_role(tmp_path, "coredns", "templates/coredns.yaml.j2", "serviceAccountName: coredns", "serviceAccountName: kube-dns")
    objects = applied_objects("coredns", "coredns.yaml.j2", roles_dir=roles_dir)
    assert wiring_problems(objects) == ["Deployment/coredns: its ServiceAccount does not exist"]


def test_a_wider_approver_role_fails_the_rbac_check(tmp_path):
    roles_dir = copy_role(tmp_path, "kubelet_bootstrap", "templates/rbac.yaml.j2",
                          "    resourceNames: [kubernetes.io/kubelet-serving]\n", "")
    role = by_kind(applied_objects("kubelet_bootstrap", "rbac.yaml.j2", roles_dir=roles_dir))["ClusterRole", "kubeforge:kubelet-serving-approver"]
    assert grants(role) - APPROVER_GRANTS == {("certificates.k8s.io", "signers", "approve", None)}


def test_a_quoted_boolean_fails_the_type_check(tmp_path):
    roles_dir = copy_role(tmp_path, "kubelet_bootstrap", "vars/main.yml",
                          "authorization: {mode: Webhook}", "authorization: {mode: Webhook}\n  enableServer: \"{{ 'true' }}\"")
    assert stringly_typed(kubelet_config(roles_dir=roles_dir)) == ["enableServer"]


def test_a_misspelled_config_field_fails_the_field_check(tmp_path):
    roles_dir = copy_role(tmp_path, "kubelet_bootstrap", "vars/main.yml", "readOnlyPort: 0", "readOnlyPorts: 0")
    assert unknown_fields(kubelet_config(roles_dir=roles_dir), _versions.config_fields("1.36", "KubeletConfiguration", nested=True)) == [
        "readOnlyPorts"]
