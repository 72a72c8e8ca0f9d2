//! A layer's bytes as they stream past: the compression read from its first bytes (gzip,
//! zstd, or none), the sha256 of what came in and of the uncompressed tar (its diff ID), and
//! the tar read entry by entry, which checks it is one and sums its files' sizes as Docker's
//! `Size`. Nothing is extracted: the tar is only read through and, when asked, copied.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::supervisor::engine::error::Error;

/// How a layer's bytes are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// bzip2 (`BZh`), which cproxy does not read.
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`), which cproxy does not read.
    Xz,
}

impl Compression {
    /// What the first bytes say, as Docker's `DetectCompression`.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }
}

/// `sha256:` and the hex of a finished hash.
pub fn hex_digest(h: Sha256) -> String {
    let bytes = h.finalize();
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in bytes.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The sha256 of `data`, as `sha256:<hex>`.
pub fn digest_of(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    hex_digest(h)
}

/// A reader that hashes and counts what passes through it.
pub struct Hashing<R> {
    inner: R,
    hash: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    /// Hashes what is read from `inner`.
    pub fn new(inner: R) -> Hashing<R> {
        Hashing { inner, hash: Sha256::new(), count: 0 }
    }

    /// The digest and the byte count of what was read.
    pub fn finish(self) -> (String, u64) {
        (hex_digest(self.hash), self.count)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader that copies what passes through it to a writer.
struct Tee<R, W> {
    inner: R,
    out: Option<W>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(out) = self.out.as_mut() {
            out.write_all(&buf[..n]).map_err(|e| io::Error::new(e.kind(), WriteFailed(e)))?;
        }
        Ok(n)
    }
}

/// A failure to write the staged copy (a full disk): the system's fault, not the input's.
#[derive(Debug)]
struct WriteFailed(io::Error);

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write the layer: {}", self.0)
    }
}

impl std::error::Error for WriteFailed {}

/// The error for a failure while reading the tar: an internal one if writing the copy failed
/// somewhere down `e`'s chain, else the input's fault in Docker's words.
fn tar_error(e: io::Error) -> LayerError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(w) = c.downcast_ref::<WriteFailed>() {
            return Error::internal(w);
        }
        if let Some(w) = c.downcast_ref::<io::Error>().and_then(|io| io.get_ref())
            && let Some(w) = w.downcast_ref::<WriteFailed>()
        {
            return Error::internal(w);
        }
        cause = c.source();
    }
    Error::invalid(format!("Error processing tar file: {e}"))
}

/// What reading a layer found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// The sha256 of the bytes as they came (compressed or not).
    pub digest: String,
    /// The bytes as they came.
    pub compressed_length: u64,
    /// The sha256 of the uncompressed tar: the layer's diff ID.
    pub diff_id: String,
    /// The uncompressed tar's length.
    pub length: u64,
    /// Docker's `Size`: its regular files' sizes and its symlinks' target lengths.
    pub size: u64,
}

/// A failure reading a layer: invalid input, or the system's (a full disk).
pub type LayerError = Error;

/// Reads a layer from `input` to its end (a tar, gzip's or zstd's), checking it is a tar,
/// and writes the uncompressed tar to `out` if given (synced before returning).
pub fn read_layer(input: impl Read, out: Option<&Path>) -> Result<LayerInfo, LayerError> {
    let mut raw = Hashing::new(input);
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::invalid(format!("cannot read the layer: {e}"))),
        }
    }
    if got == 0 {
        return Err(Error::invalid(
            "Error processing tar file: unexpected EOF (the layer is empty)",
        ));
    }
    let head = &head[..got];
    let (diff_id, length, size) = read_through(head, &mut raw, out)?;
    let (digest, compressed_length) = raw.finish();
    Ok(LayerInfo { digest, compressed_length, diff_id, length, size })
}

/// [`read_layer`] after the first bytes (`head`) were read from `raw`: the diff ID, length
/// and size of the uncompressed tar.
fn read_through<R: Read>(
    head: &[u8],
    raw: &mut R,
    out: Option<&Path>,
) -> Result<(String, u64, u64), LayerError> {
    let compression = Compression::detect(head);
    let stream = io::Cursor::new(head.to_vec()).chain(raw);
    let decoded: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        #[cfg(feature = "zstd")]
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(stream)
                .map_err(|e| Error::invalid(format!("cannot read a zstd layer: {e}")))?,
        ),
        #[cfg(not(feature = "zstd"))]
        Compression::Zstd => {
            return Err(Error::invalid(
                "zstd-compressed layers need cproxy built with the zstd feature",
            ));
        }
        Compression::Bzip2 | Compression::Xz => {
            return Err(Error::invalid(format!(
                "unsupported layer compression ({compression:?}): cproxy reads plain tar, gzip \
                 and zstd"
            )));
        }
    };
    let file = match out {
        Some(p) => Some(BufWriter::with_capacity(
            256 * 1024,
            File::create(p)
                .map_err(|e| Error::internal(format!("cannot write {}: {e}", p.display())))?,
        )),
        None => None,
    };
    let tee = Tee { inner: Hashing::new(decoded), out: file };
    let mut archive = tar::Archive::new(tee);
    let mut size = 0u64;
    let bad = tar_error;
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let header = entry.header();
        match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                size = size.saturating_add(entry.size());
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().map_or(0, |l| l.len() as u64);
                size = size.saturating_add(target);
            }
            _ => {}
        }
    }
    let mut tee = archive.into_inner();
    // The end-of-archive blocks and any padding belong to the layer's bytes too.
    io::copy(&mut tee, &mut io::sink()).map_err(bad)?;
    let Tee { inner, out } = tee;
    if let Some(mut w) = out {
        let failed =
            |e: &dyn std::fmt::Display| Error::internal(format!("cannot write the layer: {e}"));
        w.flush().map_err(|e| failed(&e))?;
        let f = w.into_inner().map_err(|e| failed(&e))?;
        f.sync_all().map_err(|e| failed(&e))?;
    }
    let (diff_id, length) = inner.finish();
    Ok((diff_id, length, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of one file and one symlink.
    pub(crate) fn small_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "bin/busybox", &b"hello"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "bin/sh", "busybox").unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn a_plain_layer_is_its_own_diff() {
        let t = small_tar();
        let info = read_layer(&t[..], None).unwrap();
        assert_eq!(info.diff_id, digest_of(&t));
        assert_eq!(info.digest, info.diff_id);
        assert_eq!((info.length, info.size), (t.len() as u64, 5 + 7));
    }

    #[test]
    fn a_gzip_layer_is_read_through_and_written_uncompressed() {
        let t = small_tar();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap();
        let gz = gz.finish().unwrap();
        let dir = testdir();
        let out = dir.join("layer");
        let info = read_layer(&gz[..], Some(&out)).unwrap();
        assert_eq!(info.diff_id, digest_of(&t));
        assert_eq!(info.digest, digest_of(&gz));
        assert_eq!(std::fs::read(&out).unwrap(), t);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn a_zstd_layer_is_read() {
        let t = small_tar();
        let z = zstd::encode_all(&t[..], 1).unwrap();
        assert_eq!(read_layer(&z[..], None).unwrap().diff_id, digest_of(&t));
    }

    #[test]
    fn a_full_disk_is_the_systems_fault_not_the_inputs() {
        // /dev/full fails every write with ENOSPC.
        let t = small_tar();
        let e = read_layer(&t[..], Some(Path::new("/dev/full"))).unwrap_err();
        assert_eq!(e.kind, crate::supervisor::engine::ErrorKind::Internal, "{e}");
        assert!(e.message.contains("cannot write the layer"), "{e}");
    }

    #[test]
    fn what_is_not_a_tar_is_refused() {
        let words = |data: &[u8]| read_layer(data, None).unwrap_err().message;
        assert!(words(b"").contains("empty"));
        assert!(words(b"foo\n").starts_with("Error processing tar"));
        let t = small_tar();
        assert!(read_layer(&t[..700], None).is_err(), "a truncated tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap();
        let gz = gz.finish().unwrap();
        assert!(read_layer(&gz[..gz.len() - 10], None).is_err(), "a truncated gzip");
        assert!(words(b"BZh91AY&SY").contains("unsupported"));
        assert_eq!(
            read_layer(&b"foo\n"[..], None).unwrap_err().kind,
            crate::supervisor::engine::ErrorKind::InvalidArgument
        );
    }

    fn testdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "cproxy-layer-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
