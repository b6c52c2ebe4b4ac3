# observer: make run starts the daemon, make test runs every test (both install
# what they need on a fresh Debian 12 machine; run them as root).

export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
ARGS ?=

APT_BUILD := clang-19 llvm-19 libbpf-dev bpftool
APT_TEST := docker.io runc iproute2 busybox-static

.PHONY: all build run test unit-test root-test deps generate check-generate vmlinux

all: build

build:
	$(GO) build -o bin/observer ./cmd/observer

# Runs the daemon in the foreground: make run ARGS='--events -'
run: build
	./bin/observer $(ARGS)

# Every test: unit, root (real kernel, real overlay, cgroups, signals), the real
# Docker end to end, and the QEMU kernel matrix.
test: deps check-generate
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 ./...
	$(MAKE) vmtest

deps:
	@missing=""; for p in $(APT_BUILD) $(APT_TEST); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Regenerates the committed BPF objects and Go bindings (clang-19, libbpf headers).
generate:
	cd tracer && $(GO) generate ./...

# CI: regenerating must not change a committed file.
check-generate: generate
	git diff --exit-code -- tracer/ || { echo "generated files are stale: run make generate and commit"; exit 1; }

# vmlinux.h comes from the running kernel's BTF.
vmlinux:
	(echo "/* Generated: bpftool btf dump file /sys/kernel/btf/vmlinux format c (kernel $$(uname -r)). Regenerate with: make vmlinux */"; \
	 bpftool btf dump file /sys/kernel/btf/vmlinux format c) > vmlinux.h
