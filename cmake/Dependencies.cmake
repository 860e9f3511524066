# Every dependency comes from Debian's packages (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
# Boost's header-only parts (Asio, Beast for `smlaunch serve`). The command lines are read
# by base/option_table.cpp: Boost.Program_options cost 80 us of every start.
find_package(Boost 1.74 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
# spdlog and fmt compiled into the binaries (header-only), not loaded as shared libraries:
# with libstdc++ linked statically too (smlaunch_static_runtime), smlaunch maps only libc
# at start, and the dynamic loader has almost no symbols to look up (bench/:
# start-up). SMLAUNCH_SHARED_SPDLOG=ON links Debian's libspdlog.so and libfmt.so instead.
option(SMLAUNCH_SHARED_SPDLOG "Link spdlog and fmt as shared libraries" OFF)
add_library(smlaunch_spdlog INTERFACE)
if(SMLAUNCH_SHARED_SPDLOG)
  target_link_libraries(smlaunch_spdlog INTERFACE spdlog::spdlog)
else()
  find_package(fmt REQUIRED)
  target_compile_definitions(smlaunch_spdlog INTERFACE SPDLOG_FMT_EXTERNAL FMT_HEADER_ONLY=1)
  target_include_directories(smlaunch_spdlog SYSTEM INTERFACE
    $<TARGET_PROPERTY:spdlog::spdlog_header_only,INTERFACE_INCLUDE_DIRECTORIES>
    $<TARGET_PROPERTY:fmt::fmt-header-only,INTERFACE_INCLUDE_DIRECTORIES>)
  target_link_libraries(smlaunch_spdlog INTERFACE Threads::Threads)
endif()
find_package(LibArchive 3.4 REQUIRED)
find_package(CURL 7.75 REQUIRED) # CURLOPT_AWS_SIGV4
if(SMLAUNCH_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
