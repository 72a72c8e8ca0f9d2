//! `images`, `image inspect|ls|rm|prune|…`, `import`, `load`, `save`, `tag`, `rmi` and
//! `history`, with Docker 20.10's output and words.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::Method;
use hyper::body::{Bytes, Frame};
use serde_json::{Value, json};

use crate::supervisor::api::types::{
    HistoryItem, IdResponse, ImageDeleteItem, ImageSummary, ImagesPruneReport, JsonMessage,
};
use crate::supervisor::client::cli::{
    CommitArgs, HistoryArgs, ImageCommand, ImageInspectArgs, ImagePruneArgs, ImagesArgs,
    ImportArgs, LoadArgs, PullArgs, RmiArgs, SaveArgs, TagArgs,
};
use crate::supervisor::client::transport::{Client, NO_BODY, Result, fail, q};
use crate::supervisor::image::reference::{AnyReference, Reference};
use crate::supervisor::rules::filters::Filters;
use crate::supervisor::rules::format::{ellipsis, human_duration, human_size, rfc3339, table};
use crate::supervisor::rules::template::render_template;

/// `cproxy image …`.
pub(super) async fn image(client: &Client, cmd: ImageCommand) -> Result<u8> {
    match cmd {
        ImageCommand::Ls(a) => images(client, a).await,
        ImageCommand::Inspect(a) => inspect(client, a).await,
        ImageCommand::History(a) => history(client, a).await,
        ImageCommand::Import(a) => import(client, a).await,
        ImageCommand::Load(a) => load(client, a).await,
        ImageCommand::Save(a) => save(client, a).await,
        ImageCommand::Tag(a) => tag(client, a).await,
        ImageCommand::Rm(a) => rmi(client, a).await,
        ImageCommand::Prune(a) => prune(client, a).await,
    }
}

/// `sha256:` dropped and cut to 12, unless `full`.
fn short(id: &str, full: bool) -> String {
    if full {
        return id.to_string();
    }
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// `5 minutes ago`, as Docker's `CreatedSince`.
fn since(created: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(created.max(0) as u64);
    let ago = SystemTime::now().duration_since(t).unwrap_or_default();
    format!("{} ago", human_duration(ago))
}

/// Go's `time.Time.String()` of a Unix time in UTC: `2026-12-06 09:08:25 +0000 UTC`.
fn created_at(created: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(created.max(0) as u64);
    let s = rfc3339(t);
    format!("{} {} +0000 UTC", &s[..10], &s[11..19])
}

/// The rows `docker images` shows for one image: `<none>` for an untagged one, else a row
/// per tag, repositories in name order.
fn rows_of(image: &ImageSummary) -> Vec<(String, String)> {
    let dangling = image.repo_tags == ["<none>:<none>"];
    if dangling || image.repo_tags.is_empty() {
        return vec![("<none>".into(), "<none>".into())];
    }
    let mut by_repo: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &image.repo_tags {
        let Ok(r) = Reference::parse_normalized(t) else { continue };
        if let Some(tag) = r.tag() {
            by_repo.entry(r.familiar_name()).or_default().push(tag.to_string());
        }
    }
    by_repo
        .into_iter()
        .flat_map(|(repo, tags)| tags.into_iter().map(move |t| (repo.clone(), t)))
        .collect()
}

/// `cproxy images`.
pub(super) async fn images(client: &Client, a: ImagesArgs) -> Result<u8> {
    let mut filters = Filters::default();
    for f in &a.filter {
        filters.add_flag(f).map_err(|e| {
            fail(format!("invalid argument \"{f}\" for \"-f, --filter\" flag: {e}\nSee 'cproxy images --help'."), 125)
        })?;
    }
    if let Some(r) = &a.reference {
        filters.add("reference".into(), r.clone());
    }
    let mut uri = format!("/images/json?all={}", u8::from(a.all));
    if !filters.is_empty() {
        uri.push_str(&format!("&filters={}", q(&filters.to_json())));
    }
    let list: Vec<ImageSummary> = client.json(Method::GET, &uri, NO_BODY).await?;
    let mut out = String::new();
    let row_value = |image: &ImageSummary, repo: &str, tag: &str| {
        json!({
            "Repository": repo, "Tag": tag, "Digest": "<none>",
            "ID": short(&image.id, a.no_trunc),
            "CreatedSince": since(image.created), "CreatedAt": created_at(image.created),
            "Size": human_size(image.size as f64, 3),
            "VirtualSize": human_size(image.virtual_size as f64, 3),
            "SharedSize": "N/A", "UniqueSize": "N/A", "Containers": "N/A",
        })
    };
    match a.format.as_deref().filter(|f| !f.is_empty() && !a.quiet) {
        Some(f) => {
            let names = json!({
                "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
                "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE",
                "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS",
            });
            let rows = list.iter().flat_map(|image| {
                rows_of(image).into_iter().map(|(repo, tag)| row_value(image, &repo, &tag))
            });
            out = format_rows(f, &names, rows);
        }
        None if a.quiet => {
            for image in &list {
                for _ in rows_of(image) {
                    out.push_str(&short(&image.id, a.no_trunc));
                    out.push('\n');
                }
            }
        }
        None => {
            let mut rows = vec![
                ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(String::from).to_vec(),
            ];
            for image in &list {
                for (repo, tag) in rows_of(image) {
                    rows.push(vec![
                        repo,
                        tag,
                        short(&image.id, a.no_trunc),
                        since(image.created),
                        human_size(image.size as f64, 3),
                    ]);
                }
            }
            out = table(&rows);
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(0)
}

/// Rows through a `--format` template as Docker's formatter writes them: `table …` adds a
/// header (the template over the columns' names) and aligns the cells; `\t` and `\n` as
/// written mean tab and newline.
pub(super) fn format_rows(
    format: &str,
    names: &Value,
    rows: impl Iterator<Item = Value>,
) -> String {
    let (header, body) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let body = body.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n");
    let mut text = String::new();
    if header {
        text.push_str(&render_template(&body, names));
        text.push('\n');
    }
    for row in rows {
        text.push_str(&render_template(&body, &row));
        text.push('\n');
    }
    if header { crate::supervisor::rules::format::tabwrite(&text, 10, 3) } else { text }
}

/// `cproxy image inspect`: Docker's `Error: No such image: NAME` for a name that is none.
pub(super) async fn inspect(client: &Client, a: ImageInspectArgs) -> Result<u8> {
    let mut objects = Vec::new();
    let mut failed = false;
    for name in &a.images {
        match client
            .json::<_, Value>(Method::GET, &format!("/images/{}/json", q(name)), NO_BODY)
            .await
        {
            Ok(v) => objects.push(v),
            Err(f) if f.status == 404 => {
                eprintln!("Error: No such image: {name}");
                failed = true;
            }
            Err(f) => {
                eprintln!("{}", f.message);
                failed = true;
            }
        }
    }
    match a.format.as_deref() {
        Some(t) => objects.iter().for_each(|v| println!("{}", render_template(t, v))),
        None => println!("{}", serde_json::to_string_pretty(&objects).unwrap_or_default()),
    }
    Ok(u8::from(failed))
}

/// `cproxy history`.
pub(super) async fn history(client: &Client, a: HistoryArgs) -> Result<u8> {
    let items: Vec<HistoryItem> =
        client.json(Method::GET, &format!("/images/{}/history", q(&a.image)), NO_BODY).await?;
    let full = a.no_trunc;
    let id = |i: &HistoryItem| if i.id == "<missing>" { i.id.clone() } else { short(&i.id, full) };
    if a.quiet {
        items.iter().for_each(|i| println!("{}", id(i)));
        return Ok(0);
    }
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let names = json!({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
            "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"});
        let rows = items.iter().map(|i| {
            let by = i.created_by.replace('\t', " ");
            json!({"ID": id(i), "CreatedSince": since(i.created), "CreatedAt": created_at(i.created),
                "CreatedBy": if full { by } else { ellipsis(&by, 45) },
                "Size": human_size(i.size as f64, 3), "Comment": i.comment})
        });
        print!("{}", format_rows(f, &names, rows));
        return Ok(0);
    }
    let mut rows =
        vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from).to_vec()];
    for i in &items {
        let by = i.created_by.replace('\t', " ");
        let by = if full { by } else { ellipsis(&by, 45) };
        let (created, size) = if a.human {
            (since(i.created), human_size(i.size as f64, 3))
        } else {
            (rfc3339(UNIX_EPOCH + Duration::from_secs(i.created.max(0) as u64)), i.size.to_string())
        };
        rows.push(vec![id(i), created, by, size, i.comment.clone()]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

/// Reads a JSON message stream (`import`, `load`): prints each message, fails on an error.
async fn print_messages(resp: hyper::Response<hyper::body::Incoming>) -> Result<u8> {
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| fail(format!("cannot read the daemon's answer: {e}"), 1))?
        .to_bytes();
    let mut out = std::io::stdout();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        let m: JsonMessage = serde_json::from_slice(line)
            .map_err(|e| fail(format!("bad answer from the daemon: {e}"), 1))?;
        if let Some(e) = m.error {
            return Err(fail(e, 1));
        }
        if let Some(s) = m.stream {
            let _ = out.write_all(s.as_bytes());
        }
        if let Some(s) = m.status {
            let _ = writeln!(out, "{s}");
        }
    }
    Ok(0)
}

/// `cproxy pull NAME[:TAG|@DIGEST]`: the daemon's progress as the docker CLI prints it off a
/// terminal, then the full reference (`docker.io/library/busybox:latest`).
pub(super) async fn pull(client: &Client, a: PullArgs) -> Result<u8> {
    let mut sink = std::io::sink();
    let mut stdout = std::io::stdout();
    let out: &mut dyn Write = if a.quiet { &mut sink } else { &mut stdout };
    let r = pull_image(client, &a.image, out).await?;
    println!("{r}");
    Ok(0)
}

/// Pulls `image` (its tag `latest` if none), writing each progress line to `out` as the
/// docker CLI writes them off a terminal (`ID: STATUS`); the reference pulled. A failure
/// before the pull began is the daemon's error answer; one during it, the stream's last
/// message (exit 1).
pub(super) async fn pull_image(
    client: &Client,
    image: &str,
    out: &mut dyn Write,
) -> Result<Reference> {
    let r =
        Reference::parse_normalized(image).map_err(|e| fail(e.to_string(), 1))?.with_default_tag();
    let tag = r.digest().or(r.tag()).unwrap_or("latest");
    let uri = format!("/images/create?fromImage={}&tag={}", q(&r.familiar_name()), q(tag));
    let resp = client.call(Method::POST, &uri, NO_BODY).await?;
    let mut body = resp.into_body();
    let mut pending: Vec<u8> = Vec::new();
    let mut ended = false;
    while !ended {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    pending.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(fail(format!("the daemon's answer broke off: {e}"), 1)),
            None => {
                ended = true;
                pending.push(b'\n');
            }
        }
        while let Some(at) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let m: JsonMessage = serde_json::from_slice(&line)
                .map_err(|e| fail(format!("bad answer from the daemon: {e}"), 1))?;
            if let Some(e) = m.error {
                return Err(fail(e, 1));
            }
            let Some(status) = m.status else { continue };
            let _ = match m.id {
                Some(id) => writeln!(out, "{id}: {status}"),
                None => writeln!(out, "{status}"),
            };
            let _ = out.flush();
        }
    }
    Ok(r)
}

/// A file or standard input as a request body, read as it is sent.
async fn body_from(
    path: Option<&std::path::Path>,
) -> Result<http_body_util::combinators::BoxBody<Bytes, std::io::Error>> {
    let reader: Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin> = match path {
        None => Box::new(tokio::io::stdin()),
        Some(p) => Box::new(tokio::fs::File::open(p).await.map_err(|e| {
            fail(
                format!(
                    "open {}: {}",
                    p.display(),
                    crate::supervisor::client::transport::go_error(&e)
                ),
                1,
            )
        })?),
    };
    let stream =
        tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).map(|r| r.map(Frame::data));
    Ok(BodyExt::boxed(StreamBody::new(stream)))
}

/// `cproxy import FILE|- [REPOSITORY[:TAG]]`.
pub(super) async fn import(client: &Client, a: ImportArgs) -> Result<u8> {
    let mut uri = String::from("/images/create?fromSrc=-");
    if let Some(r) = &a.reference {
        Reference::parse_normalized(r).map_err(|e| fail(e.to_string(), 1))?;
        uri.push_str(&format!("&repo={}", q(r)));
    }
    if let Some(m) = &a.message {
        uri.push_str(&format!("&message={}", q(m)));
    }
    for c in &a.change {
        uri.push_str(&format!("&changes={}", q(c)));
    }
    let path = (a.file != "-").then(|| std::path::Path::new(&a.file));
    let body = body_from(path).await?;
    let resp = client.send(Method::POST, &uri, "application/x-tar", body).await?;
    print_messages(resp).await
}

/// `cproxy commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]`: the new image's ID, as the docker
/// CLI prints it; the reference checked here first, as its client library checks it.
pub(super) async fn commit(client: &Client, a: CommitArgs) -> Result<u8> {
    let (mut repo, mut tag) = (String::new(), String::new());
    if let Some(r) = &a.reference {
        let r = Reference::parse_normalized(r).map_err(|e| fail(e.to_string(), 1))?;
        if r.digest().is_some() {
            return Err(fail("refusing to create a tag with a digest reference", 1));
        }
        let r = r.with_default_tag();
        tag = r.tag().unwrap_or_default().to_string();
        repo = r.familiar_name();
    }
    let mut uri = format!(
        "/commit?author={}&comment={}&container={}&repo={}&tag={}",
        q(a.author.as_deref().unwrap_or_default()),
        q(a.message.as_deref().unwrap_or_default()),
        q(&a.container),
        q(&repo),
        q(&tag)
    );
    for c in &a.change {
        uri.push_str(&format!("&changes={}", q(c)));
    }
    if !a.pause {
        uri.push_str("&pause=0");
    }
    let made: IdResponse = client.json(Method::POST, &uri, NO_BODY).await?;
    println!("{}", made.id);
    Ok(0)
}

/// `cproxy load [-i FILE]`.
pub(super) async fn load(client: &Client, a: LoadArgs) -> Result<u8> {
    if a.input.is_none() && std::io::stdin().is_terminal() {
        return Err(fail("requested load from stdin, but stdin is empty", 1));
    }
    let body = body_from(a.input.as_deref()).await?;
    let uri = format!("/images/load?quiet={}", u8::from(a.quiet));
    let resp = client.send(Method::POST, &uri, "application/x-tar", body).await?;
    print_messages(resp).await
}

/// `cproxy save IMAGE… [-o FILE]`: to a temporary file beside FILE, renamed when complete.
pub(super) async fn save(client: &Client, a: SaveArgs) -> Result<u8> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(fail(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
            1,
        ));
    }
    let names: Vec<String> = a.images.iter().map(|n| format!("names={}", q(n))).collect();
    let uri = format!("/images/get?{}", names.join("&"));
    let resp = client.call(Method::GET, &uri, NO_BODY).await?;
    download(resp, a.output.as_deref(), "failed to save image").await?;
    Ok(0)
}

/// An answer's body to `output` (written to a temporary file beside it, then renamed, as the
/// docker CLI's `CopyToFile`), else to stdout; a failure is `what: …`.
pub(super) async fn download(
    resp: hyper::Response<hyper::body::Incoming>,
    output: Option<&std::path::Path>,
    what: &str,
) -> Result<()> {
    let mut body = resp.into_body();
    let (mut out, tmp): (Box<dyn Write>, Option<std::path::PathBuf>) = match output {
        Some(p) => {
            let tmp = p.with_file_name(format!(
                ".{}.tmp{}",
                p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
                std::process::id()
            ));
            let f = std::fs::File::create(&tmp)
                .map_err(|e| fail(format!("{what}: {}: {e}", p.display()), 1))?;
            (Box::new(std::io::BufWriter::new(f)), Some(tmp))
        }
        None => (Box::new(std::io::stdout()), None),
    };
    let result: std::result::Result<(), String> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("the daemon's answer broke off: {e}"))?;
            if let Ok(data) = frame.into_data() {
                out.write_all(&data).map_err(|e| e.to_string())?;
            }
        }
        out.flush().map_err(|e| e.to_string())
    }
    .await;
    drop(out);
    match (result, tmp, output) {
        (Ok(()), Some(tmp), Some(p)) => {
            std::fs::rename(&tmp, p).map_err(|e| fail(format!("{what}: {e}"), 1))?
        }
        (Ok(()), ..) => {}
        (Err(e), tmp, _) => {
            if let Some(t) = tmp {
                let _ = std::fs::remove_file(t);
            }
            return Err(fail(format!("{what}: {e}"), 1));
        }
    }
    Ok(())
}

/// `cproxy tag SOURCE TARGET`: both checked as Docker's client checks them.
pub(super) async fn tag(client: &Client, a: TagArgs) -> Result<u8> {
    let not_valid = |name: &str, e: &dyn std::fmt::Display| {
        fail(format!("Error parsing reference: {name:?} is not a valid repository/tag: {e}"), 1)
    };
    AnyReference::parse(&a.source).map_err(|e| not_valid(&a.source, &e))?;
    let target = Reference::parse_normalized(&a.target).map_err(|e| not_valid(&a.target, &e))?;
    if target.digest().is_some() {
        return Err(fail("refusing to create a tag with a digest reference", 1));
    }
    let target = target.with_default_tag();
    let uri = format!(
        "/images/{}/tag?repo={}&tag={}",
        q(&a.source),
        q(&target.familiar_name()),
        q(target.tag().unwrap_or("latest"))
    );
    client.call(Method::POST, &uri, NO_BODY).await?;
    Ok(0)
}

/// `cproxy rmi`: each image's `Untagged:`/`Deleted:` lines, then the errors; with `-f` a
/// missing image is only reported.
pub(super) async fn rmi(client: &Client, a: RmiArgs) -> Result<u8> {
    let mut errors = Vec::new();
    let mut fatal = false;
    for name in &a.images {
        let uri = format!(
            "/images/{}?force={}&noprune={}",
            q(name),
            u8::from(a.force),
            u8::from(a.no_prune)
        );
        match client.json::<_, Vec<ImageDeleteItem>>(Method::DELETE, &uri, NO_BODY).await {
            Ok(items) => print_deleted(&items, "Untagged: ", "Deleted: "),
            Err(f) if f.status == 404 => errors.push(format!("Error: No such image: {name}")),
            Err(f) => {
                fatal = true;
                errors.push(f.message);
            }
        }
    }
    if errors.is_empty() {
        return Ok(0);
    }
    let msg = errors.join("\n");
    if !a.force || fatal {
        return Err(fail(msg, 1));
    }
    eprintln!("{msg}");
    Ok(0)
}

fn print_deleted(items: &[ImageDeleteItem], untagged: &str, deleted: &str) {
    for i in items {
        if let Some(u) = &i.untagged {
            println!("{untagged}{u}");
        } else if let Some(d) = &i.deleted {
            println!("{deleted}{d}");
        }
    }
}

/// `cproxy image prune`: asks first unless `-f`, as Docker.
pub(super) async fn prune(client: &Client, a: ImagePruneArgs) -> Result<u8> {
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        print!("{warning}\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(0);
        }
    }
    let dangling = if a.all { "false" } else { "true" };
    let filters = format!("{{\"dangling\":{{\"{dangling}\":true}}}}");
    let uri = format!("/images/prune?filters={}", q(&filters));
    let report: ImagesPruneReport = client.json(Method::POST, &uri, NO_BODY).await?;
    if let Some(items) = report.images_deleted.filter(|i| !i.is_empty()) {
        println!("Deleted Images:");
        print_deleted(&items, "untagged: ", "deleted: ");
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.space_reclaimed as f64, 4));
    Ok(0)
}
