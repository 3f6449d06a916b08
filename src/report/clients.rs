//! Per-client aggregation over connection records: one [`ClientRecord`] per client address
//! (without port — one host opens many connections) with HTTP traffic, for the findings that
//! are about clients (no reuse, `Connection: close`, HTTP/1.0).

use std::net::{IpAddr, SocketAddr};

use crate::flows::WireMap;
use crate::http::{ConnectionTokens, Protocol};
use crate::record::{ConnectionRecord, HttpVersion};

use super::behaviour::ClientBehaviour;
use super::samples::Samples;
use super::sightings::{Seen, Sightings};

/// Servers listed per client.
const MAX_SERVERS: usize = 8;
/// Client hosts followed (a capture of a public server can hold millions); the findings
/// about clients cover the first 100,000 seen.
const MAX_CLIENTS: usize = 100_000;

/// What one client host did across its connections.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    pub client: IpAddr,
    pub connections: u64,
    pub requests: u64,
    /// Servers it talked to (up to 8), ascending.
    pub servers: Vec<SocketAddr>,
    /// SYN to the ACK of the SYN-ACK, per connection with a handshake (ns).
    pub handshake_rtts: Samples,
    pub seen: Sightings,
    /// What its pool really did: reuse gaps, its own idle timeout, requests beyond `max=`.
    pub behaviour: ClientBehaviour,
}

/// How the client asked for the close, if it did: `Connection: close`, or HTTP/1.0 without
/// `Connection: keep-alive`.
pub fn asked_close(record: &ConnectionRecord) -> Option<Seen> {
    if record.client_connection.has(ConnectionTokens::CLOSE) {
        Some(Seen::AskedClose)
    } else if record.client_http == Some(HttpVersion::V1_0)
        && !record.client_connection.has(ConnectionTokens::KEEP_ALIVE)
    {
        Some(Seen::Http10Close)
    } else {
        None
    }
}

/// The per-client aggregation, fed one connection record at a time.
#[derive(Debug, Default)]
pub struct Clients {
    by_client: WireMap<IpAddr, ClientRecord>,
}

impl Clients {
    pub fn add(&mut self, record: &ConnectionRecord) {
        if record.protocol != Protocol::Http {
            return;
        }
        let client = record.client.ip();
        if self.by_client.len() >= MAX_CLIENTS && !self.by_client.contains_key(&client) {
            return;
        }
        let stats = self
            .by_client
            .entry(client)
            .or_insert_with(|| ClientRecord {
                client,
                connections: 0,
                requests: 0,
                servers: Vec::new(),
                handshake_rtts: Samples::default(),
                seen: Sightings::default(),
                behaviour: ClientBehaviour::default(),
            });
        stats.connections += 1;
        stats.requests += u64::from(record.requests.unwrap_or(0));
        stats.behaviour.add(record);
        if !stats.servers.contains(&record.server) && stats.servers.len() < MAX_SERVERS {
            stats.servers.push(record.server);
            stats.servers.sort();
        }
        if let Some(rtt) = record.handshake_rtt_ns {
            stats.handshake_rtts.push(rtt);
        }
        let stream = record.stream;
        if record.requests.is_some_and(|requests| requests <= 1) {
            stats.seen.mark(Seen::OneRequest, stream);
        }
        if let Some(asked) = asked_close(record) {
            stats.seen.mark(asked, stream);
        }
        if record.close_announced_at == Some(1) {
            stats.seen.mark(Seen::ServerSaidClose, stream);
        }
    }

    /// Rows, most connections first (then by address).
    pub fn records(&self) -> Vec<ClientRecord> {
        let mut rows: Vec<ClientRecord> = self
            .by_client
            .values()
            .map(|c| ClientRecord {
                handshake_rtts: c.handshake_rtts.sorted(),
                behaviour: c.behaviour.finished(),
                ..c.clone()
            })
            .collect();
        rows.sort_by(|a, b| {
            b.connections
                .cmp(&a.connections)
                .then(a.client.cmp(&b.client))
        });
        rows
    }
}
