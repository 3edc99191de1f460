//! podvisor's cross-crate tests; each file of `tests/tests/` is a target of this package.
//!
//! - `layering`: dependencies between the crates point one way (`ffi` → `cluster` → `vmm`),
//!   so the VMM, the sandbox layer and the store each embed without the rest.
