package podvisor

/*
#include "podvisor.h"
void podvisor_go_log_trampoline(const podvisor_log_record *record, void *userdata);
*/
import "C"

import (
	"runtime/cgo"
	"sync"
	"unsafe"
)

// Level is a log record's severity (podvisor_log_level).
type Level int

// The levels, from quiet to verbose.
const (
	LevelOff   Level = C.PODVISOR_LOG_OFF
	LevelError Level = C.PODVISOR_LOG_ERROR
	LevelWarn  Level = C.PODVISOR_LOG_WARN
	LevelInfo  Level = C.PODVISOR_LOG_INFO
	LevelDebug Level = C.PODVISOR_LOG_DEBUG
	LevelTrace Level = C.PODVISOR_LOG_TRACE
)

// Logger receives libpodvisor's log records, on a library thread.
type Logger func(level Level, target, message string)

var (
	loggerMu     sync.Mutex
	loggerHandle cgo.Handle
)

// SetLogger registers fn for records at max or more severe; nil removes it.
func SetLogger(fn Logger, max Level) error {
	loggerMu.Lock()
	defer loggerMu.Unlock()
	var h cgo.Handle
	var err error
	if fn == nil {
		err = call(func() int32 { return C.podvisor_log_set_callback(nil, C.int32_t(LevelOff), nil) })
	} else {
		h = cgo.NewHandle(fn)
		err = call(func() int32 {
			return C.podvisor_log_set_callback(C.podvisor_log_callback(C.podvisor_go_log_trampoline), C.int32_t(max), unsafe.Pointer(uintptr(h)))
		})
	}
	if err != nil {
		if h != 0 {
			h.Delete()
		}
		return err
	}
	// podvisor_log_set_callback returned, so the previous handle is no longer in use.
	if loggerHandle != 0 {
		loggerHandle.Delete()
	}
	loggerHandle = h
	return nil
}

//export goLogCallback
func goLogCallback(record *C.podvisor_log_record, userdata C.uintptr_t) {
	fn, ok := cgo.Handle(userdata).Value().(Logger)
	if !ok || record == nil {
		return
	}
	fn(Level(record.level), C.GoString(record.target), C.GoString(record.message))
}
