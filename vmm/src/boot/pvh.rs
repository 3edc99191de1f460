//! The PVH boot structures: `hvm_start_info`, its memory map and module list.
//!
//! Layout as in Xen's `arch-x86/hvm/start_info.h`, version 1. The kernel finds the command
//! line, the RSDP, the e820-style memory map and the initrd (module 0) through it.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{BootError, InitrdPlacement};
use crate::memory::{CMDLINE_START, PVH_INFO_START, PVH_MEMMAP_START, PVH_MODLIST_START, e820_map};

/// `hvm_start_info.magic`: "xEn3" with the top bit of each byte cleared.
pub const XEN_HVM_START_MAGIC: u32 = 0x336e_c578;

/// Writes `hvm_start_info` and what it points to; returns its address.
pub(crate) fn write_start_info(
    mem: &GuestMemoryMmap,
    mem_size: u64,
    rsdp: GuestAddress,
    initrd: Option<InitrdPlacement>,
) -> Result<u64, BootError> {
    let write = |what: &'static str, bytes: &[u8], addr: u64| {
        mem.write_slice(bytes, GuestAddress(addr))
            .map_err(|source| BootError::Memory { what, source })
    };

    let map = e820_map(mem_size);
    let mut memmap = Vec::with_capacity(map.len() * 24);
    for entry in &map {
        memmap.extend_from_slice(&entry.addr.to_le_bytes());
        memmap.extend_from_slice(&entry.size.to_le_bytes());
        memmap.extend_from_slice(&(entry.kind as u32).to_le_bytes());
        memmap.extend_from_slice(&0u32.to_le_bytes());
    }
    write("PVH memory map", &memmap, PVH_MEMMAP_START)?;

    let nr_modules = match initrd {
        Some(initrd) => {
            let mut module = Vec::with_capacity(32);
            module.extend_from_slice(&initrd.addr.to_le_bytes());
            module.extend_from_slice(&initrd.size.to_le_bytes());
            module.extend_from_slice(&0u64.to_le_bytes()); // no module command line
            module.extend_from_slice(&0u64.to_le_bytes());
            write("PVH module list", &module, PVH_MODLIST_START)?;
            1u32
        }
        None => 0,
    };

    let mut info = Vec::with_capacity(56);
    info.extend_from_slice(&XEN_HVM_START_MAGIC.to_le_bytes());
    info.extend_from_slice(&1u32.to_le_bytes()); // version
    info.extend_from_slice(&0u32.to_le_bytes()); // flags
    info.extend_from_slice(&nr_modules.to_le_bytes());
    info.extend_from_slice(&(if nr_modules > 0 { PVH_MODLIST_START } else { 0 }).to_le_bytes());
    info.extend_from_slice(&CMDLINE_START.to_le_bytes());
    info.extend_from_slice(&rsdp.0.to_le_bytes());
    info.extend_from_slice(&PVH_MEMMAP_START.to_le_bytes());
    info.extend_from_slice(&(map.len() as u32).to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes());
    write("PVH start_info", &info, PVH_INFO_START)?;
    Ok(PVH_INFO_START)
}
