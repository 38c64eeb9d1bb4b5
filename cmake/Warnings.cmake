# moe_warnings(target): the project's warning set; errors when MOE_WERROR is on (CI).
add_library(moe_warnings INTERFACE)
target_compile_options(moe_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough -Wswitch-enum
    $<$<BOOL:${MOE_WERROR}>:-Werror>>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra $<$<BOOL:${MOE_WERROR}>:-Werror=all-warnings>>)
