/* Boots the guest kernel directly, reads its console until the banner appears, stops the VM
 * and reads back why it ended. Skips, saying why, without a kernel (PODVISOR_TEST_KERNEL) or a
 * usable KVM. */
#include <stdlib.h>
#include <string.h>

#include "check.h"

int main(void) {
    const char *kernel = getenv("PODVISOR_TEST_KERNEL");
    podvisor_host_info info;
    podvisor_vm_options opts;
    podvisor_vm_exit exit_info;
    podvisor_vm *vm = NULL;
    uint8_t *console = NULL;
    size_t len = 0;
    char *description = NULL;

    EXPECT_OK(podvisor_host_info_init(&info, sizeof info));
    if (kernel == NULL || podvisor_host_probe(NULL, &info) != PODVISOR_OK) {
        printf("vm_boot: skipped: %s\n", kernel ? podvisor_last_error_message() : "no kernel");
        return 0;
    }
    /* A software-paged KVM (PVM) emulates guest ring 0: the banner takes minutes there. */
    if (!info.hardware_assisted && getenv("PODVISOR_TEST_SLOW_BOOT") == NULL) {
        printf("vm_boot: skipped: KVM is not hardware-assisted here; set PODVISOR_TEST_SLOW_BOOT "
               "to boot anyway\n");
        return 0;
    }
    EXPECT_OK(podvisor_vm_options_init(&opts, sizeof opts));
    opts.kernel_path = kernel;
    opts.cmdline = "console=ttyS0 panic=-1";
    EXPECT_OK(podvisor_vm_start(&opts, &vm));
    if (vm == NULL) {
        CHECK_DONE("vm_boot");
    }
    if (podvisor_vm_console_wait_for(vm, "Linux version", 180000) == PODVISOR_OK) {
        /* Without a timeout: the banner is there, so this returns at once. */
        EXPECT_OK(podvisor_vm_console_wait_for(vm, "Linux version", -1));
    } else {
        EXPECT_OK(podvisor_vm_console_wait_for(vm, "Linux version", 0));
    }
    EXPECT_OK(podvisor_vm_console_read(vm, 0, &console, &len));
    CHECK(console != NULL && len > 0 && strstr((const char *)console, "Linux version") != NULL);
    podvisor_free(console);
    EXPECT_OK(podvisor_vm_console_read(vm, len, &console, &len));
    podvisor_free(console);

    /* A result struct is only written: bytes that are no valid enum are fine. */
    memset(&exit_info, 0xab, sizeof exit_info);
    exit_info.struct_size = sizeof exit_info;
    EXPECT_OK(podvisor_vm_exit_status(vm, &exit_info));
    CHECK(exit_info.reason == PODVISOR_VM_RUNNING || exit_info.reason == PODVISOR_VM_EXIT_SHUTDOWN);
    EXPECT_OK(podvisor_vm_stop(vm));
    EXPECT_OK(podvisor_vm_wait(vm, 10000, &exit_info));
    EXPECT_OK(podvisor_vm_exit_describe(vm, &description));
    printf("vm_boot: banner seen, VM ended: %s\n", description);
    podvisor_free(description);
    EXPECT_OK(podvisor_vm_free(vm));
    CHECK_DONE("vm_boot");
}
