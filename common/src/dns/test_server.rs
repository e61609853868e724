//! A tiny DNS server on 127.0.0.1 (UDP and TCP on one port) for tests of DNS discovery, here
//! and in the services (feature `dns-test-server`). It answers SRV and A queries from a fixed
//! zone, NXDOMAIN for unknown names, and can set the TC bit on UDP answers with more than a given
//! number of records, so a client only gets them all by retrying over TCP. Messages follow
//! RFC 1035 section 4 (TCP: two-byte length prefix) and RFC 2782 for SRV data; hand-written so
//! that the test does not share code with the resolver it tests.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::SrvTarget;

const TYPE_A: u16 = 1;
const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;
const RCODE_FORMAT_ERROR: u16 = 1;
const RCODE_SERVER_FAILURE: u16 = 2;
const RCODE_NX_DOMAIN: u16 = 3;

/// What the server knows. Names are lowercase, fully qualified, without the trailing dot.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub srv: BTreeMap<String, Vec<SrvTarget>>,
    pub a: BTreeMap<String, Vec<Ipv4Addr>>,
    /// UDP answers with more records than this are sent empty with the TC bit set.
    pub udp_max_answers: Option<usize>,
    /// The TTL of every record; 0 (the default) keeps resolvers from caching, so each lookup
    /// reaches the server.
    pub ttl: u32,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct TestDnsServer {
    pub port: u16,
    udp_queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
    truncated: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TestDnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl TestDnsServer {
    /// Binds UDP and TCP on one free port of 127.0.0.1 and starts answering from `zone`.
    pub async fn start(zone: Zone) -> std::io::Result<Self> {
        let zone = Arc::new(zone);
        let mut last_error = None;
        // The UDP port is free but its TCP twin may not be: try a few ports.
        for _ in 0..20 {
            let udp = tokio::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let port = udp.local_addr()?.port();
            let tcp = match tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
                .await
            {
                Ok(tcp) => tcp,
                Err(err) => {
                    last_error = Some(err);
                    continue;
                }
            };
            let udp_queries = Arc::new(AtomicUsize::new(0));
            let tcp_queries = Arc::new(AtomicUsize::new(0));
            let truncated = Arc::new(AtomicUsize::new(0));
            let failing = Arc::new(AtomicBool::new(false));
            let udp_task = tokio::spawn(serve_udp(
                udp,
                Arc::clone(&zone),
                Arc::clone(&udp_queries),
                Arc::clone(&truncated),
                Arc::clone(&failing),
            ));
            let tcp_task = tokio::spawn(serve_tcp(
                tcp,
                zone,
                Arc::clone(&tcp_queries),
                Arc::clone(&failing),
            ));
            return Ok(Self {
                port,
                udp_queries,
                tcp_queries,
                truncated,
                failing,
                tasks: vec![udp_task, tcp_task],
            });
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no free port pair")))
    }

    /// From now on answer every query with SERVFAIL (`true`) or from the zone again (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// Queries received over UDP.
    pub fn udp_queries(&self) -> usize {
        self.udp_queries.load(Ordering::Relaxed)
    }

    /// Queries received over TCP.
    pub fn tcp_queries(&self) -> usize {
        self.tcp_queries.load(Ordering::Relaxed)
    }

    /// UDP answers sent truncated.
    pub fn truncated_answers(&self) -> usize {
        self.truncated.load(Ordering::Relaxed)
    }
}

async fn serve_udp(
    socket: tokio::net::UdpSocket,
    zone: Arc<Zone>,
    queries: Arc<AtomicUsize>,
    truncated: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
            return;
        };
        queries.fetch_add(1, Ordering::Relaxed);
        let Some(query) = buffer.get(..len) else {
            continue;
        };
        let (response, was_truncated) = answer(
            query,
            &zone,
            zone.udp_max_answers,
            failing.load(Ordering::Relaxed),
        );
        if was_truncated {
            truncated.fetch_add(1, Ordering::Relaxed);
        }
        let _ = socket.send_to(&response, peer).await;
    }
}

async fn serve_tcp(
    listener: tokio::net::TcpListener,
    zone: Arc<Zone>,
    queries: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
) {
    // Connections live in this set so that stopping the server also closes them.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let zone = Arc::clone(&zone);
        let queries = Arc::clone(&queries);
        let failing = Arc::clone(&failing);
        connections.spawn(async move {
            loop {
                let Ok(len) = stream.read_u16().await else {
                    return;
                };
                let mut query = vec![0u8; usize::from(len)];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                queries.fetch_add(1, Ordering::Relaxed);
                let (response, _) = answer(&query, &zone, None, failing.load(Ordering::Relaxed));
                let Ok(response_len) = u16::try_from(response.len()) else {
                    return;
                };
                if stream.write_u16(response_len).await.is_err()
                    || stream.write_all(&response).await.is_err()
                {
                    return;
                }
            }
        });
    }
}

/// The question of a query: its name (lowercase, no trailing dot), type, and the bytes of the
/// whole question section to echo back.
fn question(query: &[u8]) -> Option<(String, u16, &[u8])> {
    let mut position = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(position)?);
        if len == 0 {
            position += 1;
            break;
        }
        if len >= 64 {
            return None;
        }
        let label = query.get(position + 1..position + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        position += 1 + len;
    }
    let record_type = u16::from_be_bytes([*query.get(position)?, *query.get(position + 1)?]);
    let section = query.get(12..position + 4)?;
    Some((labels.join("."), record_type, section))
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|label| !label.is_empty()) {
        let bytes = label.as_bytes();
        out.push(u8::try_from(bytes.len()).unwrap_or(63).min(63));
        out.extend_from_slice(&bytes[..bytes.len().min(63)]);
    }
    out.push(0);
}

/// The response to `query` and whether it was truncated.
fn answer(query: &[u8], zone: &Zone, max_answers: Option<usize>, failing: bool) -> (Vec<u8>, bool) {
    let id = [
        query.first().copied().unwrap_or(0),
        query.get(1).copied().unwrap_or(0),
    ];
    let recursion_desired = query.get(2).is_some_and(|flags| flags & 0x01 != 0);
    let mut flags: u16 = 0x8400 | 0x0080; // response, authoritative, recursion available
    if recursion_desired {
        flags |= 0x0100;
    }
    let Some((name, record_type, question_section)) = question(query) else {
        let mut out = Vec::from(id);
        out.extend_from_slice(&(flags | RCODE_FORMAT_ERROR).to_be_bytes());
        out.extend_from_slice(&[0; 8]);
        return (out, false);
    };
    if failing {
        let mut out = Vec::from(id);
        out.extend_from_slice(&(flags | RCODE_SERVER_FAILURE).to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(question_section);
        return (out, false);
    }
    let known = zone.srv.contains_key(&name) || zone.a.contains_key(&name);
    let mut rdatas: Vec<Vec<u8>> = Vec::new();
    match record_type {
        TYPE_SRV => {
            for srv in zone.srv.get(&name).into_iter().flatten() {
                let mut rdata = Vec::new();
                rdata.extend_from_slice(&10u16.to_be_bytes());
                rdata.extend_from_slice(&1u16.to_be_bytes());
                rdata.extend_from_slice(&srv.port.to_be_bytes());
                encode_name(&mut rdata, &srv.target);
                rdatas.push(rdata);
            }
        }
        TYPE_A => {
            for ip in zone.a.get(&name).into_iter().flatten() {
                rdatas.push(ip.octets().to_vec());
            }
        }
        _ => {}
    }
    let truncated = max_answers.is_some_and(|max| rdatas.len() > max);
    if truncated {
        flags |= 0x0200;
        rdatas.clear();
    }
    if !known {
        flags |= RCODE_NX_DOMAIN;
    }
    let mut out = Vec::from(id);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&u16::try_from(rdatas.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question_section);
    for rdata in rdatas {
        out.extend_from_slice(&[0xC0, 12]); // the owner name: a pointer to the question
        out.extend_from_slice(&record_type.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&zone.ttl.to_be_bytes());
        out.extend_from_slice(&u16::try_from(rdata.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    (out, truncated)
}
