# pli_warnings: the warning flags, linked PRIVATE by every target of the project (the core's
# components, the programs, the tests, the fuzz targets) so that they live in one place.
# PLI_WERROR makes every warning an error: CI sets it (.ci/run runs `make check` with CI=true,
# and the Makefile passes -DPLI_WERROR=ON then).
option(PLI_WERROR "Treat compiler warnings as errors (CI)" OFF)
add_library(pli_warnings INTERFACE)
target_compile_options(pli_warnings INTERFACE -Wall -Wextra -Wpedantic -Wno-unused-parameter
                                              $<$<BOOL:${PLI_WERROR}>:-Werror>)
