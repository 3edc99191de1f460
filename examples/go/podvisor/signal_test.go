package podvisor

import (
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestCallbacksSurviveSignals takes watch and log callbacks from libpodvisor's threads for a
// minute (PODVISOR_SIGNAL_TEST_SECS to change it) while the process is CPU-profiled (SIGPROF),
// sent SIGURG, and sent SIGUSR1 in a loop. A callback thread without an alternate signal stack
// would crash the Go runtime here.
func TestCallbacksSurviveSignals(t *testing.T) {
	secs := 60
	if s := os.Getenv("PODVISOR_SIGNAL_TEST_SECS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			secs = n
		}
	}
	if testing.Short() {
		secs = 3
	}
	_, c := startCluster(t)

	var logs, batches, events, withoutOwnStack atomic.Int64
	// libpodvisor's callback threads carry a 64 KiB alternate signal stack of their own.
	checkStack := func() {
		if altStackSize() < 64*1024 {
			withoutOwnStack.Add(1)
		}
	}
	if err := SetLogger(func(Level, string, string) { checkStack(); logs.Add(1) }, LevelDebug); err != nil {
		t.Fatalf("SetLogger: %v", err)
	}
	defer SetLogger(nil, LevelOff)
	w, err := c.Watch([]byte("/signal/"), []byte("/signal0"), 0, func(_ uint64, evs []Event, err error) {
		if err != nil {
			t.Errorf("watch ended: %v", err)
			return
		}
		checkStack()
		batches.Add(1)
		events.Add(int64(len(evs)))
	})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}

	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatalf("StartCPUProfile: %v", err)
	}
	defer pprof.StopCPUProfile()
	usr1 := make(chan os.Signal, 64)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var usr1Sent atomic.Int64
	loop := func(every time.Duration, body func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					body()
				}
			}
		}()
	}
	pid := os.Getpid()
	loop(time.Millisecond, func() { _ = syscall.Kill(pid, syscall.SIGUSR1); usr1Sent.Add(1) })
	loop(time.Millisecond, func() { _ = syscall.Kill(pid, syscall.SIGURG) })
	loop(5*time.Millisecond, func() {
		_, _ = c.Put([]byte("/signal/k"), []byte(time.Now().String()), 0)
		_, _ = c.Get(nil) // fails, and is logged at debug level
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-usr1:
			}
		}
	}()

	time.Sleep(time.Duration(secs) * time.Second)
	close(stop)
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("%d s: %d watch batches (%d events), %d log records, %d SIGUSR1 sent",
		secs, batches.Load(), events.Load(), logs.Load(), usr1Sent.Load())
	if n := withoutOwnStack.Load(); n > 0 {
		t.Fatalf("%d callbacks ran without libpodvisor's alternate signal stack", n)
	}
	if events.Load() == 0 || logs.Load() == 0 {
		t.Fatalf("callbacks did not run: %d events, %d log records", events.Load(), logs.Load())
	}
}
