//! The VirtualMachine: a whole guest declared with a power state, as VMware's VM Operator
//! declares them.

use serde::{Deserialize, Serialize};

use super::meta::{Condition, ObjectMeta};
use super::validation::{FieldPath, ValidationErrors};

/// A virtual machine and the power state it should be in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachine {
    /// Name, namespace, labels and versions.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the operator wants.
    pub spec: VirtualMachineSpec,
    /// What the node agent last reported.
    #[serde(default)]
    pub status: VirtualMachineStatus,
}

/// Whether a VM should run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerState {
    /// Running.
    PoweredOn,
    /// Stopped.
    #[default]
    PoweredOff,
}

/// The size of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachineClass {
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Guest memory in MiB.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u64,
}

impl Default for VirtualMachineClass {
    fn default() -> Self {
        VirtualMachineClass {
            vcpus: 1,
            memory_mib: 256,
        }
    }
}

/// What a VM boots. Each file is an absolute path on the node, or a name the node resolves in
/// its artifact cache (`vmlinux` is `$PODVISOR_CACHE/kernel/vmlinux` there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachineImage {
    /// A bzImage or an ELF vmlinux with a PVH note.
    pub kernel: String,
    /// An initramfs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initrd: String,
    /// A raw disk image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub disk: String,
    /// The kernel command line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cmdline: String,
}

/// Where a VM's address comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachineNetwork {
    /// The workload IP pool to take the address from; the default pool when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_pool: String,
}

/// What the operator wants of a VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachineSpec {
    /// Its size.
    #[serde(default)]
    pub class: VirtualMachineClass,
    /// What it boots.
    pub image: VirtualMachineImage,
    /// Whether it should run.
    #[serde(default)]
    pub power_state: PowerState,
    /// Its network.
    #[serde(default)]
    pub network: VirtualMachineNetwork,
    /// The node it is bound to; set by the scheduler.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
}

/// What the node agent last reported about a VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachineStatus {
    /// The power state it is in.
    #[serde(default)]
    pub power_state: PowerState,
    /// Its address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// Why the guest last stopped, as the VMM reported it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_exit_reason: String,
    /// Conditions such as `Ready` and `Runnable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl VirtualMachine {
    pub(super) fn validate(&self, errs: &mut ValidationErrors) {
        self.metadata.validate(true, errs);
        let spec = FieldPath::root("spec");
        if self.spec.class.vcpus == 0 {
            errs.push(spec.child("class").child("vcpus"), "must be at least 1");
        }
        if self.spec.class.memory_mib < 16 {
            errs.push(
                spec.child("class").child("memoryMiB"),
                "must be at least 16",
            );
        }
        let image = spec.child("image");
        if self.spec.image.kernel.is_empty() {
            errs.push(image.child("kernel"), "must name a kernel");
        }
        for (field, value) in [
            ("kernel", &self.spec.image.kernel),
            ("initrd", &self.spec.image.initrd),
            ("disk", &self.spec.image.disk),
        ] {
            if value.split('/').any(|part| part == "..") {
                errs.push(image.child(field), "must not contain '..'");
            }
        }
    }
}
