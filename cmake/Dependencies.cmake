# Finds every dependency and records what was found; moe_report_dependencies() prints the table
# at the end of configure. Required: Threads, OpenMP, nlohmann_json, CLI11, cpp-httplib (and GTest
# for tests).
# Required too: MPI (OpenMPI). Optional, reported: CUDA toolkit (nvcc, cuBLAS), NCCL, gRPC + Protobuf, liburing.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 2.1 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)  # moe serve (libcpp-httplib-dev)

set(_moe_report "")
macro(_moe_note name status detail)
  string(REPLACE ";" "," _moe_detail "${detail}")  # lists (CUDA archs) would split the record
  string(APPEND _moe_report "  ${name}|${status}|${_moe_detail}\n")
endmacro()

# ---- CUDA ---------------------------------------------------------------------------------------
set(MOE_HAVE_CUDA OFF)
if(MOE_ENABLE_CUDA)
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Data-centre and workstation targets; CI overrides with one architecture to stay lean.
      set(CMAKE_CUDA_ARCHITECTURES "80;86;89;90")
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA20 flags for nvcc
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(MOE_HAVE_CUDA ON)
    _moe_note("CUDA" "found" "nvcc ${CMAKE_CUDA_COMPILER_VERSION}, archs ${CMAKE_CUDA_ARCHITECTURES}")
  else()
    _moe_note("CUDA" "not found" "CPU-only build (set CUDACXX to nvcc to enable)")
  endif()
else()
  _moe_note("CUDA" "disabled" "MOE_ENABLE_CUDA=OFF")
endif()

# ---- NCCL (ships with the CUDA toolkit here, or libnccl-dev) --------------------------------------
set(MOE_HAVE_NCCL OFF)
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include /usr/include)
find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu)
if(MOE_HAVE_CUDA AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
  file(STRINGS "${NCCL_INCLUDE_DIR}/nccl.h" _nccl_ver REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) ")
  string(REGEX REPLACE ".*NCCL_MAJOR ([0-9]+).*NCCL_MINOR ([0-9]+).*NCCL_PATCH ([0-9]+).*" "\\1.\\2.\\3" _nccl_ver "${_nccl_ver}")
  add_library(moe::nccl UNKNOWN IMPORTED)
  set_target_properties(moe::nccl PROPERTIES IMPORTED_LOCATION "${NCCL_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
  set(MOE_HAVE_NCCL ON)
  _moe_note("NCCL" "found" "${_nccl_ver} (${NCCL_LIBRARY})")
else()
  _moe_note("NCCL" "not found" "needs CUDA and nccl.h/libnccl")
endif()

# ---- MPI --------------------------------------------------------------------------------------
# Required: the moe program launches under mpirun (launch/distributed.cpp, parallel/).
set(MOE_HAVE_MPI OFF)
find_package(MPI COMPONENTS CXX QUIET)
if(MPI_CXX_FOUND)
  set(MOE_HAVE_MPI ON)
  _moe_note("MPI" "found" "MPI ${MPI_CXX_VERSION}, ${MPIEXEC_EXECUTABLE}")
else()
  message(FATAL_ERROR "MPI (C++) not found: apt-get install libopenmpi-dev openmpi-bin (scripts/install-deps.sh does)")
endif()

# ---- liburing (expert reads from NVMe through io_uring; else a pread thread pool) ----------------
set(MOE_HAVE_LIBURING OFF)
pkg_check_modules(LIBURING QUIET IMPORTED_TARGET liburing)
if(LIBURING_FOUND)
  set(MOE_HAVE_LIBURING ON)
  _moe_note("uring" "found" "liburing ${LIBURING_VERSION}: expert reads through io_uring")
else()
  _moe_note("uring" "not found" "expert reads use a pread thread pool (apt-get install liburing-dev)")
endif()

# ---- gRPC + Protobuf ------------------------------------------------------------------------------
set(MOE_HAVE_GRPC OFF)
find_package(Protobuf QUIET)
pkg_check_modules(GRPCPP QUIET IMPORTED_TARGET grpc++)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin)
if(Protobuf_FOUND AND GRPCPP_FOUND AND GRPC_CPP_PLUGIN)
  set(MOE_HAVE_GRPC ON)
  _moe_note("gRPC" "found" "grpc++ ${GRPCPP_VERSION}, protobuf ${Protobuf_VERSION}")
else()
  # The coordinator (moe coordinator / worker / scale) is part of the program.
  message(FATAL_ERROR "gRPC + Protobuf not found: apt-get install libgrpc++-dev libprotobuf-dev protobuf-compiler "
                      "protobuf-compiler-grpc (scripts/install-deps.sh does)")
endif()

function(moe_report_dependencies)
  message(STATUS "")
  message(STATUS "moe-runtime ${PROJECT_VERSION} dependencies:")
  string(REPLACE "\n" ";" _lines "${_moe_report}")
  foreach(_l IN LISTS _lines)
    if(_l)
      string(REPLACE "|" ";" _f "${_l}")
      list(GET _f 0 _n)
      list(GET _f 1 _s)
      list(GET _f 2 _d)
      string(LENGTH "${_n}" _len)
      math(EXPR _pad "10 - ${_len}")
      string(REPEAT " " ${_pad} _sp)
      message(STATUS "${_n}${_sp}${_s}: ${_d}")
    endif()
  endforeach()
  message(STATUS "")
endfunction()
