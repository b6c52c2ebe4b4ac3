package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Config is one matrix run.
type Config struct {
	Kernels  []Kernel
	Packages []string      // go package patterns with kernel-facing tests
	Modules  []string      // modules to load (dependencies are added)
	Run      string        // -test.run regex, empty for all
	Bench    string        // -test.bench regex, empty for none
	Timeout  time.Duration // per kernel: build excluded, boot to poweroff
	OutDir   string        // .vmtest
	// ModesFile is the attach-mode expectations file shipped to the guest
	// (testdata/vmtest/modes.txt); "" ships none.
	ModesFile string
	Parallel  int // kernels booted at once
	QEMU      QEMU
}

// KernelResult is the verdict for one kernel.
type KernelResult struct {
	Kernel   Kernel
	Release  string
	Modules  []string
	Duration time.Duration
	Binaries []*BinaryResult
	Problems []string
	LogPath  string
}

// Passed reports whether every test binary ran and passed.
func (r KernelResult) Passed() bool { return len(r.Problems) == 0 }

// RunMatrix builds the tests once per architecture and boots each kernel
// with its architecture's.
func RunMatrix(ctx context.Context, cfg Config) ([]KernelResult, error) {
	if len(cfg.Kernels) == 0 {
		return nil, errors.New("no kernels to run")
	}
	images := map[string]guestImage{}
	for _, k := range cfg.Kernels {
		if _, ok := images[k.Arch.Name]; ok {
			continue
		}
		img, err := buildImage(ctx, cfg, k.Arch)
		if err != nil {
			return nil, err
		}
		images[k.Arch.Name] = img
	}

	results := make([]KernelResult, len(cfg.Kernels))
	if cfg.Parallel <= 1 {
		// In matrix order, so logs read top to bottom.
		for i, k := range cfg.Kernels {
			results[i] = runKernel(ctx, cfg, k, images[k.Arch.Name])
		}
		return results, nil
	}
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for i, k := range cfg.Kernels {
		sem <- struct{}{} // here, not in the goroutine: guests start in matrix order
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = runKernel(ctx, cfg, k, images[k.Arch.Name])
		})
	}
	wg.Wait()
	return results, nil
}

// guestImage is the part of the initramfs every kernel of an architecture
// shares, and the test binaries in it.
type guestImage struct {
	common []byte
	names  []string
}

func buildImage(ctx context.Context, cfg Config, a Arch) (guestImage, error) {
	start := time.Now()
	bins, err := BuildTests(ctx, a, cfg.Packages, filepath.Join(cfg.OutDir, "bin", a.Name))
	if err != nil {
		return guestImage{}, err
	}
	names := make([]string, len(bins))
	for i, b := range bins {
		names[i] = b.Name
	}
	// Leave the guest's own go test timeout some room before the host kills
	// the VM, so a hung test prints its goroutine dump instead of vanishing.
	testTimeout := max(cfg.Timeout-45*time.Second, 30*time.Second)
	common, err := CommonImage(a, bins, Selection{Run: cfg.Run, Bench: cfg.Bench}, testTimeout, cfg.ModesFile)
	if err != nil {
		return guestImage{}, fmt.Errorf("packing the %s initramfs: %w", a.Name, err)
	}
	slog.Info("tests built and packed", "arch", a.Name, "binaries", names, "initramfs_bytes", len(common), "took", time.Since(start).Round(time.Millisecond))
	return guestImage{common: common, names: names}, nil
}

// runKernel never returns an error: every failure becomes a Problem so the
// other kernels still run and the report names all of them.
func runKernel(ctx context.Context, cfg Config, k Kernel, img guestImage) KernelResult {
	start := time.Now()
	res := KernelResult{Kernel: k}
	fail := func(err error) KernelResult {
		res.Problems = append(res.Problems, err.Error())
		res.Duration = time.Since(start)
		return res
	}
	dir := filepath.Join(cfg.OutDir, k.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	vmlinuz, modDir, err := k.Resolve()
	if err != nil {
		return fail(err)
	}
	part, order, err := KernelImage(k, modDir, cfg.Modules)
	if err != nil {
		return fail(err)
	}
	res.Modules = order
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	if err := os.WriteFile(initrd, append(append([]byte{}, img.common...), part...), 0o644); err != nil {
		return fail(fmt.Errorf("writing initramfs: %w", err))
	}
	res.LogPath = filepath.Join(dir, "console.log")
	logf, err := os.Create(res.LogPath)
	if err != nil {
		return fail(err)
	}
	defer logf.Close()

	slog.Info("booting", "kernel", k.Name, "arch", k.Arch.Name, "vmlinuz", vmlinuz, "modules", order, "log", res.LogPath)
	con := NewConsole(k.Name)
	bootCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	bootErr := cfg.QEMU.For(k.Arch).Boot(bootCtx, vmlinuz, initrd, logf, con.Line)

	res.Release, res.Binaries = con.Release, con.Binaries
	res.Problems = con.Problems(img.names)
	if bootErr != nil {
		msg := bootErr.Error()
		if errors.Is(bootErr, context.DeadlineExceeded) {
			msg = fmt.Sprintf("timed out after %s (raise -timeout or look at %s)", cfg.Timeout, res.LogPath)
		}
		res.Problems = append([]string{msg}, res.Problems...)
	}
	if err := writeResults(filepath.Join(dir, "results.jsonl"), con.Results); err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	res.Duration = time.Since(start)
	return res
}

// writeResults stores the OBSERVER-RESULT objects, one per line. The file is
// always written (possibly empty) so a later step can tell "no results" from
// "never ran".
func writeResults(path string, results []map[string]any) error {
	var b strings.Builder
	for _, r := range results {
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encoding result: %w", err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	return nil
}
