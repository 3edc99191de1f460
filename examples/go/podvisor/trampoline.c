// The C side of the Go callbacks: libpodvisor calls these on its own threads (each with an
// alternate signal stack), and they hand over to the exported Go functions. They exist because
// a Go export cannot take const pointers, and a file with //export may not define C functions.
#include <stdint.h>

#include "podvisor.h"
#include "_cgo_export.h"

void podvisor_go_log_trampoline(const podvisor_log_record *record, void *userdata) {
    goLogCallback((podvisor_log_record *)record, (uintptr_t)userdata);
}

void podvisor_go_watch_trampoline(const podvisor_watch_batch *batch, podvisor_error_code status,
                                  const char *message, void *userdata) {
    goWatchCallback((podvisor_watch_batch *)batch, status, (char *)message, (uintptr_t)userdata);
}

// The size of the calling thread's alternate signal stack, or 0 if it has none: lets the tests
// check that callbacks run on a stack libpodvisor installed (64 KiB; Go's own is 32 KiB).
#include <signal.h>
#include <stddef.h>

size_t podvisor_go_alt_stack_size(void) {
    stack_t ss;
    if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE)) {
        return 0;
    }
    return ss.ss_size;
}
