//! podvisor's cross-crate and multi-process tests; each test file is a target of this package.
