//! Prometheus metrics of a [`Proxy`]: a `prometheus-client` registry whose collector reads
//! every binding's [`Stats`](crate::proxy::Stats) when scraped, and a small HTTP listener
//! that serves it in Prometheus' text format (`GET /metrics`).
//!
//! Nothing is counted for the metrics' sake: the forwarder bumps the atomics it always bumps
//! (per connection, per datagram, per relay batch), and a scrape reads them. Each series is
//! labelled with the binding's `proto`, `host` (the address it is bound to) and `container`
//! (the address it forwards to).

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::proxy::{Proto, Proxy, StatsSnapshot};

/// Whether a metric only grows or goes up and down.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric: its name (without the `cproxy_` prefix and a counter's `_total`), help text,
/// the bindings it applies to, and the counter it reads.
struct Metric {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    /// `None`: TCP and UDP bindings alike.
    proto: Option<Proto>,
    /// A label of the metric's own (`direction`, `side`) and its value, for families split by it.
    label: Option<(&'static str, &'static str)>,
    value: fn(&StatsSnapshot) -> u64,
}

const fn metric(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    proto: Option<Proto>,
    value: fn(&StatsSnapshot) -> u64,
) -> Metric {
    Metric { name, help, kind, proto, label: None, value }
}

const TCP: Option<Proto> = Some(Proto::Tcp);
const RESETS_HELP: &str = "TCP connections ended by a failure (a reset, mostly) of one side's \
                           socket, passed on to the other side as a reset";
const UDP: Option<Proto> = Some(Proto::Udp);

/// Every metric, in the order a scrape lists them. Entries with the same name are one family
/// (split by their label: `direction`, `side`).
const METRICS: &[Metric] = &[
    metric(
        "connections_accepted",
        "TCP connections accepted, refused ones included",
        Kind::Counter,
        TCP,
        |s| s.accepted,
    ),
    metric("connections_active", "TCP connections open", Kind::Gauge, TCP, |s| s.active),
    metric(
        "connections_refused",
        "TCP connections reset because the binding was at its connection limit",
        Kind::Counter,
        TCP,
        |s| s.refused,
    ),
    metric(
        "backend_dial_failures",
        "TCP connections reset because the container could not be reached (timeouts included)",
        Kind::Counter,
        TCP,
        |s| s.dial_failures,
    ),
    metric(
        "backend_dial_timeouts",
        "Container dials that did not complete within the connect timeout",
        Kind::Counter,
        TCP,
        |s| s.dial_timeouts,
    ),
    metric("accept_errors", "Failed accept calls", Kind::Counter, TCP, |s| s.accept_errors),
    metric(
        "copy_fallbacks",
        "TCP directions that fell back from splice to copying",
        Kind::Counter,
        TCP,
        |s| s.copy_fallbacks,
    ),
    Metric {
        label: Some(("side", "client")),
        ..metric("tcp_resets", RESETS_HELP, Kind::Counter, TCP, |s| s.client_resets)
    },
    Metric {
        label: Some(("side", "backend")),
        ..metric("tcp_resets", RESETS_HELP, Kind::Counter, TCP, |s| s.backend_resets)
    },
    Metric {
        label: Some(("direction", "to_container")),
        ..metric("bytes", "Bytes relayed", Kind::Counter, None, |s| s.bytes_to_backend)
    },
    Metric {
        label: Some(("direction", "to_client")),
        ..metric("bytes", "Bytes relayed", Kind::Counter, None, |s| s.bytes_to_client)
    },
    Metric {
        label: Some(("direction", "to_container")),
        ..metric("datagrams", "UDP datagrams forwarded", Kind::Counter, UDP, |s| {
            s.datagrams_to_backend
        })
    },
    Metric {
        label: Some(("direction", "to_client")),
        ..metric("datagrams", "UDP datagrams forwarded", Kind::Counter, UDP, |s| {
            s.datagrams_to_client
        })
    },
    metric(
        "datagrams_dropped",
        "UDP datagrams that could not be forwarded",
        Kind::Counter,
        UDP,
        |s| s.datagrams_dropped,
    ),
    metric(
        "transparent_fallbacks",
        "Connections and UDP sessions of a --source-ip-transparent binding made from cproxy's \
         own address (a loopback client, another address family, a client on the container's \
         side, no routing for replies, the kernel refusing)",
        Kind::Counter,
        None,
        |s| s.transparent_fallbacks,
    ),
    metric("udp_sessions_active", "UDP sessions open", Kind::Gauge, UDP, |s| s.sessions),
    metric("udp_sessions_created", "UDP sessions opened", Kind::Counter, UDP, |s| {
        s.sessions_opened
    }),
    metric(
        "udp_sessions_evicted",
        "UDP sessions closed to make room (least recently used first)",
        Kind::Counter,
        UDP,
        |s| s.sessions_evicted,
    ),
    metric("udp_sessions_expired", "UDP sessions closed for idleness", Kind::Counter, UDP, |s| {
        s.sessions_expired
    }),
    metric(
        "descriptor_exhaustion_episodes",
        "Times the binding ran out of file descriptors (each episode logged once)",
        Kind::Counter,
        None,
        |s| s.exhaustion_episodes,
    ),
];

/// Reads a proxy's bindings and counters at each scrape.
#[derive(Clone)]
struct ProxyCollector(Proxy);

impl std::fmt::Debug for ProxyCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyCollector")
    }
}

impl Collector for ProxyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let bindings: Vec<_> = self
            .0
            .all_stats()
            .into_iter()
            .map(|(info, stats)| {
                let labels = [
                    ("proto", info.binding.proto.to_string()),
                    ("host", info.local.to_string()),
                    ("container", info.binding.backend.to_string()),
                ];
                (info.binding.proto, labels, stats.snapshot())
            })
            .collect();
        let mut i = 0;
        while i < METRICS.len() {
            // A family is a run of entries with one name.
            let first = &METRICS[i];
            let family = METRICS[i..].iter().take_while(|m| m.name == first.name).count();
            let metric_type = match first.kind {
                Kind::Counter => ConstCounter::new(0u64).metric_type(),
                Kind::Gauge => ConstGauge::new(0i64).metric_type(),
            };
            let mut descriptor =
                encoder.encode_descriptor(first.name, first.help, None, metric_type)?;
            for m in &METRICS[i..i + family] {
                for (proto, labels, snapshot) in &bindings {
                    if m.proto.is_some_and(|p| p != *proto) {
                        continue;
                    }
                    let value = (m.value)(snapshot);
                    let mut labels: Vec<(&str, String)> =
                        labels.iter().map(|(k, v)| (*k, v.clone())).collect();
                    if let Some((name, value)) = m.label {
                        labels.push((name, value.to_string()));
                    }
                    let series = descriptor.encode_family(&labels)?;
                    match m.kind {
                        Kind::Counter => ConstCounter::new(value).encode(series)?,
                        Kind::Gauge => ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
                            .encode(series)?,
                    }
                }
            }
            i += family;
        }
        Ok(())
    }
}

/// A registry with `proxy`'s metrics, named `cproxy_…`.
pub fn registry(proxy: &Proxy) -> Registry {
    let mut registry = Registry::with_prefix("cproxy");
    registry.register_collector(Box::new(ProxyCollector(proxy.clone())));
    registry
}

/// The registry in Prometheus' text format (version 0.0.4).
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut text, registry).is_err() {
        // Writing into a String cannot fail; an encoder error would be a bug, said as such.
        text.clear();
        let _ = writeln!(text, "# cproxy: the metrics could not be encoded");
    }
    text
}

/// Most scrapers served at once; more wait in the listen backlog.
const MAX_SCRAPERS: usize = 8;
/// A request must arrive within this long, and fit in `MAX_REQUEST` bytes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REQUEST: usize = 8192;

/// Serves `GET /metrics` on `listener` until the task is dropped. Anything else gets 404 (or
/// 405 for another method); every response closes the connection.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let scrapers = Arc::new(Semaphore::new(MAX_SCRAPERS));
    loop {
        let Ok(permit) = scrapers.clone().acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, typically: wait rather than spin; the port stays open.
                tracing::debug!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            if let Err(e) = respond(stream, &registry).await {
                tracing::debug!(error = %e, "metrics request failed");
            }
            drop(permit);
        });
    }
}

async fn respond(mut stream: TcpStream, registry: &Registry) -> io::Result<()> {
    let mut request = Vec::with_capacity(512);
    let head = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            if request.len() > MAX_REQUEST {
                return Err(io::Error::other("request head too long"));
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            request.extend_from_slice(&buf[..n]);
        }
        Ok(())
    })
    .await;
    match head {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => {
            ("200 OK", prometheus_client::encoding::prometheus_text::CONTENT_TYPE, render(registry))
        }
        (b"GET" | b"HEAD", _) => {
            ("404 Not Found", "text/plain", "not found: metrics are at /metrics\n".to_string())
        }
        _ => ("405 Method Not Allowed", "text/plain", "only GET /metrics is served\n".to_string()),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    if method != b"HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_runs_of_one_name_and_names_are_unique_runs() {
        let mut seen = Vec::new();
        for (i, m) in METRICS.iter().enumerate() {
            if i == 0 || METRICS[i - 1].name != m.name {
                assert!(!seen.contains(&m.name), "{} is split into two runs", m.name);
                seen.push(m.name);
            } else {
                assert!(m.label.is_some(), "{} repeats without a label", m.name);
            }
        }
    }
}
