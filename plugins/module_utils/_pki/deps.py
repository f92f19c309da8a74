# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Whether the ``cryptography`` library is available and recent enough.

The other files of this package import cryptography inside ``try`` blocks as well; the module checks
here first and reports a missing library with ``missing_required_lib``.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.compat.version import LooseVersion

MIN_CRYPTOGRAPHY_VERSION = "42.0"

try:
    import cryptography
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: str | None = traceback.format_exc()
    CRYPTOGRAPHY_VERSION: str | None = None
else:
    CRYPTOGRAPHY_VERSION = cryptography.__version__
    HAS_CRYPTOGRAPHY = LooseVersion(CRYPTOGRAPHY_VERSION) >= LooseVersion(MIN_CRYPTOGRAPHY_VERSION)
    CRYPTOGRAPHY_IMPORT_ERROR = None if HAS_CRYPTOGRAPHY else f"cryptography {CRYPTOGRAPHY_VERSION} is older than {MIN_CRYPTOGRAPHY_VERSION}"
