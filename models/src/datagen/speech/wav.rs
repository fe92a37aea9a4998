//! 16-bit PCM WAV in and out: enough of RIFF to read what espeak-ng writes and to write the
//! data set's 16 kHz mono files.
//!
//! espeak-ng streams to stdout, so it cannot seek back and its RIFF and `data` sizes are
//! placeholders (0x7ffff000); the reader takes the `data` chunk to the end of the bytes when
//! its stated size overruns them, which no stricter reader allows.

use std::io;

/// Decoded mono PCM.
#[derive(Clone, Debug, PartialEq)]
pub struct Pcm {
    /// Samples per second.
    pub rate: u32,
    /// Samples (mono).
    pub samples: Vec<i16>,
}

fn bad(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a usable WAV: {why}"),
    )
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses a mono 16-bit PCM WAV.
pub fn read(bytes: &[u8]) -> io::Result<Pcm> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut rate = None;
    while at + 8 <= bytes.len() {
        let (id, size) = (&bytes[at..at + 4], u32_at(bytes, at + 4) as usize);
        let body = at + 8;
        let end = body.saturating_add(size).min(bytes.len());
        match id {
            b"fmt " => {
                if end - body < 16 {
                    return Err(bad("short fmt chunk"));
                }
                let (format, channels) = (u16_at(bytes, body), u16_at(bytes, body + 2));
                let bits = u16_at(bytes, body + 14);
                if format != 1 || channels != 1 || bits != 16 {
                    return Err(bad(&format!(
                        "format {format}, {channels} channels, {bits} bits (want PCM, 1, 16)"
                    )));
                }
                rate = Some(u32_at(bytes, body + 4));
            }
            b"data" => {
                let rate = rate.ok_or_else(|| bad("data before fmt"))?;
                let samples = bytes[body..end]
                    .chunks_exact(2)
                    .map(|s| i16::from_le_bytes([s[0], s[1]]))
                    .collect();
                return Ok(Pcm { rate, samples });
            }
            _ => {}
        }
        at = end + (size & 1);
    }
    Err(bad("no data chunk"))
}

/// Encodes mono 16-bit PCM as a canonical 44-byte-header WAV.
pub fn write(pcm: &Pcm) -> Vec<u8> {
    let data = (pcm.samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&pcm.rate.to_le_bytes());
    out.extend_from_slice(&(pcm.rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in &pcm.samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_a_streamed_header() {
        let pcm = Pcm {
            rate: 16000,
            samples: vec![0, 1, -1, i16::MAX, i16::MIN],
        };
        let bytes = write(&pcm);
        assert_eq!(bytes.len(), 44 + 10);
        assert_eq!(read(&bytes).unwrap(), pcm);
        // espeak-ng's placeholder sizes: the data runs to the end of the bytes.
        let mut streamed = bytes.clone();
        streamed[4..8].copy_from_slice(&0x7fff_f024u32.to_le_bytes());
        streamed[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        assert_eq!(read(&streamed).unwrap(), pcm);
    }

    #[test]
    fn refuses_what_it_cannot_decode() {
        let mut stereo = write(&Pcm {
            rate: 8000,
            samples: vec![0; 4],
        });
        stereo[22] = 2;
        assert!(read(&stereo)
            .unwrap_err()
            .to_string()
            .contains("2 channels"));
        assert!(read(b"RIFF").is_err());
        assert!(read(&stereo[..36]).is_err());
    }
}
