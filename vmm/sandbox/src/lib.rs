//! podvisor's pod sandboxes.
//!
//! A sandbox is where a pod's containers run. It offers one interface over two isolation levels:
//! a micro-VM of `podvisor-vmm`, or Linux namespaces and cgroups on the host. Both run the
//! podvisor agent as PID 1 and speak the same protocol to it.
