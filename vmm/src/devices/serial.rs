//! The 16550 UART behind ttyS0 (COM1, ports 0x3f8-0x3ff, IRQ 4).
//!
//! vm-superio models the registers; this file connects its output to the caller's
//! [`SerialSink`] and its interrupt to an eventfd that KVM turns into IRQ 4 (irqfd). Every byte
//! the guest writes reaches the sink before the `out` instruction completes, so nothing is left
//! in flight when the VM stops.

use std::io;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::config::SerialSink;
use crate::devices::BusDevice;

/// The first port of COM1.
pub const COM1_PORT: u16 = 0x3f8;
/// The legacy IRQ of COM1.
pub const COM1_IRQ: u32 = 4;

/// Raises the UART's interrupt by signalling an eventfd registered as a KVM irqfd.
pub(crate) struct IrqTrigger(pub(crate) EventFd);

impl Trigger for IrqTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// Adapts a [`SerialSink`] to the `Write` vm-superio expects.
pub(crate) struct SinkWriter {
    sink: SerialSink,
    failures: u64,
}

impl io::Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Err(error) = self.sink.write(buf) {
            // A guest can write a lot; say it once and count the rest.
            self.failures += 1;
            if self.failures == 1 {
                tracing::warn!(%error, "serial sink write failed; further failures are counted");
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// COM1 as a bus device.
pub struct SerialDevice {
    uart: Serial<IrqTrigger, vm_superio::serial::NoEvents, SinkWriter>,
}

impl SerialDevice {
    pub(crate) fn new(irq: EventFd, sink: SerialSink) -> Self {
        SerialDevice {
            uart: Serial::new(IrqTrigger(irq), SinkWriter { sink, failures: 0 }),
        }
    }

    /// Queues `input` for the guest to read; returns how many bytes fit the 64-byte FIFO.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let room = self.uart.fifo_capacity().min(input.len());
        match self.uart.enqueue_raw_bytes(&input[..room]) {
            Ok(n) => n,
            Err(error) => {
                tracing::debug!(?error, "serial input not queued");
                0
            }
        }
    }
}

impl BusDevice for SerialDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Some(first), Ok(offset)) = (data.first_mut(), u8::try_from(offset)) {
            *first = self.uart.read(offset);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Some(&value), Ok(offset)) = (data.first(), u8::try_from(offset)) {
            if let Err(error) = self.uart.write(offset, value) {
                tracing::trace!(?error, "serial write");
            }
        }
    }
}
