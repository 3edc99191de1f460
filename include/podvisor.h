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

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* PODVISOR_H */
