//! The CPUID a guest sees: KVM's supported set, passed through a documented filter, then
//! patched per vCPU with its APIC id and the VM's topology.
//!
//! The default filter masks what a software-paged KVM (PVM) cannot run in guest ring 0, and
//! what would make a guest use it anyway:
//!
//! | leaf.subleaf | register | bits | feature | why |
//! |---|---|---|---|---|
//! | 1 | ECX | 13 | CMPXCHG16B | stops the guest when executed in ring 0 under PVM |
//! | 1 | ECX | 26, 27, 28 | XSAVE, OSXSAVE, AVX | xsave/xrstor stop the guest under PVM; AVX needs XSAVE |
//! | 7.0 | EDX | 29 | ARCH_CAPABILITIES | the MSR it announces is not emulated under PVM |
//!
//! On hardware-assisted KVM [`CpuidFilter::none`] passes KVM's set through untouched, and
//! [`CpuidFilter::mask`] adds masks of one's own.
//!
//! On PVM the table podvisor sets governs the topology leaves (APIC ids, counts) and KVM's own
//! leaves, but the feature bits of leaves 1 and 7 a guest reads are decided by PVM: it hides
//! cmpxchg16b, PCID, OSXSAVE and INVPCID itself and shows the host's other bits, XSAVE and
//! AVX included, whatever the filter says. The default masks stay so that the same
//! configuration is right on hardware-assisted hosts.

use kvm_bindings::{CpuId, kvm_cpuid_entry2};

/// A CPUID output register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuidRegister {
    /// EAX.
    Eax,
    /// EBX.
    Ebx,
    /// ECX.
    Ecx,
    /// EDX.
    Edx,
}

/// Bits cleared in one register of one leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuidMask {
    /// The leaf (EAX input).
    pub leaf: u32,
    /// The subleaf (ECX input), or every subleaf.
    pub subleaf: Option<u32>,
    /// The register the bits are cleared in.
    pub register: CpuidRegister,
    /// The bits to clear.
    pub bits: u32,
    /// Why, for logs and documentation.
    pub reason: &'static str,
}

/// Which CPUID bits the guest does not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuidFilter {
    /// The masks, applied in order.
    pub masks: Vec<CpuidMask>,
}

/// CPUID.1:ECX.CMPXCHG16B.
pub const CPUID_1_ECX_CX16: u32 = 1 << 13;
/// CPUID.1:ECX.XSAVE.
pub const CPUID_1_ECX_XSAVE: u32 = 1 << 26;
/// CPUID.1:ECX.OSXSAVE.
pub const CPUID_1_ECX_OSXSAVE: u32 = 1 << 27;
/// CPUID.1:ECX.AVX.
pub const CPUID_1_ECX_AVX: u32 = 1 << 28;
/// CPUID.1:ECX.HYPERVISOR.
pub const CPUID_1_ECX_HYPERVISOR: u32 = 1 << 31;
/// CPUID.7.0:EDX.ARCH_CAPABILITIES.
pub const CPUID_7_EDX_ARCH_CAPABILITIES: u32 = 1 << 29;

impl Default for CpuidFilter {
    /// The masks of the table above, safe on every KVM podvisor runs on.
    fn default() -> Self {
        CpuidFilter { masks: Vec::new() }
            .mask(
                1,
                None,
                CpuidRegister::Ecx,
                CPUID_1_ECX_CX16,
                "cmpxchg16b stops PVM guests",
            )
            .mask(
                1,
                None,
                CpuidRegister::Ecx,
                CPUID_1_ECX_XSAVE | CPUID_1_ECX_OSXSAVE | CPUID_1_ECX_AVX,
                "xsave/xrstor stop PVM guests; AVX needs XSAVE",
            )
            .mask(
                7,
                Some(0),
                CpuidRegister::Edx,
                CPUID_7_EDX_ARCH_CAPABILITIES,
                "IA32_ARCH_CAPABILITIES is not emulated under PVM",
            )
    }
}

impl CpuidFilter {
    /// A filter that masks nothing: the guest sees KVM's supported set.
    pub fn none() -> Self {
        CpuidFilter { masks: Vec::new() }
    }

    /// Adds a mask clearing `bits` of `register` in `leaf` (and `subleaf`, or all subleaves).
    pub fn mask(
        mut self,
        leaf: u32,
        subleaf: Option<u32>,
        register: CpuidRegister,
        bits: u32,
        reason: &'static str,
    ) -> Self {
        self.masks.push(CpuidMask {
            leaf,
            subleaf,
            register,
            bits,
            reason,
        });
        self
    }

    /// Applies the masks to `cpuid` in place.
    pub fn apply(&self, cpuid: &mut CpuId) {
        for entry in cpuid.as_mut_slice() {
            for mask in &self.masks {
                if entry.function == mask.leaf && mask.subleaf.is_none_or(|s| s == entry.index) {
                    *register(entry, mask.register) &= !mask.bits;
                }
            }
        }
    }
}

fn register(entry: &mut kvm_cpuid_entry2, register: CpuidRegister) -> &mut u32 {
    match register {
        CpuidRegister::Eax => &mut entry.eax,
        CpuidRegister::Ebx => &mut entry.ebx,
        CpuidRegister::Ecx => &mut entry.ecx,
        CpuidRegister::Edx => &mut entry.edx,
    }
}

/// Patches the topology leaves for vCPU `index` of `count`: its APIC id in leaf 1 and its
/// x2APIC id in leaves 0xb and 0x1f, one thread per core, all cores in one package.
pub(crate) fn patch_topology(cpuid: &mut CpuId, index: u32, count: u32) {
    let core_bits = 32 - (count.max(1) - 1).leading_zeros();
    for entry in cpuid.as_mut_slice() {
        match entry.function {
            1 => {
                entry.ebx = (index << 24) | (count.min(255) << 16) | (entry.ebx & 0xffff);
                if count > 1 {
                    entry.edx |= 1 << 28; // HTT: more than one logical processor.
                }
                entry.ecx |= CPUID_1_ECX_HYPERVISOR;
            }
            0xb | 0x1f => {
                entry.edx = index;
                let (eax, ebx, ecx) = match entry.index {
                    0 => (0, 1, 1 << 8),
                    1 => (core_bits, count, (2 << 8) | 1),
                    n => (0, 0, n),
                };
                entry.eax = eax;
                entry.ebx = ebx;
                entry.ecx = ecx;
            }
            0x8000_0008 => {
                entry.ecx = (core_bits << 12) | (count - 1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax: !0,
            ebx: !0,
            ecx: !0,
            edx: !0,
            ..Default::default()
        }
    }

    #[test]
    fn test_default_filter_masks_cx16_xsave_and_arch_capabilities() {
        let mut cpuid = CpuId::from_entries(&[entry(1, 0), entry(7, 0), entry(7, 1)])
            .expect("three entries fit a CpuId");
        CpuidFilter::default().apply(&mut cpuid);
        let entries = cpuid.as_slice();
        assert_eq!(entries[0].ecx & (CPUID_1_ECX_CX16 | CPUID_1_ECX_XSAVE), 0);
        assert_eq!(entries[1].edx & CPUID_7_EDX_ARCH_CAPABILITIES, 0);
        assert_eq!(entries[2].edx, !0, "subleaf 1 of leaf 7 is untouched");
    }

    #[test]
    fn test_topology_sets_apic_ids() {
        let mut cpuid =
            CpuId::from_entries(&[entry(1, 0), entry(0xb, 0)]).expect("two entries fit a CpuId");
        patch_topology(&mut cpuid, 3, 4);
        assert_eq!(cpuid.as_slice()[0].ebx >> 24, 3);
        assert_eq!(cpuid.as_slice()[1].edx, 3);
    }
}
