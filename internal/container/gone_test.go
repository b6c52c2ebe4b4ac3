package container

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestGoneQueueLosesNothingWhileTheReaderIsSlow(t *testing.T) {
	var q goneQueue
	out := make(chan string)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Far more ids than any channel buffer, pushed before anyone reads.
	const n = 5000
	for i := 0; i < n; i++ {
		if !q.push(fmt.Sprint(i)) {
			t.Fatalf("push %d refused", i)
		}
	}
	go q.pump(ctx, out)
	for i := 0; i < n; i++ {
		select {
		case id := <-out:
			if id != fmt.Sprint(i) {
				t.Fatalf("got %s, want %d (in order)", id, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("id %d never delivered", i)
		}
	}
}

func TestGoneQueueIsBounded(t *testing.T) {
	var q goneQueue
	for i := 0; i < maxEntries; i++ {
		q.push("x")
	}
	if q.push("one too many") {
		t.Fatal("push beyond maxEntries accepted")
	}
}
