//! Container IDs (64 hex digits from the kernel's random source) and names: Docker's rule for
//! valid names, and a random `adjective_name` when none is given.

use std::collections::BTreeSet;
use std::io::{self, Read};

/// A new container ID: 32 random bytes as 64 hex digits.
pub fn new_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

const LEFT: &[&str] = &[
    "admiring", "bold", "brave", "busy", "clever", "cool", "crazy", "eager", "elated", "focused",
    "gifted", "happy", "jolly", "keen", "loving", "modest", "nifty", "quirky", "sharp", "vibrant",
];
const RIGHT: &[&str] = &[
    "archimedes",
    "babbage",
    "curie",
    "darwin",
    "einstein",
    "euler",
    "fermat",
    "galileo",
    "hopper",
    "kepler",
    "lovelace",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shamir",
    "thompson",
    "turing",
    "wozniak",
    "zuse",
];

/// A random `adjective_name` not in `taken` (a digit is appended if all are).
pub fn random_name(taken: &BTreeSet<String>) -> String {
    let mut bytes = [0u8; 4];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    let n = u32::from_le_bytes(bytes) as usize;
    for i in 0..LEFT.len() * RIGHT.len() {
        let k = (n + i) % (LEFT.len() * RIGHT.len());
        let name = format!("{}_{}", LEFT[k % LEFT.len()], RIGHT[k / LEFT.len()]);
        if !taken.contains(&name) {
            return name;
        }
    }
    format!("{}_{}{}", LEFT[0], RIGHT[0], n % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid("web") && valid("p_ip.host-ctr"));
        assert!(!valid("_web") && !valid("w") && !valid("a b"));
        assert!(valid(&random_name(&BTreeSet::new())));
    }
}
