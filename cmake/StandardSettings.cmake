# Language level, build type and the project's options.
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

option(SMLAUNCH_WARNINGS_AS_ERRORS "Treat compiler warnings as errors (development builds)" ON)
option(SMLAUNCH_BUILD_TESTS "Build the unit and integration tests" ON)
option(SMLAUNCH_ENABLE_ASAN "Build with AddressSanitizer" OFF)
option(SMLAUNCH_ENABLE_UBSAN "Build with UndefinedBehaviorSanitizer" OFF)
option(SMLAUNCH_BUILD_FUZZERS "Build the libFuzzer targets in tests/fuzz (clang only; scripts/fuzz.sh)" OFF)

# Settings every first-party target links PRIVATE.
add_library(smlaunch_settings INTERFACE)
target_include_directories(smlaunch_settings INTERFACE "${PROJECT_SOURCE_DIR}")
target_compile_definitions(smlaunch_settings INTERFACE
  SMLAUNCH_VERSION="${PROJECT_VERSION}")
# Hardening, as tini does for the binary that runs as PID 1.
target_compile_options(smlaunch_settings INTERFACE -fstack-protector-strong
  $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
target_link_options(smlaunch_settings INTERFACE -Wl,-z,relro -Wl,-z,now)

if(SMLAUNCH_ENABLE_ASAN)
  target_compile_options(smlaunch_settings INTERFACE -fsanitize=address -fno-omit-frame-pointer)
  target_link_options(smlaunch_settings INTERFACE -fsanitize=address)
endif()
if(SMLAUNCH_ENABLE_UBSAN)
  target_compile_options(smlaunch_settings INTERFACE -fsanitize=undefined -fno-sanitize-recover=all)
  target_link_options(smlaunch_settings INTERFACE -fsanitize=undefined)
endif()

# The smlaunch binary is a static PIE (libc, libstdc++ and libgcc linked in, still loaded at
# a random address), as tini ships tini-static for PID 1: it starts at every job and once
# per MPI rank, and mapping and relocating libc.so was 0.2-0.3 ms of its 1.2-1.6 ms share
# of a start (bench/README.md, eighth pass). It also runs whatever glibc the image has
# (its smlaunch-fetch helper and hostname library are still shared). Host names resolve: glibc has its `files` and `dns` lookups built in, and
# the link warns that other NSS modules would need this glibc's shared libraries. Not with
# sanitizers, nor for test binaries (GoogleTest is a shared library).
# SMLAUNCH_STATIC_RUNTIME=OFF links libc (and libstdc++, libgcc) as shared libraries.
option(SMLAUNCH_STATIC_RUNTIME "Link the smlaunch binary statically (a static PIE)" ON)
add_library(smlaunch_static_runtime INTERFACE)
if(SMLAUNCH_STATIC_RUNTIME AND NOT SMLAUNCH_ENABLE_ASAN AND NOT SMLAUNCH_ENABLE_UBSAN)
  target_link_options(smlaunch_static_runtime INTERFACE -static-pie)
  set(SMLAUNCH_STATIC_BINARY ON)
else()
  set(SMLAUNCH_STATIC_BINARY OFF)
endif()
# Relative relocations packed (DT_RELR): the static PIE's 5,563 relocations are read from 1 KB
# instead of 133 KB, 30,000 fewer instructions at each start. Only where glibc's start-up
# applies them (2.36 on: Debian 12, not the GPU image's Ubuntu 22.04).
if(SMLAUNCH_STATIC_BINARY)
  include(CheckCXXSourceCompiles)
  include(CheckLinkerFlag)
  check_cxx_source_compiles("#include <features.h>
#if !__GLIBC_PREREQ(2, 36)
#error glibc before 2.36 ignores DT_RELR in a static PIE
#endif
int main() { return 0; }" SMLAUNCH_GLIBC_APPLIES_RELR)
  check_linker_flag(CXX "-Wl,-z,pack-relative-relocs" SMLAUNCH_LINKER_PACKS_RELR)
  if(SMLAUNCH_GLIBC_APPLIES_RELR AND SMLAUNCH_LINKER_PACKS_RELR)
    target_link_options(smlaunch_static_runtime INTERFACE -Wl,-z,pack-relative-relocs)
  endif()
endif()
# Unused functions and data dropped from the binary (every object is compiled with a
# section per function): 5.9 -> 4.5 MB, and fewer pages faulted in at each start.
target_compile_options(smlaunch_settings INTERFACE -ffunction-sections -fdata-sections)
target_link_options(smlaunch_static_runtime INTERFACE -Wl,--gc-sections)
# Only the shared libraries the binary calls are loaded at start (when it is not static).
target_link_options(smlaunch_static_runtime INTERFACE -Wl,--as-needed)
