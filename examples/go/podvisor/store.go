package podvisor

/*
#include <stdlib.h>
#include "podvisor.h"
void podvisor_go_watch_trampoline(const podvisor_watch_batch *batch, podvisor_error_code status,
                                  const char *message, void *userdata);
*/
import "C"

import (
	"runtime/cgo"
	"time"
	"unsafe"
)

// cStrings copies ss into a C array of C strings; free releases them.
func cStrings(ss []string) (array **C.char, free func()) {
	if len(ss) == 0 {
		return nil, func() {}
	}
	size := C.size_t(len(ss)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))
	mem := (*[1 << 20]*C.char)(C.malloc(size))[:len(ss):len(ss)]
	for i, s := range ss {
		mem[i] = C.CString(s)
	}
	return &mem[0], func() {
		for _, p := range mem {
			C.free(unsafe.Pointer(p))
		}
		C.free(unsafe.Pointer(&mem[0]))
	}
}

// MasterOptions says how to start an embedded master (podvisor_master_options).
type MasterOptions struct {
	ID        uint64
	ClusterID uint64 // 0 keeps the default (1)
	DataDir   string
	Members   []string // each "ID=PEER_ADDR,CLIENT_ADDR"
}

// Master is a store master running in this process.
type Master struct{ h *C.podvisor_master }

// StartMaster starts a master in this process.
func StartMaster(o MasterOptions) (*Master, error) {
	var opts C.podvisor_master_options
	if err := call(func() int32 {
		return C.podvisor_master_options_init(&opts, C.size_t(unsafe.Sizeof(opts)))
	}); err != nil {
		return nil, err
	}
	dir := cString(o.DataDir)
	defer C.free(unsafe.Pointer(dir))
	members, free := cStrings(o.Members)
	defer free()
	opts.id = C.uint64_t(o.ID)
	if o.ClusterID != 0 {
		opts.cluster_id = C.uint64_t(o.ClusterID)
	}
	opts.data_dir = dir
	opts.members = members
	opts.members_len = C.size_t(len(o.Members))
	m := &Master{}
	if err := call(func() int32 { return C.podvisor_master_start(&opts, &m.h) }); err != nil {
		return nil, err
	}
	return m, nil
}

// IsLeader tells whether this master leads the cluster now.
func (m *Master) IsLeader() (bool, error) {
	var leader C.bool
	err := call(func() int32 { return C.podvisor_master_is_leader(m.h, &leader) })
	return bool(leader), err
}

// ClientAddr is the address clients reach this master at.
func (m *Master) ClientAddr() (string, error) {
	var addr *C.char
	if err := call(func() int32 { return C.podvisor_master_client_addr(m.h, &addr) }); err != nil {
		return "", err
	}
	defer C.podvisor_free(unsafe.Pointer(addr))
	return C.GoString(addr), nil
}

// Close stops the master and frees it.
func (m *Master) Close() error {
	err := call(func() int32 { return C.podvisor_master_free(m.h) })
	m.h = nil
	return err
}

// Client talks to the masters.
type Client struct{ h *C.podvisor_client }

// Connect creates a client of the masters at endpoints (their client addresses).
func Connect(endpoints []string) (*Client, error) {
	return ConnectTimeout(endpoints, 0)
}

// ConnectTimeout is Connect with the time each call may take at most (0 for the default,
// 10 s).
func ConnectTimeout(endpoints []string, timeout time.Duration) (*Client, error) {
	var opts C.podvisor_client_options
	if err := call(func() int32 {
		return C.podvisor_client_options_init(&opts, C.size_t(unsafe.Sizeof(opts)))
	}); err != nil {
		return nil, err
	}
	eps, free := cStrings(endpoints)
	defer free()
	opts.endpoints = eps
	opts.endpoints_len = C.size_t(len(endpoints))
	if timeout > 0 {
		opts.timeout_ms = C.uint32_t(timeout.Milliseconds())
	}
	c := &Client{}
	if err := call(func() int32 { return C.podvisor_client_connect(&opts, &c.h) }); err != nil {
		return nil, err
	}
	return c, nil
}

// Close frees the client.
func (c *Client) Close() error {
	err := call(func() int32 { return C.podvisor_client_free(c.h) })
	c.h = nil
	return err
}

// KeyValue is one pair of the store.
type KeyValue struct {
	Key, Value                           []byte
	CreateRevision, ModRevision, Version uint64
	Lease                                uint64
}

// Put writes value at key, attached to lease (0 for none), and returns the new revision.
func (c *Client) Put(key, value []byte, lease uint64) (uint64, error) {
	var rev C.uint64_t
	err := call(func() int32 {
		return C.podvisor_client_put(c.h, bytesPtr(key), C.size_t(len(key)), bytesPtr(value), C.size_t(len(value)), C.uint64_t(lease), &rev)
	})
	return uint64(rev), err
}

func takeKvs(kvs *C.podvisor_kvs) ([]KeyValue, error) {
	defer C.podvisor_kvs_free(kvs)
	var n C.size_t
	if err := call(func() int32 { return C.podvisor_kvs_info(kvs, &n, nil, nil) }); err != nil {
		return nil, err
	}
	out := make([]KeyValue, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		var kv C.podvisor_kv
		err := call(func() int32 {
			if rc := C.podvisor_kv_init(&kv, C.size_t(unsafe.Sizeof(kv))); rc != C.PODVISOR_OK {
				return rc
			}
			return C.podvisor_kvs_at(kvs, i, &kv)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, KeyValue{
			Key:            C.GoBytes(unsafe.Pointer(kv.key), C.int(kv.key_len)),
			Value:          C.GoBytes(unsafe.Pointer(kv.value), C.int(kv.value_len)),
			CreateRevision: uint64(kv.create_revision),
			ModRevision:    uint64(kv.mod_revision),
			Version:        uint64(kv.version),
			Lease:          uint64(kv.lease),
		})
	}
	return out, nil
}

// Get reads one key; a missing key is an *Error with Code ErrNotFound.
func (c *Client) Get(key []byte) (KeyValue, error) {
	var kvs *C.podvisor_kvs
	if err := call(func() int32 {
		return C.podvisor_client_get(c.h, bytesPtr(key), C.size_t(len(key)), &kvs)
	}); err != nil {
		return KeyValue{}, err
	}
	pairs, err := takeKvs(kvs)
	if err != nil || len(pairs) == 0 {
		return KeyValue{}, err
	}
	return pairs[0], nil
}

// Range reads the keys in [key, end), at most limit of them (0: no limit).
func (c *Client) Range(key, end []byte, limit int) ([]KeyValue, error) {
	var kvs *C.podvisor_kvs
	if err := call(func() int32 {
		return C.podvisor_client_range(c.h, bytesPtr(key), C.size_t(len(key)), bytesPtr(end), C.size_t(len(end)), C.size_t(limit), &kvs)
	}); err != nil {
		return nil, err
	}
	return takeKvs(kvs)
}

// Delete deletes the keys in [key, end) (key alone when end is empty) and returns how many.
func (c *Client) Delete(key, end []byte) (uint64, error) {
	var n C.uint64_t
	err := call(func() int32 {
		return C.podvisor_client_delete(c.h, bytesPtr(key), C.size_t(len(key)), bytesPtr(end), C.size_t(len(end)), &n, nil)
	})
	return uint64(n), err
}

// LeaseGrant grants a lease of ttlSecs seconds.
func (c *Client) LeaseGrant(ttlSecs uint64) (uint64, error) {
	var id C.uint64_t
	err := call(func() int32 { return C.podvisor_client_lease_grant(c.h, C.uint64_t(ttlSecs), &id) })
	return uint64(id), err
}

// LeaseKeepAlive refreshes a lease to its full TTL.
func (c *Client) LeaseKeepAlive(id uint64) error {
	return call(func() int32 { return C.podvisor_client_lease_keep_alive(c.h, C.uint64_t(id), nil) })
}

// LeaseRevoke revokes a lease, deleting its keys.
func (c *Client) LeaseRevoke(id uint64) error {
	return call(func() int32 { return C.podvisor_client_lease_revoke(c.h, C.uint64_t(id)) })
}

// Event is one change a watch delivers.
type Event struct {
	Deleted     bool
	Key, Value  []byte
	ModRevision uint64
}

// WatchFunc receives each batch of a watch on a library thread; err is set, and events nil,
// on the last call of a watch that ended with an error.
type WatchFunc func(revision uint64, events []Event, err error)

// Watch is a running watch; Close stops it.
type Watch struct {
	h      *C.podvisor_watch
	handle cgo.Handle
}

// Watch delivers the changes to [key, end) from startRevision (0: from now) to fn.
func (c *Client) Watch(key, end []byte, startRevision uint64, fn WatchFunc) (*Watch, error) {
	w := &Watch{handle: cgo.NewHandle(fn)}
	err := call(func() int32 {
		return C.podvisor_client_watch(c.h, bytesPtr(key), C.size_t(len(key)), bytesPtr(end), C.size_t(len(end)),
			C.uint64_t(startRevision), C.podvisor_watch_callback(C.podvisor_go_watch_trampoline),
			unsafe.Pointer(uintptr(w.handle)), &w.h)
	})
	if err != nil {
		w.handle.Delete()
		return nil, err
	}
	return w, nil
}

// Close stops the watch; once it returns, its function is not running and is not called again.
func (w *Watch) Close() error {
	err := call(func() int32 { return C.podvisor_watch_free(w.h) })
	w.h = nil
	w.handle.Delete()
	return err
}

//export goWatchCallback
func goWatchCallback(batch *C.podvisor_watch_batch, status C.podvisor_error_code, message *C.char, userdata C.uintptr_t) {
	fn, ok := cgo.Handle(userdata).Value().(WatchFunc)
	if !ok {
		return
	}
	if status != C.PODVISOR_OK {
		fn(0, nil, &Error{Code: Code(status), Message: C.GoString(message)})
		return
	}
	var n C.size_t
	var rev C.uint64_t
	if err := call(func() int32 { return C.podvisor_watch_batch_info(batch, &n, &rev) }); err != nil {
		fn(0, nil, err)
		return
	}
	events := make([]Event, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		var ev C.podvisor_watch_event
		err := call(func() int32 {
			if rc := C.podvisor_watch_event_init(&ev, C.size_t(unsafe.Sizeof(ev))); rc != C.PODVISOR_OK {
				return rc
			}
			return C.podvisor_watch_batch_event(batch, i, &ev)
		})
		if err != nil {
			fn(0, nil, err)
			return
		}
		events = append(events, Event{
			Deleted:     ev.kind == C.PODVISOR_EVENT_DELETE,
			Key:         C.GoBytes(unsafe.Pointer(ev.key), C.int(ev.key_len)),
			Value:       C.GoBytes(unsafe.Pointer(ev.value), C.int(ev.value_len)),
			ModRevision: uint64(ev.mod_revision),
		})
	}
	fn(uint64(rev), events, nil)
}
