//! `docker ps`'s filters, as dockerd 20.10 applies them (pure).
//!
//! Filters are applied by the daemon, as dockerd does (`GET /containers/json?filters=…`), so API
//! users get them too: [`Filters`] is Docker's `filters.Args` (the same key twice ORs, different
//! keys AND), read from `--filter` flags by the client and from the query by the daemon, and
//! [`select`] is `daemon/list.go`'s walk over the containers, newest first.

use std::collections::{BTreeMap, BTreeSet};

use crate::supervisor::rules::format;

/// `--filter` values by key (Docker's `filters.Args`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, BTreeSet<String>>);

/// Docker's words for a `--filter` without `=`.
pub const BAD_FORMAT: &str = "bad format of filter (expected name=value)";

impl Filters {
    /// Adds one `--filter KEY=VALUE` as Docker's client reads it (`filters.ParseFlag`): the key
    /// lower-cased, both sides trimmed, an empty argument ignored.
    pub fn add_flag(&mut self, arg: &str) -> Result<(), &'static str> {
        if arg.is_empty() {
            return Ok(());
        }
        let (key, value) = arg.split_once('=').ok_or(BAD_FORMAT)?;
        self.add(key.trim().to_lowercase(), value.trim().to_string());
        Ok(())
    }

    /// Adds a value for a key.
    pub fn add(&mut self, key: String, value: String) {
        self.0.entry(key).or_default().insert(value);
    }

    /// The values given for `key`.
    pub fn get(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.get(key).into_iter().flatten().map(String::as_str)
    }

    /// Whether `key` was given.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// No filter at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The query's `filters` value in Docker's map form: `{"name":{"web":true}}`.
    pub fn to_json(&self) -> String {
        let map: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .0
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.iter().map(|v| (v.as_str(), true)).collect()))
            .collect();
        serde_json::to_string(&map).unwrap_or_default()
    }

    /// Reads a `filters` query value: the map form, or the legacy list form
    /// (`{"name":["web"]}`), as dockerd's `filters.FromJSON` (which tries the one, then the
    /// other, for the whole value). Read into maps and lists rather than `serde_json::Value`,
    /// whose reader takes an object keyed `$serde_json::private::RawValue` for something else.
    pub fn from_json(text: &str) -> Result<Filters, String> {
        let mut out = Filters::default();
        if text.is_empty() {
            return Ok(out);
        }
        type MapForm = BTreeMap<String, BTreeMap<String, bool>>;
        type ListForm = BTreeMap<String, Vec<String>>;
        let as_map = serde_json::from_str::<MapForm>(text);
        let map = match as_map {
            Ok(map) => map,
            Err(e) => match serde_json::from_str::<ListForm>(text) {
                Ok(list) => list
                    .into_iter()
                    .map(|(k, vs)| (k, vs.into_iter().map(|v| (v, true)).collect()))
                    .collect(),
                Err(_) => return Err(format!("invalid filter: {e}")),
            },
        };
        for (key, values) in map {
            out.0.entry(key.clone()).or_default();
            values.into_iter().filter(|(_, on)| *on).for_each(|(v, _)| out.add(key.clone(), v));
        }
        Ok(out)
    }

    /// `filters.Match`: no value for `key` (or an empty set), a value equal to `source`, or a value that is a
    /// regexp found in `source` (Go's regexp syntax; a value that does not compile is skipped).
    pub fn matches(&self, key: &str, source: &str) -> bool {
        let Some(values) = self.0.get(key).filter(|v| !v.is_empty()) else { return true };
        values
            .iter()
            .any(|v| v == source || regex_lite::Regex::new(v).is_ok_and(|re| re.is_match(source)))
    }

    /// `filters.MatchKVList`: every value of `key` (`KEY` or `KEY=VALUE`) names a label of
    /// `labels` (with that value); no value matches everything. Containers', images',
    /// networks', volumes' and events' `label` filters.
    pub fn match_kv(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(key).all(|want| match want.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|got| got == v),
            None => labels.contains_key(want),
        })
    }

    /// `filters.ExactMatch`: no value for `key`, or one equal to `source`.
    pub fn exact(&self, key: &str, source: &str) -> bool {
        self.0.get(key).is_none_or(|values| values.is_empty() || values.contains(source))
    }
}

/// Why a filter is refused, as dockerd classes it (the HTTP layer turns it into a status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterFault {
    /// Docker's `InvalidParameter` errors: an unknown key, a bad value.
    Invalid,
    /// An unknown `before`/`since` container.
    NotFound,
    /// The rest (dockerd answers them as a system error).
    Other,
}

/// A refused filter: its kind and Docker's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// What kind of refusal.
    pub fault: FilterFault,
    /// Docker's message.
    pub message: String,
}

fn refuse(fault: FilterFault, message: String) -> FilterError {
    FilterError { fault, message }
}

/// The keys dockerd accepts (`acceptedPsFilterTags`).
pub const ACCEPTED: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "expose",
    "health",
    "id",
    "is-task",
    "isolation",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// Docker's container states (`container.IsValidStateString`).
const STATES: &[&str] =
    &["paused", "restarting", "removing", "running", "dead", "created", "exited"];

/// One container as the filters see it.
#[derive(Clone, Debug, Default)]
pub struct Candidate {
    /// Full ID.
    pub id: String,
    /// Its names without the leading `/`: its own first, then the names links give it
    /// (`web/db`).
    pub names: Vec<String>,
    /// `running`, `restarting`, `exited`, `created`.
    pub state: String,
    /// The last exit code.
    pub exit_code: i64,
    /// Whether it has ever started (Docker's `StartedAt` is not zero).
    pub started: bool,
    /// The program (the IMAGE column).
    pub image: String,
    /// The networks it is on: (name, ID).
    pub networks: Vec<(String, String)>,
    /// Container ports it publishes (`HostConfig.PortBindings`), as `80/tcp`.
    pub port_bindings: BTreeSet<String>,
    /// Container ports it exposes, published ones included (`Config.ExposedPorts`).
    pub exposed: BTreeSet<String>,
    /// Bind mounts: (host path, container path).
    pub mounts: Vec<(String, String)>,
    /// `Config.Labels`.
    pub labels: BTreeMap<String, String>,
}

impl Candidate {
    fn running(&self) -> bool {
        // Docker's `Running` is true while restarting or paused too.
        matches!(self.state.as_str(), "running" | "restarting" | "paused")
    }
}

/// `GET /containers/json`'s options.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `all=1`.
    pub all: bool,
    /// `limit=N` (`-l` is 1): the N newest, stopped ones included.
    pub limit: usize,
    /// `filters=…`.
    pub filters: Filters,
    /// `size=1` (`ps -s`): each container's `SizeRw` and `SizeRootFs`.
    pub size: bool,
}

/// Reads `publish`/`expose` values (dockerd's `portOp`): `80`, `80/udp`, `8000-8002/tcp`.
fn port_filter(key: &str, values: &BTreeSet<String>) -> Result<BTreeSet<String>, FilterError> {
    let mut out = BTreeSet::new();
    for value in values {
        if value.contains(':') {
            return Err(refuse(
                FilterFault::Other,
                format!("filter for '{key}' should not contain ':': {value}"),
            ));
        }
        let fail = |e: String| {
            refuse(FilterFault::Other, format!("error while looking up for {key} {value}: {e}"))
        };
        // nat.SplitProtoPort
        let parts: Vec<&str> = value.split('/').collect();
        let (proto, port) = if value.is_empty() || parts[0].is_empty() {
            ("", "")
        } else if parts.len() == 1 || parts[1].is_empty() {
            ("tcp", parts[0])
        } else {
            (parts[1], parts[0])
        };
        // nat.ParsePortRange
        let parse = |p: &str| {
            p.parse::<u16>().map_err(|_| {
                fail(format!(
                    "strconv.ParseUint: parsing {}: {}",
                    format::go_quote(p),
                    uint_error(p)
                ))
            })
        };
        if port.is_empty() {
            return Err(fail("Empty string specified for ports.".into()));
        }
        let (start, end) = match port.split_once('-') {
            None => (parse(port)?, parse(port)?),
            Some((a, b)) => {
                let b = b.split('-').next().unwrap_or(b);
                let (a, b) = (parse(a)?, parse(b)?);
                if b < a {
                    return Err(fail(format!("Invalid range specified for the Port: {port}")));
                }
                (a, b)
            }
        };
        for p in start..=end {
            out.insert(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

/// Why Go's `strconv.ParseUint(s, 10, 16)` refused `s`.
fn uint_error(s: &str) -> &'static str {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        "value out of range"
    } else {
        "invalid syntax"
    }
}

/// The container `before=`/`since=` names: a full ID or a name (dockerd's `idOrNameFilter`).
fn by_id_or_name<'a>(
    candidates: &'a [Candidate],
    value: &str,
) -> Result<&'a Candidate, FilterError> {
    if let Some(c) = candidates.iter().find(|c| c.id == value) {
        return Ok(c);
    }
    let name = value.trim_start_matches('/');
    let found: Vec<&Candidate> =
        candidates.iter().filter(|c| c.names.iter().any(|n| n == name)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(refuse(FilterFault::NotFound, format!("No such container: {value}"))),
    }
}

/// Which of `candidates` (newest first) `GET /containers/json` lists, by index, as dockerd
/// 20.10's `foldFilter` and `includeContainerInList` decide; Docker's errors for bad filters.
/// `label` matches `Config.Labels` (Docker's `MatchKVList`), `ancestor` compares with the
/// image as named (the program for a host command), `health` sees every container as `none`
/// (no health checks), `isolation` as `default`, `is-task` as not a task.
pub fn select(opts: &ListOptions, candidates: &[Candidate]) -> Result<Vec<usize>, FilterError> {
    let f = &opts.filters;
    if let Some(key) = f.0.keys().find(|k| !ACCEPTED.contains(&k.as_str())) {
        return Err(refuse(FilterFault::Invalid, format!("invalid filter '{key}'")));
    }
    let mut exited = Vec::new();
    for v in f.get("exited") {
        match format::go_atoi(v) {
            Ok(code) => exited.push(code),
            Err(why) => return Err(refuse(FilterFault::Other, why)),
        }
    }
    let mut all = opts.all;
    for v in f.get("status") {
        if !STATES.contains(&v) {
            return Err(refuse(FilterFault::Invalid, format!("Invalid filter 'status={v}'")));
        }
        all = true;
    }
    let task = if f.contains("is-task") {
        if f.exact("is-task", "true") {
            Some(true)
        } else if f.exact("is-task", "false") {
            Some(false)
        } else {
            let given: Vec<&str> = f.get("is-task").collect();
            return Err(refuse(
                FilterFault::Invalid,
                format!("Invalid filter 'is-task=[{}]'", given.join(" ")),
            ));
        }
    } else {
        None
    };
    for v in f.get("health") {
        if !["starting", "healthy", "unhealthy", "none"].contains(&v) {
            return Err(refuse(
                FilterFault::Invalid,
                format!("Unrecognised filter value for health: {v}"),
            ));
        }
    }
    let mut before = None;
    for v in f.get("before") {
        before = Some(by_id_or_name(candidates, v)?.id.clone());
    }
    let mut since = None;
    for v in f.get("since") {
        since = Some(by_id_or_name(candidates, v)?.id.clone());
    }
    let empty = BTreeSet::new();
    let publish = port_filter("publish", f.0.get("publish").unwrap_or(&empty))?;
    let expose = port_filter("expose", f.0.get("expose").unwrap_or(&empty))?;
    // The `id` fast path (`filterByNameIDMatches`): each value names the one container whose
    // ID it is an unambiguous prefix of, or none.
    let ids: Option<BTreeSet<&str>> = f.0.get("id").map(|values| {
        values
            .iter()
            .filter_map(|v| {
                let mut found =
                    candidates.iter().filter(|c| !v.is_empty() && c.id.starts_with(v.as_str()));
                match (found.next(), found.next()) {
                    (Some(c), None) => Some(c.id.as_str()),
                    _ => None,
                }
            })
            .collect()
    });

    let mut out = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        if let Some(b) = &before {
            if *b == c.id {
                before = None;
            }
            continue;
        }
        if since.as_deref() == Some(c.id.as_str()) {
            break;
        }
        if !c.running() && !all && opts.limit == 0 {
            continue;
        }
        let name = c.names.first().map(String::as_str).unwrap_or_default();
        if !f.matches("name", &format!("/{name}")) && !f.matches("name", name) {
            continue;
        }
        if ids.as_ref().is_some_and(|ids| !ids.contains(c.id.as_str())) || !f.matches("id", &c.id) {
            continue;
        }
        if task == Some(true)
            || !f.match_kv("label", &c.labels)
            || !f.matches("isolation", "default")
        {
            continue;
        }
        if opts.limit > 0 && out.len() == opts.limit {
            break;
        }
        if !exited.is_empty()
            && !exited.iter().any(|code| *code == c.exit_code && !c.running() && c.started)
        {
            continue;
        }
        if !f.matches("status", &c.state) || !f.exact("health", "none") {
            continue;
        }
        if f.contains("volume")
            && !f.get("volume").any(|v| c.mounts.iter().any(|(src, dst)| v == src || v == dst))
        {
            continue;
        }
        if f.contains("ancestor") && !f.get("ancestor").any(|a| a == c.image) {
            continue;
        }
        if f.contains("network")
            && !f.get("network").any(|v| {
                c.networks.iter().any(|(n, _)| n == v)
                    || c.networks.iter().any(|(_, id)| id.starts_with(v))
            })
        {
            continue;
        }
        if !publish.is_empty() && publish.is_disjoint(&c.port_bindings) {
            continue;
        }
        if !expose.is_empty() && expose.is_disjoint(&c.exposed) {
            continue;
        }
        out.push(i);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, id: &str, state: &str, exit: i64) -> Candidate {
        Candidate {
            id: id.into(),
            names: vec![name.into()],
            state: state.into(),
            exit_code: exit,
            started: state != "created",
            image: "sleep".into(),
            networks: vec![("bridge".into(), "b0a2cf04aa74".into())],
            ..Candidate::default()
        }
    }

    fn pick(filters: &[&str], all: bool, cs: &[Candidate]) -> Result<Vec<String>, FilterError> {
        let mut f = Filters::default();
        for a in filters {
            f.add_flag(a).unwrap();
        }
        let opts = ListOptions { all, limit: 0, filters: f, size: false };
        Ok(select(&opts, cs)?.into_iter().map(|i| cs[i].names[0].clone()).collect())
    }

    fn set() -> Vec<Candidate> {
        let mut web = candidate("web", "aaa111", "running", 0);
        web.port_bindings.insert("80/tcp".into());
        web.exposed.insert("80/tcp".into());
        web.networks.push(("my-bridge".into(), "f00d".into()));
        let mut db = candidate("db", "aab222", "exited", 3);
        db.names.push("web/db".into());
        db.exposed.insert("5432/tcp".into());
        let myweb = candidate("myweb", "bbb333", "restarting", 1);
        let fresh = candidate("fresh", "ccc444", "created", 0);
        vec![web, db, myweb, fresh]
    }

    #[test]
    fn flags_parse_as_dockers_client() {
        let mut f = Filters::default();
        f.add_flag(" Name = web ").unwrap();
        f.add_flag("name=db").unwrap();
        f.add_flag("").unwrap();
        assert_eq!(f.add_flag("foo"), Err(BAD_FORMAT));
        assert_eq!(f.to_json(), r#"{"name":{"db":true,"web":true}}"#);
        assert_eq!(Filters::from_json(&f.to_json()).unwrap(), f);
        assert_eq!(Filters::from_json(r#"{"name":["web","db"]}"#).unwrap(), f);
        assert!(Filters::from_json("[1]").is_err());
        assert!(Filters::from_json("{").is_err());
        assert!(Filters::from_json(r#"{"name":[1]}"#).is_err());
        // serde_json's Value reads an object keyed so as something else (found by fuzzing).
        let mut odd = Filters::default();
        odd.add_flag("name=$serde_json::private::RawValue").unwrap();
        assert_eq!(Filters::from_json(&odd.to_json()).unwrap(), odd);
    }

    #[test]
    fn name_is_a_regexp_on_the_own_name_and_keys_and_or_as_docker() {
        let cs = set();
        assert_eq!(pick(&["name=web"], true, &cs).unwrap(), ["web", "myweb"]);
        assert_eq!(pick(&["name=^web$"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["name=^/web"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["name=web", "name=db"], true, &cs).unwrap(), ["web", "db", "myweb"]);
        assert_eq!(pick(&["name=web", "status=running"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["name=("], true, &cs).unwrap(), Vec::<String>::new());
        assert_eq!(
            pick(&["name=web"], false, &cs).unwrap(),
            ["web", "myweb"],
            "restarting is running"
        );
    }

    #[test]
    fn a_value_that_is_no_regexp_matches_only_itself_and_is_no_error() {
        // Docker 20.10.24 answers `GET /containers/json?filters={"name":{"[":true}}` with 200
        // and `[]`, and `ps --filter name=h6 --filter name=[` lists the h6… containers:
        // `filters.Match` skips a value that does not compile (no 400, unlike later Dockers).
        let cs = set();
        for bad in ["name=[", "name=(", "name=a{2,1}", "name=\\", "name=web("] {
            assert_eq!(pick(&[bad], true, &cs), Ok(Vec::new()), "{bad}");
        }
        assert_eq!(pick(&["name=web", "name=["], true, &cs).unwrap(), ["web", "myweb"]);
        assert_eq!(pick(&["id=aaa", "id=["], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["name=web", "id=["], true, &cs).unwrap(), Vec::<String>::new());
        let mut odd = candidate("[", "ddd555", "running", 0);
        odd.names = vec!["[".into()];
        assert_eq!(pick(&["name=["], true, &[odd]).unwrap(), ["["], "equal to the name");
    }

    #[test]
    fn id_is_an_unambiguous_prefix() {
        let cs = set();
        assert_eq!(pick(&["id=aaa"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["id=aa"], true, &cs).unwrap(), Vec::<String>::new());
        assert_eq!(pick(&["id=aaa", "id=bbb333"], true, &cs).unwrap(), ["web", "myweb"]);
        assert_eq!(pick(&["id=a.a"], true, &cs).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn status_exited_network_ports() {
        let cs = set();
        assert_eq!(pick(&["status=exited"], false, &cs).unwrap(), ["db"], "status implies -a");
        assert_eq!(
            pick(&["status=created", "status=restarting"], false, &cs).unwrap(),
            ["myweb", "fresh"]
        );
        assert_eq!(pick(&["exited=3"], true, &cs).unwrap(), ["db"]);
        assert_eq!(
            pick(&["exited=0"], true, &cs).unwrap(),
            Vec::<String>::new(),
            "created never ran"
        );
        assert_eq!(pick(&["exited=3"], false, &cs).unwrap(), Vec::<String>::new());
        assert_eq!(pick(&["network=my-bridge"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["network=b0a2"], true, &cs).unwrap(), ["web", "db", "myweb", "fresh"]);
        assert_eq!(pick(&["publish=80"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["publish=80/udp"], true, &cs).unwrap(), Vec::<String>::new());
        assert_eq!(pick(&["expose=5000-6000/tcp"], true, &cs).unwrap(), ["db"]);
        assert_eq!(pick(&["label=a=b"], true, &cs).unwrap(), Vec::<String>::new());
        let mut labelled = set();
        labelled[0].labels.insert("com.docker.compose.project".into(), "p".into());
        labelled[1].labels.insert("com.docker.compose.project".into(), "q".into());
        labelled[1].labels.insert("tier".into(), "a=b".into());
        let cs = labelled;
        assert_eq!(pick(&["label=com.docker.compose.project"], true, &cs).unwrap(), ["web", "db"]);
        assert_eq!(pick(&["label=com.docker.compose.project=p"], true, &cs).unwrap(), ["web"]);
        // Every value must match (Docker's MatchKVList ANDs them); a value may hold `=`.
        let both = ["label=com.docker.compose.project=q", "label=tier=a=b"];
        assert_eq!(pick(&both, true, &cs).unwrap(), ["db"]);
        assert_eq!(
            pick(&["label=com.docker.compose.project=p", "label=tier"], true, &cs).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(pick(&["health=none", "is-task=false"], true, &cs).unwrap().len(), 4);
        assert_eq!(pick(&["before=db"], true, &cs).unwrap(), ["myweb", "fresh"]);
        assert_eq!(pick(&["since=myweb"], true, &cs).unwrap(), ["web", "db"]);
        assert_eq!(pick(&["ancestor=sleep", "name=fresh"], true, &cs).unwrap(), ["fresh"]);
    }

    #[test]
    fn bad_filters_get_dockers_words() {
        let cs = set();
        let err = |f: &[&str]| pick(f, false, &cs).unwrap_err();
        assert_eq!(err(&["foo=1"]), refuse(FilterFault::Invalid, "invalid filter 'foo'".into()));
        assert_eq!(
            err(&["status=up"]),
            refuse(FilterFault::Invalid, "Invalid filter 'status=up'".into())
        );
        assert_eq!(err(&["exited=x"]).message, "strconv.Atoi: parsing \"x\": invalid syntax");
        assert_eq!(err(&["is-task=maybe"]).message, "Invalid filter 'is-task=[maybe]'");
        assert_eq!(err(&["health=ok"]).message, "Unrecognised filter value for health: ok");
        assert_eq!(
            err(&["before=nope"]),
            refuse(FilterFault::NotFound, "No such container: nope".into())
        );
        assert_eq!(
            err(&["publish=80:80"]).message,
            "filter for 'publish' should not contain ':': 80:80"
        );
        assert_eq!(
            err(&["expose=x/tcp"]).message,
            "error while looking up for expose x/tcp: strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err(&["publish=9-8"]).message,
            "error while looking up for publish 9-8: Invalid range specified for the Port: 9-8"
        );
    }

    #[test]
    fn limit_counts_what_the_filters_keep() {
        let cs = set();
        let mut f = Filters::default();
        f.add_flag("name=web").unwrap();
        let opts = ListOptions { all: false, limit: 1, filters: f, size: false };
        assert_eq!(select(&opts, &cs).unwrap(), [0]);
        let opts = ListOptions { all: false, limit: 1, filters: Filters::default(), size: false };
        assert_eq!(select(&opts, &cs[1..]).unwrap(), [0], "-l shows a stopped one");
    }
}
