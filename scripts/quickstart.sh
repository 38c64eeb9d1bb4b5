#!/usr/bin/env bash
# The README's first command: installs what is needed, builds, writes the embedded default
# model (a small random-weight Mixtral in the Hugging Face layout) and generates from it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MOE_BUILD_DIR:-$root/build}

bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"
"$build/launch/moe" make-tiny --arch mixtral --out "$root/tiny-model" --seed 0
"$build/launch/moe" run --model "$root/tiny-model" --prompt "Once upon a time" --max-new-tokens 32
