# SPDX-License-Identifier: GPL-3.0-or-later
"""Extra arguments cannot silently weaken a CIS item the roles enforce (issue 10, section 3).

The inputs are the real ones: the sample inventory's settings and the roles' own variables,
rendered by the preflight action's role_variables() with Ansible's Templar. Each case then changes
only what an operator would: an extra argument, a null that drops a default, an exception.
"""
from __future__ import annotations

import copy
import os
import re
import sys

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

from ansible_collections.kubeforge.cluster.plugins.action.cluster_preflight import CLUSTER_SETTINGS, role_variables
from ansible_collections.kubeforge.cluster.plugins.module_utils import _cis, _preflight

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
SAMPLE = os.path.join(REPO, "inventory", "sample")
ADDRESSES = {"master1": "192.168.56.11", "master2": "192.168.56.12", "master3": "192.168.56.13",
             "worker1": "192.168.56.21", "worker2": "192.168.56.22"}
GROUPS = {"all": list(ADDRESSES), "ungrouped": [], "etcd": ["master1", "master2", "master3"],
          "kube_control_plane": ["master1", "master2", "master3"], "kube_node": ["worker1", "worker2"], "k8s_cluster": list(ADDRESSES)}
ONE_CONTROL_PLANE = {"all": ["master1", "worker1"], "ungrouped": [], "etcd": ["master1"], "kube_control_plane": ["master1"],
                     "kube_node": ["worker1"], "k8s_cluster": ["master1", "worker1"]}
EXTRA_VAR = {component: var for var, component in _preflight.EXTRA_ARGS.items()}
WEAK_CIPHERS = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA"


def _collection_modules() -> dict:
    return {name: module for name, module in sys.modules.items() if name.split(".")[0] == "ansible_collections"}


@pytest.fixture(scope="module", autouse=True)
def ansible_plugin_loader():
    """The plugin and collection loaders, for the roles' kubeforge.cluster.* filters. The collection
    was imported from conftest's path, without the metadata the loader resolves filters with: the
    collection finder imports it again, and everything is put back afterwards."""
    if AnsibleCollectionConfig.collection_finder is not None:
        yield
        return
    saved = _collection_modules()
    for name in saved:
        del sys.modules[name]
    init_plugin_loader()
    yield
    _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access
    for name in _collection_modules():
        del sys.modules[name]
    sys.modules.update(saved)


def render(extra_vars: dict | None = None, host: str = "master1", groups: dict | None = None) -> tuple:
    """(cluster settings, role variables, render problems) as the preflight action computes them for
    the sample inventory; ``extra_vars`` as given with -e."""
    loader = DataLoader()
    task_vars = loader.load_from_file(os.path.join(SAMPLE, "group_vars", "all.yml"), cache="none", trusted_as_template=True)
    task_vars.update({"inventory_hostname": host, "inventory_dir": SAMPLE, "groups": groups or GROUPS,
                      "hostvars": {name: {"ansible_host": ip} for name, ip in ADDRESSES.items()}, **(extra_vars or {})})
    templar = Templar(loader=loader, variables=task_vars)
    cluster = {key: templar.template(task_vars.get(key)) for key in CLUSTER_SETTINGS}
    values, problems = role_variables(templar, loader, task_vars, frozenset(extra_vars or ()))
    return cluster, values, problems


@pytest.fixture(scope="module")
def sample():
    cluster, values, problems = render()
    assert problems == []
    return cluster, values


def validate(sample, extra: dict | None = None, exceptions=None, groups=None, **settings) -> _preflight.Report:
    """Preflight over the sample with extra arguments ({component: {flag: value}}) put where the role
    variables take them from, without rendering again."""
    cluster, values = copy.deepcopy(sample)
    cluster.update(settings)
    for component, args in (extra or {}).items():
        cluster[EXTRA_VAR[component]] = args
        if component in values["control_plane_settings"]["extra_args"]:
            values["control_plane_settings"]["extra_args"][component] = args
    if exceptions is not None:
        cluster[_cis.EXCEPTIONS_VAR] = exceptions
    cluster[_preflight.ROLE_VARS_KEY] = values
    groups = groups or GROUPS
    hosts = {name: {"ip": ADDRESSES[name]} for name in groups["all"]}
    return _preflight.validate(cluster, hosts, groups)


def weakened(report: _preflight.Report) -> set:
    """(component, setting) of every CIS problem."""
    found = set()
    for problem in report.problems:
        match = re.match(r"^(?:CIS [0-9., -]+|kubeforge): (\S+) --(\S+) ", problem)
        if match:
            found.add(match.groups())
    return found


def cis_notes(report: _preflight.Report) -> list:
    return [warning for warning in report.warnings if _cis.EXCEPTIONS_VAR in warning]


# --------------------------------------------------------------------------- the default install

@pytest.mark.parametrize("groups, settings", [
    (GROUPS, {}),
    (GROUPS, {"kubelet_tls_mode": "signed"}),
    (ONE_CONTROL_PLANE, {}),
])
def test_the_sample_inventory_passes(sample, groups, settings):
    report = validate(sample, groups=groups, **settings)
    assert report.problems == []
    assert cis_notes(report) == []


@pytest.mark.parametrize("extra_vars", [{}, {"kubelet_tls_mode": "signed"}, {"kubelet_bootstrap_protect_kernel_defaults": False}])
def test_the_rendered_roles_pass(extra_vars):
    cluster, values, problems = render(extra_vars)
    assert problems == []
    assert validate((cluster, values)).problems == []


def test_the_rules_read_what_the_roles_write(sample):
    finals = _cis.final_settings(sample[1], {component: (var, {}) for component, var in EXTRA_VAR.items()})
    assert sorted(finals) == sorted((rule.component, rule.setting) for rule in _cis.RULES)
    shown = {key: (_cis.show(final.value), final.source) for key, final in finals.items()}
    assert shown["kube-apiserver", "authorization-mode"] == ("Node,RBAC", "the collection's setting")
    assert shown["kube-apiserver", "audit-log-maxage"] == ("30", "the collection's setting")
    assert shown["kube-apiserver", "service-account-lookup"] == ("true", "the collection's setting")
    assert shown["kube-controller-manager", "bind-address"] == ("127.0.0.1", "the collection's setting")
    assert shown["kube-scheduler", "profiling"] == ("false", "KubeSchedulerConfiguration enableProfiling")
    assert shown["kube-scheduler", "leader-elect"] == ("true", "KubeSchedulerConfiguration leaderElection.leaderElect")
    assert shown["kubelet", "read-only-port"] == ("0", "KubeletConfiguration readOnlyPort")
    assert shown["kubelet", "anonymous-auth"] == ("false", "KubeletConfiguration authentication.anonymous.enabled")
    assert shown["kubelet", "rotate-certificates"] == ("true", "KubeletConfiguration rotateCertificates")
    assert shown["kube-proxy", "metrics-bind-address"] == ("127.0.0.1:10249", "KubeProxyConfiguration metricsBindAddress")


# --------------------------------------------------------------------------- weakening through an extra argument

OVERRIDES = [
    # (component, extra arguments, the settings refused)
    ("kube-apiserver", {"anonymous-auth": True}, {"anonymous-auth"}),
    ("kube-apiserver", {"token-auth-file": "/etc/kubernetes/tokens.csv"}, {"token-auth-file"}),
    ("kube-apiserver", {"kubelet-client-certificate": ""}, {"kubelet-client-certificate"}),
    ("kube-apiserver", {"kubelet-client-key": ""}, {"kubelet-client-key"}),
    ("kube-apiserver", {"kubelet-certificate-authority": ""}, {"kubelet-certificate-authority"}),
    ("kube-apiserver", {"authorization-mode": "AlwaysAllow"}, {"authorization-mode"}),
    ("kube-apiserver", {"authorization-mode": "Node,RBAC,AlwaysAllow"}, {"authorization-mode"}),
    ("kube-apiserver", {"authorization-mode": ["RBAC"]}, {"authorization-mode"}),
    ("kube-apiserver", {"enable-admission-plugins": "NodeRestriction,AlwaysAdmit"}, {"enable-admission-plugins"}),
    ("kube-apiserver", {"enable-admission-plugins": "AlwaysPullImages"}, {"enable-admission-plugins"}),
    ("kube-apiserver", {"disable-admission-plugins": "ServiceAccount"}, {"disable-admission-plugins"}),
    ("kube-apiserver", {"profiling": "true"}, {"profiling"}),
    ("kube-apiserver", {"--audit-log-path": ""}, {"audit-log-path"}),
    ("kube-apiserver", {"audit-log-maxage": 7}, {"audit-log-maxage"}),
    ("kube-apiserver", {"audit-log-maxbackup": "1"}, {"audit-log-maxbackup"}),
    ("kube-apiserver", {"audit-log-maxsize": 10}, {"audit-log-maxsize"}),
    ("kube-apiserver", {"service-account-lookup": False}, {"service-account-lookup"}),
    ("kube-apiserver", {"service-account-key-file": ""}, {"service-account-key-file"}),
    ("kube-apiserver", {"etcd-certfile": "", "etcd-keyfile": ""}, {"etcd-certfile", "etcd-keyfile"}),
    ("kube-apiserver", {"etcd-cafile": ""}, {"etcd-cafile"}),
    ("kube-apiserver", {"tls-cert-file": "", "tls-private-key-file": ""}, {"tls-cert-file", "tls-private-key-file"}),
    ("kube-apiserver", {"client-ca-file": ""}, {"client-ca-file"}),
    ("kube-apiserver", {"encryption-provider-config": ""}, {"encryption-provider-config"}),
    ("kube-apiserver", {"tls-min-version": "VersionTLS10"}, {"tls-min-version"}),
    ("kube-apiserver", {"tls-cipher-suites": WEAK_CIPHERS}, {"tls-cipher-suites"}),
    ("kube-controller-manager", {"terminated-pod-gc-threshold": 0}, {"terminated-pod-gc-threshold"}),
    ("kube-controller-manager", {"profiling": True}, {"profiling"}),
    ("kube-controller-manager", {"use-service-account-credentials": "false"}, {"use-service-account-credentials"}),
    ("kube-controller-manager", {"service-account-private-key-file": ""}, {"service-account-private-key-file"}),
    ("kube-controller-manager", {"root-ca-file": ""}, {"root-ca-file"}),
    ("kube-controller-manager", {"feature-gates": {"RotateKubeletServerCertificate": False}}, {"feature-gates"}),
    ("kube-controller-manager", {"feature-gates": "SomeGate=true,RotateKubeletServerCertificate=false"}, {"feature-gates"}),
    ("kube-controller-manager", {"bind-address": "0.0.0.0"}, {"bind-address"}),
    ("kube-controller-manager", {"leader-elect": False}, {"leader-elect"}),
    ("kube-controller-manager", {"tls-min-version": "VersionTLS11"}, {"tls-min-version"}),
    ("kube-controller-manager", {"tls-cipher-suites": WEAK_CIPHERS.split(",")}, {"tls-cipher-suites"}),
    # The scheduler reads profiling and leader election from the role's config; another file cannot be checked.
    ("kube-scheduler", {"config": "/etc/kubernetes/my-scheduler.yaml"}, {"profiling", "leader-elect"}),
    ("kube-scheduler", {"bind-address": "0.0.0.0"}, {"bind-address"}),
    ("kube-scheduler", {"leader-elect": "false"}, {"leader-elect"}),
    ("kube-scheduler", {"tls-min-version": "VersionTLS10"}, {"tls-min-version"}),
    ("kube-scheduler", {"tls-cipher-suites": WEAK_CIPHERS}, {"tls-cipher-suites"}),
    # The kubelet's flags win over its KubeletConfiguration.
    ("kubelet", {"anonymous-auth": True}, {"anonymous-auth"}),
    ("kubelet", {"authorization-mode": "AlwaysAllow"}, {"authorization-mode"}),
    ("kubelet", {"client-ca-file": ""}, {"client-ca-file"}),
    ("kubelet", {"read-only-port": 10255}, {"read-only-port"}),
    ("kubelet", {"streaming-connection-idle-timeout": "0s"}, {"streaming-connection-idle-timeout"}),
    ("kubelet", {"streaming-connection-idle-timeout": "0h0m0.0s"}, {"streaming-connection-idle-timeout"}),
    ("kubelet", {"streaming-connection-idle-timeout": 0}, {"streaming-connection-idle-timeout"}),
    ("kubelet", {"protect-kernel-defaults": False}, {"protect-kernel-defaults"}),
    ("kubelet", {"make-iptables-util-chains": "false"}, {"make-iptables-util-chains"}),
    ("kubelet", {"rotate-certificates": False}, {"rotate-certificates"}),
    ("kubelet", {"rotate-server-certificates": False}, {"rotate-server-certificates"}),
    ("kubelet", {"tls-min-version": "VersionTLS11"}, {"tls-min-version"}),
    ("kubelet", {"tls-cipher-suites": WEAK_CIPHERS}, {"tls-cipher-suites"}),
    ("kubelet", {"config": "/etc/kubelet/other.yaml"}, set(_cis.settings_of("kubelet"))),
]
OVERRIDE_IDS = [f"{component}-{'-'.join(map(str, args))}-{index}" for index, (component, args, _refused) in enumerate(OVERRIDES)]


@pytest.mark.parametrize("component, args, refused", OVERRIDES, ids=OVERRIDE_IDS)
def test_an_extra_argument_that_weakens_an_item_is_refused(sample, component, args, refused):
    report = validate(sample, {component: args})
    assert weakened(report) == {(component, setting) for setting in refused}, report.problems
    assert len(report.problems) == len(refused)
    for problem in report.problems:
        assert f"set by {EXTRA_VAR[component]}" in problem or "preflight cannot read" in problem, problem
        assert f"accept it in {_cis.EXCEPTIONS_VAR} with {{component: {component}, setting: " in problem, problem


def test_every_rule_has_a_weakening_case():
    covered = {(component, setting) for component, _args, refused in OVERRIDES for setting in refused}
    # kube-proxy takes no flag over its config file: its only rule is covered by test_kube_proxy_reads_its_config_file_only.
    assert {(rule.component, rule.setting) for rule in _cis.RULES} - covered == {("kube-proxy", "metrics-bind-address")}


@pytest.mark.parametrize("component, args", [
    ("kube-apiserver", {"authorization-mode": "RBAC,Node,Webhook", "enable-admission-plugins": "NodeRestriction,AlwaysPullImages"}),
    ("kube-apiserver", {"audit-log-maxage": 90, "tls-min-version": "VersionTLS13", "anonymous-auth": "false"}),
    ("kube-controller-manager", {"bind-address": "::1", "feature-gates": {"RotateKubeletServerCertificate": True}}),
    # Ignored by kube-scheduler while it reads its --config: not a weakening.
    ("kube-scheduler", {"profiling": True}),
    ("kube-scheduler", {"bind-address": "localhost", "v": 4}),
    ("kubelet", {"read-only-port": "0", "streaming-connection-idle-timeout": "30m", "max-pods": 200}),
    ("kubelet", {"streaming-connection-idle-timeout": "4h0m0s"}),
])
def test_an_extra_argument_that_keeps_the_items_passes(sample, component, args):
    assert validate(sample, {component: args}).problems == []


def test_kube_proxy_reads_its_config_file_only():
    # Its flags are ignored once it has --config (the role writes --config last): they change nothing.
    cluster, values, _problems = render()
    assert validate((cluster, values), {"kube-proxy": {"metrics-bind-address": "0.0.0.0:10249"}}).problems == []
    # The config file it reads is what counts (here the role variable given with -e).
    cluster, values, _problems = render({"ipvs_configuration": {"kind": "KubeProxyConfiguration", "metricsBindAddress": "0.0.0.0:10249"}})
    assert weakened(validate((cluster, values))) == {("kube-proxy", "metrics-bind-address")}


def test_an_extra_argument_reaches_the_check_through_the_role_variables():
    # Rendered from kube_apiserver_extra_args by the control_plane role's own control_plane_settings.
    cluster, values, problems = render({"kube_apiserver_extra_args": {"profiling": True}, "kubelet_extra_args": {"anonymous-auth": True}})
    assert problems == []
    assert values["control_plane_settings"]["extra_args"]["kube-apiserver"] == {"profiling": True}
    cluster[_preflight.ROLE_VARS_KEY] = values
    report = _preflight.validate(cluster, {name: {"ip": ip} for name, ip in ADDRESSES.items()}, GROUPS)
    assert weakened(report) == {("kube-apiserver", "profiling"), ("kubelet", "anonymous-auth")}


def test_kubelet_config_extra_is_merged_into_the_kubelet_configuration_the_check_reads():
    # A map merged key by key: the role's webhook authentication and client CA stay beside the change.
    cluster, values, problems = render({"kubelet_config_extra": {"authentication": {"anonymous": {"enabled": True}}, "imageGCHighThresholdPercent": 100}})
    assert problems == []
    configuration = values["kubelet_bootstrap_configuration"]
    assert configuration["imageGCHighThresholdPercent"] == 100
    assert configuration["authentication"]["anonymous"] == {"enabled": True}
    assert configuration["authentication"]["webhook"]["enabled"] is True and configuration["authentication"]["x509"]["clientCAFile"]
    cluster[_preflight.ROLE_VARS_KEY] = values
    report = _preflight.validate(cluster, {name: {"ip": ip} for name, ip in ADDRESSES.items()}, GROUPS)
    assert weakened(report) == {("kubelet", "anonymous-auth")}


# --------------------------------------------------------------------------- weakening through a null

NULLS = [
    # (component, the flag a null drops, the settings refused: those whose component default is weaker)
    ("kube-apiserver", "anonymous-auth", {"anonymous-auth"}),
    ("kube-apiserver", "token-auth-file", set()),
    ("kube-apiserver", "kubelet-client-certificate", {"kubelet-client-certificate"}),
    ("kube-apiserver", "kubelet-client-key", {"kubelet-client-key"}),
    ("kube-apiserver", "kubelet-certificate-authority", {"kubelet-certificate-authority"}),
    ("kube-apiserver", "authorization-mode", {"authorization-mode"}),
    ("kube-apiserver", "enable-admission-plugins", {"enable-admission-plugins"}),
    ("kube-apiserver", "disable-admission-plugins", set()),
    ("kube-apiserver", "profiling", {"profiling"}),
    ("kube-apiserver", "audit-log-path", {"audit-log-path"}),
    ("kube-apiserver", "audit-log-maxage", {"audit-log-maxage"}),
    ("kube-apiserver", "audit-log-maxbackup", {"audit-log-maxbackup"}),
    ("kube-apiserver", "audit-log-maxsize", {"audit-log-maxsize"}),
    ("kube-apiserver", "service-account-lookup", set()),  # its default is true
    ("kube-apiserver", "service-account-key-file", {"service-account-key-file"}),
    ("kube-apiserver", "etcd-certfile", {"etcd-certfile"}),
    ("kube-apiserver", "etcd-keyfile", {"etcd-keyfile"}),
    ("kube-apiserver", "etcd-cafile", {"etcd-cafile"}),
    ("kube-apiserver", "tls-cert-file", {"tls-cert-file"}),
    ("kube-apiserver", "tls-private-key-file", {"tls-private-key-file"}),
    ("kube-apiserver", "client-ca-file", {"client-ca-file"}),
    ("kube-apiserver", "encryption-provider-config", {"encryption-provider-config"}),
    ("kube-apiserver", "tls-min-version", set()),  # Go's servers default to TLS 1.2
    ("kube-apiserver", "tls-cipher-suites", {"tls-cipher-suites"}),  # Go's defaults include CBC suites
    ("kube-controller-manager", "terminated-pod-gc-threshold", set()),  # its default is 12500
    ("kube-controller-manager", "profiling", {"profiling"}),
    ("kube-controller-manager", "use-service-account-credentials", {"use-service-account-credentials"}),
    ("kube-controller-manager", "service-account-private-key-file", {"service-account-private-key-file"}),
    ("kube-controller-manager", "root-ca-file", {"root-ca-file"}),
    ("kube-controller-manager", "feature-gates", set()),
    ("kube-controller-manager", "bind-address", {"bind-address"}),
    ("kube-controller-manager", "leader-elect", set()),  # its default is true
    ("kube-controller-manager", "tls-min-version", set()),
    ("kube-controller-manager", "tls-cipher-suites", {"tls-cipher-suites"}),
    ("kube-scheduler", "config", {"profiling"}),  # without its config, the scheduler profiles by default
    ("kube-scheduler", "profiling", set()),  # the role sets it in the config, not as a flag
    ("kube-scheduler", "leader-elect", set()),
    ("kube-scheduler", "bind-address", {"bind-address"}),
    ("kube-scheduler", "tls-min-version", set()),
    ("kube-scheduler", "tls-cipher-suites", {"tls-cipher-suites"}),
]


@pytest.mark.parametrize("component, flag, refused", NULLS, ids=[f"{c}-{f}" for c, f, _refused in NULLS])
def test_a_null_that_drops_a_default_is_refused_where_the_default_is_weaker(sample, component, flag, refused):
    report = validate(sample, {component: {flag: None}})
    assert weakened(report) == {(component, setting) for setting in refused}, report.problems
    for problem in report.problems:
        assert f"dropped by a null in {EXTRA_VAR[component]}" in problem or "drops --config (null)" in problem, problem


def test_every_control_plane_rule_has_a_null_case():
    dropped = {(component, flag) for component, flag, _refused in NULLS}
    assert {(rule.component, rule.setting) for rule in _cis.RULES if rule.component.startswith("kube-")
            and rule.component != "kube-proxy"} <= dropped


@pytest.mark.parametrize("component", ["kubelet", "kube-proxy"])
def test_a_null_drops_nothing_from_a_config_file_and_is_refused(sample, component):
    report = validate(sample, {component: {"read-only-port" if component == "kubelet" else "metrics-bind-address": None}})
    assert weakened(report) == set()
    assert report.problems == [f"{EXTRA_VAR[component]}: null cannot drop a {component} setting "
                               f"({'read-only-port' if component == 'kubelet' else 'metrics-bind-address'}): {component} reads them "
                               "from its config file, and the unit file would carry the text None; remove the entries"]


# --------------------------------------------------------------------------- where the role does not enforce an item

@pytest.mark.parametrize("component, args, groups, settings", [
    ("kube-controller-manager", {"leader-elect": False}, ONE_CONTROL_PLANE, {}),
    ("kube-scheduler", {"leader-elect": False}, ONE_CONTROL_PLANE, {}),
    ("kubelet", {"rotate-certificates": False, "rotate-server-certificates": False}, GROUPS, {"kubelet_tls_mode": "signed"}),
])
def test_items_the_role_sets_only_in_some_clusters(sample, component, args, groups, settings):
    assert validate(sample, {component: args}, groups=groups, **settings).problems == []


def test_protect_kernel_defaults_is_checked_where_the_role_switch_is_on():
    cluster, values, _problems = render({"kubelet_bootstrap_protect_kernel_defaults": False})
    assert validate((cluster, values), {"kubelet": {"protect-kernel-defaults": False}}).problems == []
    cluster, values, _problems = render()
    assert weakened(validate((cluster, values), {"kubelet": {"protect-kernel-defaults": False}})) == {("kubelet", "protect-kernel-defaults")}


# --------------------------------------------------------------------------- exceptions

REFUSED = list(OVERRIDES) + [
    (component, {flag: None}, refused) for component, flag, refused in NULLS if refused]


@pytest.mark.parametrize("component, args, refused", REFUSED, ids=[f"case{index}" for index in range(len(REFUSED))])
def test_an_exception_with_a_reason_accepts_the_weakening_and_prints_the_reason(sample, component, args, refused):
    exceptions = [{"component": component, "setting": setting, "reason": f"ticket OPS-{index} accepts {setting}"}
                  for index, setting in enumerate(sorted(refused))]
    report = validate(sample, {component: args}, exceptions)
    assert report.problems == []
    notes = cis_notes(report)
    assert len(notes) == len(refused)
    for index, setting in enumerate(sorted(refused)):
        [note] = [note for note in notes if f"{component} --{setting} " in note]
        assert note.startswith("CIS exception accepted: ") and note.endswith(f"Reason given in kube_cis_exceptions: ticket OPS-{index} "
                                                                             f"accepts {setting}")


@pytest.mark.parametrize("reason", [None, "", "   ", 42])
@pytest.mark.parametrize("component, args, refused", REFUSED[:3] + REFUSED[-3:])
def test_an_exception_without_a_reason_is_refused(sample, component, args, refused, reason):
    exceptions = [{"component": component, "setting": setting, **({} if reason is None else {"reason": reason})} for setting in refused]
    report = validate(sample, {component: args}, exceptions)
    # The weakening is still refused, and so is every exception: all in the one message.
    assert weakened(report) == {(component, setting) for setting in refused}
    for number, setting in enumerate(exceptions, 1):
        assert (f"kube_cis_exceptions entry {number} ({component} {setting['setting']}) has no reason: an exception needs one, "
                "and the run prints it") in report.problems
    assert cis_notes(report) == []


@pytest.mark.parametrize("exceptions, problem", [
    ({"component": "kubelet"}, "kube_cis_exceptions must be a list of {component, setting, reason}, got dict"),
    (["kubelet read-only-port"], "kube_cis_exceptions entry 1 must be a mapping with component, setting and reason, got 'kubelet read-only-port'"),
    ([{"component": "etcd", "setting": "client-cert-auth", "reason": "x"}],
     "kube_cis_exceptions entry 1: component 'etcd' must be one of kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy"),
    ([{"component": "kubelet", "setting": "readonly-port", "reason": "x"}],
     "kube_cis_exceptions entry 1: kubelet has no checked setting 'readonly-port'; the checked ones are anonymous-auth, authorization-mode, "
     "client-ca-file, make-iptables-util-chains, protect-kernel-defaults, read-only-port, rotate-certificates, rotate-server-certificates, "
     "streaming-connection-idle-timeout, tls-cipher-suites, tls-min-version"),
])
def test_a_malformed_exceptions_list_is_a_problem(sample, exceptions, problem):
    assert validate(sample, exceptions=exceptions).problems == [problem]


def test_exceptions_are_checked_without_the_role_variables():
    # The inventory alone (no rendered roles): the list itself is still checked.
    cluster, _values, _problems = render()
    cluster[_cis.EXCEPTIONS_VAR] = [{"component": "kubelet", "setting": "read-only-port"}]
    report = _preflight.validate(cluster, {name: {"ip": ip} for name, ip in ADDRESSES.items()}, GROUPS)
    assert report.problems == ["kube_cis_exceptions entry 1 (kubelet read-only-port) has no reason: an exception needs one, "
                               "and the run prints it"]


def test_an_exception_may_name_the_flag_with_its_dashes(sample):
    report = validate(sample, {"kube-apiserver": {"--profiling": True}},
                      [{"component": "kube-apiserver", "setting": "--profiling", "reason": "pprof for a performance case"}])
    assert report.problems == []
    assert cis_notes(report)[0].endswith("Reason given in kube_cis_exceptions: pprof for a performance case")


def test_an_exception_not_needed_is_said_so(sample):
    report = validate(sample, exceptions=[{"component": "kubelet", "setting": "read-only-port", "reason": "old scraper"}])
    assert report.problems == []
    assert cis_notes(report) == ["kube_cis_exceptions: kubelet read-only-port holds as the collection sets it; the exception is not needed"]


def test_every_weakening_is_in_one_message_with_the_other_problems(sample):
    report = validate(sample, {"kube-apiserver": {"authorization-mode": "AlwaysAllow", "anonymous-auth": True, "profiling": None},
                               "kube-controller-manager": {"leader-elect": False}, "kubelet": {"read-only-port": 10255}},
                      [{"component": "kubelet", "setting": "read-only-port", "reason": "legacy scraper until Q3"}],
                      kube_pod_cidr="10.96.0.0/16")
    assert weakened(report) == {("kube-apiserver", "authorization-mode"), ("kube-apiserver", "anonymous-auth"),
                                ("kube-apiserver", "profiling"), ("kube-controller-manager", "leader-elect")}
    assert "kube_pod_cidr 10.96.0.0/16 overlaps kube_service_cidr 10.96.0.0/12" in report.problems
    message = report.message()
    assert message.startswith("Preflight found 5 problems; nothing was changed on any host:")
    assert "kube-apiserver --profiling is true (dropped by a null in kube_apiserver_extra_args, so kube-apiserver's own default)" in message
    assert [note for note in cis_notes(report) if "legacy scraper until Q3" in note]


# --------------------------------------------------------------------------- rendering

def test_a_role_that_cannot_be_rendered_is_a_problem_not_a_silent_pass():
    _cluster, values, problems = render({"control_plane_audit_log_maxage": trust_as_template("{{ no_such_variable }}")})
    assert "control_plane_settings" not in values and "kubelet_bootstrap_configuration" in values
    assert len(problems) == 1 and problems[0].startswith("the final settings of the control_plane role could not be computed "
                                                         "for the CIS check: "), problems
    assert "no_such_variable" in problems[0]


@pytest.mark.parametrize("value, holds", [
    ("127.0.0.1:10249", True), ("[::1]:10249", True), ("localhost:10249", True), ("0.0.0.0:10249", False),
    ("192.168.56.11:10249", False), ("[::]:10249", False),
])
def test_loopback_addresses(value, holds):
    [rule] = [rule for rule in _cis.RULES if rule.component == "kube-proxy"]
    assert rule.holds(value) is holds


def test_the_graceful_shutdown_settings_reach_the_preflight_through_the_role_variables():
    # Not a CIS item: the same rendered KubeletConfiguration is what check_kubelet_shutdown judges.
    cluster, values, problems = render({"kubelet_bootstrap_shutdown_grace_period": "30s",
                                        "kubelet_bootstrap_shutdown_grace_period_critical_pods": "1m"})
    assert problems == []
    configuration = values["kubelet_bootstrap_configuration"]
    assert (configuration["shutdownGracePeriod"], configuration["shutdownGracePeriodCriticalPods"]) == ("30s", "1m")
    cluster[_preflight.ROLE_VARS_KEY] = values
    report = _preflight.validate(cluster, {name: {"ip": ip} for name, ip in ADDRESSES.items()}, GROUPS)
    assert [problem for problem in report.problems if "shutdownGracePeriod" in problem] == [
        "the kubelet's shutdownGracePeriodCriticalPods (1m) is longer than its shutdownGracePeriod (30s), of which it is the last "
        "part: the kubelet refuses it (kubelet_bootstrap_shutdown_grace_period_critical_pods)"]
    assert weakened(report) == set()
