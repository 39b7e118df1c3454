# Helpers shared by every CMakeLists.txt of the tree.

# gust_check_sanitizer(): apply GUST_SANITIZER (like nng's CheckSanitizer.cmake).
function(gust_check_sanitizer)
  if(GUST_SANITIZER)
    add_compile_options(-fsanitize=${GUST_SANITIZER} -fno-omit-frame-pointer)
    add_link_options(-fsanitize=${GUST_SANITIZER})
    message(STATUS "Sanitizer: ${GUST_SANITIZER}")
  endif()
endfunction()

# gust_test(NAME SOURCES src... LABELS unit|integration|e2e [LIBS ...] [TIMEOUT s])
# Builds one test executable per module and registers it with ctest. A test whose
# prerequisite is truly missing exits 77 and is reported as skipped.
function(gust_test NAME)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LABELS;LIBS" ${ARGN})
  add_executable(${NAME} ${T_SOURCES})
  target_link_libraries(${NAME} PRIVATE gustlib gust_testlib PkgConfig::CMOCKA ${T_LIBS})
  target_include_directories(${NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests/lib)
  add_test(NAME ${NAME} COMMAND ${NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    ENVIRONMENT "GUST_BUILD_DIR=${PROJECT_BINARY_DIR};GUST_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

# gust_py_test(NAME SCRIPT file LABELS ... [TIMEOUT s]): a Python (stdlib only) test that
# drives the real daemons through tests/lib/cluster.py.
function(gust_py_test NAME)
  cmake_parse_arguments(T "" "SCRIPT;TIMEOUT" "LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${NAME} COMMAND ${Python3_EXECUTABLE} -u ${T_SCRIPT})
  set_tests_properties(${NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    ENVIRONMENT "GUST_BUILD_DIR=${PROJECT_BINARY_DIR};GUST_SOURCE_DIR=${PROJECT_SOURCE_DIR};PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/lib")
endfunction()
