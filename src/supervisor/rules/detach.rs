//! Detach keys: the key sequence that leaves a terminal session (`run -it`, `attach`, `exec
//! -it`) with the container still running, `ctrl-p,ctrl-q` unless `--detach-keys` says
//! otherwise. Docker's CLI watches for it in what it sends, and dockerd in what it receives on
//! a terminal's input; both read the same notation (moby/term's `ToBytes`).

/// Docker's default: `ctrl-p,ctrl-q`.
pub const DEFAULT: [u8; 2] = [0x10, 0x11];

/// The keys `spec` names, comma-separated: a single character as itself, or `ctrl-X` for X a
/// letter or one of `@ [ \ ] ^ _` (any case). An empty spec is Docker's default. Refused in
/// moby/term's words (`Unknown character: 'ctrl-1'`).
pub fn parse(spec: &str) -> Result<Vec<u8>, String> {
    if spec.is_empty() {
        return Ok(DEFAULT.to_vec());
    }
    spec.split(',')
        .map(|key| match key.as_bytes() {
            [one] => Ok(*one),
            _ => control(key).ok_or_else(|| format!("Unknown character: '{key}'")),
        })
        .collect()
}

/// The code of `ctrl-X`.
fn control(key: &str) -> Option<u8> {
    let rest = key.get(..5).filter(|p| p.eq_ignore_ascii_case("ctrl-")).and(key.get(5..))?;
    match rest.as_bytes() {
        [c @ b'a'..=b'z'] | [c @ b'A'..=b'Z'] => Some(c.to_ascii_lowercase() - b'a' + 1),
        [b'@'] => Some(0),
        [b'['] => Some(27),
        [b'\\'] => Some(28),
        [b']'] => Some(29),
        [b'^'] => Some(30),
        [b'_'] => Some(31),
        _ => None,
    }
}

/// Watches a terminal's input for the detach keys. Bytes that could begin the sequence are held
/// back until it is complete (the session ends and they are never sent) or broken (they are
/// sent with what follows), so the container never sees half a detach.
#[derive(Clone, Debug)]
pub struct Watch {
    keys: Vec<u8>,
    /// How many of `keys` the input has matched so far (held back).
    matched: usize,
}

/// What one read of input comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Bytes to send on (possibly none: a read that may be the sequence's start).
    Send(Vec<u8>),
    /// The keys were typed: send these bytes (what came before them), then end the session.
    Detach(Vec<u8>),
}

impl Watch {
    /// Watches for `keys`; an empty list never matches.
    pub fn new(keys: Vec<u8>) -> Watch {
        Watch { keys, matched: 0 }
    }

    /// Reads `chunk` of input.
    pub fn feed(&mut self, chunk: &[u8]) -> Input {
        if self.keys.is_empty() {
            return Input::Send(chunk.to_vec());
        }
        let mut out = Vec::with_capacity(chunk.len() + self.matched);
        for &b in chunk {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Input::Detach(out);
                }
                continue;
            }
            // The held bytes were not the sequence after all: they go first. The byte that
            // broke it may begin it again.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = usize::from(b == self.keys[0]);
            if self.matched == 0 {
                out.push(b);
            }
        }
        Input::Send(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_as_moby_term_reads_them() {
        assert_eq!(parse(""), Ok(vec![0x10, 0x11]));
        assert_eq!(parse("ctrl-p,ctrl-q"), Ok(vec![0x10, 0x11]));
        assert_eq!(parse("CTRL-A,x,ctrl-@,ctrl-_"), Ok(vec![1, b'x', 0, 31]));
        assert_eq!(parse("ctrl-\\,ctrl-[,ctrl-],ctrl-^"), Ok(vec![28, 27, 29, 30]));
        assert_eq!(parse("ctrl-1"), Err("Unknown character: 'ctrl-1'".into()));
        assert_eq!(parse("a,,b"), Err("Unknown character: ''".into()));
        assert_eq!(parse("ab"), Err("Unknown character: 'ab'".into()));
        assert_eq!(parse("ctrl-é"), Err("Unknown character: 'ctrl-é'".into()));
    }

    #[test]
    fn the_sequence_detaches_and_a_broken_one_is_sent_whole() {
        let mut w = Watch::new(DEFAULT.to_vec());
        assert_eq!(w.feed(b"ls\r"), Input::Send(b"ls\r".to_vec()));
        // Typed a key at a time: the first is held back.
        assert_eq!(w.feed(&[0x10]), Input::Send(vec![]));
        assert_eq!(w.feed(&[0x11]), Input::Detach(vec![]));
        // Broken: ctrl-p then x is sent as typed.
        assert_eq!(w.feed(&[0x10]), Input::Send(vec![]));
        assert_eq!(w.feed(b"x"), Input::Send(vec![0x10, b'x']));
        // ctrl-p ctrl-p ctrl-q: the first is sent, the last two detach.
        assert_eq!(w.feed(&[0x10, 0x10, 0x11]), Input::Detach(vec![0x10]));
        // Within one read, after other bytes.
        assert_eq!(w.feed(b"ab\x10\x11cd"), Input::Detach(b"ab".to_vec()));
        let mut none = Watch::new(vec![]);
        assert_eq!(none.feed(&[0x10, 0x11]), Input::Send(vec![0x10, 0x11]));
    }
}
