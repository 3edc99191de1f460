package podvisor

/*
#include <stdlib.h>
#include "podvisor.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// More codes of podvisor.h the sandbox calls return.
const (
	ErrExists      Code = C.PODVISOR_EEXISTS
	ErrUnsupported Code = C.PODVISOR_EUNSUPPORTED
	ErrDone        Code = C.PODVISOR_EDONE
)

// Isolation is how a sandbox isolates its containers (podvisor_isolation).
type Isolation int32

// The isolation levels.
const (
	Namespaces Isolation = C.PODVISOR_ISOLATION_NAMESPACES
	MicroVM    Isolation = C.PODVISOR_ISOLATION_MICROVM
)

// SandboxOptions says how to create a sandbox (podvisor_sandbox_options).
type SandboxOptions struct {
	ID          string
	Isolation   Isolation
	StateDir    string
	AgentBinary string // the static agent; namespace isolation only
	GuestKernel string // micro-VM only
	GuestInitrd string // micro-VM only
}

// ContainerOptions says what a container runs (podvisor_container_options).
type ContainerOptions struct {
	Name  string
	Image string   // an OCI image layout directory
	Args  []string // empty for the image's entrypoint and command
	Env   []string // empty for the image's
	Stdin bool
}

// ExecOptions says what an exec'd process runs (podvisor_exec_options).
type ExecOptions struct {
	Args  []string
	Env   []string
	Stdin bool
}

// ExitStatus is how a process ended (podvisor_exit_status).
type ExitStatus struct {
	Signaled  bool
	Code      int // when it exited
	Signal    int // when a signal ended it
	OOMKilled bool
}

// Sandbox is a pod sandbox created by this process.
type Sandbox struct{ h *C.podvisor_sandbox }

// Process is a container's process or an exec'd one.
type Process struct{ h *C.podvisor_process }

// cCopies holds the C copies of the strings one call passes; free releases them all.
type cCopies []func()

// str copies s, or gives NULL for "".
func (c *cCopies) str(s string) *C.char {
	if s == "" {
		return nil
	}
	p := C.CString(s)
	*c = append(*c, func() { C.free(unsafe.Pointer(p)) })
	return p
}

// strs copies ss into a C array and gives its length.
func (c *cCopies) strs(ss []string) (**C.char, C.size_t) {
	array, free := cStrings(ss)
	*c = append(*c, free)
	return array, C.size_t(len(ss))
}

func (c *cCopies) free() {
	for _, f := range *c {
		f()
	}
}

// CreateSandbox creates a sandbox; a host that cannot give the isolation gives ErrUnsupported.
func CreateSandbox(o SandboxOptions) (*Sandbox, error) {
	var opts C.podvisor_sandbox_options
	if err := call(func() int32 {
		return C.podvisor_sandbox_options_init(&opts, C.size_t(unsafe.Sizeof(opts)))
	}); err != nil {
		return nil, err
	}
	var c cCopies
	defer c.free()
	opts.id, opts.state_dir, opts.agent_binary = c.str(o.ID), c.str(o.StateDir), c.str(o.AgentBinary)
	opts.guest_kernel, opts.guest_initramfs = c.str(o.GuestKernel), c.str(o.GuestInitrd)
	opts.isolation = C.int32_t(o.Isolation)
	s := &Sandbox{}
	if err := call(func() int32 { return C.podvisor_sandbox_create(&opts, &s.h) }); err != nil {
		return nil, err
	}
	return s, nil
}

// Run creates a container and starts it, returning its process.
func (s *Sandbox) Run(o ContainerOptions) (*Process, error) {
	var opts C.podvisor_container_options
	if err := call(func() int32 {
		return C.podvisor_container_options_init(&opts, C.size_t(unsafe.Sizeof(opts)))
	}); err != nil {
		return nil, err
	}
	var c cCopies
	defer c.free()
	name := c.str(o.Name)
	opts.name, opts.image = name, c.str(o.Image)
	opts.args, opts.args_len = c.strs(o.Args)
	opts.env, opts.env_len = c.strs(o.Env)
	opts.stdin = C.bool(o.Stdin)
	if err := call(func() int32 { return C.podvisor_sandbox_create_container(s.h, &opts) }); err != nil {
		return nil, err
	}
	p := &Process{}
	if err := call(func() int32 { return C.podvisor_sandbox_start(s.h, name, &p.h) }); err != nil {
		return nil, err
	}
	return p, nil
}

// Exec runs another process in the running container named container.
func (s *Sandbox) Exec(container string, o ExecOptions) (*Process, error) {
	var opts C.podvisor_exec_options
	if err := call(func() int32 {
		return C.podvisor_exec_options_init(&opts, C.size_t(unsafe.Sizeof(opts)))
	}); err != nil {
		return nil, err
	}
	var c cCopies
	defer c.free()
	name := c.str(container)
	opts.args, opts.args_len = c.strs(o.Args)
	opts.env, opts.env_len = c.strs(o.Env)
	opts.stdin = C.bool(o.Stdin)
	p := &Process{}
	if err := call(func() int32 { return C.podvisor_sandbox_exec(s.h, name, &opts, &p.h) }); err != nil {
		return nil, err
	}
	return p, nil
}

// Stop stops a container: SIGTERM, then SIGKILL after grace.
func (s *Sandbox) Stop(container string, grace time.Duration) (ExitStatus, error) {
	var c cCopies
	defer c.free()
	name := c.str(container)
	var st C.podvisor_exit_status
	err := call(func() int32 {
		if rc := C.podvisor_exit_status_init(&st, C.size_t(unsafe.Sizeof(st))); rc != C.PODVISOR_OK {
			return rc
		}
		return C.podvisor_sandbox_stop_container(s.h, name, C.uint64_t(grace.Milliseconds()), &st)
	})
	return exitStatus(&st), err
}

// Destroy ends the sandbox and every container in it; Close must still be called.
func (s *Sandbox) Destroy() error {
	return call(func() int32 { return C.podvisor_sandbox_destroy(s.h) })
}

// Close frees the sandbox, destroying it first if Destroy was not called.
func (s *Sandbox) Close() error {
	err := call(func() int32 { return C.podvisor_sandbox_free(s.h) })
	s.h = nil
	return err
}

func exitStatus(st *C.podvisor_exit_status) ExitStatus {
	return ExitStatus{
		Signaled:  bool(st.signaled),
		Code:      int(st.code),
		Signal:    int(st.signal),
		OOMKilled: bool(st.oom_killed),
	}
}

func timeoutMs(timeout time.Duration) C.int64_t {
	if timeout < 0 {
		return -1
	}
	return C.int64_t(timeout.Milliseconds())
}

// Read returns the next chunk of output and whether it came from stderr. After the exit and
// the last chunk it gives an *Error with Code ErrDone; timeout < 0 waits forever.
func (p *Process) Read(timeout time.Duration) (data []byte, stderr bool, err error) {
	var stream uint32 // cgo gives enum out-parameters as their underlying type
	var buf *C.uint8_t
	var n C.size_t
	if err := call(func() int32 {
		return C.podvisor_process_read(p.h, timeoutMs(timeout), &stream, &buf, &n)
	}); err != nil {
		return nil, false, err
	}
	defer C.podvisor_free(unsafe.Pointer(buf))
	return C.GoBytes(unsafe.Pointer(buf), C.int(n)), stream == C.PODVISOR_STREAM_STDERR, nil
}

// WriteStdin writes to the process's stdin (started with Stdin set).
func (p *Process) WriteStdin(data []byte) error {
	return call(func() int32 {
		return C.podvisor_process_write_stdin(p.h, bytesPtr(data), C.size_t(len(data)))
	})
}

// CloseStdin closes the process's stdin.
func (p *Process) CloseStdin() error {
	return call(func() int32 { return C.podvisor_process_close_stdin(p.h) })
}

// Signal sends signal signo to the process.
func (p *Process) Signal(signo int) error {
	return call(func() int32 { return C.podvisor_process_signal(p.h, C.int32_t(signo)) })
}

// Wait waits for the process to exit; timeout < 0 waits forever.
func (p *Process) Wait(timeout time.Duration) (ExitStatus, error) {
	var st C.podvisor_exit_status
	err := call(func() int32 {
		if rc := C.podvisor_exit_status_init(&st, C.size_t(unsafe.Sizeof(st))); rc != C.PODVISOR_OK {
			return rc
		}
		return C.podvisor_process_wait(p.h, timeoutMs(timeout), &st)
	})
	return exitStatus(&st), err
}

// Close frees the process handle; the process itself runs on.
func (p *Process) Close() error {
	err := call(func() int32 { return C.podvisor_process_free(p.h) })
	p.h = nil
	return err
}
