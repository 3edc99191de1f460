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
 * - Every pointer argument is checked: NULL where a value is needed gives `PODVISOR_ENULL`,
 *   one not aligned for its type `PODVISOR_EINVAL`. Out-parameters, optional ones included,
 *   are all checked before the call does anything, and written only on success.
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
 *   takes `sizeof` the struct, then set the fields you need. Result structs (filled by the
 *   library) start with `struct_size` too; of those, the library reads nothing but
 *   `struct_size`, so the rest may be left uninitialised.
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
 * Which output stream a chunk came from.
 */
typedef enum podvisor_stream {
  /**
   * Standard output.
   */
  PODVISOR_STREAM_STDOUT = 1,
  /**
   * Standard error.
   */
  PODVISOR_STREAM_STDERR = 2,
} podvisor_stream;

/**
 * Put or delete.
 */
typedef enum podvisor_event_kind {
  /**
   * The key was written.
   */
  PODVISOR_EVENT_PUT = 0,
  /**
   * The key was deleted.
   */
  PODVISOR_EVENT_DELETE = 1,
} podvisor_event_kind;

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
 * What a transaction compare looks at.
 */
typedef enum podvisor_compare_target {
  /**
   * The value (a missing key never compares true); compared with `value`.
   */
  PODVISOR_COMPARE_VALUE = 0,
  /**
   * The version (0 for a missing key); compared with `number`.
   */
  PODVISOR_COMPARE_VERSION = 1,
  /**
   * The create revision (0 for a missing key); compared with `number`.
   */
  PODVISOR_COMPARE_CREATE_REVISION = 2,
  /**
   * The mod revision (0 for a missing key); compared with `number`.
   */
  PODVISOR_COMPARE_MOD_REVISION = 3,
  /**
   * The lease (0 for none); compared with `number`.
   */
  PODVISOR_COMPARE_LEASE = 4,
} podvisor_compare_target;

/**
 * How a transaction compare compares the key's attribute with the given one.
 */
typedef enum podvisor_compare_op {
  /**
   * Equal.
   */
  PODVISOR_COMPARE_EQUAL = 0,
  /**
   * Not equal.
   */
  PODVISOR_COMPARE_NOT_EQUAL = 1,
  /**
   * The key's attribute is greater.
   */
  PODVISOR_COMPARE_GREATER = 2,
  /**
   * The key's attribute is less.
   */
  PODVISOR_COMPARE_LESS = 3,
} podvisor_compare_op;

/**
 * Which branch of a transaction an operation belongs to.
 */
typedef enum podvisor_txn_branch {
  /**
   * Applied when a compare fails.
   */
  PODVISOR_TXN_FAILURE = 0,
  /**
   * Applied when every compare holds.
   */
  PODVISOR_TXN_SUCCESS = 1,
} podvisor_txn_branch;

/**
 * How a sandbox isolates its containers from the host. Passed as an `int32_t`.
 */
typedef enum podvisor_isolation {
  /**
   * Linux namespaces and cgroups on the host; needs root.
   */
  PODVISOR_ISOLATION_NAMESPACES = 0,
  /**
   * A micro-VM of podvisor's VMM; needs hardware-assisted KVM and a guest image.
   */
  PODVISOR_ISOLATION_MICROVM = 1,
} podvisor_isolation;

/**
 * The isolation a pod gets when its manifest names no runtime class.
 */
typedef enum podvisor_runtime_class {
  /**
   * Each pod in its own micro-VM, where every node offers it; namespaces otherwise.
   */
  PODVISOR_RUNTIME_MICROVM = 0,
  /**
   * Linux namespaces and cgroups on the host.
   */
  PODVISOR_RUNTIME_NAMESPACES = 1,
} podvisor_runtime_class;

/**
 * A client of the store's masters. Created by `podvisor_client_connect`, freed by
 * `podvisor_client_free`.
 */
typedef struct podvisor_client podvisor_client;

/**
 * Running controllers. Created by `podvisor_controllers_start`, freed by
 * `podvisor_controllers_free`.
 */
typedef struct podvisor_controllers podvisor_controllers;

/**
 * The key-value pairs a read returned. Freed by `podvisor_kvs_free`.
 */
typedef struct podvisor_kvs podvisor_kvs;

/**
 * A store master running in this process. Created by `podvisor_master_start`, freed by
 * `podvisor_master_free`.
 */
typedef struct podvisor_master podvisor_master;

/**
 * A node agent running in this process. Created by `podvisor_node_agent_start`, freed by
 * `podvisor_node_agent_free`.
 */
typedef struct podvisor_node_agent podvisor_node_agent;

/**
 * A watch on the objects of one kind. Created by `podvisor_objects_watch`, freed by
 * `podvisor_object_watch_free`.
 */
typedef struct podvisor_object_watch podvisor_object_watch;

/**
 * A process in a sandbox. Created by `podvisor_sandbox_start` or `podvisor_sandbox_exec`,
 * freed by `podvisor_process_free`.
 */
typedef struct podvisor_process podvisor_process;

/**
 * A sandbox. Created by `podvisor_sandbox_create`, freed by `podvisor_sandbox_free`.
 */
typedef struct podvisor_sandbox podvisor_sandbox;

/**
 * A transaction being built. Created by `podvisor_txn_new`, freed by `podvisor_txn_free`.
 */
typedef struct podvisor_txn podvisor_txn;

/**
 * What a transaction did: the branch taken, the revision after it, and one result per
 * operation of that branch. Created by `podvisor_client_txn_run`, freed by
 * `podvisor_txn_result_free`.
 */
typedef struct podvisor_txn_result podvisor_txn_result;

/**
 * A running or ended virtual machine. Created by `podvisor_vm_start`, freed by
 * `podvisor_vm_free`.
 */
typedef struct podvisor_vm podvisor_vm;

/**
 * A watch on a key range. Created by `podvisor_client_watch`, freed by `podvisor_watch_free`.
 */
typedef struct podvisor_watch podvisor_watch;

/**
 * One batch of changes: every matching change of each revision it covers, in order.
 */
typedef struct podvisor_watch_batch podvisor_watch_batch;

/**
 * How the controllers run. Initialise with `podvisor_controllers_options_init`.
 */
typedef struct podvisor_controllers_options {
  /**
   * `sizeof(podvisor_controllers_options)`, set by `podvisor_controllers_options_init`.
   */
  size_t struct_size;
  /**
   * Who this instance is, written to the leader key; NULL for `"controllers"`. Borrowed.
   */
  const char *identity;
  /**
   * TTL of the leader lease in milliseconds; a dead leader is replaced after at most this
   * long. 0 for the default (3000).
   */
  uint32_t lease_ttl_ms;
  /**
   * Milliseconds between reconcile passes; 0 for the default (250).
   */
  uint32_t resync_ms;
  /**
   * Milliseconds a node may be NotReady before its pods fail; 0 for the default (10000).
   */
  uint32_t node_grace_ms;
  /**
   * A `podvisor_runtime_class`: the isolation of pods that name none.
   */
  int32_t preferred_runtime_class;
} podvisor_controllers_options;

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
 * How to run a node agent. Initialise with `podvisor_node_agent_options_init`.
 */
typedef struct podvisor_node_agent_options {
  /**
   * `sizeof(podvisor_node_agent_options)`, set by `podvisor_node_agent_options_init`.
   */
  size_t struct_size;
  /**
   * The node's name. Required; borrowed for the call.
   */
  const char *name;
  /**
   * Where sandboxes, VM consoles and the agent's records live. Required; borrowed.
   */
  const char *state_dir;
  /**
   * The static podvisor agent binary run as PID 1 of each sandbox. Required; borrowed.
   */
  const char *agent_binary;
  /**
   * The cache holding `images/` and `kernel/`. Required; borrowed.
   */
  const char *cache_dir;
  /**
   * The pod bridge, or NULL to run pods with loopback only. Borrowed.
   */
  const char *bridge;
  /**
   * Where logs and exec are served (`"127.0.0.1:0"` by default, NULL). Borrowed.
   */
  const char *listen;
  /**
   * The most pods the node takes, or 0 for the default (32).
   */
  uint32_t max_pods;
} podvisor_node_agent_options;

/**
 * How to create a sandbox. Initialise with `podvisor_sandbox_options_init`.
 */
typedef struct podvisor_sandbox_options {
  /**
   * `sizeof(podvisor_sandbox_options)`, set by `podvisor_sandbox_options_init`.
   */
  size_t struct_size;
  /**
   * The sandbox's name, unique on the host: letters, digits, `-`, `_` and `.`, at most 128
   * bytes. Required; borrowed for the call.
   */
  const char *id;
  /**
   * A `podvisor_isolation`; default `PODVISOR_ISOLATION_NAMESPACES`.
   */
  int32_t isolation;
  /**
   * Where sandboxes keep their state; `<state_dir>/<id>/` holds the container roots and
   * logs and is removed when the sandbox is destroyed. Required; borrowed.
   */
  const char *state_dir;
  /**
   * The static podvisor agent binary, run as PID 1 of the sandbox. Required for namespace
   * isolation, unused for micro-VMs (the agent is in the guest image). Borrowed.
   */
  const char *agent_binary;
  /**
   * The cgroup the sandbox's group is made under, as `/proc/self/cgroup` spells paths
   * (`"/podvisor"`), resolved in each mounted hierarchy; NULL for the caller's own group.
   * Borrowed.
   */
  const char *cgroup_parent;
  /**
   * The host bridge to attach the sandbox's network to, or NULL for loopback only.
   * Borrowed.
   */
  const char *bridge;
  /**
   * With `bridge`: the sandbox's IPv4 address and prefix (`"10.88.0.5/24"`). Borrowed.
   */
  const char *address;
  /**
   * With `bridge`: the IPv4 gateway (`"10.88.0.1"`). Borrowed.
   */
  const char *gateway;
  /**
   * Micro-VM: the guest kernel. Borrowed.
   */
  const char *guest_kernel;
  /**
   * Micro-VM: the initramfs holding the agent as `/init`. Borrowed.
   */
  const char *guest_initramfs;
  /**
   * Micro-VM: vCPUs, 1 to 255; default 1.
   */
  uint32_t guest_vcpus;
  /**
   * Micro-VM: guest memory in MiB; default 256.
   */
  uint32_t guest_memory_mib;
  /**
   * The size a container log grows to before it is rotated, in bytes; default 10 MiB.
   */
  uint64_t log_max_bytes;
  /**
   * Rotated logs kept per container besides the current one; default 3.
   */
  uint32_t log_max_files;
} podvisor_sandbox_options;

/**
 * A container to create in a sandbox. Initialise with `podvisor_container_options_init`.
 *
 * Its root comes from exactly one of `image` (an OCI image layout, unpacked for the
 * container) and `rootfs` (a ready directory, used in place).
 */
typedef struct podvisor_container_options {
  /**
   * `sizeof(podvisor_container_options)`, set by `podvisor_container_options_init`.
   */
  size_t struct_size;
  /**
   * The container's name, unique in the sandbox (letters, digits, `-`, `_`, `.`).
   * Required; borrowed for the call.
   */
  const char *name;
  /**
   * An OCI image layout directory, or NULL when `rootfs` is given. Borrowed.
   */
  const char *image;
  /**
   * The image's `org.opencontainers.image.ref.name` in the layout, or NULL for its first
   * manifest. Borrowed.
   */
  const char *image_ref;
  /**
   * A ready root directory, or NULL when `image` is given. Borrowed.
   */
  const char *rootfs;
  /**
   * The program and its arguments (`args_len` strings), or NULL with 0 for the image's
   * entrypoint and command. Borrowed.
   */
  const char *const *args;
  /**
   * The number of strings in `args`.
   */
  size_t args_len;
  /**
   * `NAME=value` pairs, the whole environment (`env_len` strings), or NULL with 0 for the
   * image's. Borrowed.
   */
  const char *const *env;
  /**
   * The number of strings in `env`.
   */
  size_t env_len;
  /**
   * The working directory inside the container, or NULL for the image's (else `/`).
   * Borrowed.
   */
  const char *cwd;
  /**
   * `uid[:gid]` or a user name of the root's `/etc/passwd`, or NULL for the image's (else
   * root). Borrowed.
   */
  const char *user;
  /**
   * The container's host name, or NULL for its name. Borrowed.
   */
  const char *hostname;
  /**
   * Whether the host writes the process's stdin (`podvisor_process_write_stdin`); if
   * not, it reads `/dev/null`. Default false.
   */
  bool stdin;
  /**
   * The memory limit in bytes, or 0 for none.
   */
  uint64_t memory_bytes;
  /**
   * The CPU limit in thousandths of a CPU, or 0 for none.
   */
  uint64_t cpu_millis;
} podvisor_container_options;

/**
 * How a process ended. Initialise with `podvisor_exit_status_init`; libpodvisor fills it.
 */
typedef struct podvisor_exit_status {
  /**
   * `sizeof(podvisor_exit_status)`, set by `podvisor_exit_status_init`.
   */
  size_t struct_size;
  /**
   * Whether a signal ended the process; then `signal` says which, else `code` holds its
   * exit code.
   */
  bool signaled;
  /**
   * The exit code, when it exited; 0 otherwise.
   */
  int32_t code;
  /**
   * The signal that ended it, when one did; 0 otherwise.
   */
  int32_t signal;
  /**
   * Whether the kernel killed it because its container ran out of memory.
   */
  bool oom_killed;
} podvisor_exit_status;

/**
 * A process to run in a running container. Initialise with `podvisor_exec_options_init`.
 */
typedef struct podvisor_exec_options {
  /**
   * `sizeof(podvisor_exec_options)`, set by `podvisor_exec_options_init`.
   */
  size_t struct_size;
  /**
   * The program and its arguments (`args_len` strings, at least one); a program without
   * `/` is searched in `PATH`. Required; borrowed for the call.
   */
  const char *const *args;
  /**
   * The number of strings in `args`.
   */
  size_t args_len;
  /**
   * `NAME=value` pairs, the whole environment, or NULL with 0 for none. Borrowed.
   */
  const char *const *env;
  /**
   * The number of strings in `env`.
   */
  size_t env_len;
  /**
   * The working directory, or NULL for `/`. Borrowed.
   */
  const char *cwd;
  /**
   * `uid[:gid]` or a user name, or NULL for root. Borrowed.
   */
  const char *user;
  /**
   * Whether the host writes the process's stdin; if not, it reads `/dev/null`.
   */
  bool stdin;
} podvisor_exec_options;

/**
 * How to reach the masters. Initialise with `podvisor_client_options_init`.
 */
typedef struct podvisor_client_options {
  /**
   * `sizeof(podvisor_client_options)`, set by `podvisor_client_options_init`.
   */
  size_t struct_size;
  /**
   * The masters' client addresses (`"127.0.0.1:2379"`). Required; the array and strings are
   * borrowed for the call only.
   */
  const char *const *endpoints;
  /**
   * The number of strings in `endpoints`, at least 1.
   */
  size_t endpoints_len;
  /**
   * The cluster id the masters must have, or 0 for any; default 0.
   */
  uint64_t cluster_id;
  /**
   * How long one call may take, retries included, in milliseconds; 0 for the default (10 s).
   */
  uint32_t timeout_ms;
} podvisor_client_options;

/**
 * One key-value pair, filled by `podvisor_kvs_at`. Initialise with `podvisor_kv_init`.
 */
typedef struct podvisor_kv {
  /**
   * `sizeof(podvisor_kv)`, set by `podvisor_kv_init`.
   */
  size_t struct_size;
  /**
   * The key; borrowed from the `podvisor_kvs` it came from, valid until that is freed.
   */
  const uint8_t *key;
  /**
   * The key's length in bytes.
   */
  size_t key_len;
  /**
   * The value; borrowed like `key`.
   */
  const uint8_t *value;
  /**
   * The value's length in bytes.
   */
  size_t value_len;
  /**
   * The revision of the write that created the key.
   */
  uint64_t create_revision;
  /**
   * The revision of the last write to the key.
   */
  uint64_t mod_revision;
  /**
   * The number of writes since the key was created.
   */
  uint64_t version;
  /**
   * The lease the key is attached to, 0 for none.
   */
  uint64_t lease;
} podvisor_kv;

/**
 * How to start a master. Initialise with `podvisor_master_options_init`.
 */
typedef struct podvisor_master_options {
  /**
   * `sizeof(podvisor_master_options)`, set by `podvisor_master_options_init`.
   */
  size_t struct_size;
  /**
   * This master's id, one of the members' ids, never 0. Required.
   */
  uint64_t id;
  /**
   * The id every member of the cluster shares; default 1.
   */
  uint64_t cluster_id;
  /**
   * The directory of the raft log and snapshots; created if missing. Required.
   */
  const char *data_dir;
  /**
   * The initial members, this one included, each `"ID=PEER_ADDR,CLIENT_ADDR"` (as the
   * `--member` flag of `podvisor-master`). Required; the array and strings are borrowed for
   * the call only.
   */
  const char *const *members;
  /**
   * The number of strings in `members`, at least 1.
   */
  size_t members_len;
  /**
   * The address to listen on for peers, or NULL for this member's peer address.
   */
  const char *peer_listen;
  /**
   * The address to listen on for clients, or NULL for this member's client address.
   */
  const char *client_listen;
  /**
   * Non-zero: start empty and wait to be added by the leader, instead of bootstrapping.
   */
  uint8_t join;
  /**
   * One raft tick in milliseconds, or 0 for the default (50).
   */
  uint32_t tick_ms;
} podvisor_master_options;

/**
 * One change to one key, filled by `podvisor_watch_batch_event`. Initialise with
 * `podvisor_watch_event_init`.
 */
typedef struct podvisor_watch_event {
  /**
   * `sizeof(podvisor_watch_event)`, set by `podvisor_watch_event_init`.
   */
  size_t struct_size;
  /**
   * Put or delete.
   */
  enum podvisor_event_kind kind;
  /**
   * The key; borrowed from the batch, valid until the batch is freed (or the callback
   * returns).
   */
  const uint8_t *key;
  /**
   * The key's length.
   */
  size_t key_len;
  /**
   * The value after the change (empty for a delete); borrowed like `key`.
   */
  const uint8_t *value;
  /**
   * The value's length.
   */
  size_t value_len;
  /**
   * The revision of the write that created the key.
   */
  uint64_t create_revision;
  /**
   * The revision of this change.
   */
  uint64_t mod_revision;
  /**
   * The number of writes since the key was created.
   */
  uint64_t version;
  /**
   * The lease the key is attached to, 0 for none.
   */
  uint64_t lease;
  /**
   * Whether the key existed before this change; then `prev_value` holds its value.
   */
  bool has_prev_kv;
  /**
   * The value before the change; borrowed like `key`.
   */
  const uint8_t *prev_value;
  /**
   * The previous value's length.
   */
  size_t prev_value_len;
} podvisor_watch_event;

/**
 * Receives watch batches on the watch's own library thread, which has an alternate signal
 * stack. Calls for one watch never overlap.
 *
 * - `batch`: the batch, borrowed for the duration of the call (do not free it), or NULL when
 *   the watch ended with an error.
 * - `status`: `PODVISOR_OK` with a batch; otherwise why the watch ended (for example
 *   `PODVISOR_ECOMPACTED`), and this is the last call.
 * - `message`: NULL with a batch; otherwise the error's message, borrowed for the call.
 * - `userdata`: as given to `podvisor_client_watch`.
 *
 * The callback must not unwind. It may call libpodvisor, including `podvisor_watch_free` on
 * its own watch (which then returns without waiting).
 */
typedef void (*podvisor_watch_callback)(const struct podvisor_watch_batch *batch,
                                        enum podvisor_error_code status,
                                        const char *message,
                                        void *userdata);

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
 * Fills `opts` with the defaults: identity `"controllers"`, a 3 s leader lease, a pass every
 * 250 ms, 10 s of node grace, micro-VMs preferred.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_controllers_options_init(struct podvisor_controllers_options *opts,
                                                           size_t struct_size);

/**
 * Starts the controllers in this process. They run on a library thread, contend for the
 * leader lease, and reconcile while they hold it. The leader also compacts the store's history
 * every 5 minutes, up to the revision of 5 minutes before, as kube-apiserver does.
 *
 * - `client`: borrowed; the controllers keep their own reference.
 * - `opts`: initialised with `podvisor_controllers_options_init`, or NULL for the defaults;
 *   borrowed for the call.
 * - `controllers`: receives the new handle, owned by the caller, freed with
 *   `podvisor_controllers_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` or `controllers` is NULL;
 * `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad `identity`, an unknown
 * `preferred_runtime_class` or `struct_size`; `PODVISOR_EHANDLE` for a bad `client`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_controllers_start(const struct podvisor_client *client,
                                                    const struct podvisor_controllers_options *opts,
                                                    struct podvisor_controllers **controllers);

/**
 * Stops the controllers and waits for the current reconcile pass to end; the leader lease
 * then lapses and another instance takes over. The handle stays valid until freed.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `controllers` is NULL; `PODVISOR_EHANDLE` for a
 * bad handle; `PODVISOR_ESTATE` if they were already stopped.
 *
 * Blocks: until the controller thread exits (at most one pass). Threads: any.
 */
enum podvisor_error_code podvisor_controllers_stop(const struct podvisor_controllers *controllers);

/**
 * Frees a controllers handle, stopping them first if they still run. NULL does nothing.
 *
 * Ownership: takes `controllers`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: as `podvisor_controllers_stop`. Threads: any.
 */
enum podvisor_error_code podvisor_controllers_free(struct podvisor_controllers *controllers);

/**
 * Returns the code of the last failed call on the calling thread, or `PODVISOR_OK` if the most
 * recent call that returns a `podvisor_error_code` succeeded.
 *
 * A call made while the thread exits (from a thread-local destructor run after libpodvisor's
 * own) still returns its code, but keeps no last error: this then returns `PODVISOR_OK`.
 *
 * Blocks: no. Threads: any; each thread has its own last error.
 */
enum podvisor_error_code podvisor_last_error_code(void);

/**
 * Returns the message of the last failed call on the calling thread, or NULL if the most recent
 * call that returns a `podvisor_error_code` succeeded (or, as for `podvisor_last_error_code`,
 * the thread is exiting).
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
 * blame, the call succeeded, or the thread is exiting.
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
 * Fills `opts` with the defaults: no name or directories, no bridge, `127.0.0.1:0`, 32 pods.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_node_agent_options_init(struct podvisor_node_agent_options *opts,
                                                          size_t struct_size);

/**
 * Registers this host as a node and starts the node agent's loops in this process: it keeps
 * the node's lease, runs the pods and VMs bound to the node, and serves their logs and exec.
 *
 * - `client`: borrowed; the agent keeps its own reference.
 * - `opts`: initialised with `podvisor_node_agent_options_init`; borrowed for the call.
 * - `agent`: receives the new handle, owned by the caller, freed with
 *   `podvisor_node_agent_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client`, `opts`, a required string or `agent`
 * is NULL; `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string, a `listen` that is not an
 * address, or an unknown `struct_size`; `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_EOS`
 * if the state directory or the listen address cannot be used; `PODVISOR_EEXISTS` if another
 * live node agent runs a node of that name; store errors if the node cannot be registered.
 *
 * Blocks: until the node is registered (a few store round trips); when an agent of the same
 * name stopped without a clean stop, until its lease lapses (up to the lease TTL).
 * Threads: any.
 */
enum podvisor_error_code podvisor_node_agent_start(const struct podvisor_client *client,
                                                   const struct podvisor_node_agent_options *opts,
                                                   struct podvisor_node_agent **agent);

/**
 * Returns the address the node agent serves logs and exec at.
 *
 * - `agent`: borrowed.
 * - `addr`: receives a NUL-terminated string owned by the caller, freed with `podvisor_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `agent` or `addr` is NULL; `PODVISOR_EHANDLE`
 * for a bad `agent`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_node_agent_address(const struct podvisor_node_agent *agent,
                                                     char **addr);

/**
 * Stops the node agent: every pod and VM it runs is stopped and its lease released. The handle
 * stays valid until freed.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `agent` is NULL; `PODVISOR_EHANDLE` for a bad
 * `agent`; `PODVISOR_ESTATE` if it was already stopped.
 *
 * Blocks: until the agent's threads exit. Threads: any.
 */
enum podvisor_error_code podvisor_node_agent_stop(const struct podvisor_node_agent *agent);

/**
 * Frees a node agent handle, stopping the agent first if it still runs. NULL does nothing.
 *
 * Ownership: takes `agent`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: until the agent's threads exit. Threads: any.
 */
enum podvisor_error_code podvisor_node_agent_free(struct podvisor_node_agent *agent);

/**
 * Applies manifests given as text (YAML or JSON, one or more documents): each object is
 * created, or updated where it differs from the stored one, and left alone otherwise.
 *
 * - `client`: borrowed.
 * - `text`, `text_len`: the manifests, UTF-8 without NUL; borrowed for the call.
 * - `set`: the apply set the objects belong to, not empty, or NULL for `"podvisor"`; borrowed.
 * - `summary`: receives one line per object (`"pod/default/web created"`), owned by the
 *   caller, freed with `podvisor_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` or `summary` is NULL, or `text` is NULL
 * with a non-zero length; `PODVISOR_EUTF8` for text or a `set` that is not UTF-8;
 * `PODVISOR_EINVAL` for text with a NUL, manifests that do not parse, objects that fail
 * validation, or an empty or too long `set`;
 * `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_ECONFLICT` if another writer changed an
 * object meanwhile (apply again); store errors as for `podvisor_client_put`. Objects applied
 * before a failure stay applied.
 *
 * Blocks: yes, one store round trip per object. Threads: any.
 */
enum podvisor_error_code podvisor_objects_apply(const struct podvisor_client *client,
                                                const char *text,
                                                size_t text_len,
                                                const char *set,
                                                char **summary);

/**
 * Applies the manifests of a file, or of every `.yaml`, `.yml` and `.json` file of a
 * directory, as `podvisor_objects_apply` does.
 *
 * - `path`: the file or directory, UTF-8; borrowed for the call.
 *
 * Returns as `podvisor_objects_apply`, and `PODVISOR_ENOTFOUND` or `PODVISOR_EOS` if `path`
 * cannot be read.
 *
 * Blocks: yes. Threads: any.
 */
enum podvisor_error_code podvisor_objects_apply_file(const struct podvisor_client *client,
                                                     const char *path,
                                                     const char *set,
                                                     char **summary);

/**
 * Reads one object as JSON, with its `resourceVersion`.
 *
 * - `client`: borrowed.
 * - `kind`: `"Pod"`, `"Node"`, `"VirtualMachine"`, `"IPPool"` or `"Service"` (or their
 *   lower-case and plural forms); borrowed.
 * - `namespace`: the namespace, not empty, or NULL for cluster-scoped kinds; borrowed.
 * - `name`: the name; borrowed.
 * - `json`: receives the object, owned by the caller, freed with `podvisor_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if there is no such object; `PODVISOR_ENULL` if
 * `client`, `kind`, `name` or `json` is NULL; `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad
 * string (not UTF-8, empty or too long) or an unknown kind; `PODVISOR_EHANDLE` for a bad
 * `client`; store errors as for `podvisor_client_get`.
 *
 * Blocks: yes, one round trip to the leader. Threads: any.
 */
enum podvisor_error_code podvisor_objects_get(const struct podvisor_client *client,
                                              const char *kind,
                                              const char *namespace_,
                                              const char *name,
                                              char **json);

/**
 * Lists the objects of a kind as a JSON array.
 *
 * - `client`: borrowed; `kind` as for `podvisor_objects_get`.
 * - `namespace`: only this namespace, not empty, or NULL for all; borrowed.
 * - `json`: receives the array, owned by the caller, freed with `podvisor_free`.
 * - `revision`: receives the store revision of the read, from which `podvisor_objects_watch`
 *   continues without missing a change; may be NULL.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client`, `kind` or `json` is NULL;
 * `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string (not UTF-8, empty or too long) or an
 * unknown kind; `PODVISOR_EINVAL` for a misaligned `revision`; `PODVISOR_EHANDLE` for a bad
 * `client`; store errors as for `podvisor_client_range`.
 *
 * Blocks: yes, one round trip to the leader. Threads: any.
 */
enum podvisor_error_code podvisor_objects_list(const struct podvisor_client *client,
                                               const char *kind,
                                               const char *namespace_,
                                               char **json,
                                               uint64_t *revision);

/**
 * Deletes an object, or marks it for deletion when it has finalizers.
 *
 * - `client`: borrowed; `kind`, `namespace`, `name` as for `podvisor_objects_get`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if there is no such object; `PODVISOR_ECONFLICT`
 * if another writer changed it meanwhile; `PODVISOR_ENULL` if `client`, `kind` or `name` is
 * NULL; `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string (not UTF-8, empty or too long)
 * or an unknown kind; `PODVISOR_EHANDLE` for a bad `client`; store errors as for
 * `podvisor_client_delete`.
 *
 * Blocks: yes. Threads: any.
 */
enum podvisor_error_code podvisor_objects_delete(const struct podvisor_client *client,
                                                 const char *kind,
                                                 const char *namespace_,
                                                 const char *name);

/**
 * Watches the objects of a kind, for polling with `podvisor_object_watch_next`.
 *
 * - `client`: borrowed; the watch keeps working after it is freed.
 * - `kind`, `namespace` (NULL for all): as for `podvisor_objects_list`.
 * - `resource_version`: deliver the changes after this revision (a list's revision), or 0 for
 *   changes from now.
 * - `watch`: receives the new handle, owned by the caller, freed with
 *   `podvisor_object_watch_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client`, `kind` or `watch` is NULL;
 * `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string (not UTF-8, empty or too long) or an
 * unknown kind; `PODVISOR_EHANDLE` for a bad `client`; store errors.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_objects_watch(const struct podvisor_client *client,
                                                const char *kind,
                                                const char *namespace_,
                                                uint64_t resource_version,
                                                struct podvisor_object_watch **watch);

/**
 * Waits for the next change of an object watch, as one JSON object:
 * `{"type":"PUT","object":{...}}`, `{"type":"DELETE","key":"...","revision":N}`, or
 * `{"type":"PROGRESS","revision":N}` (everything up to N has been delivered).
 *
 * - `watch`: borrowed.
 * - `timeout_ms`: milliseconds to wait at most; 0 to only check, -1 to wait forever.
 * - `json`: receives the event, owned by the caller, freed with `podvisor_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ETIMEOUT` if nothing came in time;
 * `PODVISOR_EUNAVAILABLE` once per outage when no master has answered for the client's
 * timeout (the watch keeps trying; call again); `PODVISOR_ECOMPACTED` if the start revision
 * was compacted away, or another code if the watch failed;
 * `PODVISOR_ENULL` if `watch` or `json` is NULL; `PODVISOR_EINVAL` for a negative timeout
 * other than -1; `PODVISOR_EHANDLE` for a bad `watch`.
 *
 * Blocks: yes, up to the timeout. Threads: any; calls on one watch are serialised.
 */
enum podvisor_error_code podvisor_object_watch_next(const struct podvisor_object_watch *watch,
                                                    int64_t timeout_ms,
                                                    char **json);

/**
 * Frees an object watch. NULL does nothing.
 *
 * Ownership: takes `watch`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_object_watch_free(struct podvisor_object_watch *watch);

/**
 * Reads a pod container's log as it is now, from the node agent that runs the pod (as
 * `kubectl logs` does): what the container wrote to stdout and stderr, one line per line,
 * each ending in a newline.
 *
 * - `client`: borrowed.
 * - `namespace`: the pod's namespace, not empty, or NULL for `"default"`; borrowed.
 * - `pod`: the pod's name; borrowed.
 * - `container`: the container, not empty, or NULL for the pod's first; borrowed.
 * - `text`: receives the log, NUL-terminated, owned by the caller, freed with `podvisor_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client`, `pod` or `text` is NULL;
 * `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string (not UTF-8, empty or too long);
 * `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_ENOTFOUND` if there is no such pod or container; `PODVISOR_ESTATE` if
 * the pod is not bound to a node yet or its node has published no address;
 * `PODVISOR_EUNAVAILABLE` if the node agent cannot be reached or refuses (for example, the
 * pod's sandbox is not created yet); store errors as for `podvisor_client_get`.
 *
 * Blocks: yes, two store reads and one request to the node agent. Threads: any.
 */
enum podvisor_error_code podvisor_pod_logs(const struct podvisor_client *client,
                                           const char *namespace_,
                                           const char *pod,
                                           const char *container,
                                           char **text);

/**
 * Checks whether this host can run sandboxes as `opts` asks, without creating one: micro-VMs
 * need hardware-assisted KVM, a guest image and a vsock transport; namespaces need root, user
 * namespaces and a cgroup hierarchy.
 *
 * - `opts`: as for `podvisor_sandbox_create`; borrowed for the call.
 *
 * Returns `PODVISOR_OK` if it can; `PODVISOR_EUNSUPPORTED` with the reason if it cannot; the
 * argument errors of `podvisor_sandbox_create`.
 *
 * Blocks: briefly (probes KVM). Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_check_host(const struct podvisor_sandbox_options *opts);

/**
 * Creates a sandbox: launches its agent as PID 1 (in new namespaces, or in a micro-VM),
 * connects to it and sets up its network. It holds no containers yet.
 *
 * - `opts`: initialised with `podvisor_sandbox_options_init`, `id`, `state_dir` and (for
 *   namespaces) `agent_binary` set; it and its strings are borrowed for the call.
 * - `sandbox`: receives the new handle, owned by the caller, freed with
 *   `podvisor_sandbox_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts`, a required string or `sandbox` is NULL;
 * `PODVISOR_EUTF8` for a string that is not UTF-8; `PODVISOR_EINVAL` for an unknown
 * `struct_size`, an empty or unusable id, an isolation outside the enum, or a bad cgroup path,
 * address, vCPU count, memory size or log bound (the argument names which);
 * `PODVISOR_ENOTFOUND` if the agent binary does not exist; `PODVISOR_EEXISTS` if a sandbox of
 * that id exists in `state_dir`; `PODVISOR_EUNSUPPORTED` if the host cannot give the
 * isolation asked for (micro-VMs without hardware-assisted KVM or vsock, namespaces without
 * root), with the reason; `PODVISOR_EUNAVAILABLE` if the agent did not answer;
 * `PODVISOR_EOS` if a host step failed. Nothing is left behind on failure.
 *
 * Blocks: until the agent answers (tens of milliseconds for namespaces). Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_create(const struct podvisor_sandbox_options *opts,
                                                 struct podvisor_sandbox **sandbox);

/**
 * Creates a container in the sandbox: unpacks its image (or checks its root directory) and
 * prepares its process, which waits for `podvisor_sandbox_start`.
 *
 * - `sandbox`: borrowed.
 * - `opts`: initialised with `podvisor_container_options_init`, `name` and one of `image` or
 *   `rootfs` set; it, its strings and arrays are borrowed for the call.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox`, `opts` or `opts->name` is NULL, both
 * `opts->image` and `opts->rootfs` are NULL, or an array is NULL with a non-zero length (or
 * holds NULL); `PODVISOR_EUTF8` for a string that is not UTF-8; `PODVISOR_EINVAL` for an
 * unknown `struct_size`, a bad name, both image fields set, an empty string, or an image that
 * is not a valid OCI layout or root; `PODVISOR_ENOTFOUND` if the image does not exist;
 * `PODVISOR_EEXISTS` if the sandbox has a container of that name; `PODVISOR_EHANDLE` for a
 * bad `sandbox`; `PODVISOR_ESTATE` if it was destroyed; `PODVISOR_EOS` if unpacking or the
 * agent's setup failed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
 *
 * Blocks: while the image is unpacked and the agent prepares the container. Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_create_container(const struct podvisor_sandbox *sandbox,
                                                           const struct podvisor_container_options *opts);

/**
 * Starts a created container's process, and returns a handle on it to read its output, write
 * its stdin, signal it and wait for it.
 *
 * - `sandbox`: borrowed.
 * - `container`: the container's name; borrowed for the call.
 * - `process`: receives the process handle, owned by the caller, freed with
 *   `podvisor_process_free`; or NULL when the caller does not want one (the output then only
 *   goes to the container's log).
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox` or `container` is NULL;
 * `PODVISOR_EINVAL` or `PODVISOR_EUTF8` for a bad `container`; `PODVISOR_EHANDLE` for a bad
 * `sandbox`; `PODVISOR_ENOTFOUND` if there is no such container; `PODVISOR_ESTATE` if it was
 * already started or the sandbox was destroyed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
 * A program that cannot be run is not an error of this call: the process exits with 127 (not
 * found) or 126, and says why on its stderr, as `podvisor_sandbox_exec` describes.
 *
 * Blocks: until the agent has started the process (milliseconds). Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_start(const struct podvisor_sandbox *sandbox,
                                                const char *container,
                                                struct podvisor_process **process);

/**
 * Stops a container: SIGTERM to its process, then SIGKILL to everything in it once
 * `grace_ms` has passed. The container stays, stopped, until removed.
 *
 * - `sandbox`: borrowed.
 * - `container`: the container's name; borrowed for the call.
 * - `grace_ms`: milliseconds between SIGTERM and SIGKILL.
 * - `exit`: initialised with `podvisor_exit_status_init`, filled with how the process ended;
 *   or NULL.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox` or `container` is NULL;
 * `PODVISOR_EINVAL` for a bad `container` or an unknown `exit->struct_size`;
 * `PODVISOR_EHANDLE` for a bad `sandbox`; `PODVISOR_ENOTFOUND` if there is no such container;
 * `PODVISOR_ESTATE` if it never started or the sandbox was destroyed;
 * `PODVISOR_EUNAVAILABLE` if the agent is gone.
 *
 * Blocks: until the process ended (at most about `grace_ms`). Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_stop_container(const struct podvisor_sandbox *sandbox,
                                                         const char *container,
                                                         uint64_t grace_ms,
                                                         struct podvisor_exit_status *exit);

/**
 * Removes a container: kills whatever of it still runs and releases its cgroup, its root (if
 * unpacked from an image) and its log.
 *
 * - `sandbox`: borrowed.
 * - `container`: the container's name; borrowed for the call.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox` or `container` is NULL;
 * `PODVISOR_EINVAL` or `PODVISOR_EUTF8` for a bad `container`; `PODVISOR_EHANDLE` for a bad
 * `sandbox`; `PODVISOR_ENOTFOUND` if there is no such container; `PODVISOR_ESTATE` if the
 * sandbox was destroyed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
 *
 * Blocks: until the container's processes are gone. Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_remove_container(const struct podvisor_sandbox *sandbox,
                                                           const char *container);

/**
 * Returns the path of a container's log on the host: one line per output line,
 * `<RFC 3339 time> <stdout|stderr> <F|P> <text>`, rotated to `.log.1` and on past the bound of
 * `opts->log_max_bytes`. Exec'd processes are not logged. The file is removed with the
 * sandbox.
 *
 * - `sandbox`: borrowed.
 * - `container`: the container's name; borrowed for the call.
 * - `path`: receives a NUL-terminated string owned by the caller, freed with `podvisor_free`.
 *
 * Returns `PODVISOR_OK` (also for a container that does not exist: the path is where its log
 * would be); `PODVISOR_ENULL` if an argument is NULL; `PODVISOR_EINVAL` or `PODVISOR_EUTF8`
 * for a bad `container`; `PODVISOR_EHANDLE` for a bad `sandbox`; `PODVISOR_ESTATE` if the
 * sandbox was destroyed.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_log_path(const struct podvisor_sandbox *sandbox,
                                                   const char *container,
                                                   char **path);

/**
 * Destroys the sandbox: the agent kills every container and exits, the backend releases the
 * namespaces or VM and the cgroup, the network is torn down, and the sandbox's directory (roots
 * and logs) is removed. The handle stays valid until freed, but every call on it then gives
 * `PODVISOR_ESTATE`, and the calls of its process handles that reach the agent fail.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox` is NULL; `PODVISOR_EHANDLE` for a bad
 * `sandbox`; `PODVISOR_ESTATE` if it was already destroyed; the code of the first step that
 * failed otherwise (the later steps still ran).
 *
 * Blocks: until calls in progress on the sandbox return, then until the agent and every
 * container are gone (up to 10 s for an agent that does not answer). Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_destroy(const struct podvisor_sandbox *sandbox);

/**
 * Frees a sandbox handle, destroying the sandbox first if that was not done (its errors are
 * then not reported). NULL does nothing. Process handles of the sandbox stay valid to free.
 *
 * Ownership: takes `sandbox`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: as `podvisor_sandbox_destroy` when the sandbox was not destroyed. Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_free(struct podvisor_sandbox *sandbox);

/**
 * Fills `opts` with the defaults: no id or directories, namespace isolation, the caller's
 * cgroup, loopback only, 1 vCPU and 256 MiB for a micro-VM, logs of 10 MiB with 3 rotated.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_options_init(struct podvisor_sandbox_options *opts,
                                                       size_t struct_size);

/**
 * Fills `opts` with the defaults: no name or image, the image's process, no stdin, no limits.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_container_options_init(struct podvisor_container_options *opts,
                                                         size_t struct_size);

/**
 * Fills `opts` with the defaults: no arguments, an empty environment, `/`, root, no stdin.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_exec_options_init(struct podvisor_exec_options *opts,
                                                    size_t struct_size);

/**
 * Fills `exit` with a zero exit code and sets its `struct_size`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `exit` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_exit_status_init(struct podvisor_exit_status *exit,
                                                   size_t struct_size);

/**
 * Runs another process in a running container, and returns a handle on it.
 *
 * - `sandbox`: borrowed.
 * - `container`: the container's name; borrowed for the call.
 * - `opts`: initialised with `podvisor_exec_options_init`, `args` set; it, its strings and
 *   arrays are borrowed for the call.
 * - `process`: receives the process handle, owned by the caller, freed with
 *   `podvisor_process_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox`, `container`, `opts`, `opts->args` or
 * `process` is NULL (or an array holds NULL); `PODVISOR_EUTF8` for a string that is not UTF-8;
 * `PODVISOR_EINVAL` for an unknown `struct_size`, no arguments, or an empty string;
 * `PODVISOR_EHANDLE` for a bad `sandbox`; `PODVISOR_ENOTFOUND` if there is no such container;
 * `PODVISOR_ESTATE` if it does not run or the sandbox was destroyed;
 * `PODVISOR_EUNAVAILABLE` if the agent is gone. A program that cannot be run (not found, not
 * executable, a bad `cwd` or user) is not an error of this call: as in a shell, the process
 * exits with 127 (not found) or 126, and says why on its stderr.
 *
 * Blocks: until the agent has started the process (milliseconds). Threads: any.
 */
enum podvisor_error_code podvisor_sandbox_exec(const struct podvisor_sandbox *sandbox,
                                               const char *container,
                                               const struct podvisor_exec_options *opts,
                                               struct podvisor_process **process);

/**
 * Takes the next chunk of the process's output, from stdout or stderr in the order the
 * process wrote them.
 *
 * - `process`: borrowed.
 * - `timeout_ms`: milliseconds to wait at most; 0 to only check, -1 to wait forever.
 * - `stream`: receives which stream the chunk came from.
 * - `data`: receives a NUL-terminated buffer owned by the caller, freed with `podvisor_free`.
 * - `len`: receives the chunk's length in bytes, without the NUL (never 0).
 *
 * Returns `PODVISOR_OK` with a chunk; `PODVISOR_EDONE` once the process has exited and all
 * its output was read (`podvisor_process_wait` then gives its status at once);
 * `PODVISOR_ETIMEOUT` if nothing came in time; `PODVISOR_ENULL` if an argument is NULL;
 * `PODVISOR_EINVAL` for a negative timeout other than -1; `PODVISOR_EHANDLE` for a bad
 * `process`; `PODVISOR_EUNAVAILABLE` if the sandbox's agent went away first.
 *
 * Blocks: yes, up to the timeout. Threads: any; reads and waits of one process are
 * serialised.
 */
enum podvisor_error_code podvisor_process_read(const struct podvisor_process *process,
                                               int64_t timeout_ms,
                                               enum podvisor_stream *stream,
                                               uint8_t **data,
                                               size_t *len);

/**
 * Waits for the process to exit and reports how it ended. Output that arrives meanwhile is
 * kept for `podvisor_process_read`.
 *
 * - `process`: borrowed.
 * - `timeout_ms`: milliseconds to wait at most; 0 to only check, -1 to wait forever.
 * - `exit`: initialised with `podvisor_exit_status_init`, filled on success; or NULL.
 *
 * Returns `PODVISOR_OK` once it exited (also on every later call); `PODVISOR_ETIMEOUT` if it
 * still runs; `PODVISOR_ENULL` if `process` is NULL; `PODVISOR_EINVAL` for a negative timeout
 * other than -1 or an unknown `exit->struct_size`; `PODVISOR_EHANDLE` for a bad `process`;
 * `PODVISOR_EUNAVAILABLE` if the sandbox's agent went away first.
 *
 * Blocks: yes, up to the timeout. Threads: any; reads and waits of one process are
 * serialised, while `podvisor_process_signal` and the stdin calls go through at any time.
 */
enum podvisor_error_code podvisor_process_wait(const struct podvisor_process *process,
                                               int64_t timeout_ms,
                                               struct podvisor_exit_status *exit);

/**
 * Writes bytes to the process's stdin (it must have been created with `stdin` set).
 *
 * - `process`: borrowed.
 * - `input`, `input_len`: the bytes; NULL is allowed with length 0.
 *
 * Returns `PODVISOR_OK` once the agent took them; `PODVISOR_ENULL` if `process` is NULL, or
 * `input` is NULL with a non-zero length; `PODVISOR_EHANDLE` for a bad `process`;
 * `PODVISOR_ENOTFOUND` if the process is gone; `PODVISOR_ESTATE` if it takes no stdin, its stdin
 * was closed, or the sandbox was destroyed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
 *
 * Blocks: until the agent took the bytes. Threads: any.
 */
enum podvisor_error_code podvisor_process_write_stdin(const struct podvisor_process *process,
                                                      const uint8_t *input,
                                                      size_t input_len);

/**
 * Closes the process's stdin: it reads end of file after the bytes already written.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `process` is NULL; `PODVISOR_EHANDLE` for a bad
 * `process`; `PODVISOR_ENOTFOUND` if the process is gone; `PODVISOR_ESTATE` if it takes no
 * stdin, or the sandbox was destroyed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
 *
 * Blocks: until the agent answers (milliseconds). Threads: any.
 */
enum podvisor_error_code podvisor_process_close_stdin(const struct podvisor_process *process);

/**
 * Sends a signal to the process.
 *
 * - `process`: borrowed.
 * - `signo`: the signal number, 1 to 64 (`SIGTERM`, `SIGKILL`, ...).
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `process` is NULL; `PODVISOR_EINVAL` for a
 * signal number out of range; `PODVISOR_EHANDLE` for a bad `process`; `PODVISOR_ENOTFOUND` or
 * `PODVISOR_ESTATE` if the process is gone or has exited, or the sandbox was destroyed;
 * `PODVISOR_EUNAVAILABLE` if the agent is gone.
 *
 * Blocks: until the agent answers (milliseconds). Threads: any, also while another thread
 * waits for the process.
 */
enum podvisor_error_code podvisor_process_signal(const struct podvisor_process *process,
                                                 int32_t signo);

/**
 * Frees a process handle. The process itself is not signalled: it runs on until it exits or
 * its container is stopped; its unread output is dropped. NULL does nothing.
 *
 * Ownership: takes `process`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_process_free(struct podvisor_process *process);

/**
 * Fills `opts` with the defaults: no endpoints, any cluster, a 10 s timeout.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_client_options_init(struct podvisor_client_options *opts,
                                                      size_t struct_size);

/**
 * Fills `kv` with empty values and sets its `struct_size`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `kv` is NULL; `PODVISOR_EINVAL` if `struct_size`
 * is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_kv_init(struct podvisor_kv *kv, size_t struct_size);

/**
 * Creates a client of the masters in `opts`. Connections are made lazily, on the first call,
 * to whichever master answers; calls are sent to the leader.
 *
 * - `opts`: initialised with `podvisor_client_options_init`; borrowed for the call only.
 * - `client`: receives the new handle, owned by the caller, freed with `podvisor_client_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts`, `opts->endpoints`, one endpoint or
 * `client` is NULL; `PODVISOR_EUTF8` for an endpoint that is not UTF-8; `PODVISOR_EINVAL` for
 * an unknown `struct_size`, no endpoints, or one that is not `HOST:PORT` (a name or an IPv4
 * address, or an IPv6 address in brackets, and a port from 1 to 65535).
 *
 * Blocks: no (nothing is connected yet). Threads: any.
 */
enum podvisor_error_code podvisor_client_connect(const struct podvisor_client_options *opts,
                                                 struct podvisor_client **client);

/**
 * Frees a client. Watches created from it keep running until freed themselves. NULL does
 * nothing.
 *
 * Ownership: takes `client`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_client_free(struct podvisor_client *client);

/**
 * Writes `value` at `key`, optionally attached to a lease.
 *
 * - `client`: borrowed.
 * - `key`, `key_len`: the key, any bytes, not empty; borrowed for the call.
 * - `value`, `value_len`: the value, any bytes (NULL with length 0 for empty); borrowed.
 * - `lease`: the lease to attach the key to, 0 for none.
 * - `revision`: receives the store revision of the write; may be NULL.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` is NULL, or `key` or `value` is NULL with
 * a non-zero length; `PODVISOR_EINVAL` for an empty key; `PODVISOR_EHANDLE` for a bad
 * `client`; `PODVISOR_ENOTFOUND` for an unknown lease; `PODVISOR_EUNAVAILABLE` if no master
 * answers; `PODVISOR_ETIMEOUT` if the outcome is unknown after the timeout.
 *
 * Blocks: yes, until a majority of masters has the write or the timeout passes. Threads: any.
 */
enum podvisor_error_code podvisor_client_put(const struct podvisor_client *client,
                                             const uint8_t *key,
                                             size_t key_len,
                                             const uint8_t *value,
                                             size_t value_len,
                                             uint64_t lease,
                                             uint64_t *revision);

/**
 * Reads one key, linearizably.
 *
 * - `client`: borrowed.
 * - `key`, `key_len`: the key, not empty; borrowed for the call.
 * - `kvs`: receives a handle holding the one pair, owned by the caller, freed with
 *   `podvisor_kvs_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if the key does not exist (no handle is
 * returned); `PODVISOR_ENULL` if `client` or `kvs` is NULL, or `key` is NULL with a non-zero
 * length; `PODVISOR_EINVAL` for an empty key; `PODVISOR_EHANDLE` for a bad `client`;
 * `PODVISOR_EUNAVAILABLE` if no leader could confirm the read in time.
 *
 * Blocks: yes, one round trip to the leader. Threads: any.
 */
enum podvisor_error_code podvisor_client_get(const struct podvisor_client *client,
                                             const uint8_t *key,
                                             size_t key_len,
                                             struct podvisor_kvs **kvs);

/**
 * Reads the keys in `[key, range_end)`, in key order, linearizably.
 *
 * - `client`: borrowed.
 * - `key`, `key_len`: the first key, not empty; borrowed for the call.
 * - `range_end`, `range_end_len`: the end, exclusive; empty (NULL, 0) for `key` alone, the
 *   single byte `"\0"` for every key from `key` on. Borrowed for the call.
 * - `limit`: at most this many pairs, 0 for no limit.
 * - `kvs`: receives a handle holding the pairs (perhaps none), owned by the caller, freed with
 *   `podvisor_kvs_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL`, `PODVISOR_EINVAL`, `PODVISOR_EHANDLE` and
 * `PODVISOR_EUNAVAILABLE` as for `podvisor_client_get`.
 *
 * Blocks: yes, one round trip to the leader. Threads: any.
 */
enum podvisor_error_code podvisor_client_range(const struct podvisor_client *client,
                                               const uint8_t *key,
                                               size_t key_len,
                                               const uint8_t *range_end,
                                               size_t range_end_len,
                                               size_t limit,
                                               struct podvisor_kvs **kvs);

/**
 * Deletes the keys in `[key, range_end)` (`key` alone when `range_end` is empty).
 *
 * - `client`: borrowed; `key` and `range_end` as for `podvisor_client_range`.
 * - `deleted`: receives the number of keys deleted; may be NULL.
 * - `revision`: receives the store revision after the delete; may be NULL.
 *
 * Returns `PODVISOR_OK` (also when nothing matched); `PODVISOR_ENULL`, `PODVISOR_EINVAL`,
 * `PODVISOR_EHANDLE`, `PODVISOR_EUNAVAILABLE` and `PODVISOR_ETIMEOUT` as for
 * `podvisor_client_put`.
 *
 * Blocks: yes, until a majority of masters has the delete or the timeout passes.
 * Threads: any.
 */
enum podvisor_error_code podvisor_client_delete(const struct podvisor_client *client,
                                                const uint8_t *key,
                                                size_t key_len,
                                                const uint8_t *range_end,
                                                size_t range_end_len,
                                                uint64_t *deleted,
                                                uint64_t *revision);

/**
 * Tells how many pairs a `podvisor_kvs` holds and what the read saw.
 *
 * - `kvs`: borrowed.
 * - `len`: receives the number of pairs held; may be NULL.
 * - `revision`: receives the store revision the read saw; may be NULL.
 * - `more`: receives whether the limit cut the answer short; may be NULL.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `kvs` is NULL; `PODVISOR_EHANDLE` for a bad
 * `kvs`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_kvs_info(const struct podvisor_kvs *kvs,
                                           size_t *len,
                                           uint64_t *revision,
                                           bool *more);

/**
 * Fills `kv` with the pair at `index`; its key and value point into `kvs` and stay valid until
 * `kvs` is freed.
 *
 * - `kvs`: borrowed.
 * - `index`: below the length `podvisor_kvs_info` gives.
 * - `kv`: initialised with `podvisor_kv_init`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `kvs` or `kv` is NULL; `PODVISOR_EINVAL` for an
 * index out of range or an unknown `kv->struct_size`; `PODVISOR_EHANDLE` for a bad `kvs`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_kvs_at(const struct podvisor_kvs *kvs,
                                         size_t index,
                                         struct podvisor_kv *kv);

/**
 * Frees a `podvisor_kvs` and the keys and values it lent. NULL does nothing.
 *
 * Ownership: takes `kvs`; it and every pointer `podvisor_kvs_at` gave from it must not be used
 * afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_kvs_free(struct podvisor_kvs *kvs);

/**
 * Grants a lease; keys attached to it are deleted when it expires or is revoked.
 *
 * - `client`: borrowed.
 * - `ttl_secs`: its time to live in seconds, at least 1.
 * - `id`: receives the lease id.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` or `id` is NULL; `PODVISOR_EINVAL` for a
 * TTL of 0; `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_EUNAVAILABLE` or
 * `PODVISOR_ETIMEOUT` as for `podvisor_client_put`.
 *
 * Blocks: yes, until a majority of masters has the grant. Threads: any.
 */
enum podvisor_error_code podvisor_client_lease_grant(const struct podvisor_client *client,
                                                     uint64_t ttl_secs,
                                                     uint64_t *id);

/**
 * Refreshes a lease to its full time to live. Call it well within the TTL to keep the lease.
 *
 * - `client`: borrowed.
 * - `id`: the lease.
 * - `ttl_secs`: receives the TTL it was refreshed to; may be NULL.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if the lease expired or was revoked;
 * `PODVISOR_ENULL` if `client` is NULL; `PODVISOR_EHANDLE` for a bad `client`;
 * `PODVISOR_EUNAVAILABLE` if no master answers.
 *
 * Blocks: yes, one round trip to the leader. Threads: any.
 */
enum podvisor_error_code podvisor_client_lease_keep_alive(const struct podvisor_client *client,
                                                          uint64_t id,
                                                          uint64_t *ttl_secs);

/**
 * Revokes a lease, deleting every key attached to it.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if the lease does not exist; `PODVISOR_ENULL` if
 * `client` is NULL; `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_EUNAVAILABLE` or
 * `PODVISOR_ETIMEOUT` as for `podvisor_client_put`.
 *
 * Blocks: yes, until a majority of masters has the revocation. Threads: any.
 */
enum podvisor_error_code podvisor_client_lease_revoke(const struct podvisor_client *client,
                                                      uint64_t id);

/**
 * Tells how long a lease has left, as the leader sees it.
 *
 * - `remaining_ms`: receives the time left in milliseconds.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if the lease does not exist; `PODVISOR_ENULL` if
 * `client` or `remaining_ms` is NULL; `PODVISOR_EHANDLE` for a bad `client`;
 * `PODVISOR_EUNAVAILABLE` if no master answers.
 *
 * Blocks: yes, one round trip to the leader. Threads: any.
 */
enum podvisor_error_code podvisor_client_lease_time_to_live(const struct podvisor_client *client,
                                                            uint64_t id,
                                                            uint64_t *remaining_ms);

/**
 * Fills `opts` with the defaults: no id, cluster 1, no data directory, no members, default
 * listen addresses, bootstrap, 50 ms ticks.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_master_options_init(struct podvisor_master_options *opts,
                                                      size_t struct_size);

/**
 * Starts a store master in this process: opens its data directory, binds its addresses and
 * starts serving peers and clients. With three members, start one master for each (in this
 * process or others); a leader is elected once two of them run.
 *
 * - `opts`: initialised with `podvisor_master_options_init`; borrowed for the call only.
 * - `master`: receives the new handle, owned by the caller, freed with
 *   `podvisor_master_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts`, `opts->data_dir`, `opts->members` or
 * `master` is NULL; `PODVISOR_EUTF8` for a string that is not UTF-8; `PODVISOR_EINVAL` for an
 * unknown `struct_size`, an empty string, a member that does not parse, an id that is not a
 * member, or another invalid configuration; `PODVISOR_EOS` if the data directory or an address
 * cannot be used.
 *
 * Blocks: until the master serves (milliseconds; it does not wait for a leader). Threads: any.
 */
enum podvisor_error_code podvisor_master_start(const struct podvisor_master_options *opts,
                                               struct podvisor_master **master);

/**
 * Returns the address clients reach this master at (reached, once it is stopped).
 *
 * - `master`: borrowed.
 * - `addr`: receives a NUL-terminated string owned by the caller, freed with `podvisor_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `master` or `addr` is NULL; `PODVISOR_EHANDLE`
 * for a bad `master`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_master_client_addr(const struct podvisor_master *master,
                                                     char **addr);

/**
 * Tells whether this master is the cluster's leader now.
 *
 * - `master`: borrowed.
 * - `leader`: receives the answer.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `master` or `leader` is NULL; `PODVISOR_EHANDLE`
 * for a bad `master`; `PODVISOR_ESTATE` if it was stopped.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_master_is_leader(const struct podvisor_master *master,
                                                   bool *leader);

/**
 * Stops the master: it stops serving and closes its data directory. The handle stays valid
 * until freed; `podvisor_master_client_addr` still says where the master served, and the
 * other calls but `podvisor_master_free` give `PODVISOR_ESTATE`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `master` is NULL; `PODVISOR_EHANDLE` for a bad
 * `master`; `PODVISOR_ESTATE` if it was already stopped.
 *
 * Blocks: until the master's threads exit. Threads: any.
 */
enum podvisor_error_code podvisor_master_stop(const struct podvisor_master *master);

/**
 * Frees a master handle, stopping the master first if it still runs. NULL does nothing.
 *
 * Ownership: takes `master`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: until the master's threads exit. Threads: any.
 */
enum podvisor_error_code podvisor_master_free(struct podvisor_master *master);

/**
 * Creates an empty transaction: no compares (so it succeeds), no operations.
 *
 * - `txn`: receives the new handle, owned by the caller, freed with `podvisor_txn_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `txn` is NULL.
 *
 * Blocks: no. Threads: any; a transaction may be built on one thread and run on another, but
 * not changed while it runs.
 */
enum podvisor_error_code podvisor_txn_new(struct podvisor_txn **txn);

/**
 * Adds a condition on one key.
 *
 * - `txn`: borrowed.
 * - `key`, `key_len`: the key, not empty; copied.
 * - `target`: a `podvisor_compare_target`.
 * - `op`: a `podvisor_compare_op`.
 * - `value`, `value_len`: compared with the key's value for `PODVISOR_COMPARE_VALUE`; ignored
 *   otherwise (pass NULL, 0). Copied.
 * - `number`: compared with the key's attribute for the other targets.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `txn` is NULL, or `key` or `value` is NULL with a
 * non-zero length; `PODVISOR_EINVAL` for an empty key, or a `target` or `op` outside its enum;
 * `PODVISOR_EHANDLE` for a bad `txn`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_txn_compare(const struct podvisor_txn *txn,
                                              const uint8_t *key,
                                              size_t key_len,
                                              int32_t target,
                                              int32_t op,
                                              const uint8_t *value,
                                              size_t value_len,
                                              uint64_t number);

/**
 * Adds a put to one branch.
 *
 * - `txn`: borrowed.
 * - `branch`: a `podvisor_txn_branch`.
 * - `key`, `value`, `lease`: as for `podvisor_client_put`; copied.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `txn` is NULL, or `key` or `value` is NULL with a
 * non-zero length; `PODVISOR_EINVAL` for an empty key or a `branch` outside its enum;
 * `PODVISOR_EHANDLE` for a bad `txn`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_txn_put(const struct podvisor_txn *txn,
                                          int32_t branch,
                                          const uint8_t *key,
                                          size_t key_len,
                                          const uint8_t *value,
                                          size_t value_len,
                                          uint64_t lease);

/**
 * Adds a delete of `[key, range_end)` (`key` alone when `range_end` is empty) to one branch.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL`, `PODVISOR_EINVAL` and `PODVISOR_EHANDLE` as for
 * `podvisor_txn_put`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_txn_delete(const struct podvisor_txn *txn,
                                             int32_t branch,
                                             const uint8_t *key,
                                             size_t key_len,
                                             const uint8_t *range_end,
                                             size_t range_end_len);

/**
 * Adds a read of `[key, range_end)` to one branch. It sees the writes of the operations
 * before it in the branch; its pairs are read back with `podvisor_txn_result_range`.
 *
 * - `txn`: borrowed; `branch` as for `podvisor_txn_put`.
 * - `key`, `range_end`, `limit`: as for `podvisor_client_range`; copied.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL`, `PODVISOR_EINVAL` and `PODVISOR_EHANDLE` as for
 * `podvisor_txn_put`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_txn_range(const struct podvisor_txn *txn,
                                            int32_t branch,
                                            const uint8_t *key,
                                            size_t key_len,
                                            const uint8_t *range_end,
                                            size_t range_end_len,
                                            size_t limit);

/**
 * Runs a transaction. The transaction is not changed and may be run again.
 *
 * - `client`, `txn`: borrowed.
 * - `succeeded`: receives whether every compare held (so the success branch applied); may be
 *   NULL.
 * - `revision`: receives the store revision after the transaction; may be NULL.
 *
 * Returns `PODVISOR_OK` whichever branch applied; `PODVISOR_ENULL` if `client` or `txn` is
 * NULL; `PODVISOR_EHANDLE` for a bad handle; `PODVISOR_EINVAL` if the store refuses the
 * transaction; `PODVISOR_EUNAVAILABLE` or `PODVISOR_ETIMEOUT` as for `podvisor_client_put`.
 *
 * Blocks: yes, until a majority of masters has it or the timeout passes. Threads: any.
 */
enum podvisor_error_code podvisor_client_txn(const struct podvisor_client *client,
                                             const struct podvisor_txn *txn,
                                             bool *succeeded,
                                             uint64_t *revision);

/**
 * Frees a transaction. NULL does nothing.
 *
 * Ownership: takes `txn`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_txn_free(struct podvisor_txn *txn);

/**
 * Runs a transaction and keeps everything it did, including the pairs its reads returned.
 * The transaction is not changed and may be run again.
 *
 * - `client`, `txn`: borrowed.
 * - `result`: receives the result, owned by the caller, freed with `podvisor_txn_result_free`.
 *
 * Returns as `podvisor_client_txn`, and `PODVISOR_ENULL` if `result` is NULL.
 *
 * Blocks: yes, until a majority of masters has it or the timeout passes. Threads: any.
 */
enum podvisor_error_code podvisor_client_txn_run(const struct podvisor_client *client,
                                                 const struct podvisor_txn *txn,
                                                 struct podvisor_txn_result **result);

/**
 * Says what a transaction did.
 *
 * - `result`: borrowed.
 * - `succeeded`: receives whether every compare held (so the success branch applied); may be
 *   NULL.
 * - `revision`: receives the store revision after the transaction; may be NULL.
 * - `len`: receives the number of operation results (those of the branch taken); may be NULL.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `result` is NULL; `PODVISOR_EHANDLE` for a bad
 * handle.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_txn_result_info(const struct podvisor_txn_result *result,
                                                  bool *succeeded,
                                                  uint64_t *revision,
                                                  size_t *len);

/**
 * Reads the pairs of one read of the branch taken.
 *
 * - `result`: borrowed.
 * - `index`: the operation's position in its branch, from 0.
 * - `kvs`: receives a handle holding the pairs, owned by the caller, freed with
 *   `podvisor_kvs_free`; its revision is the transaction's.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `result` or `kvs` is NULL; `PODVISOR_EHANDLE` for
 * a bad handle; `PODVISOR_EINVAL` if `index` is past the end or names a put or a delete.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_txn_result_range(const struct podvisor_txn_result *result,
                                                   size_t index,
                                                   struct podvisor_kvs **kvs);

/**
 * Frees a transaction result. NULL does nothing.
 *
 * Ownership: takes `result`; it must not be used afterwards. Pairs read out of it with
 * `podvisor_txn_result_range` stay valid (they have their own handles).
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_txn_result_free(struct podvisor_txn_result *result);

/**
 * Fills `event` with empty values and sets its `struct_size`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `event` is NULL; `PODVISOR_EINVAL` if
 * `struct_size` is not a size this library knows.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_watch_event_init(struct podvisor_watch_event *event,
                                                   size_t struct_size);

/**
 * Watches the keys in `[key, range_end)` (`key` alone when `range_end` is empty; `"\0"` for
 * every key from `key` on). The first batch is an empty one confirming the watch. If the master
 * serving it fails, the watch resumes on another without losing or repeating a change.
 *
 * - `client`: borrowed; the watch keeps working after the client is freed.
 * - `key`, `range_end`: as for `podvisor_client_range`; copied.
 * - `start_revision`: the first revision to deliver, or 0 for every change made after this call
 *   returns (the current revision is read before it does; if no master answers that read, the
 *   watch starts at what is current when it first reaches one).
 * - `callback`: called with each batch on a library thread; or NULL to poll with
 *   `podvisor_watch_poll` instead.
 * - `userdata`: passed to `callback`; libpodvisor never reads or frees it. It must stay valid
 *   until `podvisor_watch_free` returns.
 * - `watch`: receives the new handle, owned by the caller, freed with `podvisor_watch_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` or `watch` is NULL, or `key` is NULL with
 * a non-zero length; `PODVISOR_EINVAL` for an empty key; `PODVISOR_EHANDLE` for a bad `client`;
 * `PODVISOR_EOS` if the delivery thread could not start. Errors of the stream itself come to
 * the callback (with a NULL batch), or from `podvisor_watch_poll`. `PODVISOR_EUNAVAILABLE`
 * says no master has answered for the client's timeout; it comes once per outage, and the
 * watch keeps trying and goes on where it was. Any other error ends the watch.
 *
 * Blocks: for start_revision 0, up to the client's timeout while it reads the current
 * revision; otherwise no. Threads: any.
 */
enum podvisor_error_code podvisor_client_watch(const struct podvisor_client *client,
                                               const uint8_t *key,
                                               size_t key_len,
                                               const uint8_t *range_end,
                                               size_t range_end_len,
                                               uint64_t start_revision,
                                               podvisor_watch_callback callback,
                                               void *userdata,
                                               struct podvisor_watch **watch);

/**
 * Waits for the next batch of a polled watch (one created without a callback).
 *
 * - `watch`: borrowed.
 * - `timeout_ms`: milliseconds to wait at most; 0 to only check, -1 to wait forever.
 * - `batch`: receives the batch, owned by the caller, freed with `podvisor_watch_batch_free`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ETIMEOUT` if no batch came in time;
 * `PODVISOR_EUNAVAILABLE` once per outage when no master has answered for the client's
 * timeout (the watch keeps trying; poll again); `PODVISOR_ECOMPACTED` if the start revision
 * was compacted away, or another code if the watch ended (then every later poll gives
 * `PODVISOR_ESTATE`); `PODVISOR_ENULL` if `watch` or `batch` is NULL;
 * `PODVISOR_EINVAL` for a negative timeout other than -1; `PODVISOR_EHANDLE` for a bad `watch`;
 * `PODVISOR_ESTATE` for a watch with a callback.
 *
 * Blocks: yes, up to the timeout. Threads: any; polls of one watch are serialised.
 */
enum podvisor_error_code podvisor_watch_poll(const struct podvisor_watch *watch,
                                             int64_t timeout_ms,
                                             struct podvisor_watch_batch **batch);

/**
 * Frees a watch: it stops, and once this returns its callback is not running and will not be
 * called again (except when called from that callback: then it returns at once, and the
 * callback is not called again after it returns). NULL does nothing.
 *
 * Ownership: takes `watch`; it must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: until a callback in progress returns (up to 100 ms more for the thread to notice).
 * Threads: any.
 */
enum podvisor_error_code podvisor_watch_free(struct podvisor_watch *watch);

/**
 * Tells how many changes a batch holds and up to which revision it covers.
 *
 * - `batch`: borrowed.
 * - `len`: receives the number of changes (0 for the batch confirming the watch); may be NULL.
 * - `revision`: receives the revision up to which every change has been delivered; may be NULL.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `batch` is NULL; `PODVISOR_EHANDLE` for a bad
 * `batch`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_watch_batch_info(const struct podvisor_watch_batch *batch,
                                                   size_t *len,
                                                   uint64_t *revision);

/**
 * Fills `event` with the change at `index`; its pointers borrow from the batch.
 *
 * - `batch`: borrowed.
 * - `index`: below the length `podvisor_watch_batch_info` gives.
 * - `event`: initialised with `podvisor_watch_event_init`.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `batch` or `event` is NULL; `PODVISOR_EINVAL` for
 * an index out of range or an unknown `event->struct_size`; `PODVISOR_EHANDLE` for a bad
 * `batch`.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_watch_batch_event(const struct podvisor_watch_batch *batch,
                                                    size_t index,
                                                    struct podvisor_watch_event *event);

/**
 * Frees a batch a poll returned. NULL does nothing. Batches lent to a callback are freed by
 * libpodvisor.
 *
 * Ownership: takes `batch`; it and the pointers its events lent must not be used afterwards.
 *
 * Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
 *
 * Blocks: no. Threads: any.
 */
enum podvisor_error_code podvisor_watch_batch_free(struct podvisor_watch_batch *batch);

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
 * time; `PODVISOR_ESTATE` if the VM ended without it appearing (so waiting on could not
 * help); `PODVISOR_ENULL` if `vm` or `text` is NULL; `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for
 * a bad `text` or a negative timeout other than -1; `PODVISOR_EHANDLE` for a bad `vm`.
 *
 * Blocks: yes, up to the timeout or until the VM ends. Threads: any.
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
