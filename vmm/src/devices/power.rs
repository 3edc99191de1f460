//! The ACPI power registers of a hardware-reduced platform, on ports 0x600-0x602.
//!
//! The FADT points the guest's poweroff at the sleep control register and its reboot at the
//! reset register. Writing `SLP_EN` with the S5 sleep type (declared as `\_S5_` in the DSDT)
//! ends the VM with [`ExitReason::Shutdown`]; writing [`RESET_VALUE`] to the reset register
//! ends it with [`ExitReason::Reset`].

use std::sync::Arc;

use crate::devices::BusDevice;
use crate::exit::{ExitLatch, ExitReason};

/// The sleep control register; status follows at +1, reset at +2.
pub const POWER_PORT: u16 = 0x600;
/// Offset of the sleep status register.
pub const SLEEP_STATUS_OFFSET: u64 = 1;
/// Offset of the reset register.
pub const RESET_OFFSET: u64 = 2;
/// The value the guest writes to the reset register.
pub const RESET_VALUE: u8 = 1;
/// The sleep type of S5, as declared by `\_S5_`.
pub const S5_SLEEP_TYPE: u8 = 5;
/// `SLP_EN`, bit 5 of the sleep control register.
const SLEEP_ENABLE: u8 = 1 << 5;

/// The power registers as a bus device.
pub struct PowerDevice(Arc<ExitLatch>);

impl PowerDevice {
    pub(crate) fn new(latch: Arc<ExitLatch>) -> Self {
        PowerDevice(latch)
    }
}

impl BusDevice for PowerDevice {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        match offset {
            0 if value & SLEEP_ENABLE != 0 && (value >> 2) & 0x7 == S5_SLEEP_TYPE => {
                self.0.finish(ExitReason::Shutdown);
            }
            RESET_OFFSET if value == RESET_VALUE => self.0.finish(ExitReason::Reset),
            _ => tracing::trace!(offset, value, "power register write ignored"),
        }
    }
}
