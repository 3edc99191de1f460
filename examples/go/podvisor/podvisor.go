// Package podvisor is a small Go binding of libpodvisor, podvisor's C API.
//
// Errors are Go errors (*Error, with the C code, message and failing argument); every handle
// is closed by Close. Callbacks (the logger, watches) run on libpodvisor's threads, which have
// an alternate signal stack, so the Go runtime can take them while it profiles and preempts.
//
// libpodvisor keeps the last error per OS thread, so each call locks its goroutine to its
// thread between the call and reading the error.
//
// Link it against the static or the shared library with CGO_LDFLAGS, for example
//
//	CGO_LDFLAGS="/path/to/libpodvisor.a -ldl -lm -lrt -lutil -lgcc_s" go build
//	CGO_LDFLAGS="-L/path/to -lpodvisor -Wl,-rpath,/path/to" go build
package podvisor

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#include <stdlib.h>
#include "podvisor.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Code is a libpodvisor error code (podvisor_error_code).
type Code int

// The codes of podvisor.h that Go callers most often test for.
const (
	OK           Code = C.PODVISOR_OK
	ErrNull      Code = C.PODVISOR_ENULL
	ErrUTF8      Code = C.PODVISOR_EUTF8
	ErrInvalid   Code = C.PODVISOR_EINVAL
	ErrHandle    Code = C.PODVISOR_EHANDLE
	ErrNotFound  Code = C.PODVISOR_ENOTFOUND
	ErrState     Code = C.PODVISOR_ESTATE
	ErrTimeout   Code = C.PODVISOR_ETIMEOUT
	ErrCompacted Code = C.PODVISOR_ECOMPACTED
)

// Name returns the code's name as the header spells it.
func (c Code) Name() string {
	return C.GoString(C.podvisor_error_name(C.int32_t(c)))
}

// Error is a failed libpodvisor call.
type Error struct {
	Code     Code   // the returned code
	Message  string // what failed and with which input
	Argument string // the argument to blame, if one is
}

func (e *Error) Error() string {
	if e.Argument != "" {
		return fmt.Sprintf("%s (%s): %s", e.Code.Name(), e.Argument, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code.Name(), e.Message)
}

// Is lets errors.Is match an *Error by code: errors.Is(err, &podvisor.Error{Code: ErrNotFound}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// call runs one C call and, on failure, reads the last error on the same OS thread.
func call(fn func() int32) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	code := fn()
	if code == C.PODVISOR_OK {
		return nil
	}
	err := &Error{Code: Code(code)}
	if m := C.podvisor_last_error_message(); m != nil {
		err.Message = C.GoString(m)
	}
	if a := C.podvisor_last_error_argument(); a != nil {
		err.Argument = C.GoString(a)
	}
	return err
}

// Version returns the loaded library's release version.
func Version() string { return C.GoString(C.podvisor_version()) }

// ABIVersion returns the loaded library's ABI version; it must equal HeaderABIVersion.
func ABIVersion() uint32 { return uint32(C.podvisor_abi_version()) }

// HeaderABIVersion is the ABI version of the header this package was built with.
const HeaderABIVersion = C.PODVISOR_ABI_VERSION

// cString copies s for a call; the caller frees it with C.free.
func cString(s string) *C.char { return C.CString(s) }

// bytesPtr returns a pointer to b's bytes for the duration of a call (cgo pins them).
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}
