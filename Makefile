# observer: `make run` starts the daemon, `make test` runs every test. Both
# install what they need on a fresh Debian 12 machine; run them as root.

export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
ARGS ?=

# Kernel matrix for vmtest: one line per kernel in this file.
KERNELS_FILE := testdata/vmtest/kernels.txt
# Architectures of the matrix other than the host's (fourth column): their
# kernels and guest userland are unpacked from Debian's packages of that
# architecture (dpkg --add-architecture), never installed.
FOREIGN_ARCHES = $(shell awk '!/^[[:space:]]*\#/ && NF == 4 && $$4 != "amd64" { print $$4 }' $(KERNELS_FILE) | sort -u)
GUEST_USERLAND := busybox-static runc libc6 libseccomp2
USERLAND_DIR := /var/cache/observer/userland
APT_BUILD := clang-19 llvm-19 libbpf-dev bpftool
APT_TEST := docker.io runc iproute2 busybox-static qemu-system-x86 qemu-system-arm xz-utils cpio kmod chromium curl prometheus mmdebstrap e2fsprogs
# Kernels whose vmlinuz glob is under /boot/ are installed with apt; the others
# (older suites' kernels) are unpacked into the directory their glob names
# before /boot/: "package root" pairs.
APT_KERNELS = $(shell awk '!/^[[:space:]]*\#/ && NF >= 3 && $$3 ~ /^\/boot\// { print $$2 }' $(KERNELS_FILE))
EXTRACT_KERNELS = $(shell awk '!/^[[:space:]]*\#/ && NF >= 3 && $$3 !~ /^\/boot\// { r = $$3; sub(/\/boot\/.*/, "", r); print $$2 "=" r }' $(KERNELS_FILE))
# bench-events runs bpftrace beside the daemon as the peer it is measured against.
APT_BENCH := bpftrace

# Quick loop: make vmtest KERNELS=6.1 RUN=TestRename
KERNELS ?=
RUN ?=
VMTEST_PACKAGES ?= ./tracer/... ./internal/latency ./internal/vmtest/probe
# Per kernel, boot to poweroff: a limit for hangs, not a time the tests should
# take. An arm64 guest needs 4 to 4.5 min two at a time, and a run that hit 5m
# was cut off mid-test (6.1-arm64), hence twice that.
VMTEST_TIMEOUT ?= 10m
# Guests booted at once, one vCPU each: on 2 cores the five kernels took 7m46s
# two at a time, 13m10s one at a time, with the same results.
VMTEST_PARALLEL ?= 2
# The tracer tests' attach-mode results on this host, for the README table
# (the QEMU kernels' land in .vmtest/<kernel>/results.jsonl).
HOST_RESULTS := .vmtest/host/results.jsonl

.PHONY: all build image rules-test run test deps generate generate-locked syscalls check-generate vmlinux vmtest matrix-host matrix-table matrix-check bench bench-vm bench-events systemtest systemtest-table systemtest-check

all: build

# A static binary (no cgo: node agents run in minimal images and guests without
# libc), stamped with its version and commit (observer --version, build_info).
VERSION ?= $(shell git describe --tags --match 'v*' 2>/dev/null || echo 0.1.0-dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILDINFO := github.com/observer-dev/observer/internal/buildinfo
GO_LDFLAGS := -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).revision=$(REVISION)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(GO_LDFLAGS)' -o bin/observer ./cmd/observer

# The same for each architecture the BPF objects are built for, cross-compiled
# (Go needs no other toolchain without cgo): bin/linux-amd64/observer,
# bin/linux-arm64/observer.
ARCHES := amd64 arm64
BUILD_ARCHES := $(addprefix build-,$(ARCHES))
$(BUILD_ARCHES): build-%:
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build -trimpath -ldflags '$(GO_LDFLAGS)' -o bin/linux-$*/observer ./cmd/observer

# The container image (FROM scratch: the static binary only), tagged with the
# version; IMAGE=name overrides the repository name. image-<arch> builds one
# architecture's image from bin/linux-<arch>, tagged VERSION-<arch> and marked
# with its platform (the image runs no build step, so no emulation is needed);
# push each and join them with `docker manifest create` for a multi-arch tag.
IMAGE ?= observer
image: build
	docker build -f deploy/image/Dockerfile -t $(IMAGE):$(VERSION) -t $(IMAGE):latest bin
IMAGE_ARCHES := $(addprefix image-,$(ARCHES))
.PHONY: $(BUILD_ARCHES) $(IMAGE_ARCHES)
$(IMAGE_ARCHES): image-%: build-%
	docker build -f deploy/image/Dockerfile --platform linux/$* -t $(IMAGE):$(VERSION)-$* bin/linux-$*

# Runs the daemon in the foreground, e.g. make run ARGS='--events -'. It needs
# nothing but Go: the BPF objects are committed.
run: build
	./bin/observer $(ARGS)

# Every test: unit, root (real kernel: overlay, cgroups, signals), the real Docker
# end to end, the QEMU kernel matrix, and the whole node (systemd, dockerd,
# Prometheus, the observer's unit) on each kernel of the matrix.
test: deps check-generate rules-test
	$(GO) vet ./...
	@mkdir -p $(dir $(HOST_RESULTS)) && rm -f $(HOST_RESULTS)
	OBSERVER_RESULTS_FILE=$(CURDIR)/$(HOST_RESULTS) $(GO) test -count=1 -p 1 ./...
	$(MAKE) vmtest
	$(MAKE) matrix-check
	$(MAKE) systemtest
	$(MAKE) systemtest-check

# The alert rules: syntax, then their unit tests (promtool from Debian's prometheus).
rules-test:
	promtool check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && promtool test rules alerts_test.yml

# Installs missing Debian packages: the BPF toolchain, Docker, QEMU and the
# matrix kernels. Older kernels (5.10) come from older Debian suites, added with
# the machine's own apt source (internal/vmtest/apt/add-suite.sh), and are
# unpacked, not installed (internal/vmtest/apt/extract-kernel.sh). apt waits for
# another apt run's lock instead of failing.
APT_SUITES := bullseye
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
deps:
	@updated=""; \
	for s in $(APT_SUITES); do \
		out=$$(sh internal/vmtest/apt/add-suite.sh $$s) || exit 1; \
		[ -n "$$out" ] && { echo "$$out"; updated=1; }; \
	done; \
	for a in $(FOREIGN_ARCHES); do \
		dpkg --print-foreign-architectures | grep -qx $$a && continue; \
		dpkg --add-architecture $$a || exit 1; \
		echo "added dpkg architecture $$a"; updated=1; \
	done; \
	missing=""; \
	for p in $(APT_BUILD) $(APT_TEST) $(APT_BENCH) $(APT_KERNELS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ] || [ -n "$$updated" ]; then \
		$(APT_GET) update -qq || exit 1; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(APT_GET) install -y -qq --no-install-recommends $$missing || exit 1; \
	fi; \
	for pr in $(EXTRACT_KERNELS); do \
		sh internal/vmtest/apt/extract-kernel.sh $${pr%%=*} $${pr#*=} || exit 1; \
	done; \
	for a in $(FOREIGN_ARCHES); do \
		sh internal/vmtest/apt/extract-packages.sh $$a $(USERLAND_DIR)/$$a $(GUEST_USERLAND) || exit 1; \
	done

# Regenerates the committed BPF objects and Go bindings (clang-19, libbpf headers).
# clang's output depends on the absolute path it compiles from (heap layout shifts
# with the path strings), so it always compiles in the same place: otherwise two
# checkouts would disagree and CI's check would fail depending on where it runs.
GEN_DIR := /tmp/observer-bpf2go
# Two checkouts generating at once would share GEN_DIR: a lock serialises them.
generate:
	@exec 9>/tmp/observer-bpf2go.lock && flock 9 && $(MAKE) --no-print-directory generate-locked
generate-locked:
	rm -rf $(GEN_DIR) && mkdir -p $(GEN_DIR)/tracer
	cp -r go.mod go.sum vmlinux.h bpf $(GEN_DIR)/
	cp tracer/gen.go $(GEN_DIR)/tracer/
	cd $(GEN_DIR)/tracer && $(GO) generate ./...
	rm -f tracer/*_bpfel*.go tracer/*_bpfel*.o
	cp $(GEN_DIR)/tracer/*_bpfel*.go $(GEN_DIR)/tracer/*_bpfel*.o tracer/
	rm -rf $(GEN_DIR)

# The syscall-number tables (internal/syscalls, amd64 and arm64) from
# golang.org/x/sys at the version go.mod pins.
syscalls:
	$(GO) generate ./internal/syscalls

# CI: regenerating must not change a committed file.
check-generate: generate syscalls
	@git diff --exit-code --stat -- tracer/ internal/syscalls/ || { echo "generated files are stale: run make generate syscalls and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- tracer/ internal/syscalls/)" || { git status --short -- tracer/ internal/syscalls/; echo "generation left untracked files: commit them"; exit 1; }

# vmlinux.h comes from the running kernel's BTF.
vmlinux:
	(echo "/* Generated: bpftool btf dump file /sys/kernel/btf/vmlinux format c (kernel $$(uname -r)). Regenerate with: make vmlinux */"; \
	 bpftool btf dump file /sys/kernel/btf/vmlinux format c) > vmlinux.h

# Runs the kernel-facing tests in QEMU guests, once per kernel in $(KERNELS_FILE).
vmtest: deps
	$(GO) run ./internal/vmtest/cmd/vmtest -kernels '$(KERNELS)' -run '$(RUN)' \
		-packages '$(VMTEST_PACKAGES)' -timeout $(VMTEST_TIMEOUT) -parallel $(VMTEST_PARALLEL)

# The whole product on a Debian node in QEMU (systemd, journald, udev, dockerd,
# Prometheus, the observer as deploy/systemd/observer.service), once per kernel:
# the scenarios of internal/systemtest/scenario. The guest disk is cached in
# .systemtest/cache by a hash of its inputs. make systemtest KERNELS=6.1
# Guests boot SYSTEMTEST_PARALLEL at a time (one vCPU each).
SYSTEMTEST_TIMEOUT ?= 15m
SYSTEMTEST_PARALLEL ?= 2
SYSTEMTEST_ARGS ?=
systemtest: deps build
	$(GO) run ./internal/systemtest/cmd/systemtest -kernels '$(KERNELS)' -timeout $(SYSTEMTEST_TIMEOUT) \
		-parallel $(SYSTEMTEST_PARALLEL) $(SYSTEMTEST_ARGS)

# Rewrites the README's systemtest tables from the last run's results.
systemtest-table:
	$(GO) run ./internal/systemtest/cmd/systemtest -table

# Fails with a diff when the README's systemtest verdicts are not the last run's.
systemtest-check:
	$(GO) run ./internal/systemtest/cmd/systemtest -check

# Host attach-mode results alone (make test collects them too).
matrix-host:
	@mkdir -p $(dir $(HOST_RESULTS)) && rm -f $(HOST_RESULTS)
	OBSERVER_RESULTS_FILE=$(CURDIR)/$(HOST_RESULTS) $(GO) test -count=1 ./tracer/

# Rewrites the README's attach-mode table from the last full run's results.
matrix-table:
	$(GO) run ./internal/vmtest/cmd/matrixtable

# Fails with a diff when the README's table is not what the last run measured.
matrix-check:
	$(GO) run ./internal/vmtest/cmd/matrixtable -check

# Event pipeline (root): a rename-EXDEV storm at several rates and a burst
# against bin/observer at its defaults with --events FILE, bpftrace beside it
# as the peer; then the userspace path alone (record -> decode -> container ->
# bus -> file) as a Go benchmark, and the JSON encoder against encoding/json.
# Prints tables; asserts only that produced = delivered + lost. E.g.
# make bench-events BENCH_EVENTS_ARGS='-rates 20000 -duration 30s'
BENCH_EVENTS_ARGS ?=
bench-events: deps build
	$(GO) run ./internal/eventbench/cmd/benchevents -observer bin/observer $(BENCH_EVENTS_ARGS)
	$(GO) test -run '^$$' -bench 'UserspacePath|AppendJSON' -benchtime 2000000x -cpu 1,2 ./tracer ./internal/event

# Syscall hook overhead (root): getppid loop with no hooks, empty hooks (the
# floor) and the latency sensor's configurations, interleaved; prints medians.
bench:
	$(GO) test -run '^$$' -bench SyscallOverhead -benchtime 1x ./tracer

# What the seccomp sensor adds to a filtered syscall, and the copyup sensor to
# every sendfile, in the QEMU guests (this host refuses fentry and has no
# kprobes); TCG makes absolute figures slow, compare within a table.
# Its own output directory: the matrix results in .vmtest/<kernel> stay whole.
# ThreadState: task storage against the tid map of kernels without it (5.10).
BENCH_VM ?= SeccompOverhead|CopyUpHookOverhead|ThreadState
bench-vm: deps
	$(GO) run ./internal/vmtest/cmd/vmtest -kernels '$(KERNELS)' -run '^$$' -bench '$(BENCH_VM)' \
		-packages ./tracer -timeout $(VMTEST_TIMEOUT) -out .vmtest/bench
	@for f in .vmtest/bench/*/console.log; do awk '/^(getppid under|getppid, latency|sendfile of)/{p=1} /^(Benchmark|PASS|--- )/{p=0} p' $$f; done
