//! podvisor's virtual machine monitor.
//!
//! This crate owns one KVM virtual machine per [`Vm`]: its guest memory, the Linux boot path
//! (bzImage through the 64-bit boot protocol, ELF vmlinux through PVH), one thread per vCPU and the
//! legacy devices a Linux guest expects. It knows nothing of clusters and can be embedded alone.
