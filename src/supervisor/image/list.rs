//! `GET /images/json`: the images and the tags to show, filtered as dockerd filters them
//! (`dangling`, `reference` with Go's `path.Match` patterns, `label`, `before`, `since`).

use std::time::SystemTime;

use crate::supervisor::api::types::ImageSummary;
use crate::supervisor::engine::error::{Error, Result};
use crate::supervisor::image::reference::Reference;
use crate::supervisor::image::store::ImageStore;
use crate::supervisor::rules::filters::Filters;

/// The filters `images` takes.
const KEYS: &[&str] = &["dangling", "reference", "label", "before", "since"];

/// The images `filters` selects, newest first; a tagged image shows the tags the `reference`
/// filter matched, an untagged one `<none>:<none>`. An untagged image another was committed
/// from (an intermediate image) is listed only with `all` (`images -a`), and never as
/// dangling, as moby's `Images` lists them.
pub fn list(store: &ImageStore, filters: &Filters, all: bool) -> Result<Vec<ImageSummary>> {
    let keys: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&filters.to_json()).unwrap_or_default();
    for k in keys.keys() {
        if !KEYS.contains(&k.as_str()) {
            return Err(Error::invalid(format!("Invalid filter '{k}'")));
        }
    }
    let dangling = match filters.get("dangling").next() {
        None => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(v) => return Err(Error::invalid(format!("Invalid filter 'dangling={v}'"))),
    };
    let time_of = |key: &str| -> Result<Option<SystemTime>> {
        match filters.get(key).next() {
            None => Ok(None),
            Some(name) => {
                let id = store.resolve(name)?;
                Ok(store.config(&id).map(|c| c.created_time()))
            }
        }
    };
    let before = time_of("before")?;
    let since = time_of("since")?;
    let patterns: Vec<&str> = filters.get("reference").collect();
    let mut out = Vec::new();
    for (id, config, tags, size) in store.all() {
        let created = config.created_time();
        if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
            continue;
        }
        let image_labels =
            config.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
        if !filters.match_kv("label", &image_labels) {
            continue;
        }
        let mut shown = Vec::new();
        for t in &tags {
            if patterns.is_empty() {
                shown.push(t.clone());
                continue;
            }
            let Ok(r) = Reference::parse_normalized(t) else { continue };
            let mut hit = false;
            for p in &patterns {
                let m = glob(p, &r.familiar_string()).map_err(Error::invalid)?
                    || glob(p, &r.familiar_name()).map_err(Error::invalid)?;
                hit |= m;
            }
            if hit {
                shown.push(t.clone());
            }
        }
        if tags.is_empty() {
            if dangling == Some(false) || !patterns.is_empty() {
                continue;
            }
            if (!all || dangling == Some(true)) && store.has_children(&id) {
                continue;
            }
        } else if dangling == Some(true) || shown.is_empty() {
            continue;
        }
        let mut summary = ImageStore::summary(&id, &config, shown, size);
        summary.parent_id = store.parent(&id);
        out.push(summary);
    }
    Ok(out)
}

/// Go's `path.Match`: `*` any run of characters but `/`, `?` one of them, `[…]` a class
/// (`^` negates, `a-z` ranges), `\` escapes; a malformed pattern is Go's
/// `syntax error in pattern`. Matched in time proportional to the pattern's length times the
/// name's, whatever the stars.
pub fn glob(pattern: &str, name: &str) -> std::result::Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    let bad = || "syntax error in pattern".to_string();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let token = match p[i] {
            '*' => Token::Star,
            '?' => Token::Any,
            '\\' => {
                i += 1;
                Token::Char(*p.get(i).ok_or_else(bad)?)
            }
            '[' => {
                let (end, negate, ranges) = class(&p, i).ok_or_else(bad)?;
                i = end - 1;
                Token::Class(negate, ranges)
            }
            c => Token::Char(c),
        };
        tokens.push(token);
        i += 1;
    }
    let n: Vec<char> = name.chars().collect();
    // `after[j]`: whether the tokens after the current one match `n[j..]`.
    let mut after = vec![false; n.len() + 1];
    after[n.len()] = true;
    for t in tokens.iter().rev() {
        let mut here = vec![false; n.len() + 1];
        for j in (0..=n.len()).rev() {
            here[j] = match t {
                Token::Star => after[j] || (j < n.len() && n[j] != '/' && here[j + 1]),
                t => j < n.len() && t.takes(n[j]) && after[j + 1],
            };
        }
        after = here;
    }
    Ok(after[0])
}

/// One element of a pattern.
enum Token {
    /// `*`.
    Star,
    /// `?`.
    Any,
    /// A character as it is.
    Char(char),
    /// `[…]`: negated or not, its ranges.
    Class(bool, Ranges),
}

impl Token {
    /// Whether this one-character token takes `c`.
    fn takes(&self, c: char) -> bool {
        match self {
            Token::Star => false,
            Token::Any => c != '/',
            Token::Char(x) => *x == c,
            Token::Class(negate, ranges) => {
                c != '/' && ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate
            }
        }
    }
}

/// A class's ranges, `(low, high)`.
type Ranges = Vec<(char, char)>;

/// The class starting at `p[i] == '['`, as Go reads it: where it ends (past its `]`),
/// whether it is negated, its ranges; `None` if malformed.
fn class(p: &[char], mut i: usize) -> Option<(usize, bool, Ranges)> {
    i += 1;
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    // Go's `getEsc`: one character, maybe escaped; `-` and `]` are not characters here.
    let esc = |i: &mut usize| -> Option<char> {
        let mut c = *p.get(*i)?;
        if c == '-' || c == ']' {
            return None;
        }
        if c == '\\' {
            *i += 1;
            c = *p.get(*i)?;
        }
        *i += 1;
        p.get(*i)?;
        Some(c)
    };
    let mut ranges = Vec::new();
    loop {
        if p.get(i) == Some(&']') && !ranges.is_empty() {
            return Some((i + 1, negate, ranges));
        }
        let lo = esc(&mut i)?;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            i += 1;
            hi = esc(&mut i)?;
        }
        ranges.push((lo, hi));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_gos_path_match() {
        for (p, n, want) in [
            ("busybox", "busybox", true),
            ("busy*", "busybox", true),
            ("*", "me/app", false),
            ("*/*", "me/app", true),
            ("me/a?p", "me/app", true),
            ("bb:[0-9]*", "bb:1.36", true),
            ("bb:[^0-9]*", "bb:1.36", false),
            ("bb:[a-c]", "bb:b", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
        ] {
            assert_eq!(glob(p, n), Ok(want), "{p} {n}");
        }
        assert!(glob("[", "x").is_err());
        assert!(glob("a\\", "a").is_err());
        assert!(glob("[]", "x").is_err());
        // No backtracking blow-up.
        let stars = "*a".repeat(40);
        assert_eq!(glob(&stars, &"a".repeat(39)), Ok(false));
    }
}
