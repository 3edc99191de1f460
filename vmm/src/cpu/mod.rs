//! The state a vCPU starts in: CPUID, MSRs, FPU, local APIC, segment registers and, for the
//! 64-bit entry, the identity-mapped page tables.
//!
//! The boot vCPU enters the kernel in the mode its [`EntryPoint`] asks for:
//!
//! - **PVH**: 32-bit protected mode with paging off, flat 4 GiB code and data segments from
//!   the GDT, a 32-bit TSS, `%ebx` holding the address of `hvm_start_info`.
//! - **Linux 64-bit**: long mode with the first 4 GiB identity-mapped by 2 MiB pages, the
//!   `__BOOT_CS` (0x10) and `__BOOT_DS` (0x18) selectors the boot protocol names, and `%rsi`
//!   holding the address of the zero page.
//!
//! The other vCPUs start the same way; Linux parks them until it sends INIT/SIPI, and the tiny
//! test guests use them directly.

mod cpuid;

pub(crate) use cpuid::patch_topology;
pub use cpuid::{
    CPUID_1_ECX_AVX, CPUID_1_ECX_CX16, CPUID_1_ECX_HYPERVISOR, CPUID_1_ECX_OSXSAVE,
    CPUID_1_ECX_XSAVE, CPUID_7_EDX_ARCH_CAPABILITIES, CpuidFilter, CpuidMask, CpuidRegister,
};

use kvm_bindings::{CpuId, Msrs, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::boot::EntryPoint;
use crate::kvm::KvmError;
use crate::memory::{BOOT_STACK_POINTER, GDT_START, PDE_START, PDPTE_START, PML4_START};

/// GDT selector of the flat 32-bit code segment (PVH entry).
pub const CODE32_SELECTOR: u16 = 0x08;
/// GDT selector of the flat 64-bit code segment (`__BOOT_CS`).
pub const CODE64_SELECTOR: u16 = 0x10;
/// GDT selector of the flat data segment (`__BOOT_DS`).
pub const DATA_SELECTOR: u16 = 0x18;
/// GDT selector of the TSS.
pub const TSS_SELECTOR: u16 = 0x20;

/// The GDT: null, code32, code64, data, TSS, as (flags, base, limit).
const GDT: [(u16, u32, u32); 5] = [
    (0, 0, 0),
    (0xc09b, 0, 0xfffff),
    (0xa09b, 0, 0xfffff),
    (0xc093, 0, 0xfffff),
    (0x008b, 0, 0x67),
];

const X86_CR0_PE: u64 = 1 << 0;
const X86_CR0_ET: u64 = 1 << 4;
const X86_CR0_PG: u64 = 1 << 31;
const X86_CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4 << 8;
const APIC_MODE_EXTINT: u32 = 0x7 << 8;

fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let (flags, base, limit) = (u64::from(flags), u64::from(base), u64::from(limit));
    ((base & 0xff00_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0xffff)
        | ((limit & 0xf_0000) << 32)
        | ((flags & 0xf0ff) << 40)
}

fn segment(index: usize) -> kvm_segment {
    let (flags, base, limit) = GDT[index];
    let granular = (flags >> 15) & 1 == 1;
    let present = ((flags >> 7) & 1) as u8;
    kvm_segment {
        base: u64::from(base),
        limit: if granular {
            (limit << 12) | 0xfff
        } else {
            limit
        },
        selector: (index * 8) as u16,
        type_: (flags & 0xf) as u8,
        present,
        dpl: ((flags >> 5) & 0x3) as u8,
        db: ((flags >> 14) & 1) as u8,
        s: ((flags >> 4) & 1) as u8,
        l: ((flags >> 13) & 1) as u8,
        g: granular as u8,
        avl: ((flags >> 12) & 1) as u8,
        unusable: 1 - present,
        padding: 0,
    }
}

/// Writes the GDT and the identity map of the first 4 GiB into guest memory.
pub(crate) fn write_boot_tables(mem: &GuestMemoryMmap) -> Result<(), vm_memory::GuestMemoryError> {
    for (i, (flags, base, limit)) in GDT.iter().enumerate() {
        mem.write_obj(
            gdt_entry(*flags, *base, *limit),
            GuestAddress(GDT_START + 8 * i as u64),
        )?;
    }

    mem.write_obj(PDPTE_START | 0x3, GuestAddress(PML4_START))?;
    for dir in 0..4u64 {
        let pd = PDE_START + dir * 0x1000;
        mem.write_obj(pd | 0x3, GuestAddress(PDPTE_START + dir * 8))?;
        for entry in 0..512u64 {
            // Present, writable, 2 MiB page.
            let page = ((dir * 512 + entry) << 21) | 0x83;
            mem.write_obj(page, GuestAddress(pd + entry * 8))?;
        }
    }
    Ok(())
}

/// Gives vCPU `index` of `count` its CPUID, MSRs, FPU, LAPIC and registers for `entry`.
pub(crate) fn configure_vcpu(
    vcpu: &VcpuFd,
    index: u32,
    count: u32,
    entry: &EntryPoint,
    cpuid: &CpuId,
) -> Result<(), KvmError> {
    let mut cpuid = cpuid.clone();
    patch_topology(&mut cpuid, index, count);
    vcpu.set_cpuid2(&cpuid)
        .map_err(KvmError::ioctl("KVM_SET_CPUID2"))?;

    set_msrs(vcpu)?;
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(KvmError::ioctl("KVM_SET_FPU"))?;
    set_lapic(vcpu)?;

    let mut sregs = vcpu.get_sregs().map_err(KvmError::ioctl("KVM_GET_SREGS"))?;
    sregs.gdt.base = GDT_START;
    sregs.gdt.limit = (GDT.len() * 8 - 1) as u16;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    let data = segment(usize::from(DATA_SELECTOR / 8));
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = segment(usize::from(TSS_SELECTOR / 8));

    let mut regs = kvm_regs {
        rflags: 0x2,
        ..Default::default()
    };
    match *entry {
        EntryPoint::Pvh { rip, start_info } => {
            sregs.cs = segment(usize::from(CODE32_SELECTOR / 8));
            sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
            sregs.cr4 = 0;
            sregs.efer = 0;
            regs.rip = rip;
            regs.rbx = start_info;
        }
        EntryPoint::Linux64 { rip, zero_page } => {
            sregs.cs = segment(usize::from(CODE64_SELECTOR / 8));
            sregs.cr3 = PML4_START;
            sregs.cr4 |= X86_CR4_PAE;
            sregs.cr0 |= X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
            sregs.efer |= EFER_LME | EFER_LMA;
            regs.rip = rip;
            regs.rsp = BOOT_STACK_POINTER;
            regs.rbp = BOOT_STACK_POINTER;
            regs.rsi = zero_page;
        }
    }
    vcpu.set_sregs(&sregs)
        .map_err(KvmError::ioctl("KVM_SET_SREGS"))?;
    vcpu.set_regs(&regs)
        .map_err(KvmError::ioctl("KVM_SET_REGS"))?;
    Ok(())
}

fn set_msrs(vcpu: &VcpuFd) -> Result<(), KvmError> {
    let entries: Vec<kvm_msr_entry> = [
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_STAR, 0),
        (MSR_CSTAR, 0),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_SYSCALL_MASK, 0),
        (MSR_LSTAR, 0),
        (MSR_IA32_TSC, 0),
        // Fast string operations on.
        (MSR_IA32_MISC_ENABLE, 1),
        // MTRRs enabled, default memory type write-back.
        (MSR_MTRR_DEF_TYPE, (1 << 11) | 6),
    ]
    .iter()
    .map(|&(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    })
    .collect();
    let msrs = Msrs::from_entries(&entries).map_err(|_| KvmError::MissingCapability("MSRs"))?;
    let set = vcpu
        .set_msrs(&msrs)
        .map_err(KvmError::ioctl("KVM_SET_MSRS"))?;
    if set != entries.len() {
        // KVM stops at the first MSR it refuses; the rest keep their reset values.
        tracing::debug!(
            refused = entries[set].index,
            "KVM did not take every boot MSR"
        );
    }
    Ok(())
}

/// Routes the legacy PIC to LINT0 (ExtINT) and NMIs to LINT1, as firmware would.
fn set_lapic(vcpu: &VcpuFd) -> Result<(), KvmError> {
    let mut lapic = vcpu.get_lapic().map_err(KvmError::ioctl("KVM_GET_LAPIC"))?;
    for (offset, mode) in [(APIC_LVT0, APIC_MODE_EXTINT), (APIC_LVT1, APIC_MODE_NMI)] {
        let mut bytes = [0u8; 4];
        for (b, r) in bytes.iter_mut().zip(&lapic.regs[offset..offset + 4]) {
            *b = *r as u8;
        }
        let value = (u32::from_le_bytes(bytes) & !0x700) | mode;
        for (r, b) in lapic.regs[offset..offset + 4]
            .iter_mut()
            .zip(value.to_le_bytes())
        {
            *r = b as _;
        }
    }
    vcpu.set_lapic(&lapic)
        .map_err(KvmError::ioctl("KVM_SET_LAPIC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_gdt_entries_encode_flat_segments() {
        assert_eq!(gdt_entry(0xa09b, 0, 0xfffff), 0x00af_9b00_0000_ffff);
        assert_eq!(gdt_entry(0xc093, 0, 0xfffff), 0x00cf_9300_0000_ffff);
        let cs = segment(usize::from(CODE64_SELECTOR / 8));
        assert_eq!((cs.selector, cs.l, cs.limit), (0x10, 1, 0xffff_ffff));
    }
}
