//! What the IT staff see of a running node: the gRPC health service, server reflection (so
//! `grpcurl` works without .proto files), and Prometheus metrics.
//!
//! Metrics are recorded with the `metrics` crate's macros where things happen (ingest, the
//! writer's group commit, the sync links); with no recorder installed (tests, the demo) they
//! cost next to nothing. `liandong serve` installs the Prometheus exporter on `[metrics]
//! listen` ([`install_exporter`]) and runs [`run_gauges`], which samples the node's state
//! (events held, store size, links, lag) once a second. Every metric is described in
//! [`describe`] and in docs/operations.md.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use metrics::{counter, gauge, Unit};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tracing::info;

use crate::node::Node;
use crate::pb;

/// Metric names, one place: docs/operations.md describes each.
pub mod names {
    pub const BUILD_INFO: &str = "liandong_build_info";
    pub const EVENTS_HELD: &str = "liandong_events_held";
    pub const OWN_EVENTS: &str = "liandong_own_events";
    pub const EVENTS_INGESTED: &str = "liandong_events_ingested_total";
    pub const EVENTS_AUTHORED: &str = "liandong_events_authored_total";
    pub const QUARANTINE_ENTRIES: &str = "liandong_quarantine_entries";
    pub const QUARANTINED: &str = "liandong_quarantined_total";
    pub const ROSTER_COMMITTEES: &str = "liandong_roster_committees";
    pub const STORE_SIZE: &str = "liandong_store_size_bytes";
    pub const STORE_SYNC_SECONDS: &str = "liandong_store_sync_seconds";
    pub const STORAGE_ERRORS: &str = "liandong_storage_errors_total";
    pub const GROUP_COMMIT_JOBS: &str = "liandong_group_commit_jobs";
    pub const LINK_UP: &str = "liandong_link_up";
    pub const LINK_LAST_SEEN: &str = "liandong_link_last_seen_seconds";
    pub const LINK_LAG_EVENTS: &str = "liandong_link_lag_events";
    pub const LINK_LAG_SECONDS: &str = "liandong_link_lag_seconds";
    pub const LINK_DISCONNECTS: &str = "liandong_link_disconnects_total";
    pub const BATCHES_SENT: &str = "liandong_sync_batches_sent_total";
    pub const BATCHES_RECEIVED: &str = "liandong_sync_batches_received_total";
    pub const EVENTS_SENT: &str = "liandong_sync_events_sent_total";
    pub const BYTES_SENT: &str = "liandong_sync_bytes_sent_total";
    pub const BYTES_RECEIVED: &str = "liandong_sync_bytes_received_total";
    pub const BATCH_ACK_SECONDS: &str = "liandong_sync_batch_ack_seconds";
}

/// Registers help text and units, so that `/metrics` explains itself.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels name the version and committee."
    );
    describe_gauge!(
        EVENTS_HELD,
        "Events held in this node's log (its durable head)."
    );
    describe_gauge!(
        OWN_EVENTS,
        "Events this committee authored (its chain's last seq)."
    );
    describe_counter!(
        EVENTS_INGESTED,
        "Events received from links or imports, by outcome: stored, duplicate, refused."
    );
    describe_counter!(EVENTS_AUTHORED, "Events this node authored and stored.");
    describe_gauge!(
        QUARANTINE_ENTRIES,
        "Refused events kept in the quarantine now."
    );
    describe_counter!(
        QUARANTINED,
        "Events refused at ingest, by refusal category."
    );
    describe_gauge!(
        ROSTER_COMMITTEES,
        "Committees in the roster this node knows."
    );
    describe_gauge!(STORE_SIZE, Unit::Bytes, "The sled store's size on disk.");
    describe_histogram!(
        STORE_SYNC_SECONDS,
        Unit::Seconds,
        "Time of one durable sync (flush + fdatasync) of a group commit."
    );
    describe_counter!(
        STORAGE_ERRORS,
        "Storage failures; the node stops taking writes after one."
    );
    describe_histogram!(
        GROUP_COMMIT_JOBS,
        "Writes (batches, authored events) per group commit."
    );
    describe_gauge!(LINK_UP, "1 while the link to a peer is connected, else 0.");
    describe_gauge!(
        LINK_LAST_SEEN,
        Unit::Seconds,
        "Seconds since the last frame from the peer (since start if never)."
    );
    describe_gauge!(
        LINK_LAG_EVENTS,
        "Events not yet in step: outbound = our log positions the peer has not acknowledged; inbound = the peer's positions we do not hold."
    );
    describe_gauge!(
        LINK_LAG_SECONDS,
        Unit::Seconds,
        "How long the link has been continuously behind in that direction (0 when caught up)."
    );
    describe_counter!(
        LINK_DISCONNECTS,
        "Sessions that ended, by peer and whether with an error."
    );
    describe_counter!(BATCHES_SENT, "Sync batches sent to the peer.");
    describe_counter!(BATCHES_RECEIVED, "Sync batches received from the peer.");
    describe_counter!(EVENTS_SENT, "Events sent to the peer.");
    describe_counter!(
        BYTES_SENT,
        Unit::Bytes,
        "Signed event bytes sent to the peer."
    );
    describe_counter!(
        BYTES_RECEIVED,
        Unit::Bytes,
        "Signed event bytes received from the peer."
    );
    describe_histogram!(
        BATCH_ACK_SECONDS,
        Unit::Seconds,
        "From sending a batch to the peer's acknowledgement (durable there): the sync latency."
    );
}

/// Installs the Prometheus exporter (the global `metrics` recorder) with an HTTP listener on
/// `listen`: every path answers the metrics in the text format. Once per process.
pub fn install_exporter(listen: SocketAddr) -> crate::Result<()> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let seconds = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let jobs = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
    let bad = |e: metrics_exporter_prometheus::BuildError| {
        crate::Error::Config(format!(
            "cannot serve metrics on {listen} ([metrics] listen): {e}. Choose a free address, or set listen = \"\" to turn metrics off"
        ))
    };
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(Matcher::Full(names::STORE_SYNC_SECONDS.into()), &seconds)
        .map_err(bad)?
        .set_buckets_for_metric(Matcher::Full(names::BATCH_ACK_SECONDS.into()), &seconds)
        .map_err(bad)?
        .set_buckets_for_metric(Matcher::Full(names::GROUP_COMMIT_JOBS.into()), &jobs)
        .map_err(bad)?
        .install()
        .map_err(bad)?;
    describe();
    info!(%listen, "serving Prometheus metrics");
    Ok(())
}

/// Samples the node's state into gauges every `every` until the node shuts down.
pub async fn run_gauges(node: Node, every: Duration) {
    let mut shutdown = node.subscribe_shutdown();
    gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "committee" => node.code().to_string())
        .set(1.0);
    let started = Instant::now();
    // Since when each (peer, direction) has been behind, for the lag in seconds.
    let mut behind_since: BTreeMap<(String, &'static str), Instant> = BTreeMap::new();
    loop {
        sample(&node, started, &mut behind_since);
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

fn sample(
    node: &Node,
    started: Instant,
    behind_since: &mut BTreeMap<(String, &'static str), Instant>,
) {
    let head = node.durable_head();
    gauge!(names::EVENTS_HELD).set(head as f64);
    let store = node.store();
    if let Ok(chain) = store.own_chain() {
        gauge!(names::OWN_EVENTS).set(chain.seq as f64);
    }
    if let Ok(q) = store.quarantined() {
        gauge!(names::QUARANTINE_ENTRIES).set(q as f64);
    }
    gauge!(names::STORE_SIZE).set(store.engine().size_on_disk() as f64);
    let (roster_len, children) = {
        let roster = node.roster();
        (roster.len(), roster.children(node.code()).to_vec())
    };
    gauge!(names::ROSTER_COMMITTEES).set(roster_len as f64);
    let mut links = node.links();
    // A registered child that has not connected since this node started is a link that is
    // down, not an absent one: an alert on "link down" must see it.
    for child in children {
        links
            .entry(child)
            .or_insert_with(|| crate::node::LinkStatus {
                role: "child",
                state: "never connected",
                ..Default::default()
            });
    }
    let now_ms = node.now_ms();
    let now = Instant::now();
    for (peer, l) in links {
        let up = l.state == "connected";
        gauge!(names::LINK_UP, "peer" => peer.clone(), "role" => l.role).set(if up {
            1.0
        } else {
            0.0
        });
        let last_seen = if l.last_seen_ms == 0 {
            started.elapsed().as_secs_f64()
        } else {
            now_ms.saturating_sub(l.last_seen_ms) as f64 / 1000.0
        };
        gauge!(names::LINK_LAST_SEEN, "peer" => peer.clone()).set(last_seen);
        let lags = [
            ("outbound", head.saturating_sub(l.acked_position)),
            ("inbound", l.peer_head.saturating_sub(l.received_position)),
        ];
        for (direction, lag) in lags {
            gauge!(names::LINK_LAG_EVENTS, "peer" => peer.clone(), "direction" => direction)
                .set(lag as f64);
            let key = (peer.clone(), direction);
            let secs = if lag == 0 {
                behind_since.remove(&key);
                0.0
            } else {
                now.duration_since(*behind_since.entry(key).or_insert(now))
                    .as_secs_f64()
            };
            gauge!(names::LINK_LAG_SECONDS, "peer" => peer.clone(), "direction" => direction)
                .set(secs);
        }
    }
}

/// Counts a session's end for the metrics.
pub fn link_ended(peer: &str, role: &'static str, error: bool) {
    counter!(
        names::LINK_DISCONNECTS,
        "peer" => peer.to_string(),
        "role" => role,
        "error" => if error { "true" } else { "false" }
    )
    .increment(1);
}

/// The gRPC health service of a node: SERVING for the whole server ("") and for both
/// liandong services while the node is open; NOT_SERVING from the moment it starts shutting
/// down (a signal, or a storage failure that stops the writer).
pub async fn health(
    node: &Node,
) -> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, service) = tonic_health::server::health_reporter();
    set_all(&reporter, ServingStatus::Serving).await;
    let mut shutdown = node.subscribe_shutdown();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|s| *s).await;
        set_all(&reporter, ServingStatus::NotServing).await;
    });
    service
}

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter
        .set_service_status(FEDERATION_SERVICE, status)
        .await;
    reporter.set_service_status(COMMITTEE_SERVICE, status).await;
}

/// The gRPC names of the two liandong services.
pub const FEDERATION_SERVICE: &str = "liandong.v1.Federation";
pub const COMMITTEE_SERVICE: &str = "liandong.v1.Committee";
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Server reflection (v1 and the older v1alpha that some `grpcurl` versions ask for) for a
/// server carrying `service`, the health service and reflection itself.
#[allow(clippy::type_complexity)]
pub fn reflection(
    service: &str,
) -> crate::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(service)
            .with_service_name(HEALTH_SERVICE)
    };
    let fail = |e: tonic_reflection::server::Error| {
        crate::Error::Config(format!("cannot build the reflection service: {e}"))
    };
    let v1 = builder()
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .map_err(fail)?;
    let v1alpha = builder()
        .with_service_name("grpc.reflection.v1alpha.ServerReflection")
        .build_v1alpha()
        .map_err(fail)?;
    Ok((v1, v1alpha))
}

/// The sending side of one link's batches, for the metrics: counts what is sent and keeps
/// the send time of each batch until the peer acknowledges it (the sync latency).
#[derive(Clone, Default)]
pub struct BatchClock {
    in_flight: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<(u64, Instant)>>>,
}

impl BatchClock {
    /// A batch went out to `peer`; `batch_id` 0 (backfill) is never acknowledged by id.
    pub fn sent(&self, peer: &str, batch_id: u64, events: &[Vec<u8>]) {
        let bytes: usize = events.iter().map(Vec::len).sum();
        counter!(names::BATCHES_SENT, "peer" => peer.to_string()).increment(1);
        counter!(names::EVENTS_SENT, "peer" => peer.to_string()).increment(events.len() as u64);
        counter!(names::BYTES_SENT, "peer" => peer.to_string()).increment(bytes as u64);
        if batch_id == 0 {
            return;
        }
        if let Ok(mut q) = self.in_flight.lock() {
            if q.len() >= 1024 {
                q.pop_front();
            }
            q.push_back((batch_id, Instant::now()));
        }
    }

    /// The peer acknowledged everything up to `batch_id`.
    pub fn acked(&self, peer: &str, batch_id: u64) {
        let Ok(mut q) = self.in_flight.lock() else {
            return;
        };
        while q.front().is_some_and(|(id, _)| *id <= batch_id) {
            if let Some((_, at)) = q.pop_front() {
                metrics::histogram!(names::BATCH_ACK_SECONDS, "peer" => peer.to_string())
                    .record(at.elapsed().as_secs_f64());
            }
        }
    }
}

/// A batch arrived from `peer`.
pub fn batch_received(peer: &str, events: &[Vec<u8>]) {
    let bytes: usize = events.iter().map(Vec::len).sum();
    counter!(names::BATCHES_RECEIVED, "peer" => peer.to_string()).increment(1);
    counter!(names::BYTES_RECEIVED, "peer" => peer.to_string()).increment(bytes as u64);
}
