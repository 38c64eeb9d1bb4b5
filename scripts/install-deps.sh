#!/usr/bin/env bash
# Installs every system package moe-runtime needs on Debian 12, by name, with apt-get.
# Idempotent: when everything is already installed it only runs dpkg-query and exits.
# CUDA (nvcc, NCCL, cuBLAS) is not installed here: it comes from NVIDIA's toolkit under
# /usr/local/cuda where present; without it the build is CPU-only and says so at configure time.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git clang-format
  tmux                 # tests drive `moe chat` in a real terminal
  python3 python3-venv curl  # `moe serve` tests: the openai client (pip, in a venv) and curl
  nlohmann-json3-dev   # JSON: safetensors headers, config.json
  libcli11-dev         # command-line parsing for the moe CLI
  libcpp-httplib-dev   # the HTTP server of `moe serve` (what llama-server uses)
  libpcre2-dev         # tokenizer pre-tokenizer regexes (Unicode properties, lookahead)
  libutf8proc-dev      # tokenizer Unicode normalisation (NFC, NFKC)
  libxxhash-dev        # packed-store checksums (XXH3-64)
  liburing-dev         # expert reads from NVMe through io_uring (optional: pread fallback)
  libgtest-dev libgmock-dev
  libopenmpi-dev openmpi-bin                                            # MPI communicator, mpirun
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc # coordinator service
  gnuplot-nox          # moe_bench_project draws its PNG plot (benchmarks only)
  clang libclang-rt-14-dev libomp-14-dev  # the fuzz smoke (scripts/fuzz.sh): libFuzzer, ASan/UBSan, clang's OpenMP
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
