# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private PKI logic of kubeforge.cluster: the x509_cert module's backend, one concern per file.

spec      the desired certificate, validated from module options
profile   what each profile (ca, server, client, peer) puts in basicConstraints, keyUsage and EKU
inspect   reading an existing certificate or key and describing it
decide    why a certificate must be re-issued (the stable reason strings)
issue     generating keys and building and signing certificates
files     atomic writes with owner/mode, attribute fixes, timestamped backups
backend   the module's backend: orders a batch, plans every certificate, then writes
"""
