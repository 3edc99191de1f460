//! The release version and the ABI version, as macros for compile time and functions for run
//! time.
//!
//! The release version follows podvisor's releases. The ABI version is separate: it changes only
//! when a release breaks binary compatibility (a symbol removed or its signature changed, a
//! struct shrunk or reordered), which the ABI policy allows only with a new major release. It is
//! also the major number of the shared library's soname.

use std::ffi::c_char;

/// The major release version of this header.
pub const PODVISOR_VERSION_MAJOR: u32 = 0;
/// The minor release version of this header.
pub const PODVISOR_VERSION_MINOR: u32 = 1;
/// The patch release version of this header.
pub const PODVISOR_VERSION_PATCH: u32 = 0;
/// The release version of this header as one number, `MAJOR * 1000000 + MINOR * 1000 + PATCH`.
pub const PODVISOR_VERSION_NUMBER: u32 =
    PODVISOR_VERSION_MAJOR * 1_000_000 + PODVISOR_VERSION_MINOR * 1000 + PODVISOR_VERSION_PATCH;
/// The ABI version of this header; compare it with `podvisor_abi_version()` at run time.
pub const PODVISOR_ABI_VERSION: u32 = 1;

/// Returns the release version of the loaded library as a string, `"MAJOR.MINOR.PATCH"`.
///
/// Ownership: the string is static; do not free it.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub extern "C" fn podvisor_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(version) => version,
        Err(_) => panic!("the package version holds a NUL"),
    };
    VERSION.as_ptr()
}

/// Returns the release version of the loaded library as one number, in the form of
/// `PODVISOR_VERSION_NUMBER`. A host compares it with the macro to learn whether the library it
/// runs with is older than the header it was built with.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub extern "C" fn podvisor_version_number() -> u32 {
    PODVISOR_VERSION_NUMBER
}

/// Returns the ABI version of the loaded library. A host built with a header whose
/// `PODVISOR_ABI_VERSION` differs must not use the library.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub extern "C" fn podvisor_abi_version() -> u32 {
    PODVISOR_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn test_version_macros_match_the_package_version() {
        // SAFETY: podvisor_version returns a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(podvisor_version()) };
        assert_eq!(version.to_str(), Ok(env!("CARGO_PKG_VERSION")));
        let parts = [
            PODVISOR_VERSION_MAJOR,
            PODVISOR_VERSION_MINOR,
            PODVISOR_VERSION_PATCH,
        ]
        .map(|p| p.to_string())
        .join(".");
        assert_eq!(parts, env!("CARGO_PKG_VERSION"));
        assert_eq!(podvisor_version_number(), 1000);
    }
}
