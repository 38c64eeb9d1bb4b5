#!/usr/bin/env bash
# Runs openai_client_test.py in a virtual environment with the official `openai` package, made
# once under the build directory (pip from PyPI), then reused.
# usage: run_openai_client_test.sh VENV_DIR MOE_BINARY MODEL_DIR
set -euo pipefail
venv=$1 moe=$2 model=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import openai' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'openai>=1.40'
fi
exec "$venv/bin/python" -u "$here/openai_client_test.py" "$moe" "$model"
