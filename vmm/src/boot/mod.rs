//! Loading a Linux kernel and writing what it reads at entry.
//!
//! Two kernel formats and two entry protocols:
//!
//! - an **ELF vmlinux** is loaded by its program headers. When it carries the PVH note
//!   (`XEN_ELFNOTE_PHYS32_ENTRY`) it is entered through PVH with an `hvm_start_info`
//!   ([`pvh`]); otherwise at `e_entry` through the 64-bit boot protocol.
//! - a **bzImage** is loaded at its `code32_start` and entered at its 64-bit entry point
//!   (load address + 0x200) with a zero page ([`zero_page`]) built on its own setup header.
//!
//! Both get the same e820 map ([`crate::memory::e820_map`]), the ACPI tables, a NUL-terminated
//! command line whose length is checked against the kernel's limit, and the initrd placed as
//! high in low RAM as the kernel allows.

pub mod pvh;
pub mod zero_page;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::elf::PvhBootCapability;
use linux_loader::loader::{self, KernelLoader, bzimage::BzImage, elf::Elf};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use crate::config::{BootProtocol, ConfigError, VmConfig};
use crate::memory::{CMDLINE_MAX_SIZE, CMDLINE_START, HIMEM_START, MIB, low_ram_end};

/// Where and how the vCPUs enter the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPoint {
    /// PVH: 32-bit protected mode, `%ebx` = `start_info`.
    Pvh {
        /// The PVH entry address.
        rip: u64,
        /// Address of `hvm_start_info`.
        start_info: u64,
    },
    /// The Linux 64-bit boot protocol: long mode, `%rsi` = `zero_page`.
    Linux64 {
        /// The 64-bit entry address.
        rip: u64,
        /// Address of the zero page.
        zero_page: u64,
    },
}

/// What kind of file the kernel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// An ELF executable (vmlinux).
    Elf,
    /// A bzImage.
    BzImage,
}

/// Errors of loading the kernel and initrd, each naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The kernel file does not exist.
    #[error("kernel {} does not exist", path.display())]
    KernelMissing {
        /// The kernel path.
        path: PathBuf,
    },
    /// The kernel file exists but cannot be read.
    #[error("kernel {} cannot be read", path.display())]
    KernelUnreadable {
        /// The kernel path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is neither an ELF vmlinux nor a bzImage, or is a broken one.
    #[error("{} is not a kernel: {reason}", path.display())]
    NotAKernel {
        /// The kernel path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// PVH entry was asked for, but the ELF has no PVH note.
    #[error("kernel {} has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)", path.display())]
    NoPvhEntry {
        /// The kernel path.
        path: PathBuf,
    },
    /// The kernel does not fit guest memory.
    #[error("kernel {} does not fit {memory_mib} MiB of guest memory", path.display())]
    KernelTooLarge {
        /// The kernel path.
        path: PathBuf,
        /// The guest memory size.
        memory_mib: u64,
    },
    /// The command line is longer than this kernel accepts.
    #[error(transparent)]
    Cmdline(#[from] ConfigError),
    /// The initrd file is missing or unreadable.
    #[error("initrd {} cannot be read", path.display())]
    InitrdUnreadable {
        /// The initrd path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The initrd does not fit between the kernel and the end of low RAM.
    #[error("initrd {} ({size} bytes) does not fit guest memory above the kernel", path.display())]
    InitrdTooLarge {
        /// The initrd path.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Writing boot structures into guest memory failed.
    #[error("cannot write the {what} into guest memory")]
    Memory {
        /// Which structure.
        what: &'static str,
        /// Why.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// The ACPI tables could not be written.
    #[error(transparent)]
    Acpi(#[from] crate::acpi::AcpiError),
}

/// A kernel in guest memory, before the entry structures are written.
struct LoadedKernel {
    format: KernelFormat,
    /// The 64-bit entry (bzImage: load + 0x200, ELF: `e_entry`).
    entry64: u64,
    pvh_entry: Option<u64>,
    /// First byte above the loaded image and the room it needs to unpack.
    end: u64,
    setup_header: Option<setup_header>,
}

/// The initrd's place in guest memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitrdPlacement {
    pub(crate) addr: u64,
    pub(crate) size: u64,
}

/// Loads kernel, command line and initrd for `config` and writes the boot structures.
pub(crate) fn load(config: &VmConfig, mem: &GuestMemoryMmap) -> Result<EntryPoint, BootError> {
    let mem_size = config.memory_mib * MIB;
    let kernel = load_kernel(&config.kernel, mem, config.memory_mib)?;

    // The kernel reads at most COMMAND_LINE_SIZE bytes; a bzImage may say less.
    let mut max_len = CMDLINE_MAX_SIZE - 1;
    if let Some(header) = &kernel.setup_header {
        let kernel_max = { header.cmdline_size } as usize;
        if kernel_max > 0 {
            max_len = max_len.min(kernel_max);
        }
    }
    if config.cmdline.len() > max_len {
        return Err(ConfigError::CmdlineTooLong {
            len: config.cmdline.len(),
            max: max_len,
        }
        .into());
    }
    let mut cmdline = config.cmdline.as_bytes().to_vec();
    cmdline.push(0);
    mem.write_slice(&cmdline, GuestAddress(CMDLINE_START))
        .map_err(|source| BootError::Memory {
            what: "command line",
            source,
        })?;

    let initrd_max = kernel
        .setup_header
        .as_ref()
        .map(|h| u64::from(h.initrd_addr_max))
        .filter(|&max| max != 0)
        .unwrap_or(u64::from(u32::MAX));
    let initrd = match &config.initrd {
        Some(path) => Some(load_initrd(path, mem, mem_size, kernel.end, initrd_max)?),
        None => None,
    };

    let rsdp = crate::acpi::write_tables(mem, config.vcpus, &config.acpi_devices)?;
    crate::cpu::write_boot_tables(mem).map_err(|source| BootError::Memory {
        what: "GDT and page tables",
        source,
    })?;

    let use_pvh = match config.boot {
        BootProtocol::Auto => kernel.pvh_entry.is_some(),
        BootProtocol::Pvh if kernel.pvh_entry.is_none() => {
            return Err(BootError::NoPvhEntry {
                path: config.kernel.clone(),
            });
        }
        BootProtocol::Pvh => true,
        BootProtocol::Linux64 => false,
    };
    let cmdline_len = cmdline.len() - 1;
    match (use_pvh, kernel.pvh_entry) {
        (true, Some(rip)) => {
            let start_info = pvh::write_start_info(mem, mem_size, rsdp, initrd)?;
            Ok(EntryPoint::Pvh { rip, start_info })
        }
        _ => {
            let zero_page = zero_page::write_zero_page(
                mem,
                mem_size,
                kernel.setup_header,
                cmdline_len,
                rsdp,
                initrd,
            )?;
            tracing::debug!(format = ?kernel.format, entry = kernel.entry64, "64-bit entry");
            Ok(EntryPoint::Linux64 {
                rip: kernel.entry64,
                zero_page,
            })
        }
    }
}

fn open(path: &Path) -> Result<File, BootError> {
    File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => BootError::KernelMissing {
            path: path.to_owned(),
        },
        _ => BootError::KernelUnreadable {
            path: path.to_owned(),
            source,
        },
    })
}

/// Tells an ELF from a bzImage by their magic numbers.
fn detect_format(path: &Path, file: &mut File) -> Result<KernelFormat, BootError> {
    let unreadable = |source| BootError::KernelUnreadable {
        path: path.to_owned(),
        source,
    };
    let not_a_kernel = |reason: &str| BootError::NotAKernel {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };

    let len = file.metadata().map_err(unreadable)?.len();
    if len == 0 {
        return Err(not_a_kernel("the file is empty"));
    }
    let mut head = [0u8; 0x206];
    let got = read_up_to(file, &mut head).map_err(unreadable)?;
    file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    if got >= 4 && head[..4] == *b"\x7fELF" {
        return Ok(KernelFormat::Elf);
    }
    if got >= 0x206 && head[0x1fe..0x200] == [0x55, 0xaa] && head[0x202..0x206] == *b"HdrS" {
        return Ok(KernelFormat::BzImage);
    }
    Err(not_a_kernel(
        "neither an ELF file nor a bzImage (no boot sector with a HdrS header)",
    ))
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn load_kernel(
    path: &Path,
    mem: &GuestMemoryMmap,
    memory_mib: u64,
) -> Result<LoadedKernel, BootError> {
    let mut file = open(path)?;
    let format = detect_format(path, &mut file)?;
    let himem = Some(GuestAddress(HIMEM_START));
    let result = match format {
        KernelFormat::Elf => Elf::load(mem, None, &mut file, himem),
        KernelFormat::BzImage => BzImage::load(mem, None, &mut file, himem),
    }
    .map_err(|error| loader_error(path, memory_mib, error))?;

    let (entry64, pvh_entry, end) = match format {
        KernelFormat::Elf => {
            let pvh = match result.pvh_boot_cap {
                PvhBootCapability::PvhEntryPresent(addr) => Some(addr.raw_value()),
                _ => None,
            };
            (result.kernel_load.raw_value(), pvh, result.kernel_end)
        }
        KernelFormat::BzImage => {
            let load = result.kernel_load.raw_value();
            // The decompressor needs `init_size` bytes from the load address.
            let init_size = result
                .setup_header
                .map(|h| u64::from(h.init_size))
                .unwrap_or(0);
            (load + 0x200, None, result.kernel_end.max(load + init_size))
        }
    };
    if end > low_ram_end(memory_mib * MIB).raw_value() {
        return Err(BootError::KernelTooLarge {
            path: path.to_owned(),
            memory_mib,
        });
    }
    tracing::debug!(?format, entry64, ?pvh_entry, end, "kernel loaded");
    Ok(LoadedKernel {
        format,
        entry64,
        pvh_entry,
        end,
        setup_header: result.setup_header,
    })
}

/// Sorts linux-loader's errors into the caller's terms.
fn loader_error(path: &Path, memory_mib: u64, error: loader::Error) -> BootError {
    use linux_loader::loader::bzimage::Error as BzError;
    use linux_loader::loader::elf::Error as ElfError;
    match error {
        loader::Error::Elf(ElfError::ReadKernelImage)
        | loader::Error::Bzimage(BzError::ReadBzImageCompressedKernel) => {
            // Segments that land past the end of guest memory fail to be written.
            BootError::KernelTooLarge {
                path: path.to_owned(),
                memory_mib,
            }
        }
        other => BootError::NotAKernel {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Reads the initrd into the highest page-aligned spot below `max_addr` and the end of low
/// RAM, above the kernel.
fn load_initrd(
    path: &Path,
    mem: &GuestMemoryMmap,
    mem_size: u64,
    kernel_end: u64,
    max_addr: u64,
) -> Result<InitrdPlacement, BootError> {
    let unreadable = |source| BootError::InitrdUnreadable {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();

    let top = low_ram_end(mem_size)
        .raw_value()
        .min(max_addr.saturating_add(1));
    let too_large = || BootError::InitrdTooLarge {
        path: path.to_owned(),
        size,
    };
    let addr = top.checked_sub(size).ok_or_else(too_large)? & !0xfff;
    if addr < kernel_end {
        return Err(too_large());
    }
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, size as usize)
        .map_err(|source| BootError::Memory {
            what: "initrd",
            source,
        })?;
    Ok(InitrdPlacement { addr, size })
}
