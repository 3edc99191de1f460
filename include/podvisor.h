/**
 * @file podvisor.h
 * @brief libpodvisor: the C ABI of podvisor.
 *
 * podvisor runs pods in their own KVM micro-VMs under a three-master, Raft-replicated control
 * plane. This header is its C interface. It is generated from the `podvisor-ffi` crate; do not
 * edit it by hand.
 *
 * Conventions that hold for every function unless its documentation says otherwise:
 *
 * - Every fallible call returns a ::podvisor_error_code: `PODVISOR_OK` (0) or a negative code.
 *   On failure, podvisor_last_error_message() and podvisor_last_error_argument() tell what
 *   failed and which argument was to blame. Every such call first clears the calling thread's
 *   last error.
 * - Every pointer argument is checked: NULL where a value is needed gives `PODVISOR_ENULL`.
 *   Out-parameters are written only on success.
 * - Strings are NUL-terminated UTF-8 (`PODVISOR_EUTF8` otherwise), at most
 *   `PODVISOR_MAX_STRING_LEN` bytes (`PODVISOR_EINVAL` otherwise). Calls that take a pointer and
 *   a length accept any size, and refuse an embedded NUL in text with `PODVISOR_EINVAL`.
 * - Strings and buffers the library returns for the caller to own are freed with
 *   podvisor_free(). Strings the library keeps ownership of are marked as such.
 * - Handles are opaque pointers. Each is freed with its own `*_free` function, and
 *   `*_free(NULL)` does nothing. A handle of the wrong type, or one already freed, gives
 *   `PODVISOR_EHANDLE` (except when its address has since been reused by a new handle of the
 *   same type, which cannot be detected).
 * - Options structs start with `struct_size`; initialise them with their init function, which
 *   takes `sizeof` the struct, then set the fields you need.
 * - No call lets a Rust panic cross into C: one is reported as `PODVISOR_EPANIC`.
 * - Callbacks run on threads libpodvisor starts, each with an alternate signal stack installed
 *   (so a Go host may take them); never on the caller's thread, never concurrently for the same
 *   registration. A callback must not unwind.
 */


#ifndef PODVISOR_H
#define PODVISOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/**
 * The longest string libpodvisor accepts through a NUL-terminated argument, in bytes. Longer
 * ones fail with `PODVISOR_EINVAL`; text of any size goes through the length-taking calls.
 */
#define PODVISOR_MAX_STRING_LEN 65536

/**
 * The major release version of this header.
 */
#define PODVISOR_VERSION_MAJOR 0

/**
 * The minor release version of this header.
 */
#define PODVISOR_VERSION_MINOR 1

/**
 * The patch release version of this header.
 */
#define PODVISOR_VERSION_PATCH 0

/**
 * The release version of this header as one number, `MAJOR * 1000000 + MINOR * 1000 + PATCH`.
 */
#define PODVISOR_VERSION_NUMBER (((PODVISOR_VERSION_MAJOR * 1000000) + (PODVISOR_VERSION_MINOR * 1000)) + PODVISOR_VERSION_PATCH)

/**
 * The ABI version of this header; compare it with `podvisor_abi_version()` at run time.
 */
#define PODVISOR_ABI_VERSION 1

/**
 * The result of every fallible libpodvisor call.
 *
 * `PODVISOR_OK` (zero) is success; every failure is negative. The values are part of the ABI:
 * a code keeps its number forever, and new codes are only ever added at the end. A host should
 * treat an unknown negative code like `PODVISOR_ERROR`.
 */
typedef enum podvisor_error_code {
  /**
   * Success.
   */
  PODVISOR_OK = 0,
  /**
   * A failure that fits no other code; the message says what happened.
   */
  PODVISOR_ERROR = -1,
  /**
   * A pointer argument that must not be NULL was NULL.
   */
  PODVISOR_ENULL = -2,
  /**
   * A string argument was not valid UTF-8.
   */
  PODVISOR_EUTF8 = -3,
  /**
   * An argument had a value the call does not accept: an embedded NUL, an empty or too long
   * string, a number out of range, an options struct with a `struct_size` the library does
   * not know, or text that does not parse.
   */
  PODVISOR_EINVAL = -4,
  /**
   * A handle was of the wrong type or had already been freed.
   */
  PODVISOR_EHANDLE = -5,
  /**
   * libpodvisor hit an internal bug (a Rust panic). It was caught at the boundary; the
   * message holds the panic's text. The handles involved may be unusable.
   */
  PODVISOR_EPANIC = -6,
  /**
   * The thing asked for does not exist: a key, an object, a lease, a file.
   */
  PODVISOR_ENOTFOUND = -7,
  /**
   * The thing to create already exists.
   */
  PODVISOR_EEXISTS = -8,
  /**
   * The object is in a state that does not allow the call (already stopped, still running,
   * a callback already registered by someone else).
   */
  PODVISOR_ESTATE = -9,
  /**
   * The call gave up after its timeout.
   */
  PODVISOR_ETIMEOUT = -10,
  /**
   * The peer (a master, the leader, an agent) could not be reached or is not serving.
   */
  PODVISOR_EUNAVAILABLE = -11,
  /**
   * An operating system call failed; the message holds the OS error.
   */
  PODVISOR_EOS = -12,
  /**
   * The host does not support what was asked (no KVM, no hardware-assisted virtualization,
   * an isolation level this host cannot provide).
   */
  PODVISOR_EUNSUPPORTED = -13,
  /**
   * The revision asked for has been compacted away.
   */
  PODVISOR_ECOMPACTED = -14,
  /**
   * A compare-and-set or update lost a race with another writer.
   */
  PODVISOR_ECONFLICT = -15,
  /**
   * Not an error: an iteration or a poll has nothing (more) to return.
   */
  PODVISOR_EDONE = -16,
} podvisor_error_code;

/**
 * The severity of a log record; higher is more verbose.
 */
typedef enum podvisor_log_level {
  /**
   * No records at all.
   */
  PODVISOR_LOG_OFF = 0,
  /**
   * Something failed.
   */
  PODVISOR_LOG_ERROR = 1,
  /**
   * Something unexpected that podvisor recovered from.
   */
  PODVISOR_LOG_WARN = 2,
  /**
   * A state change an operator cares about.
   */
  PODVISOR_LOG_INFO = 3,
  /**
   * Detail for debugging, including every failed libpodvisor call.
   */
  PODVISOR_LOG_DEBUG = 4,
  /**
   * Everything.
   */
  PODVISOR_LOG_TRACE = 5,
} podvisor_log_level;

/**
 * Why a VM stopped running.
 */
typedef enum podvisor_vm_exit_reason {
  /**
   * The VM still runs.
   */
  PODVISOR_VM_RUNNING = 0,
  /**
   * The guest powered off.
   */
  PODVISOR_VM_EXIT_SHUTDOWN = 1,
  /**
   * The guest asked for a reset; podvisor ends the VM instead of rebooting it.
   */
  PODVISOR_VM_EXIT_RESET = 2,
  /**
   * A vCPU triple-faulted; `vcpu` and `rip` say where.
   */
  PODVISOR_VM_EXIT_TRIPLE_FAULT = 3,
  /**
   * KVM could not emulate a guest instruction; `vcpu` and `rip` say where.
   */
  PODVISOR_VM_EXIT_EMULATION_FAILURE = 4,
  /**
   * KVM reported an internal error or a failed VM entry; `vcpu` and `rip` say where.
   */
  PODVISOR_VM_EXIT_INTERNAL_ERROR = 5,
  /**
   * The host stopped the VM (`podvisor_vm_stop`).
   */
  PODVISOR_VM_EXIT_HOST_STOP = 6,
  /**
   * `podvisor_vm_wait` ran out of time and stopped the VM.
   */
  PODVISOR_VM_EXIT_TIMEOUT = 7,
} podvisor_vm_exit_reason;

/**
 * How this host's KVM runs guests.
 */
typedef enum podvisor_kvm_mode {
  /**
   * KVM opened, but its kind could not be identified.
   */
  PODVISOR_KVM_UNKNOWN = 0,
  /**
   * Hardware-assisted, Intel VMX.
   */
  PODVISOR_KVM_VMX = 1,
  /**
   * Hardware-assisted, AMD SVM.
   */
  PODVISOR_KVM_SVM = 2,
  /**
   * PVM, software-paged: guest ring 0 is emulated, so Linux guests boot very slowly.
   */
  PODVISOR_KVM_PVM = 3,
} podvisor_kvm_mode;

/**
 * How the vCPUs enter the kernel.
 */
typedef enum podvisor_boot_protocol {
  /**
   * PVH for an ELF vmlinux with a PVH note, the Linux 64-bit boot protocol otherwise.
   */
  PODVISOR_BOOT_AUTO = 0,
  /**
   * PVH: the kernel must be an ELF vmlinux with a PVH entry note.
   */
  PODVISOR_BOOT_PVH = 1,
  /**
   * The Linux 64-bit boot protocol, for a bzImage or an ELF vmlinux.
   */
  PODVISOR_BOOT_LINUX64 = 2,
} podvisor_boot_protocol;

/**
 * A running or ended virtual machine. Created by `podvisor_vm_start`, freed by
 * `podvisor_vm_free`.
 */
typedef struct podvisor_vm podvisor_vm;

/**
 * One log record, valid only during the callback that receives it.
 */
typedef struct podvisor_log_record {
  /**
   * `sizeof(podvisor_log_record)` as this library knows it; fields past the size the host
   * was built with are to be ignored.
   */
  size_t struct_size;
  /**
   * The record's severity.
   */
  enum podvisor_log_level level;
  /**
   * The Rust module that emitted the record, NUL-terminated UTF-8.
   */
  const char *target;
  /**
   * The message followed by the record's fields as ` key=value`, NUL-terminated UTF-8.
   */
  const char *message;
  /**
   * The source file, or NULL if unknown.
   */
  const char *file;
  /**
   * The source line, or 0 if unknown.
   */
  uint32_t line;
} podvisor_log_record;

/**
 * Receives one log record on libpodvisor's log delivery thread.
 *
 * `record` and its strings are owned by libpodvisor and valid only until the callback returns.
 * The callback must not unwind (no C++ exception, no `longjmp` out of it).
 */
typedef void (*podvisor_log_callback)(const struct podvisor_log_record *record, void *userdata);

/**
 * What `podvisor_vm_start` boots. Initialise with `podvisor_vm_options_init`.
 */
typedef struct podvisor_vm_options {
  /**
   * `sizeof(podvisor_vm_options)`, set by `podvisor_vm_options_init`.
   */
  size_t struct_size;
  /**
   * The kernel, a bzImage or an ELF vmlinux. Required; borrowed for the call only.
   */
  const char *kernel_path;
  /**
   * An initramfs, or NULL for none. Borrowed for the call only.
   */
  const char *initrd_path;
  /**
   * The kernel command line, or NULL for `"console=ttyS0"`. Borrowed for the call only.
   */
  const char *cmdline;
  /**
   * The number of vCPUs; default 1.
   */
  uint32_t vcpus;
  /**
   * Guest RAM in MiB; default 128.
   */
  uint64_t memory_mib;
  /**
   * A `podvisor_boot_protocol`; default `PODVISOR_BOOT_AUTO`.
   */
  int32_t boot_protocol;
  /**
   * The KVM device, or NULL for `/dev/kvm`. Borrowed for the call only.
   */
  const char *kvm_path;
} podvisor_vm_options;

/**
 * How a VM ended. Initialise with `podvisor_vm_exit_init`; libpodvisor fills it.
 */
typedef struct podvisor_vm_exit {
  /**
   * `sizeof(podvisor_vm_exit)`, set by `podvisor_vm_exit_init`.
   */
  size_t struct_size;
  /**
   * Why the VM ended, or `PODVISOR_VM_RUNNING`.
   */
  enum podvisor_vm_exit_reason reason;
  /**
   * The vCPU at fault, for the fault reasons; 0 otherwise.
   */
  uint32_t vcpu;
  /**
   * The guest instruction pointer at the fault, for the fault reasons; 0 otherwise.
   */
  uint64_t rip;
} podvisor_vm_exit;

/**
 * What `podvisor_host_probe` found. Initialise with `podvisor_host_info_init`.
 */
typedef struct podvisor_host_info {
  /**
   * `sizeof(podvisor_host_info)`, set by `podvisor_host_info_init`.
   */
  size_t struct_size;
  /**
   * How KVM runs guests here.
   */
  enum podvisor_kvm_mode kvm_mode;
  /**
   * Whether guest kernels run natively (VMX or SVM).
   */
  bool hardware_assisted;
  /**
   * The most vCPUs KVM allows in one VM.
   */
  uint32_t max_vcpus;
  /**
   * The vCPU count KVM recommends.
   */
  uint32_t recommended_vcpus;
} podvisor_host_info;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Frees memory that libpodvisor returned: strings, byte buffers and arrays. NULL is a no-op.
 *
 * Ownership: takes ownership of `ptr`, which must have come from libpodvisor and not have been
 * freed already. Handles are not memory: free each with its own `*_free` function.
 *
 * Blocks: no. Threads: any.
 */
void podvisor_free(void *ptr);

/**
 * Returns the code of the last failed call on the calling thread, or `PODVISOR_OK` if the most
 * recent call that returns a `podvisor_error_code` succeeded.
 *
 * Blocks: no. Threads: any; each thread has its own last error.
 */
enum podvisor_error_code podvisor_last_error_code(void);

/**
 * Returns the message of the last failed call on the calling thread, or NULL if the most recent
 * call that returns a `podvisor_error_code` succeeded.
 *
 * Ownership: the string is owned by libpodvisor and stays valid until the next call on this
 * thread that returns a `podvisor_error_code`. Do not free it.
 *
 * Blocks: no. Threads: any; each thread has its own last error.
 */
const char *podvisor_last_error_message(void);

/**
 * Returns the name of the argument that made the last call on the calling thread fail, as the
 * header spells it (for example `"opts->kernel_path"`), or NULL if no single argument was to
 * blame or the call succeeded.
 *
 * Ownership: as for `podvisor_last_error_message`.
 *
 * Blocks: no. Threads: any; each thread has its own last error.
 */
const char *podvisor_last_error_argument(void);

/**
 * Clears the calling thread's last error.
 *
 * Blocks: no. Threads: any.
 */
void podvisor_last_error_clear(void);

/**
 * Returns the name of `code` as a static string (`"PODVISOR_EINVAL"`), or `"PODVISOR_UNKNOWN"`
 * for a value that is not a code of this version of the library.
 *
 * Ownership: the string is static; do not free it.
 *
 * Blocks: no. Threads: any.
 */
const char *podvisor_error_name(int32_t code);

/**
 * Registers the callback that receives libpodvisor's log records, or removes it.
 *
 * Records at `max_level` or more severe are formatted and queued; one library thread, which has
 * an alternate signal stack, calls `callback` for each, in order. If records arrive faster than
 * the callback takes them, up to 4096 wait and the rest are dropped; the next record delivered
 * is preceded by a `PODVISOR_LOG_WARN` record that counts them. With no callback registered
 * (the default), the library formats nothing.
 *
 * - `callback`: the function to call, or NULL to stop delivery.
 * - `max_level`: the most verbose level to deliver; `PODVISOR_LOG_OFF` stops delivery.
 * - `userdata`: passed to every call of `callback`; libpodvisor never reads or frees it.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EINVAL` (argument `max_level`) for a value outside the enum;
 * `PODVISOR_ESTATE` if the process already has a global `tracing` subscriber (a Rust host with
 * its own), or if called from inside the log callback; `PODVISOR_EOS` if the delivery thread
 * could not start.
 *
 * Blocks: until a call to the previous callback in progress returns, so after this returns the
 * previous `userdata` is no longer used. Threads: any, except the log delivery thread.
 */
enum podvisor_error_code podvisor_log_set_callback(podvisor_log_callback callback,
                                                   int32_t max_level,
                                                   void *userdata);

/**
 * Returns the release version of the loaded library as a string, `"MAJOR.MINOR.PATCH"`.
 *
 * Ownership: the string is static; do not free it.
 *
 * Blocks: no. Threads: any.
 */
const char *podvisor_version(void);

/**
 * Returns the release version of the loaded library as one number, in the form of
 * `PODVISOR_VERSION_NUMBER`. A host compares it with the macro to learn whether the library it
 * runs with is older than the header it was built with.
 *
 * Blocks: no. Threads: any.
 */
uint32_t podvisor_version_number(void);

/**
 * Returns the ABI version of the loaded library. A host built with a header whose
 * `PODVISOR_ABI_VERSION` differs must not use the library.
 *
 * Blocks: no. Threads: any.
 */
uint32_t podvisor_abi_version(void);

/**
 * Fills `opts` with the defaults: no kernel, no initrd, `"console=ttyS0"`, 1 vCPU, 128 MiB,
 * automatic boot protocol, `/dev/kvm`.
 *
 * - `opts`: the struct to fill; borrowed for the call.
 * - `struct_size`: `sizeof(podvisor_vm_options)` as the caller's header declares it.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_vm_options_init(struct podvisor_vm_options *opts,
                                                  size_t struct_size);

/**
 * Fills `exit` with `PODVISOR_VM_RUNNING` and sets its `struct_size`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `exit` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_vm_exit_init(struct podvisor_vm_exit *exit, size_t struct_size);

/**
 * Fills `info` with empty values and sets its `struct_size`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `info` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_host_info_init(struct podvisor_host_info *info,
                                                 size_t struct_size);

/**
 * Probes the host's KVM: whether it is hardware-assisted or PVM, and how many vCPUs it allows.
 *
 * - `kvm_path`: the KVM device, or NULL for `/dev/kvm`; borrowed for the call.
 * - `info`: initialised with `podvisor_host_info_init`; filled on success.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `info` is NULL; `PODVISOR_EINVAL` for an unknown
 * `info->struct_size`; `PODVISOR_EUTF8` for a `kvm_path` that is not UTF-8;
 * `PODVISOR_EUNSUPPORTED` if there is no usable KVM; `PODVISOR_EOS` if it cannot be opened.
 *
 * Blocks: briefly (opens the device). Threads: any.
 */
enum podvisor_error_code podvisor_host_probe(const char *kvm_path, struct podvisor_host_info *info);

/**
 * Creates a VM from `opts`, loads its kernel and starts its vCPUs; the console output is kept
 * for `podvisor_vm_console_read`.
 *
 * - `opts`: initialised with `podvisor_vm_options_init`, `kernel_path` set; it and its strings
 *   are borrowed for the call only.
 * - `vm`: receives the new handle on success, owned by the caller, freed with
 *   `podvisor_vm_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts`, `opts->kernel_path` or `vm` is NULL;
 * `PODVISOR_EUTF8` for a string that is not UTF-8; `PODVISOR_EINVAL` for an unknown
 * `struct_size`, an empty path, a boot protocol outside the enum, vCPUs, memory or a command
 * line out of range, or a file that is not a kernel (the argument names which);
 * `PODVISOR_ENOTFOUND` if the kernel does not exist; `PODVISOR_EUNSUPPORTED` if the host has no
 * usable KVM; `PODVISOR_EOS` if KVM, memory or a thread could not be set up.
 *
 * Blocks: until the vCPU threads run (milliseconds). Threads: any.
 */
enum podvisor_error_code podvisor_vm_start(const struct podvisor_vm_options *opts,
                                           struct podvisor_vm **vm);

/**
 * Copies the console output from byte `offset` on into a new buffer. Poll with the offset of
 * the previous call plus the length it returned to stream the console.
 *
 * - `vm`: borrowed.
 * - `offset`: the first byte wanted; past the end gives an empty buffer.
 * - `data`: receives a NUL-terminated buffer owned by the caller, freed with `podvisor_free`
 *   (also when the length is 0).
 * - `len`: receives the number of bytes, without the NUL.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm`, `data` or `len` is NULL; `PODVISOR_EHANDLE`
 * for a freed or mistyped `vm`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_vm_console_read(const struct podvisor_vm *vm,
                                                  size_t offset,
                                                  uint8_t **data,
                                                  size_t *len);

/**
 * Waits until `text` appears in the console output, or `timeout_ms` passes.
 *
 * - `vm`: borrowed.
 * - `text`: the UTF-8 text to wait for, not empty; borrowed for the call.
 * - `timeout_ms`: milliseconds to wait at most, or -1 to wait forever.
 *
 * Returns `PODVISOR_OK` once the text is there; `PODVISOR_ETIMEOUT` if it did not appear in
 * time; `PODVISOR_ENULL` if `vm` or `text` is NULL; `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a
 * bad `text` or a negative timeout other than -1; `PODVISOR_EHANDLE` for a bad `vm`.
 *
 * Blocks: yes, up to the timeout. Threads: any.
 */
enum podvisor_error_code podvisor_vm_console_wait_for(const struct podvisor_vm *vm,
                                                      const char *text,
                                                      int64_t timeout_ms);

/**
 * Writes bytes to the guest's serial console input.
 *
 * - `vm`: borrowed.
 * - `input`, `input_len`: the bytes; NULL is allowed with length 0.
 * - `written`: receives how many bytes fit the UART's FIFO (the rest must be retried).
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm` or `written` is NULL, or `input` is NULL with
 * a non-zero length; `PODVISOR_EHANDLE` for a bad `vm`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_vm_console_write(const struct podvisor_vm *vm,
                                                   const uint8_t *input,
                                                   size_t input_len,
                                                   size_t *written);

/**
 * Stops the VM, unless it already ended; its exit reason becomes `PODVISOR_VM_EXIT_HOST_STOP`.
 * The vCPUs leave the guest within milliseconds; `podvisor_vm_wait` waits for that.
 *
 * Returns `PODVISOR_OK` (also when the VM had already ended); `PODVISOR_ENULL` if `vm` is NULL;
 * `PODVISOR_EHANDLE` for a bad `vm`.
 *
 * Blocks: no. Threads: any, also while another thread waits in `podvisor_vm_wait`.
 */
enum podvisor_error_code podvisor_vm_stop(const struct podvisor_vm *vm);

/**
 * Waits for the VM to end and its vCPU threads to exit, then reports why it ended.
 *
 * - `vm`: borrowed.
 * - `timeout_ms`: milliseconds to wait at most, or -1 to wait forever. When the time passes
 *   first, the VM is stopped and the reason is `PODVISOR_VM_EXIT_TIMEOUT`.
 * - `exit`: initialised with `podvisor_vm_exit_init`; filled on success. May be NULL.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm` is NULL; `PODVISOR_EINVAL` for a negative
 * timeout other than -1 or an unknown `exit->struct_size`; `PODVISOR_EHANDLE` for a bad `vm`;
 * `PODVISOR_EPANIC` if a vCPU thread panicked.
 *
 * Blocks: yes, until the VM ends or the timeout passes. Threads: any.
 */
enum podvisor_error_code podvisor_vm_wait(const struct podvisor_vm *vm,
                                          int64_t timeout_ms,
                                          struct podvisor_vm_exit *exit);

/**
 * Reports whether the VM still runs, and why it ended if not, without waiting.
 *
 * - `vm`: borrowed.
 * - `exit`: initialised with `podvisor_vm_exit_init`; filled on success.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm` or `exit` is NULL; `PODVISOR_EINVAL` for an
 * unknown `exit->struct_size`; `PODVISOR_EHANDLE` for a bad `vm`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_vm_exit_status(const struct podvisor_vm *vm,
                                                 struct podvisor_vm_exit *exit);

/**
 * Describes how the VM ended in one line of text, with KVM's details for the fault reasons
 * (`"triple fault on vCPU 0 at rip 0x1000"`), or `"running"`.
 *
 * - `vm`: borrowed.
 * - `text`: receives a NUL-terminated string owned by the caller, freed with `podvisor_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm` or `text` is NULL; `PODVISOR_EHANDLE` for a
 * bad `vm`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_vm_exit_describe(const struct podvisor_vm *vm, char **text);

/**
 * Frees a VM handle. A VM that still runs is stopped, and its threads, memory and file
 * descriptors are released before this returns (unless another thread is still inside a call
 * on the handle; then when that call returns). NULL does nothing.
 *
 * Ownership: takes `vm`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: until the vCPU threads exit (milliseconds). Threads: any.
 */
enum podvisor_error_code podvisor_vm_free(struct podvisor_vm *vm);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* PODVISOR_H */
