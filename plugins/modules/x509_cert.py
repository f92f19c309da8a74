#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: x509_cert
short_description: Create or keep a private key and an X.509 certificate signed by a CA, one or a whole batch
version_added: 0.1.0
description:
  - Creates or keeps a private key and a certificate signed by a given CA, or a self-signed CA.
  - The certificate is re-issued only when it is missing, not signed by the given CA, does not match its key, its subject,
    subject alternative names or profile differ from what is asked, it expires within O(renew_before_days), or O(force)
    is set. The result lists the reasons in RV(reasons).
  - An existing key is kept when it is of the asked O(key_type) and O(key_size), also when the certificate is re-issued;
    a key of another type or size is replaced by a new one.
  - The batch form O(certificates) signs many certificates in one task (a whole cluster's PKI in seconds). Each CA is
    handled before the entries it signs, also when it is created in the same batch, and each CA is loaded once.
    Every entry is checked before anything is written; when an entry is wrong, the task fails listing every bad entry
    and writes nothing.
  - A replaced certificate (and a replaced key) is kept beside it as C(<path>.<YYYYmmddTHHMMSSZ>.bak), the time in UTC.
  - Files are written atomically (a temporary file in the same directory, fsynced, with its owner and mode set, then
    renamed). Private keys are always mode C(0600).
  - Keys are generated and certificates signed with the Python C(cryptography) library where the module runs (the
    controller with C(delegate_to=localhost), or a host).
author:
  - kubeforge developers (@kubeforge)
requirements:
  - cryptography >= 42.0
options:
  path:
    description:
      - Where the certificate (PEM) is written.
      - Required unless O(certificates) is used; cannot be combined with it.
    type: path
  privatekey_path:
    description:
      - Where the private key (unencrypted PKCS#8 PEM, mode C(0600)) is kept or written.
      - Required with O(path).
    type: path
  ca_cert:
    description:
      - The CA certificate that signs this certificate. It must be a CA (basicConstraints CA:TRUE).
      - Leave out, with O(ca_key), for a self-signed CA (O(profile=ca)).
      - In the batch form, the default for entries other than CAs; an entry with O(certificates[].profile=ca) does not
        inherit it and is self-signed unless it names its own O(certificates[].ca_cert).
    type: path
  ca_key:
    description:
      - The private key of O(ca_cert); it must match O(ca_cert).
    type: path
  common_name:
    description:
      - The subject's common name (CN), such as V(system:kube-scheduler). Required with O(path).
    type: str
  organizations:
    description:
      - The subject's organizations (O); Kubernetes reads them as the user's groups, such as V(system:masters).
    type: list
    elements: str
    default: []
  dns_names:
    description:
      - DNS subject alternative names. Wildcards such as V(*.example.com) are allowed; an IP address here is an error
        (list it in O(ip_addresses)).
      - A V(server) or V(peer) certificate needs at least one DNS name or IP address.
    type: list
    elements: str
    default: []
  ip_addresses:
    description:
      - IP subject alternative names, IPv4 or IPv6.
    type: list
    elements: str
    default: []
  profile:
    description:
      - V(ca) is a CA (basicConstraints CA:TRUE critical; keyUsage keyCertSign, cRLSign).
      - V(server) is a TLS server (keyUsage digitalSignature, plus keyEncipherment for RSA keys; EKU serverAuth).
      - V(client) is a TLS client (same keyUsage; EKU clientAuth).
      - V(peer) is both (EKU serverAuth and clientAuth), as etcd members use.
      - Required with O(path).
    type: str
    choices: [ca, server, client, peer]
  key_type:
    description:
      - The type of a newly generated key. An existing key of another type is replaced.
    type: str
    choices: [ecdsa, rsa]
    default: ecdsa
  key_size:
    description:
      - For V(ecdsa), the curve size, V(256) (P-256), V(384) or V(521); for V(rsa), the modulus size, at least V(2048).
      - Defaults to V(256) for V(ecdsa) and V(2048) for V(rsa).
    type: int
  valid_days:
    description:
      - How long a new certificate is valid, in days. Required, at the top level or in every entry of O(certificates)
        (the pki role passes C(pki_ca_valid_days) or C(pki_cert_valid_days)).
    type: int
  renew_before_days:
    description:
      - Re-issue the certificate when it expires within this many days. Must be less than O(valid_days).
    type: int
    default: 30
  owner:
    description:
      - Owner (name or uid) of the certificate and key files. Left as created when not set.
    type: str
  group:
    description:
      - Group (name or gid) of the certificate and key files. Left as created when not set.
    type: str
  mode:
    description:
      - Mode of the certificate file, as an octal string such as V('0644'). The key file is always C(0600).
    type: raw
    default: '0644'
  force:
    description:
      - Re-issue the certificate (keeping its key) whatever its state. In the batch form, the default for every entry.
    type: bool
    default: false
  certificates:
    description:
      - The batch form, a list of certificates handled in one task. Each entry takes the options of one certificate.
      - The top-level O(ca_cert), O(ca_key), O(key_type), O(key_size), O(valid_days), O(renew_before_days), O(owner),
        O(group), O(mode) and O(force) are the defaults of every entry.
      - Cannot be combined with O(path), O(privatekey_path), O(common_name), O(organizations), O(dns_names),
        O(ip_addresses) or O(profile).
    type: list
    elements: dict
    suboptions:
      path:
        description: Where the certificate is written.
        type: path
        required: true
      privatekey_path:
        description: Where the private key is kept or written.
        type: path
        required: true
      ca_cert:
        description: The signing CA's certificate (default O(ca_cert), except for entries with profile V(ca)).
        type: path
      ca_key:
        description: The signing CA's key (default O(ca_key), except for entries with profile V(ca)).
        type: path
      common_name:
        description: The subject's common name.
        type: str
        required: true
      organizations:
        description: The subject's organizations.
        type: list
        elements: str
      dns_names:
        description: DNS subject alternative names.
        type: list
        elements: str
      ip_addresses:
        description: IP subject alternative names.
        type: list
        elements: str
      profile:
        description: As O(profile).
        type: str
        choices: [ca, server, client, peer]
        required: true
      key_type:
        description: As O(key_type) (default O(key_type)).
        type: str
        choices: [ecdsa, rsa]
      key_size:
        description: As O(key_size) (default O(key_size)).
        type: int
      valid_days:
        description: As O(valid_days) (default O(valid_days)).
        type: int
      renew_before_days:
        description: As O(renew_before_days) (default O(renew_before_days)).
        type: int
      owner:
        description: As O(owner) (default O(owner)).
        type: str
      group:
        description: As O(group) (default O(group)).
        type: str
      mode:
        description: As O(mode) (default O(mode)).
        type: raw
      force:
        description: As O(force) (default O(force)).
        type: bool
  private_keys:
    description:
      - Private keys kept without a certificate, such as the service-account signing key, with the batch form only.
      - A key is generated only where the file does not exist. An existing key is never replaced, whatever its type
        or size (what it signed would be rejected); a file that is not a private key is an error. Its mode is set to
        C(0600), its owner and group to O(owner) and O(group) when those are set.
    type: list
    elements: dict
    suboptions:
      path:
        description: Where the private key is kept or written.
        type: path
        required: true
      key_type:
        description: The type of a newly generated key.
        type: str
        choices: [ecdsa, rsa]
        default: ecdsa
      key_size:
        description: As O(key_size), for a newly generated key.
        type: int
attributes:
  check_mode:
    support: full
    description: Writes nothing; reports what would be issued and why (RV(reasons)).
  diff_mode:
    support: full
    description: Shows the subject, subject alternative names, profile, issuer, expiry and key type before and after.
  idempotent:
    support: full
    description: A second run with the same options changes nothing, until a certificate comes within O(renew_before_days) of its expiry.
notes:
  - Keys protected by a passphrase are not supported; the module fails on them rather than replacing them.
  - Re-issuing a CA with its key kept (for example when it is about to expire) leaves the certificates it signed valid.
    A CA with a new key makes every certificate it signed re-issued with the reason V(ca_mismatch) on their next run.
  - A CA certificate whose key is missing is kept, never given a new key (that would be a new CA); certificates it signed
    are still checked against it, and one that must be issued fails, naming the missing key. A new CA is made only when
    its certificate is missing too.
seealso:
  - module: community.crypto.x509_certificate
"""

EXAMPLES = r"""
- name: Create the cluster CA (self-signed)
  kubeforge.cluster.x509_cert:
    path: /srv/pki/ca.crt
    privatekey_path: /srv/pki/ca.key
    common_name: kubernetes-ca
    profile: ca
    valid_days: 3650
  delegate_to: localhost
  run_once: true

- name: Sign the apiserver serving certificate
  kubeforge.cluster.x509_cert:
    path: /srv/pki/apiserver.crt
    privatekey_path: /srv/pki/apiserver.key
    ca_cert: /srv/pki/ca.crt
    ca_key: /srv/pki/ca.key
    common_name: kube-apiserver
    profile: server
    dns_names: [kubernetes, kubernetes.default, kubernetes.default.svc, kubernetes.default.svc.cluster.local, localhost]
    ip_addresses: [10.96.0.1, 127.0.0.1, 192.0.2.10]
    valid_days: 365
    renew_before_days: 60
  delegate_to: localhost
  run_once: true
  register: apiserver_cert

- name: Show why it was re-issued
  ansible.builtin.debug:
    msg: "{{ apiserver_cert.reasons }}"
  when: apiserver_cert is changed

- name: Sign the etcd CA and every etcd member's certificate in one task
  kubeforge.cluster.x509_cert:
    ca_cert: /srv/pki/etcd/ca.crt
    ca_key: /srv/pki/etcd/ca.key
    owner: root
    group: root
    mode: '0644'
    valid_days: 365
    certificates:
      - path: /srv/pki/etcd/ca.crt
        privatekey_path: /srv/pki/etcd/ca.key
        common_name: etcd-ca
        profile: ca
        valid_days: 3650
      - path: /srv/pki/etcd/etcd-1.crt
        privatekey_path: /srv/pki/etcd/etcd-1.key
        common_name: etcd-1
        profile: peer
        dns_names: [etcd-1, localhost]
        ip_addresses: [192.0.2.11, 127.0.0.1]
      - path: /srv/pki/etcd/healthcheck-client.crt
        privatekey_path: /srv/pki/etcd/healthcheck-client.key
        common_name: kube-etcd-healthcheck-client
        organizations: [system:masters]
        profile: client
        key_type: rsa
        key_size: 3072
  delegate_to: localhost
  run_once: true
  register: etcd_certs

- name: Re-issue every certificate of a batch
  kubeforge.cluster.x509_cert:
    ca_cert: /srv/pki/ca.crt
    ca_key: /srv/pki/ca.key
    force: true
    certificates:
      - path: /srv/pki/admin.crt
        privatekey_path: /srv/pki/admin.key
        common_name: admin
        organizations: [system:masters]
        profile: client
        valid_days: 90
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
changed:
  description: Whether a key, a certificate or a file's owner/group/mode was (or in check mode would be) written.
  returned: always
  type: bool
  sample: true
path:
  description: The certificate's path.
  returned: when O(path) is used
  type: str
  sample: /srv/pki/apiserver.crt
privatekey_path:
  description: The private key's path.
  returned: when O(path) is used
  type: str
  sample: /srv/pki/apiserver.key
reasons:
  description:
    - Why the certificate was (or in check mode would be) issued; empty when it was kept.
    - V(forced), V(missing), V(invalid) (not a PEM certificate), V(key_missing), V(key_type_changed), V(key_mismatch),
      V(ca_mismatch), V(subject_changed), V(sans_changed), V(profile_changed), V(expiring), in that order.
  returned: when O(path) is used
  type: list
  elements: str
  sample: [sans_changed]
serial:
  description: The certificate's serial number in upper-case hex. V(null) in check mode when the certificate would be issued.
  returned: when O(path) is used
  type: str
  sample: 3F1A9C0D5E7B2A4C6D8E0F1A2B3C4D5E6F708192
fingerprint_sha256:
  description: SHA-256 fingerprint, colon-separated. V(null) in check mode when the certificate would be issued.
  returned: when O(path) is used
  type: str
  sample: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
not_after:
  description: End of validity (UTC); in check mode, that of the certificate that would be issued.
  returned: when O(path) is used
  type: str
  sample: "2027-03-01T12:00:00Z"
subject:
  description: The subject, RFC 4514.
  returned: when O(path) is used
  type: str
  sample: CN=admin,O=system:masters
issuer:
  description: The issuer, RFC 4514.
  returned: when O(path) is used
  type: str
  sample: CN=kubernetes-ca
dns_names:
  description: The certificate's DNS subject alternative names.
  returned: when O(path) is used
  type: list
  elements: str
  sample: [kubernetes, localhost]
ip_addresses:
  description: The certificate's IP subject alternative names.
  returned: when O(path) is used
  type: list
  elements: str
  sample: [10.96.0.1, 127.0.0.1]
attributes_changed:
  description: Whether the owner, group or mode of the certificate or key file was (or would be) fixed.
  returned: when O(path) is used
  type: bool
  sample: false
backup_file:
  description: Where the replaced certificate was kept; V(null) when none was replaced.
  returned: when O(path) is used
  type: str
  sample: /srv/pki/apiserver.crt.20260301T120000Z.bak
privatekey_backup_file:
  description: Where a replaced key (of another type or size) was kept; V(null) when none was replaced.
  returned: when O(path) is used
  type: str
  sample: null
results:
  description: One result per entry of O(certificates), in the same order, with the keys returned for a single certificate.
  returned: when O(certificates) is used
  type: list
  elements: dict
  sample:
    - path: /srv/pki/etcd/ca.crt
      privatekey_path: /srv/pki/etcd/ca.key
      changed: false
      reasons: []
      serial: 3F1A9C0D5E7B2A4C6D8E0F1A2B3C4D5E6F708192
      fingerprint_sha256: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
      not_after: "2036-03-01T12:00:00Z"
      subject: CN=etcd-ca
      issuer: CN=etcd-ca
      dns_names: []
      ip_addresses: []
      attributes_changed: false
      backup_file: null
      privatekey_backup_file: null
private_keys:
  description: One entry per entry of O(private_keys), in the same order.
  returned: when O(certificates) is used
  type: list
  elements: dict
  contains:
    path:
      description: The key's path.
      type: str
    created:
      description: Whether the key was (or in check mode would be) generated.
      type: bool
    attributes_changed:
      description: Whether the existing key's mode, owner or group was (or would be) fixed.
      type: bool
    changed:
      description: Whether anything was (or would be) written.
      type: bool
  sample: [{path: /srv/pki/sa.key, created: false, attributes_changed: false, changed: false}]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import exit_with_backend
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import spec
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.backend import X509CertBackend
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.deps import CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY, MIN_CRYPTOGRAPHY_VERSION


def argument_spec() -> dict:
    """The module's options; each entry of ``certificates`` takes the per-certificate ones without defaults."""
    entry = {
        "path": {"type": "path", "required": True},
        "privatekey_path": {"type": "path", "required": True},
        "ca_cert": {"type": "path"},
        "ca_key": {"type": "path"},
        "common_name": {"type": "str", "required": True},
        "organizations": {"type": "list", "elements": "str"},
        "dns_names": {"type": "list", "elements": "str"},
        "ip_addresses": {"type": "list", "elements": "str"},
        "profile": {"type": "str", "choices": list(spec.PROFILES), "required": True},
        "key_type": {"type": "str", "choices": list(spec.KEY_TYPES)},
        "key_size": {"type": "int"},
        "valid_days": {"type": "int"},
        "renew_before_days": {"type": "int"},
        "owner": {"type": "str"},
        "group": {"type": "str"},
        "mode": {"type": "raw"},
        "force": {"type": "bool"},
    }
    top = {name: {key: value for key, value in option.items() if key != "required"} for name, option in entry.items()}
    for name in ("organizations", "dns_names", "ip_addresses"):
        top[name]["default"] = []
    top["key_type"]["default"] = spec.DEFAULT_KEY_TYPE
    top["renew_before_days"]["default"] = spec.DEFAULT_RENEW_BEFORE_DAYS
    top["mode"]["default"] = spec.DEFAULT_MODE
    top["force"]["default"] = False
    top["certificates"] = {"type": "list", "elements": "dict", "options": entry}
    # Paths and key parameters, no key material: not a secret.
    top["private_keys"] = {"type": "list", "elements": "dict", "no_log": False, "options": {
        "path": {"type": "path", "required": True},
        "key_type": {"type": "str", "choices": list(spec.KEY_TYPES), "default": spec.DEFAULT_KEY_TYPE},
        "key_size": {"type": "int"},
    }}
    return top


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("certificates", name) for name in spec.PER_CERT_ONLY_OPTIONS],
        required_one_of=[("path", "certificates")],
        required_by={"path": ("privatekey_path", "common_name", "profile")},
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib(f"cryptography >= {MIN_CRYPTOGRAPHY_VERSION}"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    exit_with_backend(module, X509CertBackend(module.params, check_mode=module.check_mode, diff=module._diff))


if __name__ == "__main__":
    main()
