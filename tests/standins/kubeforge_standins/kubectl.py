# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kubectl TEST STAND-IN (tests only; real hosts run the official kubectl).

A minimal client for the tests: ``version [--client] [-o json|yaml]``, ``get --raw PATH`` and
``auth whoami [-o json]`` through a kubeconfig (``--kubeconfig``, ``$KUBECONFIG`` or
``~/.kube/config``, with ``--context`` and ``--server``), checked like every other kubeconfig the
stand-ins read. Anything else fails and says that the stand-in does not implement it.
"""
from __future__ import annotations

import http.client
import json
import os
import sys
import urllib.parse

from kubeforge_standins import common

VALUE_FLAGS = {"--kubeconfig", "--context", "--server", "--request-timeout", "--v", "--output", "--raw"}
BOOL_FLAGS = {"--client", "--help"}
SHORT = {"s": "--server", "v": "--v", "o": "--output", "h": "--help"}


class KubectlError(common.StandinError):
    """Printed as ``error: <message>`` (kubectl's lower-case form)."""


class ServerError(common.StandinError):
    """An error status from the apiserver, printed as is: ``Error from server (Reason): message``."""


def parse(argv: list) -> tuple:
    """(flags, words, unknown-flag errors): the errors are reported once the command is known."""
    flags: dict = {}
    unknown: list = []
    words: list = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg.startswith("--") and len(arg) > 2:
            name, has_value, value = arg.partition("=")
        elif arg.startswith("-") and len(arg) > 1 and arg[1] in SHORT:
            name, rest = SHORT[arg[1]], arg[2:]
            has_value, value = bool(rest), rest.lstrip("=")
        elif arg.startswith("-") and len(arg) > 1:
            unknown.append(f"unknown shorthand flag: '{arg[1]}' in {arg}")
            continue
        else:
            words.append(arg)
            continue
        if name in BOOL_FLAGS:
            flags[name] = value if has_value else "true"
        elif name in VALUE_FLAGS:
            if not has_value:
                if index >= len(argv):
                    raise KubectlError(f"flag needs an argument: {arg}\nSee 'kubectl --help' for usage.")
                value = argv[index]
                index += 1
            flags[name] = value
        else:
            unknown.append(f"unknown flag: {name}")
    return flags, words, unknown


def load(flags: dict, data: dict) -> common.Kubeconfig:
    path = flags.get("--kubeconfig") or (os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]) or os.path.expanduser("~/.kube/config")
    if not os.path.exists(path) and not flags.get("--kubeconfig"):
        raise KubectlError("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
    checks = common.Checks(data)
    kubeconfig = checks.kubeconfig(path, "kubeconfig", context=flags.get("--context", ""))
    try:
        checks.raise_if_problems()
    except common.StandinError as exc:
        raise KubectlError(str(exc)) from exc
    if flags.get("--server"):
        split = urllib.parse.urlsplit(flags["--server"])
        kubeconfig.server, kubeconfig.host, kubeconfig.port = flags["--server"], split.hostname, split.port or 443
    return kubeconfig


def call(kubeconfig: common.Kubeconfig, method: str, path: str, flags: dict, body: bytes | None = None) -> bytes:
    timeout = common.parse_duration("--request-timeout", flags.get("--request-timeout", ""), 0.0) or 30.0
    try:
        status, answer = common.kube_request(kubeconfig, method, path, body=body, timeout=timeout)
    except (OSError, http.client.HTTPException) as exc:
        raise KubectlError(f"Unable to connect to the server: {exc}") from exc
    if status == 401:
        raise KubectlError("You must be logged in to the server (Unauthorized)")
    if status >= 400:
        try:
            reason, message = json.loads(answer).get("reason", ""), json.loads(answer).get("message", "")
        except (ValueError, AttributeError):
            reason, message = "", answer.decode("utf-8", "replace").strip()
        raise ServerError(f"Error from server ({reason or status}): {message}")
    return answer


def emit(obj, output: str) -> None:
    if output == "yaml":
        sys.stdout.write(common.yaml.safe_dump(obj, default_flow_style=False, sort_keys=True))
    else:
        sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def version(flags: dict, data: dict) -> None:
    major, minor = data["version"].split(".")[:2]
    client = {"major": major, "minor": minor, "gitVersion": "v" + data["version"], "gitCommit": "kubeforge-test-standin",
              "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z", "goVersion": "none (kubeforge TEST STAND-IN)",
              "compiler": "none", "platform": "linux/amd64"}
    result = {"clientVersion": client, "kustomizeVersion": "none (kubeforge TEST STAND-IN)"}
    if flags.get("--client") not in ("true", "True", "1"):
        result["serverVersion"] = json.loads(call(load(flags, data), "GET", "/version", flags))
    output = flags.get("--output", "")
    if output in ("json", "yaml"):
        emit(result, output)
    elif output:
        raise KubectlError("--output must be 'yaml' or 'json'")
    else:
        sys.stdout.write(f"Client Version: v{data['version']}\nKustomize Version: {result['kustomizeVersion']}\n")
        if "serverVersion" in result:
            sys.stdout.write(f"Server Version: {result['serverVersion'].get('gitVersion')}\n")
    sys.stderr.write(common.NOTICE.format(name="kubectl") + "\n")


def whoami(flags: dict, data: dict) -> None:
    review = {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {}, "status": {}}
    answer = json.loads(call(load(flags, data), "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", flags,
                             json.dumps(review).encode()))
    output = flags.get("--output", "")
    if output in ("json", "yaml"):
        emit(answer, output)
        return
    info = answer.get("status", {}).get("userInfo", {})
    sys.stdout.write(f"ATTRIBUTE   VALUE\nUsername    {info.get('username')}\nGroups      [{' '.join(info.get('groups') or [])}]\n")


def body(argv: list) -> None:
    data = common.load_data()
    flags, words, unknown = parse(argv)
    implemented = words[:1] == ["version"] or words[:1] == ["get"] or words[:2] == ["auth", "whoami"]
    if unknown and (implemented or not words):
        raise KubectlError(f"{unknown[0]}\nSee 'kubectl --help' for usage.")
    if flags.get("--help") == "true" or not words:
        sys.stdout.write(f"kubectl v{data['version']}: {common.NOTICE.format(name='kubectl')}.\n\n"
                         "Implemented: kubectl version [--client] [-o json|yaml]; kubectl get --raw PATH; kubectl auth whoami [-o json]\n"
                         "Flags: --kubeconfig, --context, --server/-s, --request-timeout, -v/--v, -o/--output\n")
        if not words and flags.get("--help") != "true":
            raise common.Exit(1)
        return
    common.require_libraries()
    if words[0] == "version" and len(words) == 1:
        version(flags, data)
    elif words[0] == "get" and flags.get("--raw") and len(words) == 1:
        answer = call(load(flags, data), "GET", flags["--raw"], flags)
        sys.stdout.write(answer.decode("utf-8", "replace"))
        if answer and not answer.endswith(b"\n"):
            sys.stdout.write("\n")
    elif words[:2] == ["auth", "whoami"] and len(words) == 2:
        whoami(flags, data)
    else:
        raise KubectlError(f"the kubeforge TEST STAND-IN kubectl does not implement \"{' '.join(words)}\": "
                           "it knows only version, get --raw PATH and auth whoami; real hosts use the official kubectl")


def main(argv: list) -> int:
    try:
        body(argv)
    except common.Exit as exc:
        return exc.code
    except KubectlError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except common.StandinError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0
