//! A minimal DNS SRV client for `dnssrv+` and `dnssrvnoa+` endpoint addresses: one UDP query
//! (RFC 1035 message format, SRV record type 33 from RFC 2782) to the nameservers of
//! `/etc/resolv.conf`, tried in order. The standard library resolves only A/AAAA, and SRV is all
//! Thanos's service discovery needs beyond that, so this avoids a full resolver dependency.
//! Every read of the response is bounds-checked: a malformed answer is an error, never a panic.

use std::net::SocketAddr;
use std::time::Duration;

const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The target host name, without the trailing dot.
    pub target: String,
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("no nameserver answered: {0}")]
    NoAnswer(String),
    #[error("malformed dns response: {0}")]
    Malformed(&'static str),
    #[error("dns server returned rcode {0}")]
    Rcode(u8),
    #[error("invalid name {0:?}")]
    InvalidName(String),
}

/// The nameservers of `/etc/resolv.conf` (port 53), or 127.0.0.1:53 if there are none.
fn nameservers() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if servers.is_empty() {
        servers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
    }
    servers
}

/// Encodes an SRV question for `name`.
pub fn encode_query(id: u16, name: &str) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // recursion desired
    out.extend_from_slice(&1u16.to_be_bytes()); // one question
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|len| *len > 0 && *len < 64)
            .ok_or_else(|| DnsError::InvalidName(name.to_owned()))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&TYPE_SRV.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

struct Reader<'a> {
    data: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, DnsError> {
        let byte = *self
            .data
            .get(self.position)
            .ok_or(DnsError::Malformed("truncated"))?;
        self.position += 1;
        Ok(byte)
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn skip(&mut self, n: usize) -> Result<(), DnsError> {
        if self.position + n > self.data.len() {
            return Err(DnsError::Malformed("truncated"));
        }
        self.position += n;
        Ok(())
    }

    /// Reads a possibly compressed name, leaving the reader after it.
    fn name(&mut self) -> Result<String, DnsError> {
        let mut labels: Vec<String> = Vec::new();
        let mut position = self.position;
        let mut end_after_pointer: Option<usize> = None;
        // Bounded number of pointer jumps: a loop of pointers is malformed, not infinite.
        for _ in 0..128 {
            let len = *self
                .data
                .get(position)
                .ok_or(DnsError::Malformed("truncated name"))?;
            if len == 0 {
                self.position = end_after_pointer.unwrap_or(position + 1);
                return Ok(labels.join("."));
            }
            if len & 0xC0 == 0xC0 {
                let low = *self
                    .data
                    .get(position + 1)
                    .ok_or(DnsError::Malformed("truncated pointer"))?;
                end_after_pointer.get_or_insert(position + 2);
                position = usize::from(u16::from_be_bytes([len & 0x3F, low]));
                continue;
            }
            let start = position + 1;
            let label = self
                .data
                .get(start..start + usize::from(len))
                .ok_or(DnsError::Malformed("truncated label"))?;
            labels.push(String::from_utf8_lossy(label).into_owned());
            position = start + usize::from(len);
        }
        Err(DnsError::Malformed("name pointer loop"))
    }
}

/// Parses the SRV answers of a response to query `id`.
pub fn parse_response(id: u16, data: &[u8]) -> Result<Vec<SrvRecord>, DnsError> {
    let mut reader = Reader { data, position: 0 };
    if reader.u16()? != id {
        return Err(DnsError::Malformed("response id does not match the query"));
    }
    let flags = reader.u16()?;
    let rcode = (flags & 0x000F) as u8;
    if rcode != 0 {
        return Err(DnsError::Rcode(rcode));
    }
    let questions = reader.u16()?;
    let answers = reader.u16()?;
    reader.skip(4)?;
    for _ in 0..questions {
        reader.name()?;
        reader.skip(4)?;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        reader.name()?;
        let record_type = reader.u16()?;
        reader.skip(6)?; // class, ttl
        let length = usize::from(reader.u16()?);
        let end = reader.position + length;
        if record_type == TYPE_SRV {
            let priority = reader.u16()?;
            let weight = reader.u16()?;
            let port = reader.u16()?;
            let target = reader.name()?;
            records.push(SrvRecord {
                priority,
                weight,
                port,
                target,
            });
        }
        if end > data.len() {
            return Err(DnsError::Malformed("truncated record"));
        }
        reader.position = end;
    }
    records.sort_by(|a, b| (a.priority, &a.target, a.port).cmp(&(b.priority, &b.target, b.port)));
    Ok(records)
}

/// Looks up the SRV records of `name`.
pub async fn lookup_srv(name: &str) -> Result<Vec<SrvRecord>, DnsError> {
    let id = u16::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos() & 0xFFFF)
            .unwrap_or(0x5151),
    )
    .unwrap_or(0x5151);
    let query = encode_query(id, name)?;
    let mut failures = Vec::new();
    for server in nameservers() {
        let attempt = async {
            let bind: SocketAddr = if server.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            let socket = tokio::net::UdpSocket::bind(bind).await?;
            socket.send_to(&query, server).await?;
            let mut buffer = vec![0u8; 4096];
            let (len, _) = socket.recv_from(&mut buffer).await?;
            buffer.truncate(len);
            Ok::<_, std::io::Error>(buffer)
        };
        match tokio::time::timeout(QUERY_TIMEOUT, attempt).await {
            Ok(Ok(response)) => return parse_response(id, &response),
            Ok(Err(err)) => failures.push(format!("{server}: {err}")),
            Err(_) => failures.push(format!("{server}: timeout")),
        }
    }
    Err(DnsError::NoAnswer(failures.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response built by hand: the question, then two SRV answers, the second using a
    /// compression pointer to the question name for its owner.
    fn response(id: u16) -> Vec<u8> {
        let mut out = encode_query(id, "_grpc._tcp.store.local").expect("query");
        // Flags: response, no error; one question, two answers.
        out[2] = 0x81;
        out[3] = 0x80;
        out[6] = 0;
        out[7] = 2;
        for (priority, port, target) in [(10u16, 10901u16, "b.local"), (5, 10902, "a.local")] {
            out.extend_from_slice(&[0xC0, 12]); // pointer to the question name
            out.extend_from_slice(&TYPE_SRV.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&30u32.to_be_bytes());
            let mut rdata = Vec::new();
            rdata.extend_from_slice(&priority.to_be_bytes());
            rdata.extend_from_slice(&1u16.to_be_bytes());
            rdata.extend_from_slice(&port.to_be_bytes());
            for label in target.split('.') {
                rdata.push(label.len() as u8);
                rdata.extend_from_slice(label.as_bytes());
            }
            rdata.push(0);
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        out
    }

    #[test]
    fn parses_srv_answers() {
        let records = parse_response(7, &response(7)).expect("parse");
        assert_eq!(
            records,
            vec![
                SrvRecord {
                    priority: 5,
                    weight: 1,
                    port: 10902,
                    target: "a.local".into()
                },
                SrvRecord {
                    priority: 10,
                    weight: 1,
                    port: 10901,
                    target: "b.local".into()
                },
            ]
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        let full = response(7);
        assert!(parse_response(8, &full).is_err(), "wrong id");
        for len in 0..full.len() {
            // Every truncation either fails cleanly or parses fewer records; never panics.
            let _ = parse_response(7, &full[..len]);
        }
        let mut looping = full.clone();
        let at = looping.len() - 9;
        looping[at] = 0xC0;
        let _ = parse_response(7, &looping);
        assert!(encode_query(1, "a..b").is_err());
    }
}
