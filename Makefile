# Usher's entry points. `make run` and `make test` do all set-up on a fresh Debian 12 machine.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
MESON_OPTS ?=

.PHONY: all bootstrap build build-asan fuzz-build run test test-fast cluster-demo bench bench-growth \
	fuzz image clean

all: build

bootstrap:
	@scripts/bootstrap

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)

build: bootstrap $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: bootstrap $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# The libFuzzer harnesses (fuzz/README.md): clang, ASan+UBSan, libusher instrumented.
$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false \
	    -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)

fuzz-build: bootstrap $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)

# Builds, migrates the embedded SQLite database, applies the demo catalog and serves
# http://127.0.0.1:8000 (see devstack/run).
run: build
	@devstack/run

# Unit and integration tests on the normal build, then all again under ASan+UBSan.
test: build build-asan fuzz-build
	@scripts/test

# The same without the sanitizer pass, for quick iterations.
test-fast: build
	@USHER_SKIP_ASAN=1 USHER_SKIP_FUZZ=1 scripts/test

# Two `usher serve` behind nginx and two `usher worker` on one throwaway PostgreSQL and Redis:
# CLUSTER_SIGNUPS (200) customer journeys with a web process and a worker killed, PostgreSQL
# restarted and Redis stopped 30 s mid-load (tests/cluster; `make test` runs 40). Prints what
# each fault cost; the same goes to test-artifacts/cluster/report.txt.
cluster-demo: build
	@USHER_BIN="$${USHER_BIN:-$(CURDIR)/$(BUILD)/usher}" USHER_DATA_DIR="$(CURDIR)" \
	    CLUSTER_SIGNUPS="$${CLUSTER_SIGNUPS:-200}" .venv/bin/pytest -q -s tests/cluster

# The container image localhost/usher:latest from a Debian 12 base made by mmdebstrap
# (docs/operator.md); USHER_CONTAINER_TESTS=1 make test-fast then runs it.
image:
	@scripts/image

# Each script starts its own throwaway servers and stops them again; see bench/README.md.
# SIZES sets cost_growth.sh's user counts: 1,000 and 100,000 unless told (a million is
# opt-in, `make bench-growth SIZES="1000 100000 1000000"`, about 25 minutes more).
bench: build
	@USHER_BIN="$${USHER_BIN:-$(CURDIR)/$(BUILD)/usher}" bench/health.sh
	@USHER_BIN="$${USHER_BIN:-$(CURDIR)/$(BUILD)/usher}" bench/plan_page.sh
	@USHER_BIN="$${USHER_BIN:-$(CURDIR)/$(BUILD)/usher}" bench/webhook_ingest.sh
	@USHER_BIN="$${USHER_BIN:-$(CURDIR)/$(BUILD)/usher}" bench/provisioning.sh
	@USHER_BIN="$${USHER_BIN:-$(CURDIR)/$(BUILD)/usher}" bench/recovery_enumeration.sh
	@USHER_BIN="$${USHER_BIN:-$(CURDIR)/$(BUILD)/usher}" bench/admin_users.sh
	@USHER_BIN="$${USHER_BIN:-$(CURDIR)/$(BUILD)/usher}" bench/cost_growth.sh

bench-growth: build
	@USHER_BIN="$${USHER_BIN:-$(CURDIR)/$(BUILD)/usher}" bench/cost_growth.sh

# Every harness for FUZZ_SECONDS (default 600) each; `make test` runs them 20 s each.
fuzz: fuzz-build
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-600} FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) var
