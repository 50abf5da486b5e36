# baram - the two commands of the README, and a few more.
#   make run    build, then start `baram standalone` on the shipped examples (Ctrl-C stops it;
#               installs missing Debian packages first)
#   make test   build with ASan+UBSan, run every test, end on "N passed, N failed"
# Other targets: build, deps, examples (each example once, with `baram run`), fuzz, bench,
# screenshots (the web UI's, for the README), format, check-src, clean.

SHELL := /bin/bash
BUILD_DEPS := gcc cmake ninja-build pkg-config libuv1-dev libsqlite3-dev libpq-dev libyaml-dev \
              libjansson-dev libjwt-dev libmicrohttpd-dev libcurl4-openssl-dev libsodium-dev \
              libcmocka-dev tzdata
TEST_DEPS  := python3 python3-pytest python3-pytest-timeout python3-requests python3-jwt clang \
              sqlite3 coreutils postgresql postgresql-client
BENCH_DEPS := make ninja-build snakemake time python3 postgresql postgresql-client
FUZZ_SECONDS ?= 60

.PHONY: all build run examples test deps test-deps fuzz bench format check-src clean screenshots

all: build

deps:
	@scripts/apt-ensure $(BUILD_DEPS)

test-deps:
	@scripts/apt-ensure $(BUILD_DEPS) $(TEST_DEPS)

build: deps
	@cmake --preset release >/dev/null
	@cmake --build build/release

run: build
	@scripts/standalone-examples build/release/baram

examples: build
	@scripts/run-examples build/release/baram

test: test-deps
	@cmake --preset asan >/dev/null
	@cmake --build build/asan
	@scripts/test-all build/asan

# The README's screenshots of the web UI (docs/screenshots/), taken by the browser tests.
screenshots: test-deps
	@cmake --preset asan >/dev/null
	@cmake --build build/asan
	@BARAM_SCREENSHOTS=$(CURDIR)/docs/screenshots scripts/browser-tests build/asan build/asan/test-results

fuzz: test-deps
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz
	@scripts/fuzz-all build/fuzz $(FUZZ_SECONDS)

bench: build
	@scripts/apt-ensure $(BENCH_DEPS)
	@bench/run-all.sh build/release/baram

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

check-src:
	@scripts/check-src

clean:
	rm -rf build
