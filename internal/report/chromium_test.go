package report

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTMLRendersInChromium renders the page in headless Chromium and checks
// in the screenshot that every lane's marks are drawn, in lane order.
func TestHTMLRendersInChromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium not installed (Debian package chromium; make deps installs it)")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := build(t, incidentCapture(t)).HTML(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	args := []string{"--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--screenshot=" + shot, "--window-size=1200,800", "--enable-logging=stderr", "--v=0", "file://" + page}
	if os.Geteuid() == 0 {
		args = append([]string{"--no-sandbox"}, args...)
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("chromium did not finish in 60s\n%s", stderr.String())
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("page error: %s", line)
		}
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, stderr.String())
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	prevY := -1
	for _, l := range Lanes {
		y, ok := markRow(img, l.Color)
		if !ok {
			t.Errorf("lane %s: no mark of colour %s drawn (a run of >= 20 pixels high)", l.Kind, l.Color)
			continue
		}
		if y <= prevY {
			t.Errorf("lane %s drawn at y=%d, above the previous lane (y=%d)", l.Kind, y, prevY)
		}
		prevY = y
	}
}

// markRow finds a vertical run of at least 20 pixels of colour hex (a timeline
// mark; the table's colour chips are 10 pixels high) and returns its top.
func markRow(img image.Image, hex string) (int, bool) {
	want := [3]int{}
	for i := range 3 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		want[i] = int(v)
	}
	near := func(x, y int) bool {
		r, g, b, _ := img.At(x, y).RGBA()
		got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
		for i := range 3 {
			if d := got[i] - want[i]; d < -6 || d > 6 {
				return false
			}
		}
		return true
	}
	bnd := img.Bounds()
	for x := bnd.Min.X; x < bnd.Max.X; x++ {
		run := 0
		for y := bnd.Min.Y; y < bnd.Max.Y; y++ {
			if near(x, y) {
				run++
				if run >= 20 {
					return y - run + 1, true
				}
			} else {
				run = 0
			}
		}
	}
	return 0, false
}
