# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kubeforge TEST STAND-INS for the kube-* binaries: used only by the collection's tests.

They are not Kubernetes. Each one checks its command line, the files it is given and (for the
apiserver, controller-manager and scheduler) the TLS connections it makes, then serves health
endpoints. A deployment on real hosts installs the official binaries instead.
"""
