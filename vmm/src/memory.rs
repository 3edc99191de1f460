//! Guest physical memory: the fixed layout of the low megabyte, the MMIO hole below 4 GiB, and
//! the e820 map handed to the guest.
//!
//! ```text
//! 0x0000_0500  GDT                       0x0000_9000  PML4, PDPT, 4 page directories
//! 0x0000_6000  PVH start_info + memmap   0x0002_0000  kernel command line (2 KiB)
//! 0x0000_7000  zero page (boot_params)   0x000e_0000  ACPI: RSDP, XSDT, FADT, MADT, DSDT
//! 0x0000_8ff0  boot stack top            0x0010_0000  kernel (bzImage) / ELF segments
//! 0xc000_0000  MMIO hole: virtio-mmio devices, IOAPIC 0xfec0_0000, LAPIC 0xfee0_0000
//! 0x1_0000_0000  RAM above the hole when the guest has more than 3 GiB
//! ```

use vm_memory::{Address, GuestAddress, GuestMemoryMmap};

/// One MiB.
pub const MIB: u64 = 1 << 20;

/// Where the GDT lives.
pub const GDT_START: u64 = 0x500;
/// Where the PVH `hvm_start_info` lives; its memory map follows at [`PVH_MEMMAP_START`].
pub const PVH_INFO_START: u64 = 0x6000;
/// Where the PVH memory map lives.
pub const PVH_MEMMAP_START: u64 = 0x6100;
/// Where the PVH module list (the initrd) lives.
pub const PVH_MODLIST_START: u64 = 0x6f00;
/// Where the Linux zero page (`struct boot_params`) lives.
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Initial stack pointer of the boot vCPU.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// The top-level page table of the identity map used for 64-bit entry.
pub const PML4_START: u64 = 0x9000;
/// The page-directory-pointer table of the identity map.
pub const PDPTE_START: u64 = 0xa000;
/// The four page directories of the identity map (2 MiB pages over the first 4 GiB).
pub const PDE_START: u64 = 0xb000;
/// Where the kernel command line is written.
pub const CMDLINE_START: u64 = 0x2_0000;
/// Room for the command line, NUL included: x86 Linux's `COMMAND_LINE_SIZE`.
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// End of the low RAM the guest may use (the EBDA starts here).
pub const EBDA_START: u64 = 0x9_fc00;
/// Start of the BIOS area where the guest looks for the RSDP; the ACPI tables live here.
pub const ACPI_START: u64 = 0xe_0000;
/// Size of the ACPI area.
pub const ACPI_SIZE: u64 = 0x2_0000;
/// Start of high memory, where kernels are loaded.
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the MMIO hole below 4 GiB.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// Start of the MMIO window handed out to devices (virtio-mmio), inside the hole.
pub const DEVICE_MMIO_START: u64 = 0xd000_0000;
/// Address of the IOAPIC.
pub const IOAPIC_START: u64 = 0xfec0_0000;
/// Address of the local APICs.
pub const LAPIC_START: u64 = 0xfee0_0000;
/// End of the MMIO hole.
pub const MMIO_HOLE_END: u64 = 1 << 32;
/// The smallest guest the layout fits: the low megabyte plus one for a kernel.
pub const MIN_MEMORY_MIB: u64 = 2;
/// The largest guest the layout describes (1 TiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 20;

/// An e820 entry type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum E820Kind {
    /// Usable RAM.
    Ram = 1,
    /// Reserved: firmware areas, the MMIO hole.
    Reserved = 2,
}

/// One range of the guest's physical memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// What the range is.
    pub kind: E820Kind,
}

/// The RAM ranges backing a guest of `mem_size` bytes: below the MMIO hole, and above 4 GiB
/// for what does not fit under it.
pub fn ram_ranges(mem_size: u64) -> Vec<(GuestAddress, usize)> {
    let low = mem_size.min(MMIO_HOLE_START);
    let mut ranges = vec![(GuestAddress(0), low as usize)];
    if mem_size > MMIO_HOLE_START {
        ranges.push((
            GuestAddress(MMIO_HOLE_END),
            (mem_size - MMIO_HOLE_START) as usize,
        ));
    }
    ranges
}

/// Allocates anonymous, lazily backed guest memory of `mem_size` bytes.
pub fn create_guest_memory(
    mem_size: u64,
) -> Result<GuestMemoryMmap, vm_memory::mmap::FromRangesError> {
    GuestMemoryMmap::from_ranges(&ram_ranges(mem_size))
}

/// The e820 map of a guest of `mem_size` bytes, as the kernel will read it.
pub fn e820_map(mem_size: u64) -> Vec<E820Entry> {
    let mut map = vec![
        E820Entry {
            addr: 0,
            size: EBDA_START,
            kind: E820Kind::Ram,
        },
        // The EBDA, the legacy video hole and the BIOS area holding the ACPI tables, as one
        // range: Linux merges them into one anyway.
        E820Entry {
            addr: EBDA_START,
            size: HIMEM_START - EBDA_START,
            kind: E820Kind::Reserved,
        },
    ];
    let low_end = mem_size.min(MMIO_HOLE_START);
    map.push(E820Entry {
        addr: HIMEM_START,
        size: low_end - HIMEM_START,
        kind: E820Kind::Ram,
    });
    if mem_size > MMIO_HOLE_START {
        map.push(E820Entry {
            addr: MMIO_HOLE_END,
            size: mem_size - MMIO_HOLE_START,
            kind: E820Kind::Ram,
        });
    }
    map
}

/// The highest guest address (exclusive) of RAM below the MMIO hole.
pub fn low_ram_end(mem_size: u64) -> GuestAddress {
    GuestAddress(mem_size.min(MMIO_HOLE_START))
}

/// Whether `[addr, addr + len)` lies inside RAM below the hole.
pub fn fits_low_ram(mem_size: u64, addr: u64, len: u64) -> bool {
    addr.checked_add(len)
        .is_some_and(|end| end <= low_ram_end(mem_size).raw_value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_e820_map_splits_ram_around_the_mmio_hole() {
        let map = e820_map(4096 * MIB);
        let ram: u64 = map
            .iter()
            .filter(|e| e.kind == E820Kind::Ram)
            .map(|e| e.size)
            .sum();
        assert_eq!(ram, 4096 * MIB - (HIMEM_START - EBDA_START));
        assert_eq!(map.last().map(|e| e.addr), Some(MMIO_HOLE_END));
        assert_eq!(ram_ranges(4096 * MIB).len(), 2);
    }

    #[test]
    fn test_small_guest_has_one_range() {
        assert_eq!(ram_ranges(64 * MIB), vec![(GuestAddress(0), 64 << 20)]);
        assert_eq!(e820_map(64 * MIB).len(), 3);
    }
}
