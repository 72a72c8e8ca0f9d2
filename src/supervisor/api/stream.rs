//! Docker's multiplexed stream (`application/vnd.docker.raw-stream`), both ways: each frame is
//! one byte naming the stream (0 stdin, 1 stdout, 2 stderr), three zero bytes, a big-endian
//! u32 length and that many bytes. The daemon encodes `logs` with it; the client and compose
//! decode it, whole frames from any cut of the bytes.

/// Which stream a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// The container's standard input (attach only).
    Stdin = 0,
    /// Its standard output.
    Stdout = 1,
    /// Its standard error.
    Stderr = 2,
}

impl StreamKind {
    /// The kind a frame's first byte names; anything unknown is stdout, as Docker's
    /// `stdcopy` would refuse it and the text is still worth showing.
    pub fn from_byte(b: u8) -> StreamKind {
        match b {
            0 => StreamKind::Stdin,
            2 => StreamKind::Stderr,
            _ => StreamKind::Stdout,
        }
    }

    /// The json-file log's name for it (`stdout`, `stderr`).
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Stdin => "stdin",
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }

    /// The kind a json-file log record's `stream` names (anything but `stderr` is stdout).
    pub fn from_name(name: &str) -> StreamKind {
        if name == "stderr" { StreamKind::Stderr } else { StreamKind::Stdout }
    }
}

/// Size of a frame's header.
pub const HEADER_LEN: usize = 8;

/// One frame carrying `data` on `kind`. Data longer than a u32 can say is cut to that.
pub fn encode(kind: StreamKind, data: &[u8]) -> Vec<u8> {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let data = &data[..len as usize];
    let mut out = Vec::with_capacity(HEADER_LEN + data.len());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Whole frames out of bytes that arrive in any cuts.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes not yet a whole frame.
    pending: Vec<u8>,
    /// Per stream, the start of a line whose end has not come yet ([`Decoder::lines`]).
    partial: [Vec<u8>; 3],
    /// The stream is a terminal's raw bytes, not frames (a container with `-t`): every byte
    /// is stdout as it comes.
    raw: bool,
}

impl Decoder {
    /// A decoder of a terminal's raw stream (Docker sends no frames for a `-t` container).
    pub fn raw() -> Decoder {
        Decoder { raw: true, ..Decoder::default() }
    }

    /// Takes the next bytes of the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
    }

    /// The next whole frame received, if any.
    pub fn next_frame(&mut self) -> Option<(StreamKind, Vec<u8>)> {
        if self.raw {
            return (!self.pending.is_empty())
                .then(|| (StreamKind::Stdout, std::mem::take(&mut self.pending)));
        }
        let header: [u8; HEADER_LEN] = self.pending.get(..HEADER_LEN)?.try_into().ok()?;
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if self.pending.len() < HEADER_LEN + len {
            return None;
        }
        let data = self.pending[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.pending.drain(..HEADER_LEN + len);
        Some((StreamKind::from_byte(header[0]), data))
    }

    /// The whole lines received so far, without their newlines, each stream's kept apart.
    pub fn lines(&mut self) -> Vec<(StreamKind, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some((kind, data)) = self.next_frame() {
            let partial = &mut self.partial[kind as usize];
            partial.extend_from_slice(&data);
            while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).take(end).collect();
                out.push((kind, line));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_kind_three_zeros_length_and_bytes() {
        assert_eq!(encode(StreamKind::Stderr, b"hi"), [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn frames_come_out_whole_from_any_cut() {
        let mut bytes = encode(StreamKind::Stdout, b"hello");
        bytes.extend(encode(StreamKind::Stderr, b""));
        bytes.extend(encode(StreamKind::Stderr, b"oops"));
        for cut in 0..bytes.len() {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            d.push(&bytes[..cut]);
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
            d.push(&bytes[cut..]);
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
            assert_eq!(
                got,
                vec![
                    (StreamKind::Stdout, b"hello".to_vec()),
                    (StreamKind::Stderr, Vec::new()),
                    (StreamKind::Stderr, b"oops".to_vec())
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn log_frames_become_lines_per_stream_across_reads() {
        let mut f = Decoder::default();
        let mut bytes = encode(StreamKind::Stdout, b"hel");
        bytes.extend(encode(StreamKind::Stderr, b"oops\n"));
        bytes.extend(encode(StreamKind::Stdout, b"lo\nwor"));
        f.push(&bytes[..5]);
        assert!(f.lines().is_empty());
        f.push(&bytes[5..]);
        assert_eq!(
            f.lines(),
            vec![(StreamKind::Stderr, b"oops".to_vec()), (StreamKind::Stdout, b"hello".to_vec())]
        );
        f.push(&encode(StreamKind::Stdout, b"ld\n"));
        assert_eq!(f.lines(), vec![(StreamKind::Stdout, b"world".to_vec())]);
    }
}
