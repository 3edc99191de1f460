/* Every entry point of libpodvisor, given bad arguments: NULL in each pointer slot, invalid
 * UTF-8, empty and very long strings, wrong-type, foreign and freed handles, options structs
 * with a bad size. Each must return its documented code with a message, never crash, and leak
 * nothing (the test runs under AddressSanitizer and LeakSanitizer).
 *
 * The environment may name a kernel (PODVISOR_TEST_KERNEL); with it, and a usable KVM, the VM
 * calls are also given a real handle that is then freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char INVALID_UTF8[] = "bad\xff\xfeutf8";
static char *long_string; /* PODVISOR_MAX_STRING_LEN + 1 bytes of 'a' */
static int have_kvm;

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

    EXPECT_OK(podvisor_host_info_init(&info, sizeof info));
    have_kvm = podvisor_host_probe(NULL, &info) == PODVISOR_OK;
    if (have_kvm) {
        CHECK(info.max_vcpus >= 1);
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
    EXPECT_OK(podvisor_vm_console_write(vm, NULL, 0, &len));
    CHECK(len == 0);
    EXPECT(podvisor_vm_exit_status(vm, NULL), PODVISOR_ENULL, "exit");
    EXPECT(podvisor_vm_exit_describe(vm, NULL), PODVISOR_ENULL, "text");
    EXPECT_OK(podvisor_vm_exit_init(&exit_info, sizeof exit_info));
    exit_info.struct_size = 2;
    EXPECT(podvisor_vm_exit_status(vm, &exit_info), PODVISOR_EINVAL, "exit");
    EXPECT(podvisor_vm_wait(vm, 0, &exit_info), PODVISOR_EINVAL, "exit");
    EXPECT(podvisor_vm_wait(vm, -2, NULL), PODVISOR_EINVAL, "timeout_ms");
    EXPECT_OK(podvisor_vm_exit_init(&exit_info, sizeof exit_info));
    EXPECT_OK(podvisor_vm_exit_status(vm, &exit_info));
    EXPECT_OK(podvisor_vm_stop(vm));
    EXPECT_OK(podvisor_vm_wait(vm, -1, &exit_info));
    CHECK(exit_info.reason == PODVISOR_VM_EXIT_HOST_STOP);
    EXPECT_OK(podvisor_vm_exit_describe(vm, &text));
    CHECK(text != NULL && strcmp(text, "stopped by the host") == 0);
    podvisor_free(text);
    EXPECT_OK(podvisor_vm_free(vm));

    /* The handle is freed: every call must detect it. */
    test_vm_calls_with_handle(vm, PODVISOR_EHANDLE, "vm");
    EXPECT(podvisor_vm_free(vm), PODVISOR_EHANDLE, "vm");
}

int main(void) {
    const char *kernel = getenv("PODVISOR_TEST_KERNEL");
    long_string = malloc(PODVISOR_MAX_STRING_LEN + 2);
    memset(long_string, 'a', PODVISOR_MAX_STRING_LEN + 1);
    long_string[PODVISOR_MAX_STRING_LEN + 1] = '\0';

    test_version();
    test_errors();
    test_log();
    test_host_probe();
    test_vm_start(kernel);
    test_vm_handles(kernel);

    free(long_string);
    CHECK_DONE("bad_args");
}
