# Helpers shared by every folder. One way to declare a library, a program and a test.

# Project code is warning-clean; generated code (proto/) does not use these helpers.
function(stepproof_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>)
endfunction()

# stepproof_library(NAME SOURCES a.cc b.cc DEPS x y [PUBLIC_DEPS ...])
function(stepproof_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${A_DEPS})
  stepproof_warnings(${name})
endfunction()

# stepproof_program(NAME SOURCES ... DEPS ...): a binary installed into the build's bin/.
function(stepproof_program name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  stepproof_warnings(${name})
endfunction()

# stepproof_test(NAME SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s])
# One GoogleTest binary registered as one ctest entry. Tests run with the
# source tree's root as working directory and STEPPROOF_BIN_DIR in their env.
function(stepproof_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  stepproof_warnings(${name})
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${A_TIMEOUT}
    ENVIRONMENT "STEPPROOF_BIN_DIR=${PROJECT_BINARY_DIR}/bin;STEPPROOF_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  if(A_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${A_LABELS}")
  endif()
endfunction()

# stepproof_benchmark(NAME SOURCES ... DEPS ...)
function(stepproof_benchmark name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})  # root-relative includes of header-only helpers
  target_link_libraries(${name} PRIVATE ${A_DEPS} benchmark::benchmark)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
  stepproof_warnings(${name})
endfunction()
