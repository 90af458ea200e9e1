//! Loopback servers for probes and daemons to talk to, and the test PKI.
//! Every server listens on `127.0.0.1:0`, reports the address it got, and
//! lives as long as the test's runtime.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sentinel::config::{Check, HttpExpect, HttpSpec, ProbeSpec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio_rustls::TlsAcceptor;

/// The leaf certificate's notAfter: 2099-01-01T00:00:00Z.
pub const LEAF_NOT_AFTER: i64 = 4_070_908_800;

pub fn check(probe: ProbeSpec, timeout_ms: u64) -> Check {
    Check {
        name: "t".to_string(),
        interval: Duration::from_secs(10),
        timeout: Duration::from_millis(timeout_ms),
        probe,
    }
}

/// An HTTP spec with the config defaults.
pub fn http_spec(url: &str) -> HttpSpec {
    HttpSpec {
        url: url::Url::parse(url).unwrap(),
        method: "GET".to_string(),
        headers: Vec::new(),
        env_headers: Vec::new(),
        body: None,
        follow_redirects: false,
        tls_verify: true,
        max_body_bytes: 1024 * 1024,
        expect: HttpExpect {
            status: (200..=299).collect(),
            body_contains: None,
            body_regex: None,
            json: Vec::new(),
            max_latency: None,
            cert_min_days: None,
        },
    }
}

/// What a raw server does with one request.
#[derive(Clone)]
pub enum Reply {
    /// Write these bytes, then close.
    Bytes(Vec<u8>),
    /// Write `head`, then `chunk` forever (until the client goes away).
    Endless { head: Vec<u8>, chunk: Vec<u8> },
    /// Write the bytes one at a time, `every` apart.
    Trickle { bytes: Vec<u8>, every: Duration },
    /// Wait, then write the bytes and close.
    Delayed(Duration, Vec<u8>),
    /// Accept and never write.
    Silent,
}

/// A full HTTP/1.1 response with a Content-Length.
pub fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("Connection: close\r\n\r\n");
    s.push_str(body);
    Reply::Bytes(s.into_bytes())
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A tiny HTTP-ish server: reads the request head, asks `handler` with it
/// (request line first), and acts out the reply.
pub async fn http_server(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler: Handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move { serve_raw(stream, handler).await });
        }
    });
    addr
}

/// The same server behind TLS with `pki`'s leaf certificate.
pub async fn https_server(
    pki: &Pki,
    handler: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler: Handler = Arc::new(handler);
    let acceptor = pki.acceptor();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_raw(tls, handler).await;
                }
            });
        }
    });
    addr
}

async fn serve_raw<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, handler: Handler) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    act(&mut stream, handler(&text)).await;
}

async fn act<S: AsyncWrite + Unpin>(stream: &mut S, reply: Reply) {
    match reply {
        Reply::Bytes(b) => {
            let _ = stream.write_all(&b).await;
            let _ = stream.shutdown().await;
        }
        Reply::Endless { head, chunk } => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
            while stream.write_all(&chunk).await.is_ok() {}
        }
        Reply::Trickle { bytes, every } => {
            for b in bytes {
                if stream.write_all(&[b]).await.is_err() {
                    return;
                }
                let _ = stream.flush().await;
                tokio::time::sleep(every).await;
            }
        }
        Reply::Delayed(wait, b) => {
            tokio::time::sleep(wait).await;
            let _ = stream.write_all(&b).await;
            let _ = stream.shutdown().await;
        }
        Reply::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
    }
}

/// A line server: greets with `banner`, answers `PING` with `PONG`.
pub async fn line_server(banner: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(talk(stream, banner));
        }
    });
    addr
}

/// The line server behind TLS.
pub async fn tls_line_server(pki: &Pki, banner: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = pki.acceptor();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    talk(tls, banner).await;
                }
            });
        }
    });
    addr
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, banner: &'static str) {
    if stream.write_all(banner.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.flush().await;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.windows(4).any(|w| w == b"PING") {
            let _ = stream.write_all(b"PONG\r\n").await;
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// A TCP port on 127.0.0.1 that refuses connections while this lives: a
/// socket bound to it that never listens, so the kernel answers every SYN
/// with a reset and no other socket can be given the port meanwhile.
pub struct RefusedTcp {
    _socket: TcpSocket,
    pub addr: SocketAddr,
}

impl RefusedTcp {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

pub fn refused_tcp() -> RefusedTcp {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    RefusedTcp {
        _socket: socket,
        addr,
    }
}

/// A UDP port on 127.0.0.1 where every datagram meets "port unreachable"
/// while this lives: the socket bound to it is connected to itself, so the
/// kernel delivers it nothing from anyone else, and holds the port.
pub struct RefusedUdp {
    _socket: UdpSocket,
    pub addr: SocketAddr,
}

pub async fn refused_udp() -> RefusedUdp {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    socket.connect(addr).await.unwrap();
    RefusedUdp {
        _socket: socket,
        addr,
    }
}

/// Serves `app` on a fresh loopback port.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A target whose `/health` answers 200 "ok" while `up`, 503 "down"
/// otherwise; `/echo` answers the request's `Authorization` header inside
/// JSON, as a misbehaving target might.
pub async fn start_target(up: Arc<AtomicBool>) -> SocketAddr {
    let app = Router::new()
        .route(
            "/health",
            get(move || {
                let up = Arc::clone(&up);
                async move {
                    if up.load(Ordering::SeqCst) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "down")
                    }
                }
            }),
        )
        .route(
            "/echo",
            get(|headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                axum::Json(serde_json::json!({ "status": auth }))
            }),
        );
    serve(app).await
}

/// Accepts connections and never answers (holding them open); counts them.
pub async fn hanging() -> (Arc<AtomicUsize>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (accepted, addr)
}

/// A test CA and a leaf it signed for `localhost` and `127.0.0.1`, valid
/// until [`LEAF_NOT_AFTER`] unless made with [`Pki::valid_until`].
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub leaf: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Pki {
    pub fn new() -> Pki {
        Pki::valid_until(2099, 1, 1)
    }

    /// Same shape, leaf valid from 2020-01-01 until the given day.
    pub fn valid_until(year: i32, month: u8, day: u8) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sentinel test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let leaf = params.signed_by(&leaf_key, &ca, &ca_key).unwrap();

        Pki {
            ca: ca.der().clone(),
            leaf: leaf.der().clone(),
            key: leaf_key.serialize_der(),
        }
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone(), self.ca.clone()], key)
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }
}

/// A DNS server on UDP: `svc.test.` A → 10.0.0.1 and 10.0.0.2; `garbage.test.`
/// gets bytes that are not DNS; `wrongid.test.` a reply with another id;
/// `big.test.` a truncated UDP reply and the full answer over TCP on the same
/// port; everything else NXDOMAIN.
pub async fn dns_server() -> SocketAddr {
    // The UDP port is picked by the OS; the same port number may be taken
    // for TCP by another test, so try again with a fresh UDP port.
    let mut bound = None;
    for _ in 0..50 {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            bound = Some((sock, addr, tcp));
            break;
        }
    }
    let (sock, addr, tcp) = bound.expect("no port free for both UDP and TCP on 127.0.0.1");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let reply = dns_answer(&req, false);
            let _ = sock.send_to(&reply, peer).await;
        }
    });
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = tcp.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Ok(req) = Message::from_vec(&buf) else {
                    return;
                };
                let reply = dns_answer(&req, true);
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                let _ = stream.write_all(&framed).await;
            });
        }
    });
    addr
}

fn dns_answer(req: &Message, over_tcp: bool) -> Vec<u8> {
    let q = &req.queries[0];
    let qname = q.name().to_ascii().to_ascii_lowercase();
    let mut resp = Message::response(req.metadata.id, OpCode::Query);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.add_query(q.clone());
    let a = |ip: [u8; 4]| Record::from_rdata(q.name().clone(), 60, RData::A(A(Ipv4Addr::from(ip))));
    match (qname.as_str(), q.query_type()) {
        ("svc.test.", RecordType::A) => {
            resp.add_answer(a([10, 0, 0, 1]));
            resp.add_answer(a([10, 0, 0, 2]));
        }
        ("svc.test.", _) => {}
        ("garbage.test.", _) => return b"\x00\x01not dns".to_vec(),
        ("wrongid.test.", _) => resp.metadata.id = req.metadata.id.wrapping_add(1),
        ("big.test.", RecordType::A) if !over_tcp => resp.metadata.truncation = true,
        ("big.test.", RecordType::A) => {
            resp.add_answer(a([192, 0, 2, 7]));
        }
        _ => resp.metadata.response_code = ResponseCode::NXDomain,
    }
    resp.to_vec().unwrap()
}

/// A UDP socket that receives and never answers.
pub async fn silent_udp() -> (UdpSocket, SocketAddr) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    (sock, addr)
}

/// The verify-on prober that trusts the test CA.
pub fn prober_trusting(
    pki: &Pki,
    clock: Arc<dyn sentinel::clock::Clock>,
) -> sentinel::probe::Prober {
    sentinel::probe::Prober::new_with(clock, vec![pki.ca.clone()]).unwrap()
}

pub fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}
