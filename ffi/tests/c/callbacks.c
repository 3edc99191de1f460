/* Log and watch callbacks arrive on library threads, not the caller's, with an alternate signal
 * stack installed (what a Go host needs), and stop once removed. A watch callback may free its
 * own watch. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static atomic_int watch_events;
static atomic_int watch_bad_threads;
static atomic_int self_freed;
static atomic_int self_freeing_calls;
static _Atomic(podvisor_watch *) self_freeing_watch;

static void check_thread(atomic_int *bad) {
    stack_t ss;
    if (pthread_equal(pthread_self(), main_thread) || sigaltstack(NULL, &ss) != 0 ||
        (ss.ss_flags & SS_DISABLE) || ss.ss_size < 32768) {
        atomic_fetch_add(bad, 1);
    }
}

static void on_watch(const podvisor_watch_batch *batch, podvisor_error_code status,
                     const char *message, void *userdata) {
    size_t len = 0;
    (void)message;
    check_thread(&watch_bad_threads);
    if (status != PODVISOR_OK || userdata != &watch_events ||
        podvisor_watch_batch_info(batch, &len, NULL) != PODVISOR_OK) {
        atomic_fetch_add(&watch_bad_threads, 1);
        return;
    }
    atomic_fetch_add(&watch_events, (int)len);
}

static void on_watch_free_self(const podvisor_watch_batch *batch, podvisor_error_code status,
                               const char *message, void *userdata) {
    (void)batch;
    (void)status;
    (void)message;
    (void)userdata;
    struct timespec pause = {0, 1000 * 1000};
    podvisor_watch *self;
    if (atomic_fetch_add(&self_freeing_calls, 1) != 0) {
        return;
    }
    /* The first batch may come before podvisor_client_watch has returned the handle. */
    while ((self = atomic_load(&self_freeing_watch)) == NULL) {
        nanosleep(&pause, NULL);
    }
    if (podvisor_watch_free(self) == PODVISOR_OK) {
        atomic_fetch_add(&self_freed, 1);
    }
}

static void test_watch_callbacks(void) {
    char data_dir[] = "/tmp/podvisor-callbacks-XXXXXX";
    char member[128], endpoint[64];
    const char *members[] = {member};
    const char *endpoints[] = {endpoint};
    struct timespec pause = {0, 20 * 1000 * 1000};
    podvisor_master_options mopts;
    podvisor_client_options copts;
    podvisor_master *master = NULL;
    podvisor_client *client = NULL;
    podvisor_watch *watch = NULL;
    podvisor_watch *self_freeing = NULL;
    bool leader = false;
    int i;

    int client_port = free_port();
    snprintf(member, sizeof member, "1=127.0.0.1:%d,127.0.0.1:%d", free_port(), client_port);
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", client_port);
    CHECK(mkdtemp(data_dir) != NULL);
    EXPECT_OK(podvisor_master_options_init(&mopts, sizeof mopts));
    mopts.id = 1;
    mopts.data_dir = data_dir;
    mopts.members = members;
    mopts.members_len = 1;
    EXPECT_OK(podvisor_master_start(&mopts, &master));
    if (master == NULL) {
        return;
    }
    for (i = 0; i < 500 && !leader; i++) {
        EXPECT_OK(podvisor_master_is_leader(master, &leader));
        nanosleep(&pause, NULL);
    }
    EXPECT_OK(podvisor_client_options_init(&copts, sizeof copts));
    copts.endpoints = endpoints;
    copts.endpoints_len = 1;
    EXPECT_OK(podvisor_client_connect(&copts, &client));

    EXPECT_OK(podvisor_client_watch(client, (const uint8_t *)"/cb/", 4, (const uint8_t *)"/cb0", 4, 0,
                                    on_watch, &watch_events, &watch));
    EXPECT_OK(podvisor_client_watch(client, (const uint8_t *)"/cb/", 4, (const uint8_t *)"/cb0", 4, 0,
                                    on_watch_free_self, NULL, &self_freeing));
    atomic_store(&self_freeing_watch, self_freeing);
    nanosleep(&pause, NULL);
    for (i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "/cb/%d", i);
        EXPECT_OK(podvisor_client_put(client, (const uint8_t *)key, strlen(key), (const uint8_t *)"v", 1, 0, NULL));
    }
    for (i = 0; i < 500 && atomic_load(&watch_events) < 20; i++) {
        nanosleep(&pause, NULL);
    }
    CHECK(atomic_load(&watch_events) == 20);
    CHECK(atomic_load(&watch_bad_threads) == 0);
    CHECK(atomic_load(&self_freed) == 1);
    CHECK(atomic_load(&self_freeing_calls) == 1);
    EXPECT_OK(podvisor_watch_free(watch));
    /* After the free returns, no more callbacks. */
    atomic_store(&watch_events, 0);
    EXPECT_OK(podvisor_client_put(client, (const uint8_t *)"/cb/x", 5, (const uint8_t *)"v", 1, 0, NULL));
    nanosleep(&pause, NULL);
    CHECK(atomic_load(&watch_events) == 0);

    EXPECT_OK(podvisor_client_free(client));
    EXPECT_OK(podvisor_master_free(master));
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

    test_watch_callbacks();
    CHECK_DONE("callbacks");
}
