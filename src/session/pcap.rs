//! Writing frames as a classic pcap file (LINKTYPE_ETHERNET), which Wireshark, tshark and
//! tcpdump read. Each frame's time is its step's time since the lab started.

use super::Step;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The pcap magic in microsecond resolution, version 2.4.
const MAGIC: u32 = 0xa1b2_c3d4;
const LINKTYPE_ETHERNET: u32 = 1;
const SNAPLEN: u32 = 65_535;

/// A pcap file being written.
pub struct Pcap {
    out: BufWriter<File>,
}

impl Pcap {
    pub fn create(path: &Path) -> std::io::Result<Pcap> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(&MAGIC.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?; // thiszone: UTC
        out.write_all(&0u32.to_le_bytes())?; // sigfigs
        out.write_all(&SNAPLEN.to_le_bytes())?;
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        Ok(Pcap { out })
    }

    /// Appends a step's frame; flushed at once so a reader can follow the file live.
    pub fn write(&mut self, step: &Step) -> std::io::Result<()> {
        let kept = step.bytes.len().min(SNAPLEN as usize);
        self.out.write_all(&((step.t_us / 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&((step.t_us % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&(kept as u32).to_le_bytes())?;
        self.out.write_all(&(step.len as u32).to_le_bytes())?;
        self.out.write_all(&step.bytes[..kept])?;
        self.out.flush()
    }
}
