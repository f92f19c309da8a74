#!/usr/bin/env bash
# ansible-test sanity needs the collection at ansible_collections/<namespace>/<name>: copy the
# checkout's files (tracked, and new ones git does not ignore) there and run it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/kubeforge/cluster
mkdir -p "$dest"
# A file git still lists but the working tree has deleted is not copied (cp fails on it, the rest are copied).
(cd "$repo" && { git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -P -t "$dest" 2>/dev/null || true; })
# ansible-test skips its shellcheck test with only a warning when the program is missing: install it, so the
# harness scripts are always checked.
if ! command -v shellcheck >/dev/null; then
  echo "sanity: installing Debian's shellcheck" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >&2
fi
# ansible-test keeps its per-test venvs under $HOME/.ansible/test: give it a home in .cache so
# they persist between runs, with a pip bootstrap that honours this machine's pip configuration.
export HOME=$repo/.cache/ansible-test-home
at_dir=$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(grep -o "pip='[0-9.]*'" "$at_dir/_internal/python_requirements.py" | head -1 | cut -d"'" -f2)
mkdir -p "$HOME/.ansible/test/cache"
cp "$repo/tests/harness/ansible-test/get_pip.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
cd "$dest"
ansible-test sanity --python 3.11 --requirements --color no "$@"
