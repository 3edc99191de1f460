package podvisor

/*
#include <stdlib.h>
#include "podvisor.h"
*/
import "C"

import (
	"encoding/json"
	"time"
	"unsafe"
)

// takeString copies a string libpodvisor allocated and frees it.
func takeString(p *C.char) string {
	defer C.podvisor_free(unsafe.Pointer(p))
	return C.GoString(p)
}

// Apply applies manifests (YAML or JSON documents) as one apply set; it returns one line per
// object ("pod/default/web created").
func (c *Client) Apply(manifests, set string) (string, error) {
	text := C.CString(manifests)
	defer C.free(unsafe.Pointer(text))
	var cc cCopies
	defer cc.free()
	s := cc.str(set)
	var summary *C.char
	if err := call(func() int32 {
		return C.podvisor_objects_apply(c.h, text, C.size_t(len(manifests)), s, &summary)
	}); err != nil {
		return "", err
	}
	return takeString(summary), nil
}

// ApplyFile applies the manifests of a file or directory.
func (c *Client) ApplyFile(path, set string) (string, error) {
	var cc cCopies
	defer cc.free()
	p, s := cc.str(path), cc.str(set)
	var summary *C.char
	if err := call(func() int32 { return C.podvisor_objects_apply_file(c.h, p, s, &summary) }); err != nil {
		return "", err
	}
	return takeString(summary), nil
}

// GetObject reads one object as JSON; namespace is "" for cluster-scoped kinds.
func (c *Client) GetObject(kind, namespace, name string) (json.RawMessage, error) {
	var cc cCopies
	defer cc.free()
	k, ns, n := cc.str(kind), cc.str(namespace), cc.str(name)
	var out *C.char
	if err := call(func() int32 { return C.podvisor_objects_get(c.h, k, ns, n, &out) }); err != nil {
		return nil, err
	}
	return json.RawMessage(takeString(out)), nil
}

// ListObjects reads the objects of a kind (in namespace, or all for "") as a JSON array, and the
// revision a Watch continues from.
func (c *Client) ListObjects(kind, namespace string) (json.RawMessage, uint64, error) {
	var cc cCopies
	defer cc.free()
	k, ns := cc.str(kind), cc.str(namespace)
	var out *C.char
	var rev C.uint64_t
	if err := call(func() int32 { return C.podvisor_objects_list(c.h, k, ns, &out, &rev) }); err != nil {
		return nil, 0, err
	}
	return json.RawMessage(takeString(out)), uint64(rev), nil
}

// DeleteObject deletes one object.
func (c *Client) DeleteObject(kind, namespace, name string) error {
	var cc cCopies
	defer cc.free()
	k, ns, n := cc.str(kind), cc.str(namespace), cc.str(name)
	return call(func() int32 { return C.podvisor_objects_delete(c.h, k, ns, n) })
}

// PodLogs reads what a pod's container (its first for "") has written so far.
func (c *Client) PodLogs(namespace, pod, container string) (string, error) {
	var cc cCopies
	defer cc.free()
	ns, p, ctr := cc.str(namespace), cc.str(pod), cc.str(container)
	var text *C.char
	if err := call(func() int32 { return C.podvisor_pod_logs(c.h, ns, p, ctr, &text) }); err != nil {
		return "", err
	}
	return takeString(text), nil
}

// ObjectWatch delivers the changes of one kind's objects, polled with Next.
type ObjectWatch struct{ h *C.podvisor_object_watch }

// WatchObjects watches the objects of a kind from revision (0 for now on).
func (c *Client) WatchObjects(kind, namespace string, revision uint64) (*ObjectWatch, error) {
	var cc cCopies
	defer cc.free()
	k, ns := cc.str(kind), cc.str(namespace)
	w := &ObjectWatch{}
	if err := call(func() int32 {
		return C.podvisor_objects_watch(c.h, k, ns, C.uint64_t(revision), &w.h)
	}); err != nil {
		return nil, err
	}
	return w, nil
}

// Next waits up to timeout (< 0: forever) for the next event, as JSON
// ({"type":"PUT","object":{...}}, a DELETE or a PROGRESS). It returns an *Error with Code
// ErrTimeout when nothing came.
func (w *ObjectWatch) Next(timeout time.Duration) (json.RawMessage, error) {
	var out *C.char
	if err := call(func() int32 {
		return C.podvisor_object_watch_next(w.h, timeoutMs(timeout), &out)
	}); err != nil {
		return nil, err
	}
	return json.RawMessage(takeString(out)), nil
}

// Close ends the watch.
func (w *ObjectWatch) Close() error {
	err := call(func() int32 { return C.podvisor_object_watch_free(w.h) })
	w.h = nil
	return err
}

// Controllers are the scheduler and the other controllers, running in this process.
type Controllers struct{ h *C.podvisor_controllers }

// StartControllers starts the controllers under identity, preferring namespace isolation for
// pods that name no runtime class when namespaces is true.
func (c *Client) StartControllers(identity string, namespaces bool) (*Controllers, error) {
	var opts C.podvisor_controllers_options
	if err := call(func() int32 {
		return C.podvisor_controllers_options_init(&opts, C.size_t(unsafe.Sizeof(opts)))
	}); err != nil {
		return nil, err
	}
	var cc cCopies
	defer cc.free()
	opts.identity = cc.str(identity)
	if namespaces {
		opts.preferred_runtime_class = C.PODVISOR_RUNTIME_NAMESPACES
	}
	ctl := &Controllers{}
	if err := call(func() int32 { return C.podvisor_controllers_start(c.h, &opts, &ctl.h) }); err != nil {
		return nil, err
	}
	return ctl, nil
}

// Close stops the controllers and frees them.
func (ctl *Controllers) Close() error {
	err := call(func() int32 { return C.podvisor_controllers_free(ctl.h) })
	ctl.h = nil
	return err
}

// NodeAgentOptions says how to run a node agent (podvisor_node_agent_options).
type NodeAgentOptions struct {
	Name        string
	StateDir    string
	AgentBinary string // the static podvisor agent
	CacheDir    string // holds images/ and kernel/
	Bridge      string // "" runs pods with loopback only
}

// NodeAgent is a node agent running in this process.
type NodeAgent struct{ h *C.podvisor_node_agent }

// StartNodeAgent registers this host as a node and runs the pods bound to it.
func (c *Client) StartNodeAgent(o NodeAgentOptions) (*NodeAgent, error) {
	var opts C.podvisor_node_agent_options
	if err := call(func() int32 {
		return C.podvisor_node_agent_options_init(&opts, C.size_t(unsafe.Sizeof(opts)))
	}); err != nil {
		return nil, err
	}
	var cc cCopies
	defer cc.free()
	opts.name = cc.str(o.Name)
	opts.state_dir = cc.str(o.StateDir)
	opts.agent_binary = cc.str(o.AgentBinary)
	opts.cache_dir = cc.str(o.CacheDir)
	opts.bridge = cc.str(o.Bridge)
	n := &NodeAgent{}
	if err := call(func() int32 { return C.podvisor_node_agent_start(c.h, &opts, &n.h) }); err != nil {
		return nil, err
	}
	return n, nil
}

// Address is where the node agent serves logs and exec.
func (n *NodeAgent) Address() (string, error) {
	var addr *C.char
	if err := call(func() int32 { return C.podvisor_node_agent_address(n.h, &addr) }); err != nil {
		return "", err
	}
	return takeString(addr), nil
}

// Close stops the node agent (and the pods it runs) and frees it.
func (n *NodeAgent) Close() error {
	err := call(func() int32 { return C.podvisor_node_agent_free(n.h) })
	n.h = nil
	return err
}
