//! Library threads that call into the host, each with an alternate signal stack.
//!
//! A Go host's signal handler runs on the alternate signal stack of the thread a signal lands on.
//! When that thread is in a cgo callback, Go requires one to be installed, or the process dies.
//! So libpodvisor runs host callbacks only on threads it starts here: each maps a stack with a
//! guard page below it, installs it with `sigaltstack`, and removes it before it exits.

use std::io;
use std::ptr;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

/// The size of each thread's alternate signal stack: Go needs 32 KiB; this leaves room.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// An installed alternate signal stack; dropping it disables and unmaps it.
struct AltStack {
    mapping: *mut libc::c_void,
    mapping_len: usize,
}

impl AltStack {
    fn install() -> io::Result<AltStack> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let mapping_len = ALT_STACK_SIZE + page;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
        let mapping = unsafe {
            libc::mmap(
                ptr::null_mut(),
                mapping_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = AltStack {
            mapping,
            mapping_len,
        };

        // The lowest page is the guard: a handler that overflows faults instead of corrupting.
        // SAFETY: the first page of the mapping just created.
        if unsafe { libc::mprotect(mapping, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let ss = libc::stack_t {
            // SAFETY: `page` is inside the mapping of `page + ALT_STACK_SIZE` bytes.
            ss_sp: unsafe { mapping.cast::<u8>().add(page) }.cast(),
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        // SAFETY: `ss` describes memory that stays mapped until `drop` disables the stack.
        if unsafe { libc::sigaltstack(&ss, ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let disable = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disables this thread's alternate stack before its memory goes. It cannot be in
        // use: a handler running on it would be running instead of this code.
        unsafe { libc::sigaltstack(&disable, ptr::null_mut()) };
        // SAFETY: the mapping made in `install`, no longer installed.
        unsafe { libc::munmap(self.mapping, self.mapping_len) };
    }
}

/// Starts a thread that may call host callbacks: `body` runs with an alternate signal stack.
///
/// # Errors
/// The thread could not be started, or its signal stack could not be set up.
pub(crate) fn spawn_callback_thread(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let (ready_tx, ready_rx) = mpsc::sync_channel::<io::Result<()>>(1);
    let thread = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let stack = match AltStack::install() {
                Ok(stack) => stack,
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            body();
            drop(stack);
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(err)) => {
            let _ = thread.join();
            Err(err)
        }
        Err(_) => Err(io::Error::other("the callback thread died while starting")),
    }
}

/// Whether the calling thread has an alternate signal stack installed.
#[cfg(test)]
pub(crate) fn current_thread_has_alt_stack() -> bool {
    let mut old = libc::stack_t {
        ss_sp: ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: queries only; `old` is a valid out-parameter.
    let rc = unsafe { libc::sigaltstack(ptr::null(), &mut old) };
    rc == 0 && old.ss_flags & libc::SS_DISABLE == 0 && old.ss_size >= ALT_STACK_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_callback_threads_run_with_an_alternate_signal_stack() {
        let (tx, rx) = mpsc::channel();
        let thread = spawn_callback_thread("pv-test", move || {
            let _ = tx.send(current_thread_has_alt_stack());
        })
        .expect("a thread starts");
        assert_eq!(rx.recv(), Ok(true));
        thread.join().expect("the thread exits cleanly");
    }
}
