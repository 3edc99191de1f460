//! The ACPI tables a guest finds at boot: RSDP, XSDT, a hardware-reduced FADT, MADT and DSDT,
//! built with rust-vmm's `acpi_tables` and written into the BIOS area at 0xe0000.
//!
//! The platform is hardware-reduced: no PM timer, no GPEs, no SCI. Power-off and reset go
//! through the FADT's sleep control and reset registers (see [`crate::devices::power`]). The
//! MADT lists one local APIC per vCPU and the IOAPIC. The DSDT declares COM1, the i8042 and
//! `\_S5_`, plus every [`AcpiDevice`] of the configuration: this is where virtio-mmio devices are
//! declared, since Debian kernels do not take `virtio_mmio.device=` from the command line.

use acpi_tables::aml;
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, MADT, ProcessorLocalApic,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::{Aml, AmlSink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::devices::i8042::I8042_PORT;
use crate::devices::power::{
    POWER_PORT, RESET_OFFSET, RESET_VALUE, S5_SLEEP_TYPE, SLEEP_STATUS_OFFSET,
};
use crate::devices::serial::{COM1_IRQ, COM1_PORT};
use crate::memory::{ACPI_SIZE, ACPI_START, IOAPIC_START, LAPIC_START};

const OEM_ID: [u8; 6] = *b"PODVSR";
const OEM_REVISION: u32 = 1;

/// `IAPC_BOOT_ARCH`: no VGA, no MSI, no CMOS RTC.
const IAPC_BOOT_ARCH: u16 = (1 << 2) | (1 << 3) | (1 << 5);

/// A resource an [`AcpiDevice`] claims in its `_CRS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiResource {
    /// A fixed 32-bit MMIO window.
    Mmio {
        /// First address.
        base: u32,
        /// Length in bytes.
        len: u32,
    },
    /// A range of I/O ports.
    Io {
        /// First port.
        base: u16,
        /// Number of ports.
        len: u8,
    },
    /// An edge-triggered, active-high interrupt (GSI).
    Irq(u32),
}

/// A device declared under `\_SB_` in the DSDT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcpiDevice {
    /// A device described by its id and resources.
    Device {
        /// Its four-character ACPI name, for example `VR00`.
        name: String,
        /// Its hardware id (`_HID`), for example `LNRO0005` for virtio-mmio.
        hid: String,
        /// Its unique id (`_UID`).
        uid: u32,
        /// What it claims.
        resources: Vec<AcpiResource>,
    },
    /// A ready-made AML term (usually a `Device`), appended to the DSDT as is.
    Aml(Vec<u8>),
}

impl AcpiDevice {
    /// A virtio-mmio transport numbered `index`, at `base` with `len` bytes, raising `irq`.
    pub fn virtio_mmio(index: u8, base: u32, len: u32, irq: u32) -> Self {
        AcpiDevice::Device {
            name: format!("VR{index:02X}"),
            hid: "LNRO0005".to_owned(),
            uid: u32::from(index),
            resources: vec![AcpiResource::Mmio { base, len }, AcpiResource::Irq(irq)],
        }
    }

    fn append_aml(&self, out: &mut Vec<u8>) {
        match self {
            AcpiDevice::Aml(bytes) => out.extend_from_slice(bytes),
            AcpiDevice::Device {
                name,
                hid,
                uid,
                resources,
            } => {
                out.extend_from_slice(&device_aml(name, hid, *uid, resources));
            }
        }
    }
}

/// AML of `Device(name) { _HID, _UID, _CRS }`, kept as bytes so its parts can be dropped.
fn device_aml(name: &str, hid: &str, uid: u32, resources: &[AcpiResource]) -> Vec<u8> {
    let mut crs_parts: Vec<Vec<u8>> = Vec::new();
    for resource in resources {
        let mut bytes = Vec::new();
        match *resource {
            AcpiResource::Mmio { base, len } => {
                aml::Memory32Fixed::new(true, base, len).to_aml_bytes(&mut bytes)
            }
            AcpiResource::Io { base, len } => {
                aml::IO::new(base, base, 1, len).to_aml_bytes(&mut bytes)
            }
            AcpiResource::Irq(irq) => {
                aml::Interrupt::new(true, true, false, false, irq).to_aml_bytes(&mut bytes)
            }
        }
        crs_parts.push(bytes);
    }
    let raw: Vec<RawAml<'_>> = crs_parts.iter().map(|b| RawAml(b)).collect();
    let crs_refs: Vec<&dyn Aml> = raw.iter().map(|r| r as &dyn Aml).collect();
    let crs = aml::ResourceTemplate::new(crs_refs);

    let hid_name = if is_eisa_id(hid) {
        aml::Name::new("_HID".into(), &aml::EISAName::new(hid))
    } else {
        aml::Name::new("_HID".into(), &hid.to_owned())
    };
    let uid_name = aml::Name::new("_UID".into(), &uid);
    let crs_name = aml::Name::new("_CRS".into(), &crs);
    let mut out = Vec::new();
    aml::Device::new(name.into(), vec![&hid_name, &uid_name, &crs_name]).to_aml_bytes(&mut out);
    out
}

/// Raw bytes are already AML; this lets them sit among other terms.
struct RawAml<'a>(&'a [u8]);

impl Aml for RawAml<'_> {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(self.0);
    }
}

/// A PNP id like `PNP0501` compresses to an EISA id; anything else stays a string.
fn is_eisa_id(hid: &str) -> bool {
    hid.len() == 7
        && hid[..3].bytes().all(|b| b.is_ascii_uppercase())
        && hid[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Errors of writing the tables.
#[derive(Debug, thiserror::Error)]
pub enum AcpiError {
    /// The tables do not fit the ACPI area.
    #[error("ACPI tables need {0} bytes, more than the {ACPI_SIZE} bytes reserved for them")]
    TooLarge(usize),
    /// Guest memory refused the write.
    #[error("cannot write ACPI tables into guest memory")]
    Memory(#[source] vm_memory::GuestMemoryError),
}

fn dsdt(devices: &[AcpiDevice]) -> Vec<u8> {
    let mut body = Vec::new();
    let com1 = device_aml(
        "COM1",
        "PNP0501",
        0,
        &[
            AcpiResource::Io {
                base: COM1_PORT,
                len: 8,
            },
            AcpiResource::Irq(COM1_IRQ),
        ],
    );
    let ps2 = device_aml(
        "PS2_",
        "PNP0303",
        0,
        &[
            AcpiResource::Io {
                base: I8042_PORT,
                len: 1,
            },
            AcpiResource::Io {
                base: I8042_PORT + 4,
                len: 1,
            },
        ],
    );
    let mut extra = Vec::new();
    for device in devices {
        device.append_aml(&mut extra);
    }
    let (com1, ps2, extra) = (RawAml(&com1), RawAml(&ps2), RawAml(&extra));
    aml::Scope::new("_SB_".into(), vec![&com1, &ps2, &extra]).to_aml_bytes(&mut body);
    aml::Name::new("_S5_".into(), &aml::Package::new(vec![&S5_SLEEP_TYPE])).to_aml_bytes(&mut body);

    let mut table = Sdt::new(*b"DSDT", 36, 6, OEM_ID, *b"PODVDSDT", OEM_REVISION);
    table.append_slice(&body);
    table.as_slice().to_vec()
}

fn fadt(dsdt_addr: u64) -> Vec<u8> {
    let io_register =
        |port: u64| GAS::new(AddressSpace::SystemIo, 8, 0, AccessSize::ByteAccess, port);
    let mut fadt = FADTBuilder::new(OEM_ID, *b"PODVFACP", OEM_REVISION)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton)
        .dsdt_64(dsdt_addr);
    fadt.iapc_boot_arch = IAPC_BOOT_ARCH.into();
    fadt.sleep_control_reg = io_register(u64::from(POWER_PORT));
    fadt.sleep_status_reg = io_register(u64::from(POWER_PORT) + SLEEP_STATUS_OFFSET);
    fadt.reset_reg = io_register(u64::from(POWER_PORT) + RESET_OFFSET);
    fadt.reset_value = RESET_VALUE;
    fadt.hypervisor_vendor_identity = u64::from_le_bytes(*b"PODVISOR").into();
    let mut out = Vec::new();
    fadt.finalize().to_aml_bytes(&mut out);
    out
}

fn madt(vcpus: u32) -> Vec<u8> {
    let mut madt = MADT::new(
        OEM_ID,
        *b"PODVAPIC",
        OEM_REVISION,
        LocalInterruptController::Address(LAPIC_START as u32),
    );
    for id in 0..vcpus {
        // vcpus is validated to be below 255, so the ids fit a byte.
        let id = id as u8;
        madt.add_structure(ProcessorLocalApic::new(id, id, EnabledStatus::Enabled));
    }
    madt.add_structure(IoApic::new(0, IOAPIC_START as u32, 0));
    let mut out = Vec::new();
    madt.to_aml_bytes(&mut out);
    out
}

/// Writes the tables for `vcpus` vCPUs and `devices`; returns the RSDP address.
pub(crate) fn write_tables(
    mem: &GuestMemoryMmap,
    vcpus: u32,
    devices: &[AcpiDevice],
) -> Result<GuestAddress, AcpiError> {
    let align = |addr: u64| (addr + 15) & !15;
    let rsdp_addr = ACPI_START;
    let xsdt_addr = align(rsdp_addr + Rsdp::len() as u64);

    let mut next = xsdt_addr + 36 + 8 * 3;
    let mut place = |table: &[u8]| {
        let at = align(next);
        next = at + table.len() as u64;
        at
    };
    let dsdt = dsdt(devices);
    let dsdt_addr = place(&dsdt);
    let fadt = fadt(dsdt_addr);
    let fadt_addr = place(&fadt);
    let madt = madt(vcpus);
    let madt_addr = place(&madt);
    if next > ACPI_START + ACPI_SIZE {
        return Err(AcpiError::TooLarge((next - ACPI_START) as usize));
    }

    let mut xsdt = XSDT::new(OEM_ID, *b"PODVXSDT", OEM_REVISION);
    xsdt.add_entry(fadt_addr);
    xsdt.add_entry(madt_addr);
    let mut xsdt_bytes = Vec::new();
    xsdt.to_aml_bytes(&mut xsdt_bytes);
    let mut rsdp_bytes = Vec::new();
    Rsdp::new(OEM_ID, xsdt_addr).to_aml_bytes(&mut rsdp_bytes);

    for (addr, bytes) in [
        (rsdp_addr, &rsdp_bytes),
        (xsdt_addr, &xsdt_bytes),
        (dsdt_addr, &dsdt),
        (fadt_addr, &fadt),
        (madt_addr, &madt),
    ] {
        mem.write_slice(bytes, GuestAddress(addr))
            .map_err(AcpiError::Memory)?;
    }
    Ok(GuestAddress(rsdp_addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum_ok(table: &[u8]) -> bool {
        table.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
    }

    #[test]
    fn test_tables_have_valid_checksums_and_lengths() {
        let dsdt = dsdt(&[AcpiDevice::virtio_mmio(0, 0xd000_0000, 0x1000, 5)]);
        for table in [dsdt, fadt(0xe1000), madt(2)] {
            let len = u32::from_le_bytes([table[4], table[5], table[6], table[7]]);
            assert_eq!(len as usize, table.len());
            assert!(checksum_ok(&table));
        }
    }

    #[test]
    fn test_dsdt_declares_virtio_mmio_device() {
        let dsdt = dsdt(&[AcpiDevice::virtio_mmio(3, 0xd000_0000, 0x1000, 5)]);
        let has = |needle: &[u8]| dsdt.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"VR03"));
        assert!(has(b"LNRO0005"));
        assert!(has(b"_S5_"));
    }
}
