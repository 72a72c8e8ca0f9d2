//! Deterministic byte streams and an order-sensitive checksum, so that hundreds of MiB can be
//! sent through a proxy and checked at the other end without keeping them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;

/// Size of the reads and writes of [`send_pattern`] and [`recv_into`].
const CHUNK: usize = 256 * 1024;

/// An order-sensitive checksum (FNV-1a) over a byte stream, and its length.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sum {
    /// The hash so far.
    h: u64,
    /// Bytes summed so far.
    pub len: u64,
}

impl Sum {
    /// Continues the checksum over `data`.
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.h = (self.h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.len += data.len() as u64;
    }
}

/// Deterministic pseudo-random bytes (xorshift64): the same seed gives the same stream. Also a
/// cheap random number source for picking what a load does next.
pub struct Pattern(u64);

impl Pattern {
    /// The stream of `seed` (an even seed and the odd one above it give the same stream).
    pub fn new(seed: u64) -> Pattern {
        Pattern(seed | 1)
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
    }

    /// The next 8 bytes of the stream, as a number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0), for picking what to do next.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The first `len` bytes of `Pattern(seed)`, so that a corrupted datagram cannot pass for a good
/// one.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    Pattern::new(seed).fill(&mut buf);
    buf
}

/// Writes `len` bytes of `Pattern(seed)` to `w`; returns their checksum.
pub fn send_pattern(w: &mut impl Write, seed: u64, len: u64) -> io::Result<Sum> {
    let mut pattern = Pattern::new(seed);
    let mut buf = vec![0u8; CHUNK];
    let mut sum = Sum::default();
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        pattern.fill(&mut buf[..n]);
        w.write_all(&buf[..n])?;
        sum.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(sum)
}

/// Reads `r` to end of stream; returns the checksum of what was read.
pub fn recv_sum(r: &mut impl Read) -> io::Result<Sum> {
    recv_into(r, Sum::default())
}

/// Reads `r` to end of stream, continuing `sum` over what was read.
pub fn recv_into(r: &mut impl Read, mut sum: Sum) -> io::Result<Sum> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf)? {
            0 => return Ok(sum),
            n => sum.update(&buf[..n]),
        }
    }
}

/// Sends `len` bytes of `Pattern(seed)` on `conn` then half-closes, while reading the peer to
/// its end; returns the checksums of what was sent and what was read.
pub fn exchange(conn: TcpStream, seed: u64, len: u64) -> io::Result<(Sum, Sum)> {
    let mut writer = conn.try_clone()?;
    let sender = thread::spawn(move || -> io::Result<Sum> {
        let sum = send_pattern(&mut writer, seed, len)?;
        writer.shutdown(Shutdown::Write)?;
        Ok(sum)
    });
    let mut reader = conn;
    let got = recv_sum(&mut reader)?;
    let sent = sender.join().map_err(|_| io::Error::other("sender panicked"))??;
    Ok((sent, got))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_sent_is_the_stream_received_by_checksum() {
        let mut wire = Vec::new();
        let sent = send_pattern(&mut wire, 7, 300_000).unwrap();
        assert_eq!(recv_sum(&mut wire.as_slice()).unwrap(), sent);
        assert_eq!(sent.len, 300_000);
    }

    #[test]
    fn the_checksum_sees_order() {
        let (mut ab, mut ba) = (Sum::default(), Sum::default());
        ab.update(b"ab");
        ba.update(b"ba");
        assert_ne!(ab, ba);
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        assert_eq!(bytes(100, 4), bytes(100, 4));
        assert_ne!(bytes(100, 4), bytes(100, 6));
    }
}
