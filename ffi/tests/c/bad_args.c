/* Every entry point of libpodvisor, given bad arguments: NULL in each pointer slot, misaligned
 * out-pointers, invalid UTF-8, empty and very long strings, wrong-type, foreign and freed
 * handles, options structs with a bad size, and result structs whose fields hold no valid value.
 * Each must return its documented code with a message, never crash, write no out-parameter and
 * apply nothing when it fails, and leak nothing (the test runs under AddressSanitizer and
 * LeakSanitizer).
 *
 * The environment may name a kernel (PODVISOR_TEST_KERNEL); with it, and a usable KVM, the VM
 * calls are also given a real handle that is then freed. With the static agent (PODVISOR_AGENT)
 * and the busybox image (PODVISOR_TEST_IMAGE), and as root, the sandbox and process calls are
 * given a live namespace sandbox too. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static const char INVALID_UTF8[] = "bad\xff\xfeutf8";
static char *long_string; /* PODVISOR_MAX_STRING_LEN + 1 bytes of 'a' */
static int have_kvm;

/* Room for the misaligned out-pointers below; never read. */
static uint64_t scratch[8];
/* An out-pointer of `type` that is not aligned for it. */
#define MISALIGNED(type) ((type *)(void *)((char *)scratch + 1))

/* A result struct as a host may pass it: `struct_size` set, every other byte 0xab, so no field
 * holds a valid enum or bool. libpodvisor must read nothing of it but its size. */
#define FILL_RESULT(value)                                                                   \
    do {                                                                                     \
        memset(&(value), 0xab, sizeof(value));                                               \
        (value).struct_size = sizeof(value);                                                 \
    } while (0)

/* Whether a FILL_RESULT struct is still as it was: a failed call must not write it. */
static int untouched(const void *value, size_t size) {
    const unsigned char *bytes = value;
    size_t i;
    for (i = sizeof(size_t); i < size; i++) {
        if (bytes[i] != 0xab) {
            return 0;
        }
    }
    return 1;
}
#define UNTOUCHED(value) untouched(&(value), sizeof(value))

/* The bad strings every string argument is given, and the codes they must give. */
#define BAD_STRINGS 3
static const char *bad_strings[BAD_STRINGS];
static const int bad_string_codes[BAD_STRINGS] = {PODVISOR_EUTF8, PODVISOR_EINVAL, PODVISOR_EINVAL};

/* As EXPECT, for a failure whose message must name the argument too. */
#define EXPECT_NAMED(call, want, arg)                                                        \
    do {                                                                                     \
        EXPECT(call, want, arg);                                                             \
        CHECK(podvisor_last_error_message() != NULL &&                                       \
              strstr(podvisor_last_error_message(), arg) != NULL);                           \
    } while (0)

static void test_version(void) {
    CHECK(strcmp(podvisor_version(), "0.1.0") == 0 || PODVISOR_VERSION_MAJOR > 0);
    CHECK(podvisor_version_number() == PODVISOR_VERSION_NUMBER);
    CHECK(podvisor_abi_version() == PODVISOR_ABI_VERSION);
}

static void test_errors(void) {
    podvisor_last_error_clear();
    CHECK(podvisor_last_error_code() == PODVISOR_OK);
    CHECK(podvisor_last_error_message() == NULL);
    CHECK(podvisor_last_error_argument() == NULL);
    CHECK(strcmp(podvisor_error_name(PODVISOR_EINVAL), "PODVISOR_EINVAL") == 0);
    CHECK(strcmp(podvisor_error_name(PODVISOR_EDONE), "PODVISOR_EDONE") == 0);
    CHECK(strcmp(podvisor_error_name(-12345), "PODVISOR_UNKNOWN") == 0);
    CHECK(strcmp(podvisor_error_name(1), "PODVISOR_UNKNOWN") == 0);
    podvisor_free(NULL);
}

static void noop_log(const podvisor_log_record *record, void *userdata) {
    (void)record;
    (void)userdata;
}

static void test_log(void) {
    EXPECT(podvisor_log_set_callback(noop_log, 6, NULL), PODVISOR_EINVAL, "max_level");
    EXPECT(podvisor_log_set_callback(noop_log, -1, NULL), PODVISOR_EINVAL, "max_level");
    EXPECT_OK(podvisor_log_set_callback(NULL, PODVISOR_LOG_OFF, NULL));
    EXPECT_OK(podvisor_log_set_callback(noop_log, PODVISOR_LOG_TRACE, NULL));
    EXPECT_OK(podvisor_log_set_callback(NULL, PODVISOR_LOG_TRACE, NULL));
}

/* The init functions all take (struct, size) and refuse NULL and sizes they do not know. */
#define TEST_INIT(init, type, name)                                                          \
    do {                                                                                     \
        type value;                                                                          \
        memset(&value, 0xab, sizeof value);                                                  \
        EXPECT(init(NULL, sizeof(type)), PODVISOR_ENULL, name);                              \
        EXPECT(init(&value, 0), PODVISOR_EINVAL, "struct_size");                             \
        EXPECT(init(&value, 3), PODVISOR_EINVAL, "struct_size");                             \
        EXPECT(init(&value, sizeof(type) + 8), PODVISOR_EINVAL, "struct_size");              \
        EXPECT(init(&value, SIZE_MAX), PODVISOR_EINVAL, "struct_size");                      \
        EXPECT_OK(init(&value, sizeof(type)));                                               \
        CHECK(value.struct_size == sizeof(type));                                            \
    } while (0)

static void test_host_probe(void) {
    podvisor_host_info info;
    TEST_INIT(podvisor_host_info_init, podvisor_host_info, "info");
    EXPECT_OK(podvisor_host_info_init(&info, sizeof info));

    EXPECT(podvisor_host_probe(NULL, NULL), PODVISOR_ENULL, "info");
    EXPECT(podvisor_host_probe(INVALID_UTF8, &info), PODVISOR_EUTF8, "kvm_path");
    EXPECT(podvisor_host_probe(long_string, &info), PODVISOR_EINVAL, "kvm_path");
    EXPECT(podvisor_host_probe("", &info), PODVISOR_EUNSUPPORTED, NULL);
    EXPECT(podvisor_host_probe("/nonexistent/kvm", &info), PODVISOR_EUNSUPPORTED, NULL);
    info.struct_size = 1;
    EXPECT(podvisor_host_probe(NULL, &info), PODVISOR_EINVAL, "info");

    EXPECT(podvisor_host_probe(NULL, MISALIGNED(podvisor_host_info)), PODVISOR_EINVAL, "info");
    /* Only `struct_size` of a result struct is read: the rest may be anything. */
    FILL_RESULT(info);
    EXPECT(podvisor_host_probe("/nonexistent/kvm", &info), PODVISOR_EUNSUPPORTED, NULL);
    CHECK(UNTOUCHED(info));
    have_kvm = podvisor_host_probe(NULL, &info) == PODVISOR_OK;
    if (have_kvm) {
        CHECK(info.max_vcpus >= 1 && info.max_vcpus != 0xabababab);
        CHECK(info.kvm_mode >= PODVISOR_KVM_UNKNOWN && info.kvm_mode <= PODVISOR_KVM_PVM);
        CHECK(info.struct_size == sizeof info);
    } else {
        printf("bad_args: no usable KVM here (%s); VM handles are not exercised\n",
               podvisor_last_error_message());
    }
}

static void test_vm_start(const char *kernel) {
    podvisor_vm_options opts;
    podvisor_vm *vm = NULL;
    TEST_INIT(podvisor_vm_options_init, podvisor_vm_options, "opts");
    EXPECT_OK(podvisor_vm_options_init(&opts, sizeof opts));
    CHECK(opts.vcpus == 1 && opts.memory_mib == 128 && opts.kernel_path == NULL);

    EXPECT(podvisor_vm_start(NULL, &vm), PODVISOR_ENULL, "opts");
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_ENULL, "opts->kernel_path");
    opts.kernel_path = "/nonexistent/vmlinux";
    EXPECT(podvisor_vm_start(&opts, NULL), PODVISOR_ENULL, "vm");
    opts.kernel_path = "";
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EINVAL, "opts->kernel_path");
    opts.kernel_path = INVALID_UTF8;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EUTF8, "opts->kernel_path");
    opts.kernel_path = long_string;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EINVAL, "opts->kernel_path");
    opts.kernel_path = "/nonexistent/vmlinux";
    opts.initrd_path = INVALID_UTF8;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EUTF8, "opts->initrd_path");
    opts.initrd_path = NULL;
    opts.cmdline = INVALID_UTF8;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EUTF8, "opts->cmdline");
    opts.cmdline = NULL;
    opts.kvm_path = INVALID_UTF8;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EUTF8, "opts->kvm_path");
    opts.kvm_path = "/nonexistent/kvm";
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EUNSUPPORTED, NULL);
    opts.kvm_path = NULL;
    opts.boot_protocol = 3;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EINVAL, "opts->boot_protocol");
    opts.boot_protocol = PODVISOR_BOOT_AUTO;
    opts.struct_size = 12345;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EINVAL, "opts");
    opts.struct_size = sizeof opts;
    CHECK(vm == NULL);

    if (!have_kvm) {
        return;
    }
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_ENOTFOUND, "opts->kernel_path");
    opts.kernel_path = "/dev/null";
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EINVAL, "opts->kernel_path");
    opts.vcpus = 0;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EINVAL, "opts->vcpus");
    opts.vcpus = 100000;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EINVAL, "opts->vcpus");
    opts.vcpus = 1;
    opts.memory_mib = 0;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EINVAL, "opts->memory_mib");
    opts.memory_mib = 128;
    opts.cmdline = long_string;
    EXPECT(podvisor_vm_start(&opts, &vm), PODVISOR_EINVAL, "opts->cmdline");
    opts.cmdline = NULL;
    CHECK(vm == NULL);
    (void)kernel;
}

/* Every call that takes a podvisor_vm, given NULL or a pointer that is no handle. */
static void test_vm_calls_with_handle(podvisor_vm *vm, int want, const char *want_arg) {
    podvisor_vm_exit exit_info;
    uint8_t *data = NULL;
    size_t len = 0;
    char *text = NULL;
    EXPECT_OK(podvisor_vm_exit_init(&exit_info, sizeof exit_info));
    EXPECT(podvisor_vm_console_read(vm, 0, &data, &len), want, want_arg);
    EXPECT(podvisor_vm_console_wait_for(vm, "x", 0), want, want_arg);
    EXPECT(podvisor_vm_console_write(vm, (const uint8_t *)"x", 1, &len), want, want_arg);
    EXPECT(podvisor_vm_stop(vm), want, want_arg);
    EXPECT(podvisor_vm_wait(vm, 0, &exit_info), want, want_arg);
    EXPECT(podvisor_vm_exit_status(vm, &exit_info), want, want_arg);
    EXPECT(podvisor_vm_exit_describe(vm, &text), want, want_arg);
    CHECK(data == NULL && text == NULL);
}

static void test_vm_handles(const char *kernel) {
    int not_a_handle = 0;
    podvisor_vm_options opts;
    podvisor_vm_exit exit_info;
    podvisor_vm *vm = NULL;
    uint8_t *data = NULL;
    size_t len = 7;
    char *text = NULL;

    TEST_INIT(podvisor_vm_exit_init, podvisor_vm_exit, "exit");
    test_vm_calls_with_handle(NULL, PODVISOR_ENULL, "vm");
    test_vm_calls_with_handle((podvisor_vm *)&not_a_handle, PODVISOR_EHANDLE, "vm");
    EXPECT_OK(podvisor_vm_free(NULL));
    EXPECT(podvisor_vm_free((podvisor_vm *)&not_a_handle), PODVISOR_EHANDLE, "vm");

    if (!have_kvm || kernel == NULL) {
        printf("bad_args: no kernel or no KVM; a live VM handle is not exercised\n");
        return;
    }
    EXPECT_OK(podvisor_vm_options_init(&opts, sizeof opts));
    opts.kernel_path = kernel;
    EXPECT_OK(podvisor_vm_start(&opts, &vm));
    if (vm == NULL) {
        return;
    }
    EXPECT(podvisor_vm_console_read(vm, 0, NULL, &len), PODVISOR_ENULL, "data");
    EXPECT(podvisor_vm_console_read(vm, 0, &data, NULL), PODVISOR_ENULL, "len");
    /* A bad later out-pointer: nothing is copied out, so nothing leaks. */
    EXPECT(podvisor_vm_console_read(vm, 0, &data, MISALIGNED(size_t)), PODVISOR_EINVAL, "len");
    CHECK(data == NULL);
    EXPECT_OK(podvisor_vm_console_read(vm, SIZE_MAX, &data, &len));
    CHECK(data != NULL && len == 0);
    podvisor_free(data);
    EXPECT(podvisor_vm_console_wait_for(vm, NULL, 0), PODVISOR_ENULL, "text");
    EXPECT(podvisor_vm_console_wait_for(vm, "", 0), PODVISOR_EINVAL, "text");
    EXPECT(podvisor_vm_console_wait_for(vm, INVALID_UTF8, 0), PODVISOR_EUTF8, "text");
    EXPECT(podvisor_vm_console_wait_for(vm, long_string, 0), PODVISOR_EINVAL, "text");
    EXPECT(podvisor_vm_console_wait_for(vm, "x", -2), PODVISOR_EINVAL, "timeout_ms");
    EXPECT(podvisor_vm_console_wait_for(vm, "never printed", 10), PODVISOR_ETIMEOUT, NULL);
    EXPECT(podvisor_vm_console_write(vm, NULL, 5, &len), PODVISOR_ENULL, "input");
    EXPECT(podvisor_vm_console_write(vm, (const uint8_t *)"x", 1, NULL), PODVISOR_ENULL, "written");
    EXPECT(podvisor_vm_console_write(vm, (const uint8_t *)"x", 1, MISALIGNED(size_t)), PODVISOR_EINVAL,
           "written");
    EXPECT_OK(podvisor_vm_console_write(vm, NULL, 0, &len));
    CHECK(len == 0);
    EXPECT(podvisor_vm_exit_status(vm, NULL), PODVISOR_ENULL, "exit");
    EXPECT(podvisor_vm_exit_describe(vm, NULL), PODVISOR_ENULL, "text");
    EXPECT_OK(podvisor_vm_exit_init(&exit_info, sizeof exit_info));
    exit_info.struct_size = 2;
    EXPECT(podvisor_vm_exit_status(vm, &exit_info), PODVISOR_EINVAL, "exit");
    EXPECT(podvisor_vm_wait(vm, 0, &exit_info), PODVISOR_EINVAL, "exit");
    EXPECT(podvisor_vm_wait(vm, -2, NULL), PODVISOR_EINVAL, "timeout_ms");
    /* Refused before waiting at all, although it would wait forever. */
    EXPECT(podvisor_vm_wait(vm, -1, MISALIGNED(podvisor_vm_exit)), PODVISOR_EINVAL, "exit");
    EXPECT(podvisor_vm_exit_status(vm, MISALIGNED(podvisor_vm_exit)), PODVISOR_EINVAL, "exit");
    FILL_RESULT(exit_info);
    EXPECT_OK(podvisor_vm_exit_status(vm, &exit_info));
    CHECK(exit_info.reason >= PODVISOR_VM_RUNNING && exit_info.reason <= PODVISOR_VM_EXIT_TIMEOUT);
    CHECK(exit_info.struct_size == sizeof exit_info);
    EXPECT_OK(podvisor_vm_stop(vm));
    FILL_RESULT(exit_info);
    EXPECT_OK(podvisor_vm_wait(vm, -1, &exit_info));
    CHECK(exit_info.reason == PODVISOR_VM_EXIT_HOST_STOP);
    CHECK(exit_info.vcpu == 0 && exit_info.rip == 0);
    /* Waiting forever for text already on the console returns at once. */
    EXPECT_OK(podvisor_vm_console_read(vm, 0, &data, &len));
    {
        char head[9] = {0};
        size_t i;
        for (i = 0; i < len && i < sizeof head - 1 && data[i] >= ' ' && data[i] < 0x7f; i++) {
            head[i] = (char)data[i];
        }
        if (i > 0) {
            EXPECT_OK(podvisor_vm_console_wait_for(vm, head, -1));
        }
    }
    /* Text that never came, on a VM that has ended: waiting forever would never return. */
    EXPECT(podvisor_vm_console_wait_for(vm, "never printed", -1), PODVISOR_ESTATE, NULL);
    podvisor_free(data);
    data = NULL;
    EXPECT_OK(podvisor_vm_exit_describe(vm, &text));
    CHECK(text != NULL && strcmp(text, "stopped by the host") == 0);
    podvisor_free(text);
    EXPECT_OK(podvisor_vm_free(vm));

    /* The handle is freed: every call must detect it. */
    test_vm_calls_with_handle(vm, PODVISOR_EHANDLE, "vm");
    EXPECT(podvisor_vm_free(vm), PODVISOR_EHANDLE, "vm");
}

/* ---- the store ---------------------------------------------------------------------------- */

static char member_spec[128];
static char endpoint[64];

static void test_master_options(void) {
    podvisor_master_options opts;
    podvisor_master *master = NULL;
    const char *members[] = {member_spec};
    const char *null_member[] = {NULL};
    const char *bad_member[] = {"one=nowhere"};
    const char *utf8_member[] = {INVALID_UTF8};

    TEST_INIT(podvisor_master_options_init, podvisor_master_options, "opts");
    EXPECT_OK(podvisor_master_options_init(&opts, sizeof opts));
    CHECK(opts.cluster_id == 1 && opts.id == 0 && opts.join == 0);

    EXPECT(podvisor_master_start(NULL, &master), PODVISOR_ENULL, "opts");
    opts.id = 1;
    opts.members = members;
    opts.members_len = 1;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_ENULL, "opts->data_dir");
    opts.data_dir = "";
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EINVAL, "opts->data_dir");
    opts.data_dir = INVALID_UTF8;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EUTF8, "opts->data_dir");
    opts.data_dir = long_string;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EINVAL, "opts->data_dir");
    opts.data_dir = "/nonexistent/podvisor";
    EXPECT(podvisor_master_start(&opts, NULL), PODVISOR_ENULL, "master");
    opts.members = NULL;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_ENULL, "opts->members");
    opts.members = members;
    opts.members_len = 0;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EINVAL, "opts->members");
    opts.members_len = 1;
    opts.members = null_member;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_ENULL, "opts->members");
    opts.members = bad_member;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EINVAL, "opts->members");
    opts.members = utf8_member;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EUTF8, "opts->members");
    opts.members = members;
    opts.peer_listen = INVALID_UTF8;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EUTF8, "opts->peer_listen");
    opts.peer_listen = NULL;
    opts.client_listen = long_string;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EINVAL, "opts->client_listen");
    opts.client_listen = NULL;
    opts.id = 0;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EINVAL, "opts->id");
    opts.id = 7;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EINVAL, NULL);
    opts.id = 1;
    opts.struct_size = 1;
    EXPECT(podvisor_master_start(&opts, &master), PODVISOR_EINVAL, "opts");
    CHECK(master == NULL);
}

static void test_client_options(void) {
    podvisor_client_options opts;
    podvisor_client *client = NULL;
    const char *endpoints[] = {endpoint};
    const char *null_endpoint[] = {NULL};
    const char *empty_endpoint[] = {""};
    const char *utf8_endpoint[] = {INVALID_UTF8};
    const char *malformed_endpoints[] = {"not an address", "127.0.0.1:99999", "[::1"};
    size_t m;

    TEST_INIT(podvisor_client_options_init, podvisor_client_options, "opts");
    EXPECT_OK(podvisor_client_options_init(&opts, sizeof opts));
    EXPECT(podvisor_client_connect(NULL, &client), PODVISOR_ENULL, "opts");
    EXPECT(podvisor_client_connect(&opts, &client), PODVISOR_EINVAL, "opts->endpoints");
    opts.endpoints_len = 1;
    EXPECT(podvisor_client_connect(&opts, &client), PODVISOR_ENULL, "opts->endpoints");
    opts.endpoints = null_endpoint;
    EXPECT(podvisor_client_connect(&opts, &client), PODVISOR_ENULL, "opts->endpoints");
    opts.endpoints = empty_endpoint;
    EXPECT(podvisor_client_connect(&opts, &client), PODVISOR_EINVAL, "opts->endpoints");
    opts.endpoints = utf8_endpoint;
    EXPECT(podvisor_client_connect(&opts, &client), PODVISOR_EUTF8, "opts->endpoints");
    for (m = 0; m < sizeof malformed_endpoints / sizeof malformed_endpoints[0]; m++) {
        opts.endpoints = &malformed_endpoints[m];
        EXPECT(podvisor_client_connect(&opts, &client), PODVISOR_EINVAL, "opts->endpoints");
    }
    opts.endpoints = endpoints;
    EXPECT(podvisor_client_connect(&opts, NULL), PODVISOR_ENULL, "client");
    opts.struct_size = 0;
    EXPECT(podvisor_client_connect(&opts, &client), PODVISOR_EINVAL, "opts");
    CHECK(client == NULL);
}

/* Every call that takes a podvisor_client, given `client`, expecting `want`. */
static void test_client_calls_with_handle(podvisor_client *client, int want, const char *want_arg) {
    podvisor_kvs *kvs = NULL;
    podvisor_watch *watch = NULL;
    podvisor_txn *txn = NULL;
    podvisor_txn_result *result = NULL;
    podvisor_controllers *controllers = NULL;
    char *text = NULL;
    uint64_t id = 0;
    EXPECT(podvisor_client_put(client, (const uint8_t *)"k", 1, NULL, 0, 0, NULL), want, want_arg);
    EXPECT(podvisor_client_get(client, (const uint8_t *)"k", 1, &kvs), want, want_arg);
    EXPECT(podvisor_client_range(client, (const uint8_t *)"k", 1, NULL, 0, 0, &kvs), want, want_arg);
    EXPECT(podvisor_client_delete(client, (const uint8_t *)"k", 1, NULL, 0, NULL, NULL), want, want_arg);
    EXPECT(podvisor_client_lease_grant(client, 10, &id), want, want_arg);
    EXPECT(podvisor_client_lease_keep_alive(client, 1, NULL), want, want_arg);
    EXPECT(podvisor_client_lease_revoke(client, 1), want, want_arg);
    EXPECT(podvisor_client_lease_time_to_live(client, 1, &id), want, want_arg);
    EXPECT(podvisor_client_watch(client, (const uint8_t *)"k", 1, NULL, 0, 0, NULL, NULL, &watch), want, want_arg);
    EXPECT_OK(podvisor_txn_new(&txn));
    EXPECT(podvisor_client_txn(client, txn, NULL, NULL), want, want_arg);
    EXPECT(podvisor_client_txn_run(client, txn, &result), want, want_arg);
    EXPECT_OK(podvisor_txn_free(txn));
    EXPECT(podvisor_controllers_start(client, NULL, &controllers), want, want_arg);
    EXPECT(podvisor_pod_logs(client, NULL, "web", NULL, &text), want, want_arg);
    CHECK(kvs == NULL && watch == NULL && result == NULL && controllers == NULL && text == NULL);
}

/* Every call that takes a key, given a bad one. */
static void test_key_arguments(podvisor_client *client) {
    podvisor_kvs *kvs = NULL;
    podvisor_watch *watch = NULL;
    podvisor_txn *txn = NULL;
    podvisor_txn_result *result = NULL;
    const uint8_t *k = (const uint8_t *)"k";
    EXPECT(podvisor_client_put(client, NULL, 1, NULL, 0, 0, NULL), PODVISOR_ENULL, "key");
    EXPECT(podvisor_client_put(client, k, 0, NULL, 0, 0, NULL), PODVISOR_EINVAL, "key");
    EXPECT(podvisor_client_put(client, k, 1, NULL, 3, 0, NULL), PODVISOR_ENULL, "value");
    EXPECT(podvisor_client_get(client, NULL, 1, &kvs), PODVISOR_ENULL, "key");
    EXPECT(podvisor_client_get(client, k, 0, &kvs), PODVISOR_EINVAL, "key");
    EXPECT(podvisor_client_get(client, k, 1, NULL), PODVISOR_ENULL, "kvs");
    EXPECT(podvisor_client_range(client, NULL, 1, NULL, 0, 0, &kvs), PODVISOR_ENULL, "key");
    EXPECT(podvisor_client_range(client, k, 1, NULL, 2, 0, &kvs), PODVISOR_ENULL, "range_end");
    EXPECT(podvisor_client_range(client, k, 1, NULL, 0, 0, NULL), PODVISOR_ENULL, "kvs");
    EXPECT(podvisor_client_delete(client, NULL, 1, NULL, 0, NULL, NULL), PODVISOR_ENULL, "key");
    EXPECT(podvisor_client_delete(client, k, 0, NULL, 0, NULL, NULL), PODVISOR_EINVAL, "key");
    EXPECT(podvisor_client_delete(client, k, 1, NULL, 1, NULL, NULL), PODVISOR_ENULL, "range_end");
    EXPECT(podvisor_client_lease_grant(client, 10, NULL), PODVISOR_ENULL, "id");
    EXPECT(podvisor_client_lease_grant(client, 0, NULL), PODVISOR_ENULL, "id");
    EXPECT(podvisor_client_lease_time_to_live(client, 1, NULL), PODVISOR_ENULL, "remaining_ms");
    EXPECT(podvisor_client_watch(client, NULL, 1, NULL, 0, 0, NULL, NULL, &watch), PODVISOR_ENULL, "key");
    EXPECT(podvisor_client_watch(client, k, 0, NULL, 0, 0, NULL, NULL, &watch), PODVISOR_EINVAL, "key");
    EXPECT(podvisor_client_watch(client, k, 1, NULL, 3, 0, NULL, NULL, &watch), PODVISOR_ENULL, "range_end");
    EXPECT(podvisor_client_watch(client, k, 1, NULL, 0, 0, NULL, NULL, NULL), PODVISOR_ENULL, "watch");
    EXPECT(podvisor_client_watch(client, k, 1, NULL, 0, 0, NULL, NULL, MISALIGNED(podvisor_watch *)),
           PODVISOR_EINVAL, "watch");
    EXPECT(podvisor_client_txn(client, NULL, NULL, NULL), PODVISOR_ENULL, "txn");

    EXPECT(podvisor_txn_new(NULL), PODVISOR_ENULL, "txn");
    EXPECT_OK(podvisor_txn_new(&txn));
    EXPECT(podvisor_txn_compare(NULL, k, 1, 0, 0, NULL, 0, 0), PODVISOR_ENULL, "txn");
    EXPECT(podvisor_txn_compare(txn, NULL, 1, 0, 0, NULL, 0, 0), PODVISOR_ENULL, "key");
    EXPECT(podvisor_txn_compare(txn, k, 0, 0, 0, NULL, 0, 0), PODVISOR_EINVAL, "key");
    EXPECT(podvisor_txn_compare(txn, k, 1, 0, 0, NULL, 4, 0), PODVISOR_ENULL, "value");
    EXPECT(podvisor_txn_compare(txn, k, 1, 5, 0, NULL, 0, 0), PODVISOR_EINVAL, "target");
    EXPECT(podvisor_txn_compare(txn, k, 1, -1, 0, NULL, 0, 0), PODVISOR_EINVAL, "target");
    EXPECT(podvisor_txn_compare(txn, k, 1, 1, 4, NULL, 0, 0), PODVISOR_EINVAL, "op");
    EXPECT(podvisor_txn_put(NULL, 1, k, 1, NULL, 0, 0), PODVISOR_ENULL, "txn");
    EXPECT(podvisor_txn_put(txn, 2, k, 1, NULL, 0, 0), PODVISOR_EINVAL, "branch");
    EXPECT(podvisor_txn_put(txn, 1, NULL, 1, NULL, 0, 0), PODVISOR_ENULL, "key");
    EXPECT(podvisor_txn_put(txn, 1, k, 1, NULL, 1, 0), PODVISOR_ENULL, "value");
    EXPECT(podvisor_txn_delete(NULL, 1, k, 1, NULL, 0), PODVISOR_ENULL, "txn");
    EXPECT(podvisor_txn_delete(txn, -3, k, 1, NULL, 0), PODVISOR_EINVAL, "branch");
    EXPECT(podvisor_txn_delete(txn, 0, NULL, 1, NULL, 0), PODVISOR_ENULL, "key");
    EXPECT(podvisor_txn_delete(txn, 0, k, 0, NULL, 0), PODVISOR_EINVAL, "key");
    EXPECT(podvisor_txn_delete(txn, 0, k, 1, NULL, 9), PODVISOR_ENULL, "range_end");
    EXPECT(podvisor_txn_range(NULL, 1, k, 1, NULL, 0, 0), PODVISOR_ENULL, "txn");
    EXPECT(podvisor_txn_range(txn, 7, k, 1, NULL, 0, 0), PODVISOR_EINVAL, "branch");
    EXPECT(podvisor_txn_range(txn, 1, NULL, 1, NULL, 0, 0), PODVISOR_ENULL, "key");
    EXPECT(podvisor_txn_range(txn, 1, k, 0, NULL, 0, 0), PODVISOR_EINVAL, "key");
    EXPECT(podvisor_txn_range(txn, 1, k, 1, NULL, 3, 0), PODVISOR_ENULL, "range_end");
    EXPECT(podvisor_client_txn_run(NULL, txn, &result), PODVISOR_ENULL, "client");
    EXPECT(podvisor_client_txn_run(client, NULL, &result), PODVISOR_ENULL, "txn");
    EXPECT(podvisor_client_txn_run(client, txn, NULL), PODVISOR_ENULL, "result");
    EXPECT(podvisor_client_txn_run(client, (podvisor_txn *)client, &result), PODVISOR_EHANDLE, "txn");
    CHECK(result == NULL && watch == NULL && kvs == NULL);
    EXPECT(podvisor_client_txn(NULL, txn, NULL, NULL), PODVISOR_ENULL, "client");
    EXPECT(podvisor_client_txn(client, (podvisor_txn *)client, NULL, NULL), PODVISOR_EHANDLE, "txn");
    EXPECT(podvisor_txn_free((podvisor_txn *)client), PODVISOR_EHANDLE, "txn");
    EXPECT_OK(podvisor_txn_free(txn));
    EXPECT(podvisor_txn_put(txn, 1, k, 1, NULL, 0, 0), PODVISOR_EHANDLE, "txn");
    EXPECT(podvisor_txn_free(txn), PODVISOR_EHANDLE, "txn");
    EXPECT_OK(podvisor_txn_free(NULL));
}

static void test_results(podvisor_client *client) {
    /* Keys and values are bytes: an embedded NUL is kept. */
    const uint8_t key[] = {'p', 0, 'k'};
    const uint8_t value[] = {'v', 0, 'v', 0};
    podvisor_kvs *kvs = NULL;
    podvisor_kv kv;
    size_t len = 0;
    uint64_t revision = 0;
    bool more = true;

    TEST_INIT(podvisor_kv_init, podvisor_kv, "kv");
    EXPECT_OK(podvisor_kv_init(&kv, sizeof kv));
    EXPECT_OK(podvisor_client_put(client, key, sizeof key, value, sizeof value, 0, &revision));
    CHECK(revision > 0);
    EXPECT(podvisor_client_get(client, (const uint8_t *)"missing", 7, &kvs), PODVISOR_ENOTFOUND, NULL);
    CHECK(kvs == NULL);
    EXPECT_OK(podvisor_client_get(client, key, sizeof key, &kvs));
    EXPECT(podvisor_kvs_info(NULL, &len, NULL, NULL), PODVISOR_ENULL, "kvs");
    EXPECT_OK(podvisor_kvs_info(kvs, &len, &revision, &more));
    CHECK(len == 1 && !more);
    EXPECT_OK(podvisor_kvs_info(kvs, NULL, NULL, NULL));
    EXPECT(podvisor_kvs_at(NULL, 0, &kv), PODVISOR_ENULL, "kvs");
    EXPECT(podvisor_kvs_at(kvs, 0, NULL), PODVISOR_ENULL, "kv");
    EXPECT(podvisor_kvs_at(kvs, 1, &kv), PODVISOR_EINVAL, "index");
    EXPECT(podvisor_kvs_at(kvs, SIZE_MAX, &kv), PODVISOR_EINVAL, "index");
    kv.struct_size = 5;
    EXPECT(podvisor_kvs_at(kvs, 0, &kv), PODVISOR_EINVAL, "kv");
    EXPECT(podvisor_kvs_at(kvs, 0, MISALIGNED(podvisor_kv)), PODVISOR_EINVAL, "kv");
    FILL_RESULT(kv);
    EXPECT(podvisor_kvs_at(kvs, 1, &kv), PODVISOR_EINVAL, "index");
    CHECK(UNTOUCHED(kv));
    EXPECT_OK(podvisor_kvs_at(kvs, 0, &kv));
    CHECK(kv.struct_size == sizeof kv);
    CHECK(kv.key_len == sizeof key && memcmp(kv.key, key, sizeof key) == 0);
    CHECK(kv.value_len == sizeof value && memcmp(kv.value, value, sizeof value) == 0);
    CHECK(kv.version == 1 && kv.lease == 0);
    EXPECT(podvisor_kvs_at((podvisor_kvs *)client, 0, &kv), PODVISOR_EHANDLE, "kvs");
    EXPECT(podvisor_kvs_free((podvisor_kvs *)client), PODVISOR_EHANDLE, "kvs");
    EXPECT_OK(podvisor_kvs_free(kvs));
    EXPECT(podvisor_kvs_info(kvs, &len, NULL, NULL), PODVISOR_EHANDLE, "kvs");
    EXPECT(podvisor_kvs_at(kvs, 0, &kv), PODVISOR_EHANDLE, "kvs");
    EXPECT(podvisor_kvs_free(kvs), PODVISOR_EHANDLE, "kvs");
    EXPECT_OK(podvisor_kvs_free(NULL));

    /* A very long key and value go through. */
    EXPECT_OK(podvisor_client_put(client, (const uint8_t *)long_string, 4096,
                                  (const uint8_t *)long_string, PODVISOR_MAX_STRING_LEN, 0, NULL));
    EXPECT_OK(podvisor_client_range(client, (const uint8_t *)"a", 1, (const uint8_t *)"b", 1, 0, &kvs));
    EXPECT_OK(podvisor_kvs_info(kvs, &len, NULL, NULL));
    CHECK(len == 1);
    EXPECT_OK(podvisor_kvs_free(kvs));

    /* Leases: unknown ids are not found. */
    EXPECT(podvisor_client_lease_keep_alive(client, 0xdead, NULL), PODVISOR_ENOTFOUND, NULL);
    EXPECT(podvisor_client_lease_revoke(client, 0xdead), PODVISOR_ENOTFOUND, NULL);
    EXPECT(podvisor_client_lease_time_to_live(client, 0xdead, &revision), PODVISOR_ENOTFOUND, NULL);
    EXPECT(podvisor_client_lease_grant(client, 0, &revision), PODVISOR_EINVAL, "ttl_secs");
}

static void on_watch(const podvisor_watch_batch *batch, podvisor_error_code status,
                     const char *message, void *userdata) {
    (void)batch;
    (void)status;
    (void)message;
    (void)userdata;
}

static void test_watch_arguments(podvisor_client *client) {
    podvisor_watch *watch = NULL;
    podvisor_watch *pushed = NULL;
    podvisor_watch_batch *batch = NULL;
    podvisor_watch_event event;
    size_t len = 9;
    uint64_t revision = 0;
    const uint8_t *k = (const uint8_t *)"w";

    TEST_INIT(podvisor_watch_event_init, podvisor_watch_event, "event");
    EXPECT_OK(podvisor_watch_event_init(&event, sizeof event));
    EXPECT_OK(podvisor_client_watch(client, k, 1, NULL, 0, 0, NULL, NULL, &watch));
    EXPECT(podvisor_watch_poll(NULL, 0, &batch), PODVISOR_ENULL, "watch");
    EXPECT(podvisor_watch_poll(watch, 0, NULL), PODVISOR_ENULL, "batch");
    EXPECT(podvisor_watch_poll(watch, -2, &batch), PODVISOR_EINVAL, "timeout_ms");
    EXPECT(podvisor_watch_poll((podvisor_watch *)client, 0, &batch), PODVISOR_EHANDLE, "watch");
    /* The first batch confirms the watch; then the put arrives. */
    EXPECT_OK(podvisor_watch_poll(watch, 10000, &batch));
    EXPECT_OK(podvisor_watch_batch_info(batch, &len, NULL));
    CHECK(len == 0);
    EXPECT_OK(podvisor_watch_batch_free(batch));
    EXPECT(podvisor_watch_poll(watch, 0, &batch), PODVISOR_ETIMEOUT, NULL);
    EXPECT_OK(podvisor_client_put(client, k, 1, (const uint8_t *)"x", 1, 0, NULL));
    EXPECT_OK(podvisor_watch_poll(watch, 10000, &batch));
    EXPECT(podvisor_watch_batch_info(NULL, &len, NULL), PODVISOR_ENULL, "batch");
    EXPECT(podvisor_watch_batch_info((podvisor_watch_batch *)watch, &len, NULL), PODVISOR_EHANDLE, "batch");
    /* A bad later out-pointer leaves the earlier one as it was. */
    len = 77;
    EXPECT(podvisor_watch_batch_info(batch, &len, MISALIGNED(uint64_t)), PODVISOR_EINVAL, "revision");
    EXPECT(podvisor_watch_batch_info(batch, MISALIGNED(size_t), &revision), PODVISOR_EINVAL, "len");
    CHECK(len == 77 && revision == 0);
    EXPECT_OK(podvisor_watch_batch_info(batch, NULL, &revision));
    CHECK(revision > 0);
    EXPECT_OK(podvisor_watch_batch_info(batch, &len, &revision));
    CHECK(len == 1 && revision > 0);
    EXPECT(podvisor_watch_batch_event(NULL, 0, &event), PODVISOR_ENULL, "batch");
    EXPECT(podvisor_watch_batch_event(batch, 0, NULL), PODVISOR_ENULL, "event");
    EXPECT(podvisor_watch_batch_event(batch, 1, &event), PODVISOR_EINVAL, "index");
    event.struct_size = 0;
    EXPECT(podvisor_watch_batch_event(batch, 0, &event), PODVISOR_EINVAL, "event");
    EXPECT(podvisor_watch_batch_event(batch, 0, MISALIGNED(podvisor_watch_event)), PODVISOR_EINVAL, "event");
    FILL_RESULT(event);
    EXPECT(podvisor_watch_batch_event(batch, 1, &event), PODVISOR_EINVAL, "index");
    CHECK(UNTOUCHED(event));
    EXPECT_OK(podvisor_watch_batch_event(batch, 0, &event));
    CHECK(event.struct_size == sizeof event);
    CHECK(event.kind == PODVISOR_EVENT_PUT && event.key_len == 1 && event.key[0] == 'w');
    CHECK(event.value_len == 1 && event.value[0] == 'x');
    CHECK(!event.has_prev_kv && event.prev_value == NULL && event.prev_value_len == 0);
    EXPECT(podvisor_watch_batch_free((podvisor_watch_batch *)watch), PODVISOR_EHANDLE, "batch");
    EXPECT_OK(podvisor_watch_batch_free(batch));
    EXPECT(podvisor_watch_batch_event(batch, 0, &event), PODVISOR_EHANDLE, "batch");
    EXPECT(podvisor_watch_batch_free(batch), PODVISOR_EHANDLE, "batch");
    EXPECT_OK(podvisor_watch_batch_free(NULL));

    /* A watch with a callback cannot be polled. */
    EXPECT_OK(podvisor_client_watch(client, k, 1, NULL, 0, 0, on_watch, NULL, &pushed));
    EXPECT(podvisor_watch_poll(pushed, 0, &batch), PODVISOR_ESTATE, NULL);
    EXPECT_OK(podvisor_watch_free(pushed));

    EXPECT(podvisor_watch_free((podvisor_watch *)client), PODVISOR_EHANDLE, "watch");
    EXPECT_OK(podvisor_watch_free(watch));
    EXPECT(podvisor_watch_poll(watch, 0, &batch), PODVISOR_EHANDLE, "watch");
    EXPECT(podvisor_watch_free(watch), PODVISOR_EHANDLE, "watch");
    EXPECT_OK(podvisor_watch_free(NULL));
}

static const char POOL[] =
    "apiVersion: podvisor.io/v1alpha1\n"
    "kind: IPPool\n"
    "metadata:\n"
    "  name: workload\n"
    "spec:\n"
    "  purpose: Workload\n"
    "  cidrs: [10.88.0.0/24]\n"
    "  gateway: 10.88.0.1\n";

static const char POD[] =
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata:\n"
    "  name: lonely\n"
    "spec:\n"
    "  containers:\n"
    "    - name: main\n"
    "      image: busybox\n";

static void test_objects(podvisor_client *client) {
    podvisor_object_watch *watch = NULL;
    char *out = NULL;
    uint64_t revision = 0;
    const char nul_text[] = "kind: IPPool\0more";

    EXPECT(podvisor_objects_apply(NULL, POOL, strlen(POOL), NULL, &out), PODVISOR_ENULL, "client");
    EXPECT(podvisor_objects_apply(client, NULL, 4, NULL, &out), PODVISOR_ENULL, "text");
    EXPECT(podvisor_objects_apply(client, POOL, strlen(POOL), NULL, NULL), PODVISOR_ENULL, "summary");
    EXPECT(podvisor_objects_apply(client, nul_text, sizeof nul_text - 1, NULL, &out), PODVISOR_EINVAL, "text");
    EXPECT(podvisor_objects_apply(client, INVALID_UTF8, strlen(INVALID_UTF8), NULL, &out), PODVISOR_EUTF8, "text");
    EXPECT(podvisor_objects_apply(client, "kind: [", 7, NULL, &out), PODVISOR_EINVAL, "text");
    EXPECT(podvisor_objects_apply(client, long_string, PODVISOR_MAX_STRING_LEN, NULL, &out), PODVISOR_EINVAL, "text");
    EXPECT(podvisor_objects_apply(client, POOL, strlen(POOL), INVALID_UTF8, &out), PODVISOR_EUTF8, "set");
    EXPECT(podvisor_objects_apply((podvisor_client *)&revision, POOL, strlen(POOL), NULL, &out), PODVISOR_EHANDLE, "client");
    CHECK(out == NULL);
    EXPECT_OK(podvisor_objects_apply(client, POOL, strlen(POOL), NULL, &out));
    CHECK(out != NULL && strstr(out, "workload") != NULL);
    podvisor_free(out);
    out = NULL;

    EXPECT(podvisor_objects_apply_file(client, NULL, NULL, &out), PODVISOR_ENULL, "path");
    EXPECT(podvisor_objects_apply_file(client, "", NULL, &out), PODVISOR_EINVAL, "path");
    EXPECT(podvisor_objects_apply_file(client, INVALID_UTF8, NULL, &out), PODVISOR_EUTF8, "path");
    EXPECT(podvisor_objects_apply_file(client, long_string, NULL, &out), PODVISOR_EINVAL, "path");
    EXPECT(podvisor_objects_apply_file(client, "/nonexistent/manifests", NULL, &out), PODVISOR_ENOTFOUND, "path");
    EXPECT(podvisor_objects_apply_file(NULL, "/nonexistent", NULL, &out), PODVISOR_ENULL, "client");
    EXPECT(podvisor_objects_apply_file(client, "/nonexistent", NULL, NULL), PODVISOR_ENULL, "summary");

    EXPECT(podvisor_objects_get(NULL, "IPPool", NULL, "workload", &out), PODVISOR_ENULL, "client");
    EXPECT(podvisor_objects_get(client, NULL, NULL, "workload", &out), PODVISOR_ENULL, "kind");
    EXPECT(podvisor_objects_get(client, "Gadget", NULL, "workload", &out), PODVISOR_EINVAL, "kind");
    EXPECT(podvisor_objects_get(client, "", NULL, "workload", &out), PODVISOR_EINVAL, "kind");
    EXPECT(podvisor_objects_get(client, "IPPool", INVALID_UTF8, "workload", &out), PODVISOR_EUTF8, "namespace");
    EXPECT(podvisor_objects_get(client, "IPPool", NULL, NULL, &out), PODVISOR_ENULL, "name");
    EXPECT(podvisor_objects_get(client, "IPPool", NULL, long_string, &out), PODVISOR_EINVAL, "name");
    EXPECT(podvisor_objects_get(client, "IPPool", NULL, "workload", NULL), PODVISOR_ENULL, "json");
    EXPECT(podvisor_objects_get(client, "IPPool", NULL, "missing", &out), PODVISOR_ENOTFOUND, NULL);
    EXPECT_OK(podvisor_objects_get(client, "IPPool", NULL, "workload", &out));
    CHECK(out != NULL && strstr(out, "\"workload\"") != NULL);
    podvisor_free(out);
    out = NULL;

    EXPECT(podvisor_objects_list(NULL, "IPPool", NULL, &out, NULL), PODVISOR_ENULL, "client");
    EXPECT(podvisor_objects_list(client, NULL, NULL, &out, NULL), PODVISOR_ENULL, "kind");
    EXPECT(podvisor_objects_list(client, INVALID_UTF8, NULL, &out, NULL), PODVISOR_EUTF8, "kind");
    EXPECT(podvisor_objects_list(client, "IPPool", NULL, NULL, NULL), PODVISOR_ENULL, "json");
    EXPECT_OK(podvisor_objects_list(client, "IPPool", NULL, &out, &revision));
    CHECK(out != NULL && out[0] == '[' && revision > 0);
    podvisor_free(out);
    out = NULL;

    EXPECT(podvisor_objects_watch(NULL, "IPPool", NULL, 0, &watch), PODVISOR_ENULL, "client");
    EXPECT(podvisor_objects_watch(client, NULL, NULL, 0, &watch), PODVISOR_ENULL, "kind");
    EXPECT(podvisor_objects_watch(client, "Gadget", NULL, 0, &watch), PODVISOR_EINVAL, "kind");
    EXPECT(podvisor_objects_watch(client, "IPPool", NULL, 0, NULL), PODVISOR_ENULL, "watch");
    EXPECT_OK(podvisor_objects_watch(client, "IPPool", NULL, revision, &watch));
    EXPECT(podvisor_object_watch_next(NULL, 0, &out), PODVISOR_ENULL, "watch");
    EXPECT(podvisor_object_watch_next(watch, 0, NULL), PODVISOR_ENULL, "json");
    EXPECT(podvisor_object_watch_next(watch, -7, &out), PODVISOR_EINVAL, "timeout_ms");
    EXPECT(podvisor_object_watch_next((podvisor_object_watch *)client, 0, &out), PODVISOR_EHANDLE, "watch");

    EXPECT(podvisor_objects_delete(NULL, "IPPool", NULL, "workload"), PODVISOR_ENULL, "client");
    EXPECT(podvisor_objects_delete(client, NULL, NULL, "workload"), PODVISOR_ENULL, "kind");
    EXPECT(podvisor_objects_delete(client, "IPPool", NULL, NULL), PODVISOR_ENULL, "name");
    EXPECT(podvisor_objects_delete(client, "IPPool", NULL, "missing"), PODVISOR_ENOTFOUND, NULL);
    EXPECT_OK(podvisor_objects_delete(client, "IPPool", NULL, "workload"));
    /* The delete arrives on the watch, after any progress notices. */
    {
        int i, seen = 0;
        for (i = 0; i < 20 && !seen; i++) {
            if (podvisor_object_watch_next(watch, 5000, &out) == PODVISOR_OK) {
                seen = strstr(out, "\"DELETE\"") != NULL;
                podvisor_free(out);
                out = NULL;
            }
        }
        CHECK(seen);
    }
    EXPECT(podvisor_object_watch_free((podvisor_object_watch *)client), PODVISOR_EHANDLE, "watch");
    EXPECT_OK(podvisor_object_watch_free(watch));
    EXPECT(podvisor_object_watch_next(watch, 0, &out), PODVISOR_EHANDLE, "watch");
    EXPECT(podvisor_object_watch_free(watch), PODVISOR_EHANDLE, "watch");
    EXPECT_OK(podvisor_object_watch_free(NULL));
}

/* Each string argument of the object calls, given invalid UTF-8, an empty and a too long string:
 * each is refused with its code, and the message names it. */
static void test_object_strings(podvisor_client *client) {
    podvisor_object_watch *watch = NULL;
    char *out = NULL;
    size_t i;

    for (i = 0; i < BAD_STRINGS; i++) {
        const char *bad = bad_strings[i];
        int want = bad_string_codes[i];
        EXPECT_NAMED(podvisor_objects_apply(client, POOL, strlen(POOL), bad, &out), want, "set");
        EXPECT_NAMED(podvisor_objects_apply_file(client, "/nonexistent", bad, &out), want, "set");
        EXPECT_NAMED(podvisor_objects_get(client, bad, NULL, "workload", &out), want, "kind");
        EXPECT_NAMED(podvisor_objects_get(client, "Pod", bad, "web", &out), want, "namespace");
        EXPECT_NAMED(podvisor_objects_get(client, "IPPool", NULL, bad, &out), want, "name");
        EXPECT_NAMED(podvisor_objects_list(client, bad, NULL, &out, NULL), want, "kind");
        EXPECT_NAMED(podvisor_objects_list(client, "Pod", bad, &out, NULL), want, "namespace");
        EXPECT_NAMED(podvisor_objects_delete(client, bad, NULL, "workload"), want, "kind");
        EXPECT_NAMED(podvisor_objects_delete(client, "Pod", bad, "web"), want, "namespace");
        EXPECT_NAMED(podvisor_objects_delete(client, "Pod", "default", bad), want, "name");
        EXPECT_NAMED(podvisor_objects_watch(client, bad, NULL, 0, &watch), want, "kind");
        EXPECT_NAMED(podvisor_objects_watch(client, "Pod", bad, 0, &watch), want, "namespace");
        EXPECT_NAMED(podvisor_pod_logs(client, bad, "web", NULL, &out), want, "namespace");
        EXPECT_NAMED(podvisor_pod_logs(client, NULL, bad, NULL, &out), want, "pod");
        EXPECT_NAMED(podvisor_pod_logs(client, NULL, "web", bad, &out), want, "container");
    }
    CHECK(out == NULL && watch == NULL);
}

/* A bad later out-pointer fails a call before it does anything: the earlier out-pointers keep
 * what they held, nothing is handed out (so nothing leaks), and no write is applied. */
static void test_out_pointers(podvisor_client *client) {
    const uint8_t *k = (const uint8_t *)"out/a";
    const uint8_t *other = (const uint8_t *)"out/b";
    podvisor_kvs *kvs = NULL;
    podvisor_txn *txn = NULL;
    podvisor_txn_result *result = NULL;
    char *json = NULL;
    uint64_t put_at = 0, revision = 77, deleted = 77;
    size_t len = 77;
    bool flag = false;

    EXPECT(podvisor_client_put(client, k, 5, (const uint8_t *)"v", 1, 0, MISALIGNED(uint64_t)),
           PODVISOR_EINVAL, "revision");
    EXPECT(podvisor_client_get(client, k, 5, &kvs), PODVISOR_ENOTFOUND, NULL);
    EXPECT_OK(podvisor_client_put(client, k, 5, (const uint8_t *)"v", 1, 0, &put_at));
    revision = 77;
    EXPECT(podvisor_client_delete(client, k, 5, NULL, 0, &deleted, MISALIGNED(uint64_t)),
           PODVISOR_EINVAL, "revision");
    EXPECT(podvisor_client_delete(client, k, 5, NULL, 0, MISALIGNED(uint64_t), &revision),
           PODVISOR_EINVAL, "deleted");
    CHECK(deleted == 77 && revision == 77);

    /* The key is still there. */
    EXPECT_OK(podvisor_client_get(client, k, 5, &kvs));
    flag = true;
    EXPECT(podvisor_kvs_info(kvs, &len, MISALIGNED(uint64_t), &flag), PODVISOR_EINVAL, "revision");
    EXPECT(podvisor_kvs_info(kvs, MISALIGNED(size_t), &revision, &flag), PODVISOR_EINVAL, "len");
    CHECK(len == 77 && revision == 77 && flag);
    EXPECT_OK(podvisor_kvs_info(kvs, &len, &revision, &flag));
    CHECK(len == 1 && revision == put_at && !flag);
    EXPECT_OK(podvisor_kvs_free(kvs));
    kvs = NULL;

    /* A transaction is not run. */
    EXPECT_OK(podvisor_txn_new(&txn));
    EXPECT_OK(podvisor_txn_put(txn, PODVISOR_TXN_SUCCESS, other, 5, (const uint8_t *)"v", 1, 0));
    flag = false;
    EXPECT(podvisor_client_txn(client, txn, &flag, MISALIGNED(uint64_t)), PODVISOR_EINVAL, "revision");
    CHECK(!flag);
    EXPECT(podvisor_client_get(client, other, 5, &kvs), PODVISOR_ENOTFOUND, NULL);
    EXPECT_OK(podvisor_client_txn_run(client, txn, &result));
    revision = 77;
    len = 77;
    EXPECT(podvisor_txn_result_info(result, &flag, &revision, MISALIGNED(size_t)), PODVISOR_EINVAL, "len");
    EXPECT(podvisor_txn_result_info(result, &flag, MISALIGNED(uint64_t), &len), PODVISOR_EINVAL, "revision");
    CHECK(!flag && revision == 77 && len == 77);
    EXPECT_OK(podvisor_txn_result_info(result, &flag, &revision, &len));
    CHECK(flag && revision > put_at && len == 1);
    EXPECT_OK(podvisor_txn_result_free(result));
    EXPECT_OK(podvisor_txn_free(txn));
    CHECK(kvs == NULL);

    /* No JSON is handed out, so none can leak. */
    EXPECT(podvisor_objects_list(client, "IPPool", NULL, &json, MISALIGNED(uint64_t)), PODVISOR_EINVAL,
           "revision");
    CHECK(json == NULL);

    /* Checked before the lease is looked up, granted or refreshed. */
    EXPECT(podvisor_client_lease_keep_alive(client, 0xdead, MISALIGNED(uint64_t)), PODVISOR_EINVAL,
           "ttl_secs");
    EXPECT(podvisor_client_lease_grant(client, 10, MISALIGNED(uint64_t)), PODVISOR_EINVAL, "id");
    EXPECT(podvisor_client_lease_time_to_live(client, 0xdead, MISALIGNED(uint64_t)), PODVISOR_EINVAL,
           "remaining_ms");
}

/* A node agent that runs (no pod is ever bound to it), then one stopped, then one freed. */
static void test_live_node_agent(podvisor_client *client) {
    char state_dir[] = "/tmp/podvisor-bad-args-node-XXXXXX";
    char cleanup[96];
    podvisor_node_agent_options opts;
    podvisor_node_agent *agent = NULL;
    char *addr = NULL;

    CHECK(mkdtemp(state_dir) != NULL);
    EXPECT_OK(podvisor_node_agent_options_init(&opts, sizeof opts));
    opts.name = "bad-args-node";
    opts.state_dir = state_dir;
    opts.agent_binary = "/nonexistent/agent";
    opts.cache_dir = "/nonexistent/cache";
    EXPECT_OK(podvisor_node_agent_start(client, &opts, &agent));
    if (agent != NULL) {
        EXPECT(podvisor_node_agent_address(agent, NULL), PODVISOR_ENULL, "addr");
        EXPECT(podvisor_node_agent_address(agent, MISALIGNED(char *)), PODVISOR_EINVAL, "addr");
        EXPECT_OK(podvisor_node_agent_address(agent, &addr));
        CHECK(addr != NULL && strncmp(addr, "127.0.0.1:", 10) == 0);
        podvisor_free(addr);
        addr = NULL;
        EXPECT_OK(podvisor_node_agent_stop(agent));
        EXPECT(podvisor_node_agent_stop(agent), PODVISOR_ESTATE, NULL);
        /* Stopped, the handle still tells where it served. */
        EXPECT_OK(podvisor_node_agent_address(agent, &addr));
        podvisor_free(addr);
        addr = NULL;
        EXPECT_OK(podvisor_node_agent_free(agent));
        EXPECT(podvisor_node_agent_address(agent, &addr), PODVISOR_EHANDLE, "agent");
        EXPECT(podvisor_node_agent_stop(agent), PODVISOR_EHANDLE, "agent");
        EXPECT(podvisor_node_agent_free(agent), PODVISOR_EHANDLE, "agent");
        CHECK(addr == NULL);
    }
    snprintf(cleanup, sizeof cleanup, "rm -rf '%s'", state_dir);
    CHECK(system(cleanup) == 0);
}

static void test_node_agent(podvisor_client *client) {
    podvisor_node_agent_options opts;
    podvisor_node_agent *agent = NULL;
    char *addr = NULL;

    TEST_INIT(podvisor_node_agent_options_init, podvisor_node_agent_options, "opts");
    EXPECT_OK(podvisor_node_agent_options_init(&opts, sizeof opts));
    EXPECT(podvisor_node_agent_start(NULL, &opts, &agent), PODVISOR_ENULL, "client");
    EXPECT(podvisor_node_agent_start(client, NULL, &agent), PODVISOR_ENULL, "opts");
    EXPECT(podvisor_node_agent_start(client, &opts, NULL), PODVISOR_ENULL, "agent");
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_ENULL, "opts->name");
    opts.name = INVALID_UTF8;
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_EUTF8, "opts->name");
    opts.name = "node-a";
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_ENULL, "opts->state_dir");
    opts.state_dir = "";
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_EINVAL, "opts->state_dir");
    opts.state_dir = "/nonexistent/state";
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_ENULL, "opts->agent_binary");
    opts.agent_binary = long_string;
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_EINVAL, "opts->agent_binary");
    opts.agent_binary = "/nonexistent/agent";
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_ENULL, "opts->cache_dir");
    opts.cache_dir = "/nonexistent/cache";
    opts.bridge = INVALID_UTF8;
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_EUTF8, "opts->bridge");
    opts.bridge = NULL;
    opts.listen = "not an address";
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_EINVAL, "opts->listen");
    opts.listen = NULL;
    opts.struct_size = 3;
    EXPECT(podvisor_node_agent_start(client, &opts, &agent), PODVISOR_EINVAL, "opts");
    EXPECT(podvisor_node_agent_start((podvisor_client *)&opts, &opts, &agent), PODVISOR_EHANDLE, "client");
    CHECK(agent == NULL);

    EXPECT(podvisor_node_agent_address(NULL, &addr), PODVISOR_ENULL, "agent");
    EXPECT(podvisor_node_agent_address((podvisor_node_agent *)client, &addr), PODVISOR_EHANDLE, "agent");
    EXPECT(podvisor_node_agent_stop(NULL), PODVISOR_ENULL, "agent");
    EXPECT(podvisor_node_agent_stop((podvisor_node_agent *)client), PODVISOR_EHANDLE, "agent");
    EXPECT(podvisor_node_agent_free((podvisor_node_agent *)client), PODVISOR_EHANDLE, "agent");
    EXPECT_OK(podvisor_node_agent_free(NULL));
    CHECK(addr == NULL);
    test_live_node_agent(client);
}

/* A transaction with reads returns their pairs; bad indexes and handles are refused. */
static void test_txn_results(podvisor_client *client) {
    podvisor_txn *txn = NULL;
    podvisor_txn_result *result = NULL;
    podvisor_kvs *kvs = NULL;
    podvisor_kv kv;
    bool succeeded = false;
    uint64_t revision = 0;
    size_t len = 0;
    const uint8_t *k = (const uint8_t *)"txn/a";

    EXPECT_OK(podvisor_kv_init(&kv, sizeof kv));
    EXPECT_OK(podvisor_txn_new(&txn));
    EXPECT_OK(podvisor_txn_compare(txn, k, 5, PODVISOR_COMPARE_VERSION, PODVISOR_COMPARE_EQUAL, NULL, 0, 0));
    EXPECT_OK(podvisor_txn_put(txn, PODVISOR_TXN_SUCCESS, k, 5, (const uint8_t *)"one", 3, 0));
    EXPECT_OK(podvisor_txn_range(txn, PODVISOR_TXN_SUCCESS, k, 5, NULL, 0, 0));
    EXPECT_OK(podvisor_txn_range(txn, PODVISOR_TXN_FAILURE, k, 5, NULL, 0, 0));
    EXPECT_OK(podvisor_client_txn_run(client, txn, &result));
    EXPECT(podvisor_txn_result_info(NULL, &succeeded, NULL, NULL), PODVISOR_ENULL, "result");
    EXPECT(podvisor_txn_result_info((podvisor_txn_result *)txn, &succeeded, NULL, NULL), PODVISOR_EHANDLE, "result");
    EXPECT_OK(podvisor_txn_result_info(result, NULL, NULL, NULL));
    EXPECT_OK(podvisor_txn_result_info(result, &succeeded, &revision, &len));
    CHECK(succeeded && revision > 0 && len == 2);
    EXPECT(podvisor_txn_result_range(NULL, 1, &kvs), PODVISOR_ENULL, "result");
    EXPECT(podvisor_txn_result_range(result, 1, NULL), PODVISOR_ENULL, "kvs");
    EXPECT(podvisor_txn_result_range(result, 0, &kvs), PODVISOR_EINVAL, "index");
    EXPECT(podvisor_txn_result_range(result, 2, &kvs), PODVISOR_EINVAL, "index");
    EXPECT(podvisor_txn_result_range(result, SIZE_MAX, &kvs), PODVISOR_EINVAL, "index");
    EXPECT(podvisor_txn_result_range((podvisor_txn_result *)client, 1, &kvs), PODVISOR_EHANDLE, "result");
    CHECK(kvs == NULL);
    EXPECT_OK(podvisor_txn_result_range(result, 1, &kvs));
    EXPECT(podvisor_txn_result_free((podvisor_txn_result *)txn), PODVISOR_EHANDLE, "result");
    EXPECT_OK(podvisor_txn_result_free(result));
    /* The pairs outlive the result they came from. */
    EXPECT_OK(podvisor_kvs_at(kvs, 0, &kv));
    CHECK(kv.value_len == 3 && memcmp(kv.value, "one", 3) == 0);
    EXPECT_OK(podvisor_kvs_free(kvs));
    kvs = NULL;
    EXPECT(podvisor_txn_result_info(result, &succeeded, NULL, NULL), PODVISOR_EHANDLE, "result");
    EXPECT(podvisor_txn_result_free(result), PODVISOR_EHANDLE, "result");
    EXPECT_OK(podvisor_txn_result_free(NULL));

    /* Run again: the key exists now, so the failure branch's read answers. */
    EXPECT_OK(podvisor_client_txn_run(client, txn, &result));
    EXPECT_OK(podvisor_txn_result_info(result, &succeeded, NULL, &len));
    CHECK(!succeeded && len == 1);
    EXPECT_OK(podvisor_txn_result_range(result, 0, &kvs));
    EXPECT_OK(podvisor_kvs_info(kvs, &len, NULL, NULL));
    CHECK(len == 1);
    EXPECT_OK(podvisor_kvs_free(kvs));
    EXPECT_OK(podvisor_txn_result_free(result));
    EXPECT_OK(podvisor_txn_free(txn));
}

static void test_controllers(podvisor_client *client) {
    podvisor_controllers_options opts;
    podvisor_controllers *controllers = NULL;

    TEST_INIT(podvisor_controllers_options_init, podvisor_controllers_options, "opts");
    EXPECT_OK(podvisor_controllers_options_init(&opts, sizeof opts));
    CHECK(opts.preferred_runtime_class == PODVISOR_RUNTIME_MICROVM);
    EXPECT(podvisor_controllers_start(NULL, &opts, &controllers), PODVISOR_ENULL, "client");
    EXPECT(podvisor_controllers_start(client, &opts, NULL), PODVISOR_ENULL, "controllers");
    opts.identity = INVALID_UTF8;
    EXPECT(podvisor_controllers_start(client, &opts, &controllers), PODVISOR_EUTF8, "opts->identity");
    opts.identity = long_string;
    EXPECT(podvisor_controllers_start(client, &opts, &controllers), PODVISOR_EINVAL, "opts->identity");
    opts.identity = "c-test";
    opts.preferred_runtime_class = 2;
    EXPECT(podvisor_controllers_start(client, &opts, &controllers), PODVISOR_EINVAL, "opts->preferred_runtime_class");
    opts.preferred_runtime_class = PODVISOR_RUNTIME_NAMESPACES;
    opts.struct_size = 1;
    EXPECT(podvisor_controllers_start(client, &opts, &controllers), PODVISOR_EINVAL, "opts");
    opts.struct_size = sizeof opts;
    EXPECT(podvisor_controllers_start((podvisor_client *)&opts, &opts, &controllers), PODVISOR_EHANDLE, "client");
    CHECK(controllers == NULL);

    EXPECT_OK(podvisor_controllers_start(client, &opts, &controllers));
    EXPECT(podvisor_controllers_stop(NULL), PODVISOR_ENULL, "controllers");
    EXPECT(podvisor_controllers_stop((podvisor_controllers *)client), PODVISOR_EHANDLE, "controllers");
    EXPECT_OK(podvisor_controllers_stop(controllers));
    EXPECT(podvisor_controllers_stop(controllers), PODVISOR_ESTATE, NULL);
    EXPECT(podvisor_controllers_free((podvisor_controllers *)client), PODVISOR_EHANDLE, "controllers");
    EXPECT_OK(podvisor_controllers_free(controllers));
    EXPECT(podvisor_controllers_stop(controllers), PODVISOR_EHANDLE, "controllers");
    EXPECT(podvisor_controllers_free(controllers), PODVISOR_EHANDLE, "controllers");
    EXPECT_OK(podvisor_controllers_free(NULL));
    /* Freed while running: stopped first. */
    EXPECT_OK(podvisor_controllers_start(client, NULL, &controllers));
    EXPECT_OK(podvisor_controllers_free(controllers));
}

static void test_pod_logs(podvisor_client *client) {
    char *text = NULL;

    EXPECT(podvisor_pod_logs(NULL, NULL, "web", NULL, &text), PODVISOR_ENULL, "client");
    EXPECT(podvisor_pod_logs(client, NULL, NULL, NULL, &text), PODVISOR_ENULL, "pod");
    EXPECT(podvisor_pod_logs(client, NULL, "", NULL, &text), PODVISOR_EINVAL, "pod");
    EXPECT(podvisor_pod_logs(client, NULL, long_string, NULL, &text), PODVISOR_EINVAL, "pod");
    EXPECT(podvisor_pod_logs(client, INVALID_UTF8, "web", NULL, &text), PODVISOR_EUTF8, "namespace");
    EXPECT(podvisor_pod_logs(client, NULL, "web", INVALID_UTF8, &text), PODVISOR_EUTF8, "container");
    EXPECT(podvisor_pod_logs(client, NULL, "web", NULL, NULL), PODVISOR_ENULL, "text");
    EXPECT(podvisor_pod_logs(client, NULL, "missing", NULL, &text), PODVISOR_ENOTFOUND, NULL);
    EXPECT(podvisor_pod_logs((podvisor_client *)&text, NULL, "web", NULL, &text), PODVISOR_EHANDLE, "client");
    EXPECT_OK(podvisor_objects_apply(client, POD, strlen(POD), NULL, &text));
    podvisor_free(text);
    text = NULL;
    EXPECT(podvisor_pod_logs(client, NULL, "lonely", "other", &text), PODVISOR_ENOTFOUND, "container");
    /* No controllers run here, so the pod is never bound to a node. */
    EXPECT(podvisor_pod_logs(client, NULL, "lonely", NULL, &text), PODVISOR_ESTATE, NULL);
    CHECK(text == NULL);
}

static void test_store(void) {
    char data_dir[] = "/tmp/podvisor-bad-args-XXXXXX";
    int not_a_handle = 0;
    podvisor_master_options mopts;
    podvisor_client_options copts;
    podvisor_master *master = NULL;
    podvisor_client *client = NULL;
    const char *members[1];
    const char *endpoints[1];
    char *addr = NULL;
    bool leader = false;
    int i;

    int client_port = free_port();
    snprintf(member_spec, sizeof member_spec, "1=127.0.0.1:%d,127.0.0.1:%d", free_port(), client_port);
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", client_port);
    members[0] = member_spec;
    endpoints[0] = endpoint;
    test_master_options();
    test_client_options();

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
    EXPECT(podvisor_master_client_addr(NULL, &addr), PODVISOR_ENULL, "master");
    EXPECT(podvisor_master_client_addr(master, NULL), PODVISOR_ENULL, "addr");
    EXPECT_OK(podvisor_master_client_addr(master, &addr));
    CHECK(addr != NULL && strcmp(addr, endpoint) == 0);
    podvisor_free(addr);
    EXPECT(podvisor_master_is_leader(NULL, &leader), PODVISOR_ENULL, "master");
    EXPECT(podvisor_master_is_leader(master, NULL), PODVISOR_ENULL, "leader");
    for (i = 0; i < 200 && !leader; i++) {
        struct timespec pause = {0, 50 * 1000 * 1000};
        EXPECT_OK(podvisor_master_is_leader(master, &leader));
        nanosleep(&pause, NULL);
    }
    CHECK(leader);

    EXPECT_OK(podvisor_client_options_init(&copts, sizeof copts));
    copts.endpoints = endpoints;
    copts.endpoints_len = 1;
    EXPECT_OK(podvisor_client_connect(&copts, &client));

    test_client_calls_with_handle(NULL, PODVISOR_ENULL, "client");
    test_client_calls_with_handle((podvisor_client *)&not_a_handle, PODVISOR_EHANDLE, "client");
    test_client_calls_with_handle((podvisor_client *)master, PODVISOR_EHANDLE, "client");
    test_key_arguments(client);
    test_results(client);
    test_watch_arguments(client);
    test_objects(client);
    test_object_strings(client);
    test_out_pointers(client);
    test_node_agent(client);
    test_txn_results(client);
    test_pod_logs(client);
    test_controllers(client);

    EXPECT(podvisor_master_stop((podvisor_master *)client), PODVISOR_EHANDLE, "master");
    EXPECT(podvisor_master_free((podvisor_master *)client), PODVISOR_EHANDLE, "master");
    EXPECT(podvisor_client_free((podvisor_client *)master), PODVISOR_EHANDLE, "client");
    EXPECT_OK(podvisor_client_free(client));
    test_client_calls_with_handle(client, PODVISOR_EHANDLE, "client");
    EXPECT(podvisor_client_free(client), PODVISOR_EHANDLE, "client");
    EXPECT_OK(podvisor_client_free(NULL));

    EXPECT(podvisor_master_stop(NULL), PODVISOR_ENULL, "master");
    EXPECT_OK(podvisor_master_stop(master));
    EXPECT(podvisor_master_stop(master), PODVISOR_ESTATE, NULL);
    EXPECT(podvisor_master_is_leader(master, &leader), PODVISOR_ESTATE, NULL);
    EXPECT_OK(podvisor_master_free(master));
    EXPECT(podvisor_master_client_addr(master, &addr), PODVISOR_EHANDLE, "master");
    EXPECT(podvisor_master_free(master), PODVISOR_EHANDLE, "master");
    EXPECT_OK(podvisor_master_free(NULL));
}

/* ---- sandboxes ---------------------------------------------------------------------------- */

static char sandbox_state[] = "/tmp/podvisor-bad-args-sandbox-XXXXXX";

static void test_sandbox_options(const char *agent) {
    podvisor_sandbox_options opts;
    podvisor_sandbox *sandbox = NULL;

    TEST_INIT(podvisor_sandbox_options_init, podvisor_sandbox_options, "opts");
    EXPECT_OK(podvisor_sandbox_options_init(&opts, sizeof opts));
    CHECK(opts.isolation == PODVISOR_ISOLATION_NAMESPACES && opts.guest_vcpus == 1);
    CHECK(opts.guest_memory_mib == 256 && opts.log_max_bytes > 0 && opts.id == NULL);

    EXPECT(podvisor_sandbox_create(NULL, &sandbox), PODVISOR_ENULL, "opts");
    EXPECT(podvisor_sandbox_check_host(NULL), PODVISOR_ENULL, "opts");
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_ENULL, "opts->id");
    opts.id = "";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->id");
    opts.id = INVALID_UTF8;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EUTF8, "opts->id");
    opts.id = long_string;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->id");
    opts.id = "bad-args";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_ENULL, "opts->state_dir");
    opts.state_dir = INVALID_UTF8;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EUTF8, "opts->state_dir");
    opts.state_dir = sandbox_state;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_ENULL, "opts->agent_binary");
    opts.agent_binary = "";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->agent_binary");
    opts.agent_binary = "/nonexistent/podvisor-agent";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_ENOTFOUND, "opts->agent_binary");
    EXPECT(podvisor_sandbox_check_host(&opts), PODVISOR_ENOTFOUND, "opts->agent_binary");
    opts.agent_binary = agent ? agent : "/bin/sh";
    EXPECT(podvisor_sandbox_create(&opts, NULL), PODVISOR_ENULL, "sandbox");
    opts.isolation = 2;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->isolation");
    opts.isolation = -1;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->isolation");
    opts.isolation = PODVISOR_ISOLATION_NAMESPACES;
    opts.cgroup_parent = "relative/group";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->cgroup_parent");
    opts.cgroup_parent = "/podvisor/../escape";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->cgroup_parent");
    opts.cgroup_parent = INVALID_UTF8;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EUTF8, "opts->cgroup_parent");
    opts.cgroup_parent = NULL;
    opts.bridge = "pv0";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_ENULL, "opts->address");
    opts.address = "10.88.0.5";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_ENULL, "opts->gateway");
    opts.gateway = "10.88.0.1";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->address");
    opts.address = "10.88.0.5/33";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->address");
    opts.address = "10.88.0.500/24";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->address");
    opts.address = "10.88.0.5/24";
    opts.gateway = "gateway";
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->gateway");
    opts.bridge = NULL;
    opts.guest_kernel = INVALID_UTF8;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EUTF8, "opts->guest_kernel");
    opts.guest_kernel = NULL;
    opts.guest_initramfs = long_string;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->guest_initramfs");
    opts.guest_initramfs = NULL;
    opts.guest_vcpus = 0;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->guest_vcpus");
    opts.guest_vcpus = 256;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->guest_vcpus");
    opts.guest_vcpus = 1;
    opts.guest_memory_mib = 0;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->guest_memory_mib");
    opts.guest_memory_mib = 256;
    opts.log_max_bytes = 0;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->log_max_bytes");
    opts.log_max_bytes = 1 << 20;
    opts.struct_size = 7;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts");
    EXPECT(podvisor_sandbox_check_host(&opts), PODVISOR_EINVAL, "opts");
    opts.struct_size = sizeof opts;

    /* A micro-VM needs no agent binary, and is refused here before anything starts. */
    opts.isolation = PODVISOR_ISOLATION_MICROVM;
    opts.agent_binary = NULL;
    if (podvisor_sandbox_check_host(&opts) != PODVISOR_OK) {
        EXPECT(podvisor_sandbox_check_host(&opts), PODVISOR_EUNSUPPORTED, NULL);
        EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EUNSUPPORTED, NULL);
    }
    CHECK(sandbox == NULL);
}

/* Every call that takes a podvisor_sandbox, given `sandbox`, expecting `want`. */
static void test_sandbox_calls_with_handle(podvisor_sandbox *sandbox, int want, const char *want_arg) {
    const char *args[] = {"true"};
    podvisor_container_options copts;
    podvisor_exec_options eopts;
    podvisor_process *process = NULL;
    char *path = NULL;
    EXPECT_OK(podvisor_container_options_init(&copts, sizeof copts));
    copts.name = "c";
    copts.rootfs = "/";
    EXPECT_OK(podvisor_exec_options_init(&eopts, sizeof eopts));
    eopts.args = args;
    eopts.args_len = 1;
    EXPECT(podvisor_sandbox_create_container(sandbox, &copts), want, want_arg);
    EXPECT(podvisor_sandbox_start(sandbox, "c", &process), want, want_arg);
    EXPECT(podvisor_sandbox_exec(sandbox, "c", &eopts, &process), want, want_arg);
    EXPECT(podvisor_sandbox_stop_container(sandbox, "c", 0, NULL), want, want_arg);
    EXPECT(podvisor_sandbox_remove_container(sandbox, "c"), want, want_arg);
    EXPECT(podvisor_sandbox_log_path(sandbox, "c", &path), want, want_arg);
    EXPECT(podvisor_sandbox_destroy(sandbox), want, want_arg);
    CHECK(process == NULL && path == NULL);
}

/* Every call that takes a podvisor_process, given `process`, expecting `want`. */
static void test_process_calls_with_handle(podvisor_process *process, int want, const char *want_arg) {
    podvisor_exit_status status;
    podvisor_stream stream;
    uint8_t *data = NULL;
    size_t len = 0;
    EXPECT_OK(podvisor_exit_status_init(&status, sizeof status));
    EXPECT(podvisor_process_read(process, 0, &stream, &data, &len), want, want_arg);
    EXPECT(podvisor_process_wait(process, 0, &status), want, want_arg);
    EXPECT(podvisor_process_write_stdin(process, (const uint8_t *)"x", 1), want, want_arg);
    EXPECT(podvisor_process_close_stdin(process), want, want_arg);
    EXPECT(podvisor_process_signal(process, 15), want, want_arg);
    CHECK(data == NULL);
}

/* Bad container names, in each call that takes one. */
static void test_container_arguments(podvisor_sandbox *sandbox) {
    const char *names[] = {NULL, "", INVALID_UTF8, long_string};
    const int codes[] = {PODVISOR_ENULL, PODVISOR_EINVAL, PODVISOR_EUTF8, PODVISOR_EINVAL};
    const char *args[] = {"true"};
    podvisor_exec_options eopts;
    podvisor_process *process = NULL;
    char *path = NULL;
    size_t i;
    EXPECT_OK(podvisor_exec_options_init(&eopts, sizeof eopts));
    eopts.args = args;
    eopts.args_len = 1;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        EXPECT(podvisor_sandbox_start(sandbox, names[i], &process), codes[i], "container");
        EXPECT(podvisor_sandbox_exec(sandbox, names[i], &eopts, &process), codes[i], "container");
        EXPECT(podvisor_sandbox_stop_container(sandbox, names[i], 0, NULL), codes[i], "container");
        EXPECT(podvisor_sandbox_remove_container(sandbox, names[i]), codes[i], "container");
        EXPECT(podvisor_sandbox_log_path(sandbox, names[i], &path), codes[i], "container");
    }
    /* A name that would lead out of the sandbox's directory. */
    EXPECT(podvisor_sandbox_log_path(sandbox, "../../etc", &path), PODVISOR_EINVAL, "container");
    EXPECT(podvisor_sandbox_log_path(sandbox, "c", NULL), PODVISOR_ENULL, "path");
    EXPECT(podvisor_sandbox_log_path(sandbox, "c", MISALIGNED(char *)), PODVISOR_EINVAL, "path");
    CHECK(process == NULL && path == NULL);
}

static void test_container_options(podvisor_sandbox *sandbox, const char *image) {
    const char *args[] = {"sleep", "1000"};
    const char *null_arg[] = {NULL};
    const char *utf8_env[] = {INVALID_UTF8};
    podvisor_container_options opts;

    TEST_INIT(podvisor_container_options_init, podvisor_container_options, "opts");
    EXPECT_OK(podvisor_container_options_init(&opts, sizeof opts));
    CHECK(opts.args_len == 0 && !opts.stdin && opts.memory_bytes == 0);
    EXPECT(podvisor_sandbox_create_container(sandbox, NULL), PODVISOR_ENULL, "opts");
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_ENULL, "opts->name");
    opts.name = INVALID_UTF8;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EUTF8, "opts->name");
    opts.name = "c";
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_ENULL, "opts->image");
    opts.image = "";
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EINVAL, "opts->image");
    opts.image = long_string;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EINVAL, "opts->image");
    opts.image = image;
    opts.rootfs = "/";
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EINVAL, "opts->rootfs");
    opts.image = NULL;
    opts.rootfs = "/nonexistent/rootfs";
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_ENOTFOUND, "opts->rootfs");
    opts.rootfs = NULL;
    opts.image = "/nonexistent/image";
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_ENOTFOUND, "opts->image");
    opts.image = image;
    opts.image_ref = INVALID_UTF8;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EUTF8, "opts->image_ref");
    opts.image_ref = NULL;
    opts.args_len = 2;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_ENULL, "opts->args");
    opts.args = null_arg;
    opts.args_len = 1;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_ENULL, "opts->args");
    opts.args = args;
    opts.args_len = 2;
    opts.env = utf8_env;
    opts.env_len = 1;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EUTF8, "opts->env");
    opts.env = NULL;
    opts.env_len = 0;
    opts.cwd = INVALID_UTF8;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EUTF8, "opts->cwd");
    opts.cwd = NULL;
    opts.user = long_string;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EINVAL, "opts->user");
    opts.user = NULL;
    opts.hostname = INVALID_UTF8;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EUTF8, "opts->hostname");
    opts.hostname = NULL;
    opts.name = "no/slashes";
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EINVAL, "opts->name");
    opts.name = "c";
    opts.struct_size = 9;
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EINVAL, "opts");
    opts.struct_size = sizeof opts;
    EXPECT_OK(podvisor_sandbox_create_container(sandbox, &opts));
    EXPECT(podvisor_sandbox_create_container(sandbox, &opts), PODVISOR_EEXISTS, "opts->name");
}

static void test_exec_options(podvisor_sandbox *sandbox) {
    const char *args[] = {"cat"};
    const char *empty_arg[] = {""};
    podvisor_exec_options opts;
    podvisor_process *process = NULL;

    TEST_INIT(podvisor_exec_options_init, podvisor_exec_options, "opts");
    EXPECT_OK(podvisor_exec_options_init(&opts, sizeof opts));
    EXPECT(podvisor_sandbox_exec(sandbox, "c", NULL, &process), PODVISOR_ENULL, "opts");
    EXPECT(podvisor_sandbox_exec(sandbox, "c", &opts, &process), PODVISOR_EINVAL, "opts->args");
    opts.args_len = 1;
    EXPECT(podvisor_sandbox_exec(sandbox, "c", &opts, &process), PODVISOR_ENULL, "opts->args");
    opts.args = empty_arg;
    EXPECT(podvisor_sandbox_exec(sandbox, "c", &opts, &process), PODVISOR_EINVAL, "opts->args");
    opts.args = args;
    opts.env_len = 1;
    EXPECT(podvisor_sandbox_exec(sandbox, "c", &opts, &process), PODVISOR_ENULL, "opts->env");
    opts.env_len = 0;
    opts.user = INVALID_UTF8;
    EXPECT(podvisor_sandbox_exec(sandbox, "c", &opts, &process), PODVISOR_EUTF8, "opts->user");
    opts.user = NULL;
    EXPECT(podvisor_sandbox_exec(sandbox, "c", &opts, NULL), PODVISOR_ENULL, "process");
    opts.struct_size = 0;
    EXPECT(podvisor_sandbox_exec(sandbox, "c", &opts, &process), PODVISOR_EINVAL, "opts");
    opts.struct_size = sizeof opts;
    /* Created, not started: there is nothing to exec into yet. */
    EXPECT(podvisor_sandbox_exec(sandbox, "c", &opts, &process), PODVISOR_ESTATE, NULL);
    /* Nor anything to stop; stopping leaves it startable. */
    EXPECT(podvisor_sandbox_stop_container(sandbox, "c", 0, NULL), PODVISOR_ESTATE, NULL);
    EXPECT(podvisor_sandbox_exec(sandbox, "missing", &opts, &process), PODVISOR_ENOTFOUND, NULL);
    CHECK(process == NULL);
}

static void test_process_arguments(podvisor_sandbox *sandbox, podvisor_txn *other) {
    const char *args[] = {"cat"};
    podvisor_exec_options opts;
    podvisor_exit_status status;
    podvisor_process *process = NULL;
    podvisor_stream stream;
    uint8_t *data = NULL;
    size_t len = 0;

    TEST_INIT(podvisor_exit_status_init, podvisor_exit_status, "exit");
    EXPECT_OK(podvisor_sandbox_start(sandbox, "c", &process));
    EXPECT(podvisor_sandbox_start(sandbox, "c", NULL), PODVISOR_ESTATE, NULL);
    EXPECT_OK(podvisor_process_free(process));
    EXPECT_OK(podvisor_exec_options_init(&opts, sizeof opts));
    opts.args = args;
    opts.args_len = 1;
    /* A byte other than 0 or 1, as memset leaves it: any non-zero byte is true. */
    memset(&opts.stdin, 0xab, sizeof opts.stdin);
    EXPECT_OK(podvisor_sandbox_exec(sandbox, "c", &opts, &process));
    if (process == NULL) {
        return;
    }
    EXPECT(podvisor_process_read(process, 0, NULL, &data, &len), PODVISOR_ENULL, "stream");
    EXPECT(podvisor_process_read(process, 0, &stream, NULL, &len), PODVISOR_ENULL, "data");
    EXPECT(podvisor_process_read(process, 0, &stream, &data, NULL), PODVISOR_ENULL, "len");
    EXPECT(podvisor_process_read(process, -2, &stream, &data, &len), PODVISOR_EINVAL, "timeout_ms");
    EXPECT(podvisor_process_read(process, 0, &stream, &data, &len), PODVISOR_ETIMEOUT, NULL);
    EXPECT(podvisor_process_wait(process, -5, NULL), PODVISOR_EINVAL, "timeout_ms");
    EXPECT_OK(podvisor_exit_status_init(&status, sizeof status));
    status.struct_size = 3;
    EXPECT(podvisor_process_wait(process, 0, &status), PODVISOR_EINVAL, "exit");
    EXPECT(podvisor_sandbox_stop_container(sandbox, "c", 0, &status), PODVISOR_EINVAL, "exit");
    EXPECT(podvisor_process_wait(process, 0, MISALIGNED(podvisor_exit_status)), PODVISOR_EINVAL, "exit");
    FILL_RESULT(status);
    EXPECT(podvisor_process_wait(process, 0, &status), PODVISOR_ETIMEOUT, NULL);
    CHECK(UNTOUCHED(status));
    EXPECT(podvisor_process_wait(process, 0, NULL), PODVISOR_ETIMEOUT, NULL);
    EXPECT(podvisor_process_write_stdin(process, NULL, 5), PODVISOR_ENULL, "input");
    EXPECT_OK(podvisor_process_write_stdin(process, NULL, 0));
    EXPECT(podvisor_process_signal(process, 0), PODVISOR_EINVAL, "signo");
    EXPECT(podvisor_process_signal(process, 65), PODVISOR_EINVAL, "signo");
    EXPECT(podvisor_process_signal(process, -9), PODVISOR_EINVAL, "signo");
    /* Bytes with a NUL in them are bytes: they go through. */
    EXPECT_OK(podvisor_process_write_stdin(process, (const uint8_t *)"a\0b", 3));
    EXPECT_OK(podvisor_process_close_stdin(process));
    EXPECT_OK(podvisor_process_wait(process, 30000, NULL));
    FILL_RESULT(status);
    EXPECT_OK(podvisor_process_wait(process, -1, &status));
    CHECK(status.struct_size == sizeof status && !status.signaled && status.code == 0);
    CHECK(status.signal == 0 && !status.oom_killed);
    /* Refused before a chunk is taken: the read after it still gets the output. */
    EXPECT(podvisor_process_read(process, 0, &stream, &data, MISALIGNED(size_t)), PODVISOR_EINVAL, "len");
    CHECK(data == NULL);
    EXPECT_OK(podvisor_process_read(process, 0, &stream, &data, &len));
    CHECK(stream == PODVISOR_STREAM_STDOUT && len == 3 && memcmp(data, "a\0b", 3) == 0);
    podvisor_free(data);
    data = NULL;
    EXPECT(podvisor_process_read(process, 0, &stream, &data, &len), PODVISOR_EDONE, NULL);

    test_process_calls_with_handle((podvisor_process *)sandbox, PODVISOR_EHANDLE, "process");
    test_process_calls_with_handle((podvisor_process *)other, PODVISOR_EHANDLE, "process");
    EXPECT(podvisor_process_free((podvisor_process *)sandbox), PODVISOR_EHANDLE, "process");
    EXPECT_OK(podvisor_process_free(process));
    test_process_calls_with_handle(process, PODVISOR_EHANDLE, "process");
    EXPECT(podvisor_process_free(process), PODVISOR_EHANDLE, "process");
    CHECK(data == NULL);
}

/* A bad exit struct fails the stop before the container is touched; a good one, filled with
 * 0xab but for its size, gets how the process ended. */
static void test_stop_container(podvisor_sandbox *sandbox) {
    const char *args[] = {"true"};
    podvisor_exec_options opts;
    podvisor_exit_status status;
    podvisor_process *process = NULL;

    EXPECT(podvisor_sandbox_stop_container(sandbox, "c", 0, MISALIGNED(podvisor_exit_status)),
           PODVISOR_EINVAL, "exit");
    /* Still running: a process can be exec'd into it. */
    EXPECT_OK(podvisor_exec_options_init(&opts, sizeof opts));
    opts.args = args;
    opts.args_len = 1;
    EXPECT_OK(podvisor_sandbox_exec(sandbox, "c", &opts, &process));
    if (process != NULL) {
        FILL_RESULT(status);
        EXPECT_OK(podvisor_process_wait(process, 30000, &status));
        CHECK(!status.signaled && status.code == 0);
        EXPECT_OK(podvisor_process_free(process));
    }
    FILL_RESULT(status);
    EXPECT_OK(podvisor_sandbox_stop_container(sandbox, "c", 0, &status));
    CHECK(status.struct_size == sizeof status && !status.oom_killed);
    CHECK(status.signaled ? status.signal > 0 && status.code == 0 : status.signal == 0);
}

static void test_sandbox(const char *agent, const char *image) {
    int not_a_handle = 0;
    podvisor_sandbox_options opts;
    podvisor_sandbox *sandbox = NULL;
    podvisor_txn *other = NULL;

    CHECK(mkdtemp(sandbox_state) != NULL);
    test_sandbox_options(agent);
    EXPECT_OK(podvisor_txn_new(&other));
    test_sandbox_calls_with_handle(NULL, PODVISOR_ENULL, "sandbox");
    test_sandbox_calls_with_handle((podvisor_sandbox *)&not_a_handle, PODVISOR_EHANDLE, "sandbox");
    test_sandbox_calls_with_handle((podvisor_sandbox *)other, PODVISOR_EHANDLE, "sandbox");
    test_process_calls_with_handle(NULL, PODVISOR_ENULL, "process");
    test_process_calls_with_handle((podvisor_process *)&not_a_handle, PODVISOR_EHANDLE, "process");
    EXPECT(podvisor_sandbox_free((podvisor_sandbox *)other), PODVISOR_EHANDLE, "sandbox");
    EXPECT(podvisor_process_free((podvisor_process *)other), PODVISOR_EHANDLE, "process");
    /* The out-pointer is checked first, so this needs no live sandbox. */
    EXPECT(podvisor_sandbox_log_path((podvisor_sandbox *)other, "c", NULL), PODVISOR_ENULL, "path");
    EXPECT_OK(podvisor_sandbox_free(NULL));
    EXPECT_OK(podvisor_process_free(NULL));

    if (agent == NULL || image == NULL || geteuid() != 0) {
        printf("bad_args: no agent, image or root; a live sandbox handle is not exercised\n");
        EXPECT_OK(podvisor_txn_free(other));
        rmdir(sandbox_state);
        return;
    }
    EXPECT_OK(podvisor_sandbox_options_init(&opts, sizeof opts));
    opts.id = "no/slashes";
    opts.state_dir = sandbox_state;
    opts.agent_binary = agent;
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EINVAL, "opts->id");
    opts.id = "bad-args";
    EXPECT_OK(podvisor_sandbox_create(&opts, &sandbox));
    if (sandbox != NULL) {
        test_container_arguments(sandbox);
        test_container_options(sandbox, image);
        test_exec_options(sandbox);
        test_process_arguments(sandbox, other);
        test_stop_container(sandbox);
        EXPECT(podvisor_sandbox_remove_container(sandbox, "missing"), PODVISOR_ENOTFOUND, NULL);
        EXPECT_OK(podvisor_sandbox_remove_container(sandbox, "c"));
        EXPECT_OK(podvisor_sandbox_destroy(sandbox));
        test_sandbox_calls_with_handle(sandbox, PODVISOR_ESTATE, NULL);
        EXPECT_OK(podvisor_sandbox_free(sandbox));
        test_sandbox_calls_with_handle(sandbox, PODVISOR_EHANDLE, "sandbox");
        EXPECT(podvisor_sandbox_free(sandbox), PODVISOR_EHANDLE, "sandbox");
    }
    EXPECT_OK(podvisor_txn_free(other));
    rmdir(sandbox_state);
}

int main(void) {
    const char *kernel = getenv("PODVISOR_TEST_KERNEL");
    const char *agent = getenv("PODVISOR_AGENT");
    const char *image = getenv("PODVISOR_TEST_IMAGE");
    long_string = malloc(PODVISOR_MAX_STRING_LEN + 2);
    memset(long_string, 'a', PODVISOR_MAX_STRING_LEN + 1);
    long_string[PODVISOR_MAX_STRING_LEN + 1] = '\0';
    bad_strings[0] = INVALID_UTF8;
    bad_strings[1] = "";
    bad_strings[2] = long_string;

    test_version();
    test_errors();
    test_log();
    test_host_probe();
    test_vm_start(kernel);
    test_vm_handles(kernel);
    test_store();
    test_sandbox(agent, image);

    free(long_string);
    CHECK_DONE("bad_args");
}
