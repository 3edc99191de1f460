package podvisor

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// startCluster starts a one-member cluster in this process and a client of it.
func startCluster(t *testing.T) (*Master, *Client) {
	t.Helper()
	peer := freeAddr(t)
	client := freeAddr(t)
	m, err := StartMaster(MasterOptions{
		ID:      1,
		DataDir: t.TempDir(),
		Members: []string{fmt.Sprintf("1=%s,%s", peer, client)},
	})
	if err != nil {
		t.Fatalf("StartMaster: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		leader, err := m.IsLeader()
		if err != nil {
			t.Fatalf("IsLeader: %v", err)
		}
		if leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := Connect([]string{client})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return m, c
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestVersionMatchesHeader(t *testing.T) {
	if ABIVersion() != HeaderABIVersion {
		t.Fatalf("library ABI %d, header ABI %d", ABIVersion(), HeaderABIVersion)
	}
	if Version() == "" {
		t.Fatal("empty version")
	}
}

func TestErrorsAreGoErrorsWithCodeAndArgument(t *testing.T) {
	_, err := StartMaster(MasterOptions{ID: 1, DataDir: "", Members: []string{"1=a,b"}})
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("want *Error, got %T %v", err, err)
	}
	if perr.Code != ErrInvalid || perr.Argument != "opts->data_dir" || perr.Message == "" {
		t.Fatalf("unexpected error %+v", perr)
	}
	if _, err := Connect(nil); !errors.Is(err, &Error{Code: ErrInvalid}) {
		t.Fatalf("Connect(nil): %v", err)
	}
}

func TestPutGetRangeDeleteAndWatch(t *testing.T) {
	_, c := startCluster(t)
	got := make(chan Event, 16)
	w, err := c.Watch([]byte("/pods/"), []byte("/pods0"), 0, func(_ uint64, events []Event, err error) {
		for _, e := range events {
			got <- e
		}
	})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Close()
	time.Sleep(200 * time.Millisecond)

	if _, err := c.Put([]byte("/pods/a"), []byte("1"), 0); err != nil {
		t.Fatalf("Put: %v", err)
	}
	kv, err := c.Get([]byte("/pods/a"))
	if err != nil || string(kv.Value) != "1" {
		t.Fatalf("Get: %v %q", err, kv.Value)
	}
	if _, err := c.Get([]byte("/pods/missing")); !errors.Is(err, &Error{Code: ErrNotFound}) {
		t.Fatalf("Get missing: %v", err)
	}
	pairs, err := c.Range([]byte("/pods/"), []byte("/pods0"), 0)
	if err != nil || len(pairs) != 1 {
		t.Fatalf("Range: %v %d", err, len(pairs))
	}
	select {
	case e := <-got:
		if string(e.Key) != "/pods/a" || e.Deleted {
			t.Fatalf("unexpected event %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	if n, err := c.Delete([]byte("/pods/a"), nil); err != nil || n != 1 {
		t.Fatalf("Delete: %v %d", err, n)
	}
	lease, err := c.LeaseGrant(30)
	if err != nil {
		t.Fatalf("LeaseGrant: %v", err)
	}
	if err := c.LeaseKeepAlive(lease); err != nil {
		t.Fatalf("LeaseKeepAlive: %v", err)
	}
	if err := c.LeaseRevoke(lease); err != nil {
		t.Fatalf("LeaseRevoke: %v", err)
	}
}
