//! The DNS probe: one query, straight to the configured server, over a fresh
//! UDP socket (TCP when the answer comes back truncated). No resolver and no
//! cache, so every run measures the server itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType as WireType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::net::{self, Failure};
use super::{Outcome, Reason};
use crate::config::{DnsSpec, RecordType};

pub(crate) async fn run(spec: &DnsSpec, start: Instant) -> Outcome {
    match query(spec).await {
        Ok(detail) => Outcome {
            reason: None,
            latency: start.elapsed(),
            cert_not_after: None,
            detail,
        },
        Err(f) => f.into_outcome(start, None),
    }
}

fn wire_type(t: RecordType) -> WireType {
    match t {
        RecordType::A => WireType::A,
        RecordType::Aaaa => WireType::AAAA,
        RecordType::Cname => WireType::CNAME,
        RecordType::Mx => WireType::MX,
        RecordType::Txt => WireType::TXT,
        RecordType::Ns => WireType::NS,
        RecordType::Srv => WireType::SRV,
        RecordType::Ptr => WireType::PTR,
        RecordType::Soa => WireType::SOA,
    }
}

async fn query(spec: &DnsSpec) -> Result<String, Failure> {
    let mut name = Name::from_ascii(&spec.name)
        .map_err(|e| Failure::new(Reason::Dns, format!("invalid name {:?}: {e}", spec.name)))?;
    name.set_fqdn(true);
    let rtype = wire_type(spec.record);

    // `Message::query` picks a random id: a stray or spoofed reply has to
    // guess it.
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, rtype));
    let id = msg.metadata.id;
    let wire = msg
        .to_vec()
        .map_err(|e| Failure::new(Reason::Protocol, format!("cannot encode query: {e}")))?;

    let mut resp = exchange_udp(spec.server, &wire).await?;
    check_header(&resp, id)?;
    if resp.metadata.truncation {
        resp = exchange_tcp(spec.server, &wire).await?;
        check_header(&resp, id)?;
    }
    let rcode = resp.metadata.response_code;
    if rcode != ResponseCode::NoError {
        return Err(Failure::new(
            Reason::Dns,
            format!("{} {rtype}: {rcode}", spec.name),
        ));
    }
    let answers: Vec<&Record> = resp
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .collect();
    if answers.is_empty() {
        return Err(Failure::new(
            Reason::Dns,
            format!("{} has no {rtype} records", spec.name),
        ));
    }
    let missing: Vec<&str> = spec
        .expect
        .iter()
        .filter(|want| !answers.iter().any(|r| answer_matches(&r.data, want)))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let got: Vec<String> = answers.iter().map(|r| r.data.to_string()).collect();
        return Err(Failure::new(
            Reason::Dns,
            format!(
                "{} {rtype}: missing {} (got {})",
                spec.name,
                missing.join(", "),
                got.join(", ")
            ),
        ));
    }
    Ok(format!("{} {rtype}: {} answers", spec.name, answers.len()))
}

fn check_header(resp: &Message, id: u16) -> Result<(), Failure> {
    if resp.metadata.id != id {
        return Err(Failure::new(
            Reason::Protocol,
            format!("reply id {} does not match query id {id}", resp.metadata.id),
        ));
    }
    if resp.metadata.message_type != MessageType::Response {
        return Err(Failure::new(Reason::Protocol, "reply is not a response"));
    }
    Ok(())
}

async fn exchange_udp(server: SocketAddr, wire: &[u8]) -> Result<Message, Failure> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let io = |e: std::io::Error| net::classify_io(&e);
    let sock = UdpSocket::bind(local).await.map_err(io)?;
    // Connected: only the server's datagrams reach us, and an ICMP port
    // unreachable surfaces as "connection refused".
    sock.connect(server).await.map_err(io)?;
    sock.send(wire).await.map_err(io)?;
    let mut buf = vec![0u8; 65_535];
    let n = sock.recv(&mut buf).await.map_err(io)?;
    parse(&buf[..n])
}

async fn exchange_tcp(server: SocketAddr, wire: &[u8]) -> Result<Message, Failure> {
    let io = |e: std::io::Error| net::classify_io(&e);
    let len = u16::try_from(wire.len())
        .map_err(|_| Failure::new(Reason::Protocol, "query too large for TCP"))?;
    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    stream.write_all(&framed).await.map_err(io)?;
    let mut len_buf = [0u8; 2];
    stream.read_exact(&mut len_buf).await.map_err(io)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len_buf))];
    stream.read_exact(&mut buf).await.map_err(io)?;
    parse(&buf)
}

fn parse(bytes: &[u8]) -> Result<Message, Failure> {
    Message::from_vec(bytes)
        .map_err(|e| Failure::new(Reason::Protocol, format!("unparseable DNS reply: {e}")))
}

/// Whether one answer satisfies one expected text. Addresses compare as
/// addresses (`::1` equals `0:0::1`); names compare case-insensitively with or
/// without the trailing dot; for MX/SRV the target name alone also matches.
fn answer_matches(data: &RData, want: &str) -> bool {
    if let Some(ip) = data.ip_addr() {
        return want.trim().parse::<IpAddr>().is_ok_and(|w| w == ip);
    }
    let want = normalize(want);
    let text = data.to_string();
    if normalize(&text) == want {
        return true;
    }
    match data {
        RData::MX(_) | RData::SRV(_) => text
            .split_whitespace()
            .last()
            .is_some_and(|target| normalize(target) == want),
        _ => false,
    }
}

fn normalize(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s);
    s.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX};

    use super::*;

    fn check(data: RData, want: &str, expected: bool) {
        assert_eq!(answer_matches(&data, want), expected, "{data} vs {want:?}");
    }

    #[test]
    fn answer_matching_table() {
        let name = |s: &str| Name::from_ascii(s).unwrap();
        check(RData::A(A(Ipv4Addr::new(10, 0, 0, 1))), "10.0.0.1", true);
        check(RData::A(A(Ipv4Addr::new(10, 0, 0, 1))), " 10.0.0.1 ", true);
        check(RData::A(A(Ipv4Addr::new(10, 0, 0, 1))), "10.0.0.2", false);
        check(RData::A(A(Ipv4Addr::new(10, 0, 0, 1))), "not-an-ip", false);
        check(RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)), "0:0::1", true);
        check(
            RData::CNAME(CNAME(name("Web.Example.com."))),
            "web.example.com",
            true,
        );
        check(
            RData::CNAME(CNAME(name("web.example.com."))),
            "WEB.example.com.",
            true,
        );
        check(
            RData::CNAME(CNAME(name("web.example.com."))),
            "api.example.com",
            false,
        );
        check(
            RData::MX(MX::new(10, name("mail.example.com."))),
            "10 mail.example.com.",
            true,
        );
        check(
            RData::MX(MX::new(10, name("mail.example.com."))),
            "mail.example.com",
            true,
        );
        check(
            RData::MX(MX::new(10, name("mail.example.com."))),
            "20 mail.example.com",
            false,
        );
    }
}
