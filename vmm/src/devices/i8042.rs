//! The i8042 keyboard controller, kept for one job: its reset pulse (command 0xfe on port
//! 0x64) ends the VM with [`ExitReason::Reset`]. Linux uses it when ACPI reset is not taken.

use std::sync::Arc;

use vm_superio::{I8042Device, Trigger};

use crate::devices::BusDevice;
use crate::exit::{ExitLatch, ExitReason};

/// The first port of the i8042 (data); the command port is 4 above it.
pub const I8042_PORT: u16 = 0x60;

/// Ends the VM when the guest pulses the reset line.
pub(crate) struct ResetTrigger(pub(crate) Arc<ExitLatch>);

impl Trigger for ResetTrigger {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.finish(ExitReason::Reset);
        Ok(())
    }
}

/// The i8042 as a bus device over ports 0x60-0x64.
pub struct I8042(I8042Device<ResetTrigger>);

impl I8042 {
    pub(crate) fn new(latch: Arc<ExitLatch>) -> Self {
        I8042(I8042Device::new(ResetTrigger(latch)))
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Some(first), Ok(offset)) = (data.first_mut(), u8::try_from(offset)) {
            *first = self.0.read(offset);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Some(&value), Ok(offset)) = (data.first(), u8::try_from(offset)) {
            if let Err(error) = self.0.write(offset, value) {
                tracing::trace!(?error, "i8042 write");
            }
        }
    }
}
