package podvisor

/*
#include <stddef.h>
size_t podvisor_go_alt_stack_size(void);
*/
import "C"

// altStackSize is the calling thread's alternate signal stack size, 0 if it has none. The
// tests use it to check that callbacks run on the stack libpodvisor installs.
func altStackSize() int { return int(C.podvisor_go_alt_stack_size()) }
