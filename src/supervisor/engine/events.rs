//! The daemon's events (`docker events`, `GET /events`), as dockerd emits them: what happened
//! to containers, networks, images and volumes, each with its actor and attributes and the
//! time to the nanosecond. The most recent [`KEPT`] are kept for `since`; live ones go to
//! every listener, each through its own bounded queue (a listener that falls behind loses
//! the oldest, and is told nothing: as dockerd's, the stream is best effort).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::supervisor::api::types::{EventActor, EventMessage};
use crate::supervisor::engine::store::Record;
use crate::supervisor::rules::filters::Filters;
use crate::supervisor::rules::format::now_nanos;

/// How many past events `since` can reach (dockerd keeps 256; more is cheap here).
pub const KEPT: usize = 1024;

/// The daemon's event log and its listeners.
#[derive(Debug)]
pub struct Events {
    recent: Mutex<VecDeque<EventMessage>>,
    live: broadcast::Sender<EventMessage>,
}

impl Default for Events {
    fn default() -> Events {
        Events {
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
            live: broadcast::channel(256).0,
        }
    }
}

impl Events {
    /// Records and sends an event.
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let nanos = now_nanos();
        let container = kind == "container";
        let from = attributes.get("image").cloned().filter(|_| container).unwrap_or_default();
        let m = EventMessage {
            status: if container || kind == "image" { action.to_string() } else { String::new() },
            id: if container || kind == "image" { id.to_string() } else { String::new() },
            from,
            kind: kind.to_string(),
            action: action.to_string(),
            actor: EventActor { id: id.to_string(), attributes },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        };
        if let Ok(mut r) = self.recent.lock() {
            if r.len() == KEPT {
                r.pop_front();
            }
            r.push_back(m.clone());
        }
        let _ = self.live.send(m);
    }

    /// A container's event: `extra` (`exitCode`, `signal`, `execID`), its labels, its image
    /// and name as attributes, each over the one before (moby's
    /// `LogContainerEventWithAttributes`).
    pub fn container(&self, r: &Record, action: &str, extra: &[(&str, String)]) {
        let mut attributes: BTreeMap<String, String> =
            extra.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect();
        attributes.extend(r.labels.iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
        let image = r.image.as_ref().map_or_else(|| r.path.clone(), |i| i.name.clone());
        attributes.insert("image".to_string(), image);
        attributes.insert("name".to_string(), r.name.clone());
        self.emit("container", action, &r.id, attributes);
    }

    /// A network's event about a container (`connect`, `disconnect`).
    pub fn network(&self, id: &str, name: &str, container: &str, action: &str) {
        let attributes = BTreeMap::from([
            ("container".to_string(), container.to_string()),
            ("name".to_string(), name.to_string()),
            ("type".to_string(), "bridge".to_string()),
        ]);
        self.emit("network", action, id, attributes);
    }

    /// A volume's event (`create`, `mount`, `unmount`, `destroy`): the `local` driver and
    /// `extra` as attributes, as dockerd 20.10 sends them.
    pub fn volume(&self, name: &str, action: &str, extra: &[(&str, String)]) {
        let mut attributes: BTreeMap<String, String> =
            extra.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect();
        attributes.insert("driver".to_string(), "local".to_string());
        self.emit("volume", action, name, attributes);
    }

    /// A container's volumes mounted (before its `start`) or unmounted (after its network
    /// `disconnect`, last first), one event each, as dockerd 20.10 sends them.
    pub fn volumes_of(&self, r: &Record, mounted: bool) {
        use crate::supervisor::rules::mounts::Kind;
        let volumes: Vec<_> =
            r.all_mounts().iter().filter(|m| m.spec.kind == Kind::Volume).cloned().collect();
        let mut ordered: Vec<_> = volumes.iter().collect();
        if !mounted {
            ordered.reverse();
        }
        for m in ordered {
            let mut extra = vec![("container", r.id.clone())];
            if mounted {
                extra.push(("destination", m.spec.destination.clone()));
                extra.push(("propagation", String::new()));
                extra.push(("read/write", (!m.spec.read_only).to_string()));
            }
            self.volume(&m.spec.source, if mounted { "mount" } else { "unmount" }, &extra);
        }
    }

    /// An image's event (`tag`, `untag`, `delete`, `import`, `load`, `save`, `pull`, `prune`):
    /// `name` its reference (`busybox:latest`, or its ID where dockerd sends that), `labels`
    /// its image's (`Daemon::image_event` reads them from the store), as dockerd's
    /// `LogImageEvent` adds them beside `name` for an image it still has.
    pub fn image(&self, id: &str, action: &str, name: &str, labels: &BTreeMap<String, String>) {
        let mut attributes = labels.clone();
        attributes.insert("name".to_string(), name.to_string());
        self.emit("image", action, id, attributes);
    }

    /// The events kept since `since` (nanoseconds), and a subscription to those to come
    /// (taken first, so that none falls between).
    pub fn since(&self, since: i64) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let rx = self.live.subscribe();
        let past = self
            .recent
            .lock()
            .map(|r| r.iter().filter(|m| m.time_nano >= since).cloned().collect())
            .unwrap_or_default();
        (past, rx)
    }
}

impl crate::supervisor::engine::Daemon {
    /// Image `id`'s event with the labels it has now (none once it is deleted), as dockerd's
    /// `LogImageEvent` looks the image up when it logs: `id` an image ID, or the reference
    /// a `pull` names it by.
    pub fn image_event(&self, id: &str, action: &str, name: &str) {
        let labels = self.images.resolve(id).map(|i| self.images.labels(&i)).unwrap_or_default();
        self.events.image(id, action, name, &labels);
    }
}

/// An event filter as `docker events --filter` gives it: `type`, `event`, `container`,
/// `image`, `network`, `volume`, `label`; the values of one key are alternatives (`label`'s
/// must all match, Docker's `MatchKVList` over the attributes), the keys must all match. As
/// dockerd 20.10 does, a key it does not know is ignored.
/// True if no value is given for `key`, or one of them passes `ok`.
fn accepts(f: &Filters, key: &str, ok: impl Fn(&str) -> bool) -> bool {
    !f.contains(key) || f.get(key).any(ok)
}

/// True if `m` passes the filters.
pub fn matches(f: &Filters, m: &EventMessage) -> bool {
    let attr = |k: &str| m.actor.attributes.get(k).map(String::as_str).unwrap_or_default();
    let is = |kind: &str| m.kind == kind;
    // Docker's event names may carry the command (`exec_create: sh -c …`).
    let action = m.action.split(':').next().unwrap_or_default();
    let short = |id: &str, v: &str| !v.is_empty() && id.starts_with(v);
    accepts(f, "type", |v| v == m.kind)
        && accepts(f, "event", |v| v == action || v == m.action)
        && accepts(f, "container", |v| {
            (is("container") && (short(&m.actor.id, v) || attr("name") == v))
                || (is("network") && short(attr("container"), v))
        })
        && accepts(f, "image", |v| {
            is("container") && attr("image") == v
                || is("image") && (attr("name") == v || short(&m.actor.id, v))
        })
        && accepts(f, "network", |v| is("network") && (short(&m.actor.id, v) || attr("name") == v))
        && accepts(f, "volume", |v| is("volume") && m.actor.id == v)
        && f.match_kv("label", &m.actor.attributes)
}
