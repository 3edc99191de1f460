//! The devices of a VM and the two buses that route vCPU exits to them.
//!
//! A port I/O or MMIO access the in-kernel devices do not handle leaves `KVM_RUN` on the vCPU
//! thread that made it. The [`Bus`] finds the device whose [`BusRange`] holds the address and
//! calls it there, under the device's own lock. Reads nobody claims return all ones, as on a
//! PC with nothing at that address; writes nobody claims are dropped.

pub mod i8042;
pub mod power;
pub mod serial;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A device on a bus. Called on the vCPU thread that made the access.
pub trait BusDevice: Send {
    /// Fills `data` for a read at `offset` from the start of the device's range.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Takes a write of `data` at `offset` from the start of the device's range.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A range of port or MMIO addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusRange {
    /// First address.
    pub base: u64,
    /// Number of addresses.
    pub len: u64,
}

impl BusRange {
    /// The range `[base, base + len)`.
    pub fn new(base: u64, len: u64) -> Self {
        BusRange { base, len }
    }

    fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

/// Errors of placing a device on a bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// The new range overlaps one already taken, or is empty.
    #[error("bus range {new:#x?} overlaps {existing:#x?} or is empty")]
    Overlap {
        /// The range asked for.
        new: BusRange,
        /// The range it collides with.
        existing: BusRange,
    },
}

/// An address space (port I/O or MMIO) with devices on it.
#[derive(Default, Clone)]
pub struct Bus {
    devices: BTreeMap<u64, (BusRange, Arc<Mutex<dyn BusDevice>>)>,
}

impl Bus {
    /// Places `device` at `range`.
    ///
    /// # Errors
    ///
    /// [`BusError::Overlap`] when the range is empty or collides with another device.
    pub fn insert(
        &mut self,
        range: BusRange,
        device: Arc<Mutex<dyn BusDevice>>,
    ) -> Result<(), BusError> {
        if range.len == 0 {
            return Err(BusError::Overlap {
                new: range,
                existing: range,
            });
        }
        if let Some((existing, _)) = self
            .devices
            .values()
            .find(|(r, _)| r.base < range.end() && range.base < r.end())
        {
            return Err(BusError::Overlap {
                new: range,
                existing: *existing,
            });
        }
        self.devices.insert(range.base, (range, device));
        Ok(())
    }

    fn find(&self, addr: u64) -> Option<(u64, &Arc<Mutex<dyn BusDevice>>)> {
        let (_, (range, device)) = self.devices.range(..=addr).next_back()?;
        (addr < range.end()).then(|| (addr - range.base, device))
    }

    /// Routes a read; returns whether a device took it.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr) {
            Some((offset, device)) => {
                lock(device).read(offset, data);
                true
            }
            None => {
                data.fill(0xff);
                false
            }
        }
    }

    /// Routes a write; returns whether a device took it.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr) {
            Some((offset, device)) => {
                lock(device).write(offset, data);
                true
            }
            None => false,
        }
    }
}

/// Locks a device. A device whose lock was poisoned by a panic keeps serving: its state is
/// plain registers that stay consistent byte by byte.
pub(crate) fn lock<T: ?Sized>(device: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    device
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(u8);

    impl BusDevice for Echo {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(self.0 + offset as u8);
        }
        fn write(&mut self, _offset: u64, data: &[u8]) {
            self.0 = data[0];
        }
    }

    #[test]
    fn test_bus_routes_by_offset_and_rejects_overlap() {
        let mut bus = Bus::default();
        let echo = Arc::new(Mutex::new(Echo(0x10)));
        assert!(bus.insert(BusRange::new(0x100, 8), echo.clone()).is_ok());
        assert!(bus.insert(BusRange::new(0x104, 8), echo).is_err());

        let mut data = [0u8; 2];
        assert!(bus.read(0x102, &mut data));
        assert_eq!(data, [0x12, 0x12]);
        assert!(bus.write(0x100, &[0x20]));
        assert!(!bus.read(0x108, &mut data));
        assert_eq!(data, [0xff, 0xff]);
    }

    #[test]
    fn test_guest_accesses_of_any_size_and_value_never_panic() {
        use crate::config::SerialSink;
        use crate::exit::ExitLatch;
        use vmm_sys_util::eventfd::EventFd;

        let latch = Arc::new(ExitLatch::new());
        let irq = EventFd::new(vmm_sys_util::eventfd::EFD_NONBLOCK).expect("an eventfd");
        let mut bus = Bus::default();
        let serial = Arc::new(Mutex::new(serial::SerialDevice::new(
            irq,
            SerialSink::Discard,
        )));
        bus.insert(BusRange::new(0x3f8, 8), serial)
            .expect("free range");
        let i8042 = Arc::new(Mutex::new(i8042::I8042::new(latch.clone())));
        bus.insert(BusRange::new(0x60, 5), i8042)
            .expect("free range");
        let power = Arc::new(Mutex::new(power::PowerDevice::new(latch)));
        bus.insert(BusRange::new(0x600, 3), power)
            .expect("free range");

        // A fixed xorshift sequence: ports around every device, sizes 1 to 8, any bytes.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let ports = [0x3f0u64, 0x5e, 0x5f8];
        for _ in 0..20_000 {
            let r = next();
            let addr = ports[(r % 3) as usize] + (r >> 8) % 24;
            let len = 1 + ((r >> 16) % 8) as usize;
            let mut data = (r >> 24).to_le_bytes()[..len].to_vec();
            if r & (1 << 63) == 0 {
                bus.read(addr, &mut data);
            } else {
                bus.write(addr, &data);
            }
        }
    }
}
