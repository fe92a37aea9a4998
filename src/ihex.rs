//! Intel HEX: the text format flash tools (probe-rs, STM32CubeProgrammer, J-Link, OpenOCD,
//! nrfjprog) take to write bytes at absolute addresses.
//!
//! [`encode`] writes one contiguous block: an extended linear address record (type 04)
//! whenever the upper 16 address bits change, data records (type 00) of at most 16 bytes
//! that never cross a 64 KiB boundary, and the end-of-file record (type 01). [`decode`]
//! reads such a file back — also with extended segment addresses (type 02) and start
//! address records (types 03 and 05, ignored) — and requires one contiguous block ending
//! in an end-of-file record, so a truncated or spliced file is an error naming its line.

use anyhow::{bail, Context, Result};
use std::fmt::Write;

/// Data bytes per record.
const RECORD_BYTES: usize = 16;

fn record(out: &mut String, kind: u8, address: u16, data: &[u8]) {
    let mut sum = (data.len() as u8)
        .wrapping_add((address >> 8) as u8)
        .wrapping_add(address as u8)
        .wrapping_add(kind);
    let _ = write!(out, ":{:02X}{address:04X}{kind:02X}", data.len());
    for &b in data {
        sum = sum.wrapping_add(b);
        let _ = write!(out, "{b:02X}");
    }
    let _ = writeln!(out, "{:02X}", sum.wrapping_neg());
}

/// `data` placed at `base`, as Intel HEX text.
pub fn encode(data: &[u8], base: u32) -> Result<String> {
    let end = u64::from(base) + data.len() as u64;
    if end > 1 << 32 {
        bail!(
            "{} bytes at {base:#010x} run past the 4 GiB address space",
            data.len()
        );
    }
    let mut out = String::with_capacity(data.len() * 2 + data.len() / RECORD_BYTES * 12 + 64);
    let mut upper = None;
    let mut offset = 0;
    while offset < data.len() {
        let address = base + offset as u32;
        let high = (address >> 16) as u16;
        if upper != Some(high) {
            record(&mut out, 0x04, 0, &high.to_be_bytes());
            upper = Some(high);
        }
        let low = address & 0xFFFF;
        let n = RECORD_BYTES
            .min(data.len() - offset)
            .min((0x1_0000 - low) as usize);
        record(&mut out, 0x00, low as u16, &data[offset..offset + n]);
        offset += n;
    }
    record(&mut out, 0x01, 0, &[]);
    Ok(out)
}

/// The base address and bytes of one contiguous block of Intel HEX text.
pub fn decode(text: &str) -> Result<(u32, Vec<u8>)> {
    let mut upper: u32 = 0;
    let mut block: Option<(u32, Vec<u8>)> = None;
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let n = k + 1;
        let bytes = parse_record(line).with_context(|| format!("Intel HEX line {n}"))?;
        let (kind, address, data) = (
            bytes[3],
            u16::from_be_bytes([bytes[1], bytes[2]]),
            &bytes[4..bytes.len() - 1],
        );
        match kind {
            0x00 => {
                let at = upper.wrapping_add(u32::from(address));
                let (base, bytes) = block.get_or_insert_with(|| (at, Vec::new()));
                let next = u64::from(*base) + bytes.len() as u64;
                if u64::from(at) != next {
                    bail!("Intel HEX line {n}: data at {at:#010x}, expected {next:#010x} (the image must be one contiguous block)");
                }
                bytes.extend_from_slice(data);
            }
            0x01 => {
                if let Some((extra, _)) = text
                    .lines()
                    .enumerate()
                    .skip(n)
                    .find(|(_, l)| !l.trim().is_empty())
                {
                    bail!(
                        "Intel HEX line {}: records after the end-of-file record",
                        extra + 1
                    );
                }
                return block.ok_or_else(|| anyhow::anyhow!("Intel HEX: no data records"));
            }
            0x02 | 0x04 => {
                let [hi, lo] = data else {
                    bail!("Intel HEX line {n}: an address record needs 2 data bytes");
                };
                let value = u32::from(u16::from_be_bytes([*hi, *lo]));
                upper = if kind == 0x04 {
                    value << 16
                } else {
                    value << 4
                };
            }
            0x03 | 0x05 => {}
            other => bail!("Intel HEX line {n}: unknown record type {other:02X}"),
        }
    }
    bail!("Intel HEX: no end-of-file record (truncated file?)")
}

/// The bytes of one `:LLAAAATT...CC` record, length and checksum checked.
fn parse_record(line: &str) -> Result<Vec<u8>> {
    let Some(hex) = line.strip_prefix(':') else {
        bail!(
            "a record starts with ':', got {:?}",
            line.chars().next().unwrap_or(' ')
        );
    };
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("not an even number of hex digits");
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<_, _>>()?;
    if bytes.len() < 5 || bytes.len() != 5 + usize::from(bytes[0]) {
        bail!("record length does not match its byte count");
    }
    let sum = bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    if sum != 0 {
        bail!("checksum mismatch");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_match_the_spec() {
        let text = encode(&[0x01, 0x02], 0x0800_0000).unwrap();
        assert_eq!(text, ":020000040800F2\n:020000000102FB\n:00000001FF\n");
    }

    #[test]
    fn blocks_crossing_64k_round_trip() {
        let data: Vec<u8> = (0..100u8).collect();
        let base = 0x0800_FFF8;
        let text = encode(&data, base).unwrap();
        // 8 bytes before the boundary, a new upper address, then the rest
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], ":020000040800F2");
        assert!(lines[1].starts_with(":08FFF800"), "{}", lines[1]);
        assert_eq!(lines[2], ":020000040801F1");
        assert_eq!(decode(&text).unwrap(), (base, data));
        assert_eq!(decode(&text.replace('\n', "\r\n")).unwrap().0, base);
    }

    #[test]
    fn corrupt_files_are_refused_naming_the_line() {
        let text = encode(&[7; 40], 0).unwrap();
        let msg = |t: &str| format!("{:#}", decode(t).unwrap_err());
        // a changed data digit breaks line 3's checksum
        let mut bad = text.clone().into_bytes();
        let third = text.lines().take(2).map(|l| l.len() + 1).sum::<usize>();
        bad[third + 9] = b'8';
        let e = msg(std::str::from_utf8(&bad).unwrap());
        assert!(e.contains("line 3") && e.contains("checksum"), "{e}");
        // cut before the end-of-file record
        let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert!(msg(&cut).contains("no end-of-file record"), "{}", msg(&cut));
        // a gap between records
        let gap: String = text
            .lines()
            .enumerate()
            .filter(|(k, _)| *k != 2)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        assert!(msg(&gap).contains("contiguous"), "{}", msg(&gap));
        assert!(msg("garbage").contains("starts with ':'"));
        assert!(encode(&[0; 32], 0xFFFF_FFF0).is_err());
    }
}
