//! Webhooks (issue 13): every change the audit log records goes out to the subscriptions that want it, as
//! a CloudEvents 1.0 structured JSON body signed per the Standard Webhooks spec.
//!
//! The audit log is the outbox (see `modelgate_store::db::webhooks`). Every replica runs [`run_worker`]:
//! it leases subscriptions through the database, fans the log out into delivery rows, and delivers them —
//! lanes (one per model) concurrently, each lane in event order, a lane's later events waiting while its
//! earliest one retries. Attempts are recorded after they are made; a crash in between makes the attempt
//! again with the same `webhook-id`, which is what receivers de-duplicate on.
//!
//! Destinations on loopback, private, link-local or otherwise non-public addresses are refused unless
//! their host is allow-listed (`--webhook-allow-host`), at creation and again on every connection (the
//! resolver filters what DNS answers, so a name cannot be re-pointed at an internal address later).

use crate::state::AppState;
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use modelgate_core::Timestamp;
use modelgate_store::{
    AttemptOutcome, DeliveryNext, DeliveryRecord, NewDelivery, WebhookEvent, WebhookRecord,
};
use rand::Rng as _;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Hosts (`name` or `name:port`, or an IP address) that may be delivered to although they are on
    /// loopback or a private network.
    pub allow_hosts: Vec<String>,
    /// A receiver that has not answered within this is cut off; the attempt counts as failed.
    pub timeout: Duration,
    /// The first retry waits about this long; each further one twice as long (with jitter), up to an hour.
    pub backoff_base: Duration,
    /// Retries stop this long after the event was first due.
    pub give_up_after: Duration,
    /// How often an idle worker looks for new events.
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(5),
            give_up_after: Duration::from_secs(24 * 60 * 60),
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// A lease lasts this long at least, and is renewed before each subscription's work.
const LEASE: Duration = Duration::from_secs(30);

/// The lease: long enough for a round's work and its slowest attempt (two timeouts, connect and answer).
fn lease_for(settings: &WebhookSettings) -> Duration {
    LEASE.max(ROUND_BUDGET + settings.timeout * 2 + Duration::from_secs(5))
}

/// When a lease taken now is renewed (once half of it is spent), and until when it holds.
fn lease_window(settings: &WebhookSettings, now: Timestamp) -> (Timestamp, Timestamp) {
    let lease = i64::try_from(lease_for(settings).as_millis()).unwrap_or(i64::MAX);
    let at = |offset: i64| Timestamp::from_unix_millis(now.unix_millis().saturating_add(offset));
    (at(lease / 2), at(lease))
}
/// A subscription's deliveries in one round stop starting after this, well inside `LEASE` even when the
/// last attempt runs to the longest timeout (300 s is the flag's maximum: the lease is renewed first).
const ROUND_BUDGET: Duration = Duration::from_secs(10);
/// Events fanned out per round and subscription.
const FAN_OUT_BATCH: u32 = 2000;
/// Pending deliveries looked at per round and subscription.
const DELIVERY_BATCH: u32 = 2000;
/// Lanes delivered to at once per subscription.
const LANES_AT_ONCE: usize = 16;

/// Audit actions and the event type each goes out as. Refused attempts are not changes and go out only
/// where listed with their outcome (`gate.deny` → `gate.denied`, a sign of a bypass).
const EVENT_TYPES: &[(&str, &str)] = &[
    ("model.create", "model.created"),
    ("model.update", "model.updated"),
    ("model.archive", "model.archived"),
    ("version.create", "version.created"),
    ("version.update", "version.updated"),
    ("version.archive", "version.archived"),
    ("version.promote", "version.promoted"),
    ("version.revalidate", "version.revalidated"),
    ("version.rollback", "version.rolled_back"),
    ("version.suspend", "version.suspended"),
    ("version.reinstate", "version.reinstated"),
    ("version.review_due", "version.review_due"),
    ("request.open", "request.opened"),
    ("review.approve", "review.submitted"),
    ("review.reject", "review.submitted"),
    ("review.request_changes", "review.submitted"),
    ("request.approve", "request.approved"),
    ("request.reject", "request.rejected"),
    ("request.withdraw", "request.withdrawn"),
    ("request.comment", "request.commented"),
    ("request.checks_changed", "request.checks_changed"),
    ("card.set", "card.updated"),
    ("evaluation.record", "evaluation.recorded"),
    ("dataset.register", "dataset.registered"),
    ("artifact.scan", "artifact.scanned"),
    ("policy.apply", "policy.applied"),
    ("approval.expiring", "approval.expiring"),
    ("approval.expired", "approval.expired"),
    ("approval.revalidation_due", "approval.revalidation_due"),
    ("monitoring.stale", "monitoring.stale"),
    ("monitoring.breach", "monitoring.breach"),
    ("monitoring.batch", "monitoring.batch"),
    ("kpi.record", "kpi.recorded"),
    ("webhook.create", "webhook.created"),
    ("webhook.delete", "webhook.deleted"),
    ("webhook.rotate", "webhook.rotated"),
    ("webhook.disable", "webhook.disabled"),
    ("webhook.test", "webhook.test"),
];

/// Refused attempts that go out as events.
const REFUSAL_TYPES: &[(&str, &str)] = &[("gate.deny", "gate.denied")];

/// The CloudEvents `type` prefix.
pub const TYPE_PREFIX: &str = "io.modelgate.";

/// Every event type a subscription may ask for.
pub fn event_types() -> Vec<&'static str> {
    let mut types: Vec<&'static str> = EVENT_TYPES
        .iter()
        .chain(REFUSAL_TYPES)
        .map(|(_, event)| *event)
        .collect();
    types.sort_unstable();
    types.dedup();
    types
}

/// The event type an audit event goes out as, if any.
pub fn event_type(action: &str, outcome: &str) -> Option<&'static str> {
    let table = if outcome == "ok" {
        EVENT_TYPES
    } else {
        REFUSAL_TYPES
    };
    table
        .iter()
        .find(|(audited, _)| *audited == action)
        .map(|(_, event)| *event)
}

/// Checks a subscription's event list: known types or `*`; errors name the unknown ones.
pub fn check_event_list(events: &[String]) -> Result<Vec<String>, String> {
    if events.is_empty() {
        return Err("events: name at least one event type, or * for all".to_owned());
    }
    let known = event_types();
    let unknown: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|event| *event != "*" && !known.contains(event))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "events: unknown event type {}; known: {}, or *",
            unknown.join(", "),
            known.join(", ")
        ));
    }
    Ok(events.to_vec())
}

/// Whether a subscription wants an event.
fn wants(subscription: &WebhookRecord, event: &WebhookEvent, event_type: &str) -> bool {
    if event_type == "webhook.test" {
        // A test goes to the subscription it names, and only there.
        return event.target == format!("webhook/{}", subscription.id);
    }
    let typed = subscription
        .events
        .iter()
        .any(|wanted| wanted == "*" || wanted == event_type);
    let of_model = match &subscription.model {
        Some(model) => event.model.as_deref() == Some(model.as_str()),
        None => true,
    };
    typed && of_model
}

/// The CloudEvents `subject`: `models/M/versions/N` for a version's (and its requests') events,
/// `models/M` for a model's, the audit target otherwise.
fn subject(event: &WebhookEvent) -> String {
    match (&event.model, event.version) {
        (Some(model), Some(version)) => format!("models/{model}/versions/{version}"),
        (Some(model), None) => format!("models/{model}"),
        _ => event.target.clone(),
    }
}

/// The deliveries a subscription gets from a page of events.
pub fn deliveries_for(subscription: &WebhookRecord, events: &[WebhookEvent]) -> Vec<NewDelivery> {
    events
        .iter()
        .filter_map(|event| {
            let event_type = event_type(&event.action, &event.outcome)?;
            wants(subscription, event, event_type).then(|| NewDelivery {
                event_seq: event.seq,
                event_type: event_type.to_owned(),
                lane: event.model.clone().unwrap_or_default(),
                subject: subject(event),
            })
        })
        .collect()
}

// ---- destinations ----------------------------------------------------------------------------------

/// Why an address may not be delivered to, if it may not: anything but a public unicast address.
fn refused_address(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        other => other,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address (cloud metadata lives there)")
            } else if v4.is_unspecified() || a == 0 {
                Some("an unspecified address")
            } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
                Some("a broadcast, multicast or reserved address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT) address")
            } else if v4.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
                Some("a documentation or benchmarking address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if first == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("a documentation address")
            } else if first == 0x0064 && v6.segments()[1] == 0xff9b {
                // NAT64 (64:ff9b::/96 and 64:ff9b:1::/48) reaches the IPv4 address it embeds.
                Some("a NAT64 address (it embeds an IPv4 address)")
            } else if first == 0x2002 {
                Some("a 6to4 address (it embeds an IPv4 address)")
            } else {
                None
            }
        }
    }
}

/// Whether `host` (and `port`) is allow-listed.
fn allowed(allow_hosts: &[String], host: &str, port: Option<u16>) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    allow_hosts.iter().any(|entry| {
        let entry = entry.trim();
        if entry.eq_ignore_ascii_case(host) {
            return true;
        }
        match entry.rsplit_once(':') {
            Some((name, wanted)) if wanted.parse::<u16>().is_ok() => {
                let same_host = name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .eq_ignore_ascii_case(host);
                // The resolver knows the host only: the port was checked against the URL already.
                same_host && port.is_none_or(|port| wanted.parse::<u16>() == Ok(port))
            }
            _ => false,
        }
    })
}

/// Checks a subscription's URL: `http` or `https`, no credentials, and a host that resolves only to
/// public addresses unless allow-listed. Errors say why and what to do.
pub async fn check_destination(url: &str, allow_hosts: &[String]) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url)
        .map_err(|error| format!("url: {error}; give an absolute http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "url: scheme {} is not delivered to; use http or https",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url: must not hold credentials; the signature authenticates the sender, and the receiver checks it".to_owned());
    }
    let Some(host) = parsed.host_str() else {
        return Err("url: names no host".to_owned());
    };
    let port = parsed.port_or_known_default();
    if allowed(allow_hosts, host, port) {
        return Ok(parsed);
    }
    let addresses: Vec<IpAddr> = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => vec![IpAddr::V4(v4)],
        Some(url::Host::Ipv6(v6)) => vec![IpAddr::V6(v6)],
        _ => tokio::net::lookup_host((host, port.unwrap_or(443)))
            .await
            .map_err(|error| format!("url: host {host} does not resolve ({error})"))?
            .map(|address| address.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err(format!("url: host {host} resolves to no address"));
    }
    for address in addresses {
        if let Some(reason) = refused_address(address) {
            return Err(format!(
                "url: host {host} is {reason} ({address}); webhooks go to public addresses only, unless the server allows the host with --webhook-allow-host {host}"
            ));
        }
    }
    Ok(parsed)
}

/// Resolves names for deliveries, dropping every non-public address of a host that is not allow-listed.
struct GuardedResolver {
    allow_hosts: Arc<Vec<String>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_hosts = self.allow_hosts.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = if allowed(&allow_hosts, &host, None) {
                addresses
            } else {
                addresses
                    .into_iter()
                    .filter(|address| refused_address(address.ip()).is_none())
                    .collect()
            };
            if permitted.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(permitted.into_iter());
            Ok(addresses)
        })
    }
}

/// An IP-literal URL skips the resolver: checked here before each attempt.
fn literal_refused(url: &url::Url, allow_hosts: &[String]) -> Option<String> {
    let host = url.host_str()?;
    if allowed(allow_hosts, host, url.port_or_known_default()) {
        return None;
    }
    let ip = match url.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    refused_address(ip).map(|reason| format!("{host} is {reason}; not delivered"))
}

/// The HTTP client deliveries use: no redirects (a redirect could lead anywhere), the guarded resolver,
/// the timeout.
pub fn delivery_client(settings: &WebhookSettings) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        // A proxy would resolve the destination itself, past the guarded resolver.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("modelgate/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver {
            allow_hosts: Arc::new(settings.allow_hosts.clone()),
        }))
        .build()
}

// ---- secrets and signatures ------------------------------------------------------------------------

const SECRET_PREFIX: &str = "whsec_";

/// A new secret: `whsec_` and 32 random bytes in base64.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    format!("{SECRET_PREFIX}{}", BASE64.encode(bytes))
}

/// The key bytes of a `whsec_<base64>` secret (24 to 64 bytes, as Standard Webhooks asks).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.trim().strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        "secret: must start with whsec_ followed by base64 (for example from `modelgate webhook create` without --secret-file, or `openssl rand -base64 32` with whsec_ in front)".to_owned()
    })?;
    let key = BASE64
        .decode(encoded)
        .map_err(|error| format!("secret: the part after whsec_ is not base64 ({error})"))?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "secret: {} bytes after decoding; use 24 to 64 random bytes",
            key.len()
        ));
    }
    Ok(key)
}

/// `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for each key, space-separated.
pub fn signature_header(id: &str, timestamp: i64, body: &[u8], keys: &[Vec<u8>]) -> String {
    let mut signed = Vec::with_capacity(id.len() + body.len() + 24);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    keys.iter()
        .map(|key| {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), &signed);
            format!("v1,{}", BASE64.encode(tag.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The keys a delivery is signed with at `now`: the secret, and the previous one during a rotation.
fn signing_keys(subscription: &WebhookRecord, now: Timestamp) -> Vec<Vec<u8>> {
    let mut keys = Vec::with_capacity(2);
    if let Ok(key) = secret_key(&subscription.secret) {
        keys.push(key);
    }
    if let (Some(previous), Some(until)) = (
        &subscription.previous_secret,
        subscription.previous_secret_until,
    ) && now < until
        && let Ok(key) = secret_key(previous)
    {
        keys.push(key);
    }
    keys
}

// ---- the event body --------------------------------------------------------------------------------

/// The event id: stable across attempts and replicas (the audit sequence number and the start of the
/// event's leaf hash, which an auditor can look up).
pub fn event_id(seq: u64, leaf_hash: &str) -> String {
    format!("evt_{seq}_{}", leaf_hash.get(..16).unwrap_or(leaf_hash))
}

/// The CloudEvents 1.0 structured body of a delivery: `data` holds the audit event as recorded (its
/// canonical JSON parsed, without the caller's address and token id) and its leaf hash, so a receiver can
/// fetch the entry and check its inclusion in the log.
pub fn cloud_event(
    source: &str,
    delivery: &DeliveryRecord,
    leaf: &str,
    leaf_hash: &str,
) -> serde_json::Value {
    let mut recorded: serde_json::Value =
        serde_json::from_str(leaf).unwrap_or(serde_json::Value::Null);
    // Who connected from where stays in the log: receivers get the change, not the caller's address or
    // token (the leaf hash still identifies the entry, which the log serves in full to its readers).
    if let Some(event) = recorded.as_object_mut() {
        event.remove("client_addr");
        event.remove("token_id");
    }
    let time = recorded
        .get("time")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "specversion": "1.0",
        "id": event_id(delivery.event_seq, leaf_hash),
        "source": source,
        "type": format!("{TYPE_PREFIX}{}", delivery.event_type),
        "subject": delivery.subject,
        "time": time,
        "datacontenttype": "application/json",
        "data": { "audit_event": recorded, "leaf_hash": leaf_hash },
    })
}

/// The CloudEvents `source`: the server's public URL, else a URN of its audit log's origin.
fn event_source(state: &AppState) -> String {
    match &state.session_settings().public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("urn:modelgate:{}", state.signer().name()),
    }
}

// ---- retries ---------------------------------------------------------------------------------------

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Timed out, refused, reset: no status.
    Unreachable(String),
}

/// What follows an attempt: delivered on 2xx; the subscription disabled on 410; a retry on 429, 5xx and
/// no answer, after `backoff_base × 2^(attempt-1)` (at most an hour) scaled by `jitter` in [0.5, 1], or
/// after `Retry-After` when the receiver gave one; given up once the next attempt would fall past
/// `give_up_after` since the event was first due; failed at once on any other status.
pub fn next_step(
    answer: &Answer,
    attempt: u32,
    first_due: Timestamp,
    now: Timestamp,
    settings: &WebhookSettings,
    jitter: f64,
) -> DeliveryNext {
    let retry_after = match answer {
        Answer::Status { status, .. } if (200..300).contains(status) => {
            return DeliveryNext::Delivered;
        }
        Answer::Status { status: 410, .. } => {
            return DeliveryNext::Disable("the receiver answered 410 Gone".to_owned());
        }
        Answer::Status {
            status,
            retry_after,
        } if *status == 429 || (500..600).contains(status) => *retry_after,
        Answer::Status { .. } => return DeliveryNext::Failed,
        Answer::Unreachable(_) => None,
    };
    let exponent = attempt.saturating_sub(1).min(30);
    let backoff = settings
        .backoff_base
        .saturating_mul(1u32 << exponent)
        .min(MAX_BACKOFF)
        .mul_f64(jitter.clamp(0.5, 1.0));
    let wait = retry_after.map_or(backoff, |asked| asked.min(MAX_BACKOFF));
    let millis = |duration: Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    let at = Timestamp::from_unix_millis(now.unix_millis().saturating_add(millis(wait)));
    let deadline = first_due
        .unix_millis()
        .saturating_add(millis(settings.give_up_after));
    if at.unix_millis() > deadline {
        DeliveryNext::Failed
    } else {
        DeliveryNext::RetryAt(at)
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap, now: Timestamp) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(seconds) = text.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text.trim()).ok()?;
    let at_millis = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|since| i64::try_from(since.as_millis()).ok())?;
    u64::try_from(at_millis.saturating_sub(now.unix_millis()))
        .ok()
        .map(Duration::from_millis)
}

/// The deliveries to attempt now, by lane: each lane's pending deliveries in event order from its
/// earliest, as long as they are due; a lane whose earliest delivery waits for a retry waits whole.
pub fn due_lanes(pending: &[DeliveryRecord], now: Timestamp) -> Vec<Vec<DeliveryRecord>> {
    let mut lanes: Vec<(String, Vec<DeliveryRecord>, bool)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for delivery in pending {
        let at = *index.entry(delivery.lane.as_str()).or_insert_with(|| {
            lanes.push((delivery.lane.clone(), Vec::new(), true));
            lanes.len() - 1
        });
        let (_, due, open) = &mut lanes[at];
        if !*open {
            continue;
        }
        if delivery.next_attempt_at <= now {
            due.push(delivery.clone());
        } else {
            // Everything after a delivery that waits, waits too: order within the lane is kept.
            *open = false;
        }
    }
    lanes
        .into_iter()
        .map(|(_, due, _)| due)
        .filter(|due| !due.is_empty())
        .collect()
}

// ---- the worker ------------------------------------------------------------------------------------

/// Delivers webhooks until shutdown; every replica runs one.
pub async fn run_worker(state: AppState) {
    let settings = state.webhook_settings().clone();
    let client = match delivery_client(&settings) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhook delivery cannot start: no HTTP client");
            return;
        }
    };
    let owner = format!(
        "{}-{:016x}",
        std::process::id(),
        rand::rng().random::<u64>()
    );
    let source = event_source(&state);
    let shutdown = state.shutdown().clone();
    loop {
        let busy = match work_round(&state, &client, &owner, &source, &settings).await {
            Ok(busy) => busy,
            Err(error) => {
                tracing::warn!(%error, "webhook delivery round failed; retrying");
                false
            }
        };
        if shutdown.is_cancelled() {
            break;
        }
        // Busy: a short pause lets the events of a burst of writes gather into one round (one fan-out
        // and one record of attempts for many), so delivery takes little from the writes themselves.
        let pause = if busy {
            settings.poll_interval / 4
        } else {
            settings.poll_interval
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    if let Err(error) = state.store().release_webhooks(&owner).await {
        tracing::warn!(%error, "could not release webhook leases");
    }
}

/// One round over the subscriptions this replica holds: fan out, then deliver what is due. Returns
/// whether there was anything to do (then the next round starts at once).
async fn work_round(
    state: &AppState,
    client: &reqwest::Client,
    owner: &str,
    source: &str,
    settings: &WebhookSettings,
) -> Result<bool, modelgate_store::StoreError> {
    let now = state.now();
    let (renew_before, until) = lease_window(settings, now);
    let held = state
        .store()
        .lease_webhooks(owner, now, renew_before, until)
        .await?;
    let mut busy = false;
    for subscription in &held {
        // Renewed before each subscription's work, which stops well inside the lease (`ROUND_BUDGET`),
        // so no other replica takes the subscription while this one still delivers to it.
        let now = state.now();
        let (renew_before, until) = lease_window(settings, now);
        if !state
            .store()
            .renew_webhook_lease(owner, subscription.id, now, renew_before, until)
            .await?
        {
            continue;
        }
        busy |= fan_out(state, owner, subscription).await?;
        busy |= deliver(state, client, source, settings, subscription).await?;
    }
    Ok(busy)
}

/// Turns the events past the subscription's cursor into deliveries. Returns whether the cursor moved.
async fn fan_out(
    state: &AppState,
    owner: &str,
    subscription: &WebhookRecord,
) -> Result<bool, modelgate_store::StoreError> {
    let events = state
        .store()
        .webhook_events_from(subscription.next_seq, FAN_OUT_BATCH)
        .await?;
    let Some(last) = events.last() else {
        return Ok(false);
    };
    let deliveries = deliveries_for(subscription, &events);
    state
        .store()
        .fan_out_webhook(
            owner,
            subscription.id,
            subscription.next_seq,
            last.seq + 1,
            &deliveries,
            state.now(),
        )
        .await
}

/// Attempts every due delivery of a subscription (lanes at once, each in order, stopping at its first
/// failure) and records the attempts in one transaction. Returns whether anything was delivered.
async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    source: &str,
    settings: &WebhookSettings,
    subscription: &WebhookRecord,
) -> Result<bool, modelgate_store::StoreError> {
    let pending = state
        .store()
        .pending_deliveries(subscription.id, DELIVERY_BATCH)
        .await?;
    let lanes = due_lanes(&pending, state.now());
    if lanes.is_empty() {
        return Ok(false);
    }
    let seqs: Vec<u64> = lanes.iter().flatten().map(|due| due.event_seq).collect();
    let leaves = state.store().audit_leaves(&seqs).await?;
    let Ok(url) = url::Url::parse(&subscription.url) else {
        return Ok(false);
    };
    let leaves = &leaves;
    let url = &url;
    let mut outcomes: Vec<AttemptOutcome> = Vec::with_capacity(seqs.len());
    let mut progressed = false;
    let mut lanes = lanes.into_iter();
    let started = state.now().unix_millis();
    let budget = i64::try_from(ROUND_BUDGET.as_millis()).unwrap_or(i64::MAX);
    let within_budget = || state.now().unix_millis().saturating_sub(started) < budget;
    loop {
        let batch: Vec<Vec<DeliveryRecord>> = lanes.by_ref().take(LANES_AT_ONCE).collect();
        if batch.is_empty() || !within_budget() {
            break;
        }
        let results = futures::future::join_all(batch.into_iter().map(|lane| async move {
            let mut done = Vec::with_capacity(lane.len());
            for delivery in lane {
                // A lane's later deliveries wait for the next round once the budget is spent.
                if !within_budget() {
                    break;
                }
                let Some((leaf, leaf_hash)) = leaves.get(&delivery.event_seq) else {
                    continue;
                };
                let outcome = attempt(
                    state,
                    client,
                    source,
                    settings,
                    subscription,
                    url,
                    &delivery,
                    leaf,
                    leaf_hash,
                )
                .await;
                let stop = !matches!(outcome.next, DeliveryNext::Delivered);
                done.push(outcome);
                if stop {
                    break;
                }
            }
            done
        }))
        .await;
        for lane in results {
            progressed |= lane
                .iter()
                .any(|outcome| outcome.next == DeliveryNext::Delivered);
            outcomes.extend(lane);
        }
        if outcomes
            .iter()
            .any(|outcome| matches!(outcome.next, DeliveryNext::Disable(_)))
        {
            break;
        }
    }
    state
        .store()
        .record_webhook_attempts(subscription.id, &outcomes)
        .await?;
    Ok(progressed)
}

/// One attempt of one delivery.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    source: &str,
    settings: &WebhookSettings,
    subscription: &WebhookRecord,
    url: &url::Url,
    delivery: &DeliveryRecord,
    leaf: &str,
    leaf_hash: &str,
) -> AttemptOutcome {
    let now = state.now();
    let body = cloud_event(source, delivery, leaf, leaf_hash).to_string();
    let id = event_id(delivery.event_seq, leaf_hash);
    let timestamp = now.unix_millis().div_euclid(1000);
    let signature = signature_header(
        &id,
        timestamp,
        body.as_bytes(),
        &signing_keys(subscription, now),
    );
    let answer = match literal_refused(url, &settings.allow_hosts) {
        Some(refusal) => Answer::Unreachable(refusal),
        None => match client
            .post(url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/cloudevents+json",
            )
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
        {
            Ok(response) => Answer::Status {
                status: response.status().as_u16(),
                retry_after: retry_after(response.headers(), now),
            },
            Err(error) if error.is_timeout() => Answer::Unreachable(format!(
                "no answer within {} ms",
                settings.timeout.as_millis()
            )),
            Err(error) => Answer::Unreachable(describe(&error.without_url())),
        },
    };
    // Through the one clock, to the millisecond (an injected clock that jumps shows as latency).
    let latency_ms =
        u64::try_from(state.now().unix_millis().saturating_sub(now.unix_millis())).unwrap_or(0);
    let next = next_step(
        &answer,
        delivery.attempts + 1,
        delivery.created_at,
        state.now(),
        settings,
        rand::rng().random_range(0.5..=1.0),
    );
    let (status, error) = match answer {
        Answer::Status { status, .. } => (Some(status), None),
        Answer::Unreachable(error) => (None, Some(error)),
    };
    if !matches!(next, DeliveryNext::Delivered) {
        tracing::info!(
            subscription = subscription.id,
            seq = delivery.event_seq,
            ?status,
            ?error,
            ?next,
            "webhook delivery not accepted"
        );
    }
    AttemptOutcome {
        event_seq: delivery.event_seq,
        attempted_at: now,
        status,
        error,
        latency_ms,
        next,
    }
}

/// A transport error with its causes, the way an operator reads it.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WebhookSettings {
        WebhookSettings {
            backoff_base: Duration::from_secs(5),
            give_up_after: Duration::from_secs(24 * 3600),
            ..WebhookSettings::default()
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(seconds * 1000)
    }

    #[test]
    fn retries_back_off_exponentially_and_honour_retry_after() {
        let server_error = Answer::Status {
            status: 503,
            retry_after: None,
        };
        assert_eq!(
            next_step(&server_error, 1, at(0), at(0), &settings(), 1.0),
            DeliveryNext::RetryAt(at(5))
        );
        assert_eq!(
            next_step(&server_error, 3, at(0), at(100), &settings(), 1.0),
            DeliveryNext::RetryAt(at(120))
        );
        assert_eq!(
            next_step(&server_error, 3, at(0), at(100), &settings(), 0.5),
            DeliveryNext::RetryAt(at(110)),
            "jitter shortens the wait, never below half"
        );
        assert_eq!(
            next_step(&server_error, 30, at(0), at(100), &settings(), 1.0),
            DeliveryNext::RetryAt(at(3700)),
            "an hour at most"
        );
        let slow_down = Answer::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(42)),
        };
        assert_eq!(
            next_step(&slow_down, 1, at(0), at(10), &settings(), 1.0),
            DeliveryNext::RetryAt(at(52))
        );
        let timeout = Answer::Unreachable("no answer".to_owned());
        assert_eq!(
            next_step(&timeout, 2, at(0), at(0), &settings(), 1.0),
            DeliveryNext::RetryAt(at(10))
        );
        // A day after the event was first due, retries stop.
        assert_eq!(
            next_step(&timeout, 20, at(0), at(24 * 3600 - 60), &settings(), 1.0),
            DeliveryNext::Failed
        );
    }

    #[test]
    fn statuses_decide_what_follows() {
        let status = |status| Answer::Status {
            status,
            retry_after: None,
        };
        assert_eq!(
            next_step(&status(204), 1, at(0), at(0), &settings(), 1.0),
            DeliveryNext::Delivered
        );
        assert!(matches!(
            next_step(&status(410), 1, at(0), at(0), &settings(), 1.0),
            DeliveryNext::Disable(_)
        ));
        for refused in [301, 400, 401, 404] {
            assert_eq!(
                next_step(&status(refused), 1, at(0), at(0), &settings(), 1.0),
                DeliveryNext::Failed,
                "{refused}"
            );
        }
        for retried in [429, 500, 502, 599] {
            assert!(matches!(
                next_step(&status(retried), 1, at(0), at(0), &settings(), 1.0),
                DeliveryNext::RetryAt(_)
            ));
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, at(0)), Some(Duration::from_secs(120)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Thu, 01 Jan 1970 00:01:40 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, at(40)), Some(Duration::from_secs(60)));
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, at(0)), None);
    }

    fn delivery(seq: u64, lane: &str, due: i64) -> DeliveryRecord {
        DeliveryRecord {
            subscription_id: 1,
            event_seq: seq,
            event_type: "version.created".to_owned(),
            lane: lane.to_owned(),
            subject: String::new(),
            state: "pending".to_owned(),
            attempts: 0,
            created_at: at(0),
            next_attempt_at: at(due),
            last_status: None,
            last_error: None,
            last_latency_ms: None,
            finished_at: None,
        }
    }

    #[test]
    fn a_lane_waits_behind_its_retrying_head_and_others_go_on() {
        let pending = [
            delivery(1, "a", 0),
            delivery(2, "b", 50),
            delivery(3, "a", 0),
            delivery(4, "b", 0),
            delivery(5, "", 0),
            delivery(6, "a", 100),
            delivery(7, "a", 0),
        ];
        let lanes: Vec<Vec<u64>> = due_lanes(&pending, at(10))
            .iter()
            .map(|lane| lane.iter().map(|due| due.event_seq).collect())
            .collect();
        assert_eq!(lanes, [vec![1, 3], vec![5]]);
    }

    #[test]
    fn destinations_off_the_public_internet_are_refused() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert!(refused_address(ip).is_some(), "{address}");
        }
        for address in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(refused_address(ip), None, "{address}");
        }
        let allow = vec!["127.0.0.1".to_owned(), "hooks.internal:8443".to_owned()];
        assert!(allowed(&allow, "127.0.0.1", Some(9000)));
        assert!(allowed(&allow, "hooks.internal", Some(8443)));
        assert!(!allowed(&allow, "hooks.internal", Some(443)));
        assert!(!allowed(&allow, "10.0.0.1", Some(80)));
    }

    #[tokio::test]
    async fn urls_are_checked_at_creation() {
        let refused = check_destination("http://127.0.0.1:9/hook", &[])
            .await
            .unwrap_err();
        assert!(refused.contains("loopback"), "{refused}");
        assert!(
            refused.contains("--webhook-allow-host 127.0.0.1"),
            "{refused}"
        );
        assert!(
            check_destination("http://127.0.0.1:9/hook", &["127.0.0.1".to_owned()])
                .await
                .is_ok()
        );
        for bad in [
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "not a url",
            "http://[fd00::1]/",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(check_destination(bad, &[]).await.is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_whsec_base64_of_24_to_64_bytes() {
        let secret = generate_secret();
        assert_eq!(secret_key(&secret).unwrap().len(), 32);
        assert!(secret_key("whsec_").is_err());
        assert!(secret_key("abc").unwrap_err().contains("whsec_"));
        assert!(secret_key(&format!("whsec_{}", BASE64.encode([1u8; 8]))).is_err());
        assert!(secret_key("whsec_!!!").is_err());
    }

    /// The example of the Standard Webhooks specification (its README): this secret, id, timestamp and
    /// body sign to this value.
    #[test]
    fn signatures_match_the_specification_example() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let header = signature_header(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
            &[key],
        );
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn every_listed_event_type_is_one_a_subscription_may_ask_for() {
        let types = event_types();
        for wanted in [
            "version.created",
            "request.opened",
            "review.submitted",
            "request.approved",
            "request.rejected",
            "request.withdrawn",
            "version.promoted",
            "version.suspended",
            "version.reinstated",
            "approval.expiring",
            "approval.expired",
            "monitoring.breach",
            "gate.denied",
            "policy.applied",
        ] {
            assert!(types.contains(&wanted), "{wanted}");
        }
        assert_eq!(event_type("gate.deny", "denied"), Some("gate.denied"));
        assert_eq!(event_type("gate.deny", "ok"), None);
        assert_eq!(event_type("version.create", "denied"), None);
        assert_eq!(event_type("session.create", "ok"), None);
        assert!(
            check_event_list(&["version.promotd".to_owned()])
                .unwrap_err()
                .contains("version.promotd")
        );
    }
}
