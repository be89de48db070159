//! Measuring the node: CPU, load, memory, disks and network through sysinfo (no shelling
//! out), and the BBB counts from the node's own API ([`bbb`]). A [`Collector`] is kept for
//! the agent's life so CPU use and network rates cover the time since the previous sample.

pub mod bbb;

use std::time::Instant;

use conflux_shared::report::Disk;
use sysinfo::{Disks, Networks, System};

/// What one sample of the machine says (the report minus the BBB counts).
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub cpu_percent: f64,
    pub load: [f64; 3],
    pub memory_used: u64,
    pub memory_total: u64,
    pub disks: Vec<Disk>,
    pub net_in: f64,
    pub net_out: f64,
}

pub struct Collector {
    system: System,
    networks: Networks,
    disks: Disks,
    mounts: Vec<String>,
    last: Instant,
}

impl Collector {
    /// Starts measuring; `mounts` are the disks reported (empty = all).
    pub fn new(mounts: &[String]) -> anyhow::Result<Collector> {
        let mut system = System::new()?;
        system.refresh_cpu_usage();
        Ok(Collector {
            system,
            networks: Networks::new_with_refreshed_list()?,
            disks: Disks::new_with_refreshed_list()?,
            mounts: mounts.to_vec(),
            last: Instant::now(),
        })
    }

    /// Measures since the previous call (or since `new`).
    pub fn sample(&mut self) -> Machine {
        let elapsed = self.last.elapsed().as_secs_f64().max(1e-3);
        self.last = Instant::now();
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.networks.refresh(true);
        self.disks.refresh(true);
        let (received, sent) = self
            .networks
            .iter()
            .filter(|(name, _)| name.as_os_str() != "lo")
            .fold((0u64, 0u64), |(r, s), (_, data)| {
                (r + data.received(), s + data.transmitted())
            });
        let load = System::load_average().unwrap_or_default();
        Machine {
            cpu_percent: f64::from(self.system.global_cpu_usage()),
            load: [load.one, load.five, load.fifteen],
            memory_used: self.system.used_memory(),
            memory_total: self.system.total_memory(),
            disks: self.disks(),
            net_in: received as f64 / elapsed,
            net_out: sent as f64 / elapsed,
        }
    }

    fn disks(&self) -> Vec<Disk> {
        let mut disks: Vec<Disk> = self
            .disks
            .iter()
            .filter(|d| d.total_space() > 0)
            .map(|d| Disk {
                mount: d.mount_point().display().to_string(),
                used: d.total_space().saturating_sub(d.available_space()),
                total: d.total_space(),
            })
            .filter(|d| self.mounts.is_empty() || self.mounts.contains(&d.mount))
            .collect();
        disks.sort_by(|a, b| a.mount.cmp(&b.mount));
        disks.dedup_by(|a, b| a.mount == b.mount);
        disks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_machine() {
        let mut collector = Collector::new(&["/".into()]).unwrap();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let m = collector.sample();
        assert!((0.0..=100.0).contains(&m.cpu_percent), "{m:?}");
        assert!(
            m.memory_total > 0 && m.memory_used <= m.memory_total,
            "{m:?}"
        );
        assert!(m.net_in >= 0.0 && m.net_out >= 0.0);
        assert!(
            m.disks.iter().all(|d| d.mount == "/" && d.used <= d.total),
            "{m:?}"
        );
    }
}
