//! The zero page (`struct boot_params`) of the Linux 64-bit boot protocol.
//!
//! For a bzImage it starts from the kernel's own setup header, as `Documentation/x86/boot.rst`
//! asks; for an ELF entered at `e_entry` from an empty one. podvisor fills in the loader type,
//! the command line, the initrd, the RSDP and the e820 map.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{BootError, InitrdPlacement};
use crate::memory::{CMDLINE_START, ZERO_PAGE_START, e820_map};

const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_HDR_MAGIC: u32 = 0x5372_6448; // "HdrS"
const KERNEL_LOADER_OTHER: u8 = 0xff;
const KERNEL_MIN_ALIGNMENT_BYTES: u32 = 0x0100_0000;

/// Writes the zero page; returns its address.
pub(crate) fn write_zero_page(
    mem: &GuestMemoryMmap,
    mem_size: u64,
    header: Option<setup_header>,
    cmdline_len: usize,
    rsdp: GuestAddress,
    initrd: Option<InitrdPlacement>,
) -> Result<u64, BootError> {
    let mut params = boot_params::default();
    if let Some(header) = header {
        params.hdr = header;
    }
    params.hdr.type_of_loader = KERNEL_LOADER_OTHER;
    params.hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    params.hdr.header = KERNEL_HDR_MAGIC;
    params.hdr.cmd_line_ptr = CMDLINE_START as u32;
    params.hdr.cmdline_size = cmdline_len as u32;
    if header.is_none() {
        params.hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT_BYTES;
    }
    if let Some(initrd) = initrd {
        params.hdr.ramdisk_image = initrd.addr as u32;
        params.hdr.ramdisk_size = initrd.size as u32;
    }
    params.acpi_rsdp_addr = rsdp.0;

    let map = e820_map(mem_size);
    for (slot, entry) in params.e820_table.iter_mut().zip(&map) {
        *slot = boot_e820_entry {
            addr: entry.addr,
            size: entry.size,
            r#type: entry.kind as u32,
        };
    }
    params.e820_entries = map.len() as u8;

    mem.write_obj(params, GuestAddress(ZERO_PAGE_START))
        .map_err(|source| BootError::Memory {
            what: "zero page",
            source,
        })?;
    Ok(ZERO_PAGE_START)
}
