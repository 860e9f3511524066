# Every dependency comes from Debian's packages (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
# Static Boost.Program_options: one shared library less to map at every start.
set(Boost_USE_STATIC_LIBS ON)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(LibArchive 3.4 REQUIRED)
find_package(CURL 7.75 REQUIRED) # CURLOPT_AWS_SIGV4
if(SMLAUNCH_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
