//! Image references, `[REGISTRY[:PORT]/]REPO[:TAG][@DIGEST]`, with the rules and the words of
//! Docker's `reference` package (`ParseNormalizedNamed`, `ParseAnyReference`, `FamiliarString`):
//! a name without a registry is Docker Hub's (`busybox` is `docker.io/library/busybox`), a
//! name is lowercase, a tag at most 128 characters, a digest `ALGORITHM:HEX`. Pure: no I/O,
//! never panics (fuzzed as `image_reference`).

use std::fmt;

/// Docker Hub's registry, the domain of a name that has none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag of a name that has none.
pub const DEFAULT_TAG: &str = "latest";
/// The longest name (domain and path) Docker accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A reference that does not parse, in Docker's words (`invalid reference format: repository
/// name must be lowercase`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefError(String);

impl RefError {
    fn new(message: impl Into<String>) -> RefError {
        RefError(message.into())
    }
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefError {}

const INVALID: &str = "invalid reference format";
const UPPERCASE: &str = "invalid reference format: repository name must be lowercase";

/// A named reference, normalized: `docker.io/library/busybox:latest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// What `ParseAnyReference` gives: an image ID (64 hex digits, or `sha256:` and them) or a
/// name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyReference {
    /// An ID, `sha256:<hex>`.
    Id(String),
    /// A name, with its tag and digest if given.
    Named(Reference),
}

impl Reference {
    /// Docker's `ParseNormalizedNamed`: a name as a user types it (`busybox`, `me/app:1`,
    /// `localhost:5000/app@sha256:…`), normalized.
    pub fn parse_normalized(s: &str) -> Result<Reference, RefError> {
        if is_full_id(s) {
            return Err(RefError::new(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split_once(':').map_or(remainder.as_str(), |(name, _)| name);
        if remote.to_lowercase() != remote {
            return Err(RefError::new(UPPERCASE));
        }
        parse(&format!("{domain}/{remainder}"))
    }

    /// The name with its registry: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            return self.path.clone();
        }
        format!("{}/{}", self.domain, self.path)
    }

    /// The registry: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository's path in its registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if given (`sha256:…`).
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The name as Docker shows it: `busybox`, `me/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The reference as Docker shows it: `busybox:latest`, `me/app@sha256:…`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// Docker's `TagNameOnly`: `latest` when neither a tag nor a digest is given.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same name with `tag` (checked) instead of its tag and digest: Docker's `WithTag`.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, RefError> {
        if !valid_tag(tag) {
            return Err(RefError::new("invalid tag format"));
        }
        Ok(Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() })
    }

    /// The name without tag or digest.
    pub fn name_only(&self) -> Reference {
        Reference { tag: None, digest: None, ..self.clone() }
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl AnyReference {
    /// Docker's `ParseAnyReference`: 64 hex digits or a valid digest is an ID, anything else
    /// a name ([`Reference::parse_normalized`]).
    pub fn parse(s: &str) -> Result<AnyReference, RefError> {
        if is_full_id(s) {
            return Ok(AnyReference::Id(format!("sha256:{s}")));
        }
        if validate_digest(s).is_ok() {
            return Ok(AnyReference::Id(s.to_string()));
        }
        Reference::parse_normalized(s).map(AnyReference::Named)
    }
}

/// Whether `s` is 64 lowercase hex digits (an image ID without its `sha256:`).
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Docker's `splitDockerDomain`: the first path component is a registry only if it has a `.`
/// or a `:` or is `localhost`; Docker Hub's official images are under `library/`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (domain, remainder)
}

/// Docker's `Parse` of `NAME[:TAG][@DIGEST]`, the name's first component a registry when it
/// reads as one and more follow.
fn parse(s: &str) -> Result<Reference, RefError> {
    let Some((name, tag, digest)) = split_reference(s) else {
        if s.is_empty() {
            return Err(RefError::new("repository name must have at least one component"));
        }
        if split_reference(&s.to_lowercase()).is_some() {
            return Err(RefError::new(UPPERCASE));
        }
        return Err(RefError::new(INVALID));
    };
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(RefError::new(format!(
            "invalid reference format: repository name must not be more than \
             {NAME_TOTAL_LENGTH_MAX} characters"
        )));
    }
    if let Some(d) = digest {
        validate_digest(d)?;
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if valid_domain(first) && valid_path(rest) => (first, rest),
        _ => ("", name),
    };
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// `NAME[:TAG][@DIGEST]` split as Docker's `ReferenceRegexp` matches it, or `None` if it does
/// not match. A `:` after the name's last `/` starts the tag (one before it is a port).
fn split_reference(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, d)) => (rest, Some(d)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !digest_syntax(d)) {
        return None;
    }
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !valid_tag(t)) || !valid_name(name) {
        return None;
    }
    Some((name, tag, digest))
}

/// `[DOMAIN/]COMPONENT(/COMPONENT)*`.
fn valid_name(name: &str) -> bool {
    if valid_path(name) {
        return true;
    }
    matches!(name.split_once('/'), Some((first, rest)) if valid_domain(first) && valid_path(rest))
}

/// Path components joined by `/`.
fn valid_path(path: &str) -> bool {
    path.split('/').all(valid_component)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `HOST(.HOST)*[:PORT]`, each part letters, digits and inner dashes.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    host.split('.').all(|part| {
        let b = part.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    })
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// The digest's shape in a reference: `ALG(SEP ALG)*:HEX{32,}`.
fn digest_syntax(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else { return false };
    let part_ok = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    };
    alg.split(['-', '_', '+', '.']).all(part_ok)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest's `Parse`: an available algorithm (sha256, sha384, sha512) and its length of
/// lowercase hex, in go-digest's words.
pub fn validate_digest(d: &str) -> Result<(), RefError> {
    let format = || RefError::new("invalid checksum digest format");
    let (alg, hex) = d.split_once(':').ok_or_else(format)?;
    if alg.is_empty() || hex.is_empty() {
        return Err(format());
    }
    let size = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ if digest_syntax(d) => return Err(RefError::new("unsupported digest algorithm")),
        _ => return Err(format()),
    };
    if hex.len() != size {
        return Err(RefError::new("invalid checksum digest length"));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<String, String> {
        Reference::parse_normalized(s).map(|r| r.to_string()).map_err(|e| e.to_string())
    }

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn names_are_normalized_as_dockers() {
        assert_eq!(norm("busybox"), Ok("docker.io/library/busybox".into()));
        assert_eq!(norm("busybox:1.36"), Ok("docker.io/library/busybox:1.36".into()));
        assert_eq!(norm("me/app"), Ok("docker.io/me/app".into()));
        assert_eq!(norm("index.docker.io/me/app"), Ok("docker.io/me/app".into()));
        assert_eq!(norm("localhost/app"), Ok("localhost/app".into()));
        assert_eq!(norm("localhost:5000/a/b:v1"), Ok("localhost:5000/a/b:v1".into()));
        assert_eq!(norm("example.com/x"), Ok("example.com/x".into()));
        assert_eq!(norm("a-b__c/e---f"), Ok("docker.io/a-b__c/e---f".into()));
        // A first component with a dot is taken for a registry, and kept as a path when it
        // cannot be one (Docker's quirk).
        assert_eq!(norm("a_b.c/d"), Ok("a_b.c/d".into()));
        assert_eq!(
            norm(&format!("busybox@sha256:{HEX}")),
            Ok(format!("docker.io/library/busybox@sha256:{HEX}"))
        );
        let r = Reference::parse_normalized("localhost:5000/app").unwrap();
        assert_eq!((r.domain(), r.path(), r.tag()), ("localhost:5000", "app", None));
        // A port without a path is a tag.
        assert_eq!(norm("localhost:5000"), Ok("docker.io/library/localhost:5000".into()));
    }

    #[test]
    fn familiar_forms_drop_docker_hub() {
        let f =
            |s: &str| Reference::parse_normalized(s).unwrap().with_default_tag().familiar_string();
        assert_eq!(f("busybox"), "busybox:latest");
        assert_eq!(f("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(f("me/app"), "me/app:latest");
        assert_eq!(f("localhost:5000/app:v"), "localhost:5000/app:v");
        assert_eq!(f(&format!("app@sha256:{HEX}")), format!("app@sha256:{HEX}"));
    }

    #[test]
    fn bad_references_get_dockers_words() {
        let words = [
            ("UPPER", UPPERCASE),
            ("me/App:1", UPPERCASE),
            ("", INVALID),
            ("a:b:c", INVALID),
            ("-a", INVALID),
            ("a..b", INVALID),
            ("a/", INVALID),
            ("/a", INVALID),
            ("a:", INVALID),
            ("a@", INVALID),
            ("a:-x", INVALID),
            ("a b", INVALID),
            ("a@sha256:abc", INVALID),
            (&format!("a@sha256:{}", &HEX[..40]), "invalid checksum digest length"),
            (&format!("a@md5:{HEX}"), "unsupported digest algorithm"),
            (&format!("a@sha256:{}", HEX.to_uppercase()), "invalid checksum digest format"),
            (
                HEX,
                "invalid repository name (e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855), cannot specify 64-byte hexadecimal strings",
            ),
        ];
        for (input, want) in words {
            assert_eq!(norm(input), Err(want.to_string()), "{input:?}");
        }
        let long = format!("a/{}", "b".repeat(250));
        assert!(norm(&long).unwrap_err().contains("not be more than 255"));
        assert!(norm(&format!("a:{}", "t".repeat(129))).is_err());
        assert!(norm(&format!("a:{}", "t".repeat(128))).is_ok());
        assert_eq!(norm("Foo.com/x:TAG"), Ok("Foo.com/x:TAG".into()));
    }

    #[test]
    fn ids_and_digests_are_ids() {
        assert_eq!(AnyReference::parse(HEX), Ok(AnyReference::Id(format!("sha256:{HEX}"))));
        let d = format!("sha256:{HEX}");
        assert_eq!(AnyReference::parse(&d), Ok(AnyReference::Id(d.clone())));
        assert!(matches!(AnyReference::parse("abc123"), Ok(AnyReference::Named(_))));
        assert!(AnyReference::parse("UP").is_err());
    }

    #[test]
    fn tags_are_checked() {
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(r.with_tag("v1.0_x-y").unwrap().familiar_string(), "busybox:v1.0_x-y");
        assert_eq!(r.with_tag(".x").unwrap_err().to_string(), "invalid tag format");
        assert!(r.with_tag("").is_err());
    }
}
