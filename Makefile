# The two commands a newcomer types: `make demo` and `make check`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# ccache hashes paths relative to the checkout, and not the build directory (which -g would
# otherwise put in every object's hash), so that any clone reuses the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps build demo check test clean format lint deb fuzz bench

all: build

deps:
	./scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

# Warnings are errors (PLI_WERROR) when WERROR=ON, the default under CI (CI=true: .ci/run).
WERROR ?= $(if $(filter true,$(CI)),ON,)

build: $(BUILD)/build.ninja
ifneq ($(WERROR),)
	cmake -S . -B $(BUILD) -DPLI_WERROR=$(WERROR) >/dev/null
endif
	cmake --build $(BUILD) -j $(JOBS)

demo: deps
	$(MAKE) build
	./scripts/demo $(BUILD)

check: deps
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# libFuzzer targets (tests/fuzz): FUZZ_SECONDS each (60 by default), crashes in $(BUILD)/fuzz/crashes
FUZZ_SECONDS ?= 60
fuzz: deps $(BUILD)/build.ninja
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

lint: $(BUILD)/build.ninja
	run-clang-tidy -quiet -p $(BUILD) '^$(CURDIR)/(core|milter|linkd|admin-cli)/' || \
	  (git ls-files 'core/*.cpp' 'milter/*.cpp' 'linkd/*.cpp' 'admin-cli/*.cpp' | xargs clang-tidy -quiet -p $(BUILD))

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

# The Debian package, from the build tree: build/pli_VERSION_amd64.deb
deb: deps
	$(MAKE) build
	cd $(BUILD) && cpack -G DEB

# The benchmark (issue 8; not part of check): MTA throughput and latency with and without
# pli-milter, pli-linkd against nginx, memory. One table of ratios; BENCH_QUICK=1 for a smoke run.
bench:
	./scripts/install-deps --bench
	$(MAKE) build
	./bench/bench.sh $(BUILD)
