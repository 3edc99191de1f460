//! libpodvisor: the C ABI over podvisor's Rust APIs.
//!
//! It holds no logic of its own; `include/podvisor.h` is generated from it with cbindgen.
