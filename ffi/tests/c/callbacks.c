/* Log callbacks arrive on a library thread, not the caller's, with an alternate signal stack
 * installed (what a Go host needs), and stop once the callback is removed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

static pthread_t main_thread;
static atomic_int records;
static atomic_int on_main_thread;
static atomic_int without_alt_stack;
static atomic_int bad_records;

static void on_log(const podvisor_log_record *record, void *userdata) {
    stack_t ss;
    if (pthread_equal(pthread_self(), main_thread)) {
        atomic_fetch_add(&on_main_thread, 1);
    }
    if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE) || ss.ss_size < 32768) {
        atomic_fetch_add(&without_alt_stack, 1);
    }
    if (userdata != &records || record == NULL || record->struct_size < sizeof *record ||
        record->message == NULL || record->target == NULL) {
        atomic_fetch_add(&bad_records, 1);
    }
    atomic_fetch_add(&records, 1);
}

int main(void) {
    struct timespec pause = {0, 10 * 1000 * 1000};
    int i;
    main_thread = pthread_self();

    EXPECT_OK(podvisor_log_set_callback(on_log, PODVISOR_LOG_DEBUG, &records));
    /* Every failed call is logged at debug level. */
    for (i = 0; i < 100; i++) {
        EXPECT(podvisor_vm_stop(NULL), PODVISOR_ENULL, "vm");
    }
    for (i = 0; i < 500 && atomic_load(&records) < 100; i++) {
        nanosleep(&pause, NULL);
    }
    CHECK(atomic_load(&records) >= 100);
    CHECK(atomic_load(&on_main_thread) == 0);
    CHECK(atomic_load(&without_alt_stack) == 0);
    CHECK(atomic_load(&bad_records) == 0);

    /* Below the registered level nothing is delivered; once removed, nothing at all. */
    EXPECT_OK(podvisor_log_set_callback(on_log, PODVISOR_LOG_ERROR, &records));
    atomic_store(&records, 0);
    EXPECT(podvisor_vm_stop(NULL), PODVISOR_ENULL, "vm");
    EXPECT_OK(podvisor_log_set_callback(NULL, PODVISOR_LOG_OFF, NULL));
    EXPECT(podvisor_vm_stop(NULL), PODVISOR_ENULL, "vm");
    nanosleep(&pause, NULL);
    CHECK(atomic_load(&records) == 0);

    CHECK_DONE("callbacks");
}
