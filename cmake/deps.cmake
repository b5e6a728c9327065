# The libraries pli builds against (Debian 12 packages: scripts/install-deps), found once for
# the project and for the fuzz build (tests/fuzz), which both build core/ from these targets.
find_package(PkgConfig REQUIRED)
pkg_check_modules(GMIME REQUIRED IMPORTED_TARGET gmime-3.0)
pkg_check_modules(GLIB REQUIRED IMPORTED_TARGET glib-2.0)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(MILTER REQUIRED IMPORTED_TARGET milter)
pkg_check_modules(IDN2 REQUIRED IMPORTED_TARGET libidn2)
pkg_check_modules(QPDF REQUIRED IMPORTED_TARGET libqpdf)
find_package(yaml-cpp REQUIRED)
find_package(Protobuf REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(date REQUIRED)
find_package(mstch REQUIRED) # tests/unit only: the oracle of core/templates/template.cpp
find_package(Threads REQUIRED)
# libharu (receipt PDFs): no pkg-config file in Debian 12's libhpdf-dev.
find_library(PLI_HPDF_LIB hpdf REQUIRED)
