# Warnings for first-party code only (third-party headers are system includes).
add_library(smlaunch_warnings INTERFACE)
target_compile_options(smlaunch_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wconversion -Wsign-conversion -Wdouble-promotion
  -Wformat=2 -Wimplicit-fallthrough
  # GCC 12 reports false positives for these inside libstdc++ (GCC bug 105329).
  $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>
  $<$<BOOL:${SMLAUNCH_WARNINGS_AS_ERRORS}>:-Werror>)
