//! Tiny guest images: ELF executables around a few bytes of machine code, with the PVH note
//! that lets podvisor (and QEMU) enter them in 32-bit protected mode.
//!
//! They are what podvisor's tests and benchmarks boot to prove exits, devices and interrupts
//! without a kernel, and what an embedder can use to check a host quickly.
//!
//! ```
//! // cli; hlt; jmp back: a guest that halts until it is stopped.
//! let image = podvisor_vmm::guest::pvh_elf(&[0xfa, 0xf4, 0xeb, 0xfc]);
//! assert_eq!(&image[..4], b"\x7fELF");
//! ```

/// Where the code is loaded and entered.
pub const LOAD_ADDR: u64 = 0x20_0000;

/// An ELF64 executable holding `code` at [`LOAD_ADDR`] with a PVH note pointing there.
pub fn pvh_elf(code: &[u8]) -> Vec<u8> {
    elf(code, true)
}

/// An ELF64 executable holding `code` at [`LOAD_ADDR`], entered there; with `pvh`, it
/// carries the PVH note pointing at the same address, else it is entered in 64-bit mode.
pub fn elf(code: &[u8], pvh: bool) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let phnum: u16 = if pvh { 2 } else { 1 };
    let note_off = EHDR + PHDR * usize::from(phnum);
    // Xen note: namesz, descsz, type, "Xen\0", 4-byte entry address.
    let mut note = Vec::new();
    note.extend_from_slice(&4u32.to_le_bytes());
    note.extend_from_slice(&4u32.to_le_bytes());
    note.extend_from_slice(&18u32.to_le_bytes());
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&(LOAD_ADDR as u32).to_le_bytes());
    let code_off = 0x1000usize;

    let mut out = Vec::with_capacity(code_off + code.len());
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little endian, version 1, SysV ABI
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&LOAD_ADDR.to_le_bytes()); // e_entry
    out.extend_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR as u16).to_le_bytes());
    out.extend_from_slice(&(PHDR as u16).to_le_bytes());
    out.extend_from_slice(&phnum.to_le_bytes());
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx

    let mut phdr = |kind: u32, flags: u32, offset: usize, addr: u64, size: usize, align: u64| {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&(size as u64).to_le_bytes());
        out.extend_from_slice(&(size as u64).to_le_bytes());
        out.extend_from_slice(&align.to_le_bytes());
    };
    phdr(1, 7, code_off, LOAD_ADDR, code.len(), 0x1000); // PT_LOAD, RWX
    if pvh {
        phdr(4, 4, note_off, 0, note.len(), 4); // PT_NOTE
    }
    if pvh {
        out.extend_from_slice(&note);
    }
    out.resize(code_off, 0);
    out.extend_from_slice(code);
    out
}
