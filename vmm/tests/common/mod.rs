//! Tiny guest programs for the VMM tests and benchmark, and the ELF files that carry them.
//!
//! Each guest is assembled at test time with iced-x86 and wrapped in an ELF64 executable with
//! one loadable segment at [`LOAD_ADDR`] and, for PVH guests, the Xen PVH note
//! (`XEN_ELFNOTE_PHYS32_ENTRY`), so that podvisor and `qemu-system-x86_64 -M microvm -kernel`
//! run the very same file.
//!
//! The guests talk to the host through ports: COM1 for text, [`REPORT_PORT`] for 32-bit
//! values a test device records, 0x600 (the ACPI sleep control register) to power off, and
//! 0xf4 (QEMU's isa-debug-exit) so QEMU ends too.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use iced_x86::code_asm::*;
use podvisor_vmm::{BusDevice, BusRange};

/// Where the guest's code is loaded and entered.
pub const LOAD_ADDR: u64 = podvisor_vmm::guest::LOAD_ADDR;
/// A port whose 32-bit writes the [`Recorder`] keeps.
pub const REPORT_PORT: u16 = 0x500;
/// Where the recorder's MMIO window sits (inside the device MMIO hole).
pub const RECORDER_MMIO: u64 = 0xd000_0000;

/// A bus device that records every write and answers reads with `read_value + offset`.
#[derive(Default)]
pub struct Recorder {
    /// (offset, bytes) of each write, in order.
    pub writes: Vec<(u64, Vec<u8>)>,
    /// (offset, length) of each read, in order.
    pub reads: Vec<(u64, usize)>,
    /// Base of the value reads return.
    pub read_value: u32,
}

impl BusDevice for Recorder {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        self.reads.push((offset, data.len()));
        let value = self.read_value.wrapping_add(offset as u32).to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = value[i % 4];
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.writes.push((offset, data.to_vec()));
    }
}

impl Recorder {
    /// A shared recorder answering reads with `read_value + offset`.
    pub fn shared(read_value: u32) -> Arc<Mutex<Recorder>> {
        Arc::new(Mutex::new(Recorder {
            read_value,
            ..Default::default()
        }))
    }

    /// The 32-bit values written at offset 0, in order.
    pub fn reports(&self) -> Vec<u32> {
        self.writes
            .iter()
            .filter(|(offset, data)| *offset == 0 && data.len() == 4)
            .map(|(_, d)| u32::from_le_bytes([d[0], d[1], d[2], d[3]]))
            .collect()
    }
}

/// The port range of the recorder.
pub fn report_range() -> BusRange {
    BusRange::new(u64::from(REPORT_PORT), 8)
}

/// A 32-bit assembler for PVH guests.
pub fn asm32() -> CodeAssembler {
    CodeAssembler::new(32).expect("32 is a valid bitness")
}

/// A 64-bit assembler for guests entered through the 64-bit boot protocol.
pub fn asm64() -> CodeAssembler {
    CodeAssembler::new(64).expect("64 is a valid bitness")
}

/// Prints `text` on COM1, one `out` per byte.
pub fn print(a: &mut CodeAssembler, text: &str) {
    a.mov(dx, 0x3f8u32).expect("mov dx");
    for byte in text.bytes() {
        a.mov(al, u32::from(byte)).expect("mov al");
        a.out(dx, al).expect("out");
    }
}

/// Writes `eax` to the report port.
pub fn report_eax(a: &mut CodeAssembler) {
    a.mov(dx, u32::from(REPORT_PORT)).expect("mov dx");
    a.out(dx, eax).expect("out");
}

/// Powers off through the ACPI sleep control register (podvisor) and isa-debug-exit (QEMU),
/// then halts for good.
pub fn power_off(a: &mut CodeAssembler) {
    a.mov(dx, 0x600u32).expect("mov dx");
    a.mov(al, 0x34u32).expect("mov al");
    a.out(dx, al).expect("out");
    a.mov(dx, 0xf4u32).expect("mov dx");
    a.mov(al, 0u32).expect("mov al");
    a.out(dx, al).expect("out");
    halt_forever(a);
}

/// `cli; hlt` in a loop.
pub fn halt_forever(a: &mut CodeAssembler) {
    let mut again = a.create_label();
    a.set_label(&mut again).expect("label");
    a.cli().expect("cli");
    a.hlt().expect("hlt");
    a.jmp(again).expect("jmp");
}

/// Assembles `a` for [`LOAD_ADDR`].
pub fn assemble(a: &mut CodeAssembler) -> Vec<u8> {
    a.assemble(LOAD_ADDR).expect("the guest assembles")
}

/// An ELF64 executable holding `code` at [`LOAD_ADDR`]; see [`podvisor_vmm::guest::elf`].
pub fn elf(code: &[u8], pvh: bool) -> Vec<u8> {
    podvisor_vmm::guest::elf(code, pvh)
}

/// Writes `bytes` to a fresh file under the target directory and returns its path.
pub fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("podvisor-vmm-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("temp file is writable");
    path
}

/// A PVH guest ELF built from `build`, written to a temp file.
pub fn pvh_guest(name: &str, build: impl FnOnce(&mut CodeAssembler)) -> PathBuf {
    let mut a = asm32();
    build(&mut a);
    write_temp(name, &elf(&assemble(&mut a), true))
}

/// A 64-bit guest ELF (no PVH note) built from `build`, written to a temp file.
pub fn long_mode_guest(name: &str, build: impl FnOnce(&mut CodeAssembler)) -> PathBuf {
    let mut a = asm64();
    build(&mut a);
    write_temp(name, &elf(&assemble(&mut a), false))
}

/// Open fds and threads of this process.
pub fn fds_and_threads() -> (usize, usize) {
    let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    (count("/proc/self/fd"), count("/proc/self/task"))
}
