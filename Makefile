# vmtest targets; the integrator merges these with the project's other targets.
# Quick loop: make vmtest KERNELS=6.1 RUN=TestRename

KERNELS ?=
RUN ?=
VMTEST_PACKAGES ?= ./tracer/... ./internal/vmtest/probe
VMTEST_TIMEOUT ?= 3m

.PHONY: vmtest vmtest-deps

vmtest:
	go run ./internal/vmtest/cmd/vmtest -kernels '$(KERNELS)' -run '$(RUN)' \
		-packages '$(VMTEST_PACKAGES)' -timeout $(VMTEST_TIMEOUT)

vmtest-deps:
	scripts/vmtest-deps.sh testdata/vmtest/kernels.txt
