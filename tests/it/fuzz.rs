//! Fuzz harness: mutated configs, hostile API request bodies, inbound hook
//! payloads and hostile probe inputs must never panic or abort. A bounded number of cases runs in CI;
//! `bench/fuzz.sh` runs the same harness long (`FUZZ_CASES`, `FUZZ_SEED`).
//!
//! Every case is derived from one seed, so a failure names the seed and case
//! index that reproduce it (`FUZZ_SEED=... FUZZ_ONLY=<index>`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::support::servers;
use crate::support::{eventually, secs};
use sentinel::config::{HttpExpect, JsonExpectation, ProbeSpec};
use sentinel::engine::EngineState;
use sentinel::probe::{Prober, Reason, jsonpath};
use serde_json::{Value, json};

/// splitmix64: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (seed, number of cases, only this case) from the environment.
fn plan(default_cases: u64) -> (u64, u64, Option<u64>) {
    let only = std::env::var("FUZZ_ONLY").ok().and_then(|v| v.parse().ok());
    (
        env_u64("FUZZ_SEED", 0x5e4_7171e1),
        env_u64("FUZZ_CASES", default_cases),
        only,
    )
}

fn case_rng(seed: u64, i: u64) -> Rng {
    let mut r = Rng(seed ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d));
    r.next();
    r
}

static NUMBER: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"\b\d+(\.\d+)?(ms|s|m|h|d|w)?\b").unwrap());

/// Values that broke or could break parsers and allocators.
const EXTREMES: &[&str] = &[
    "18446744073709551615",
    "18446744073709551615ms",
    "100000000w",
    "9223372036854775807",
    "4294967296",
    "-1",
    "-5m",
    "0",
    "0s",
    "0ms",
    "1ms",
    "1e308",
    "-1e308",
    ".nan",
    ".inf",
    "-.inf",
    "99999999999999999999999999",
    "400d",
    "401d",
    "1000000000000d",
    "65536",
    "''",
    "~",
    "[]",
    "{}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "\"\\u0000\"",
    "\"ünïcødé ☃\"",
    "http://user:pass@127.0.0.1/",
    "ftp://127.0.0.1/",
    "*anchor",
    "&a x",
    "!!binary aGVsbG8=",
    "P0",
    "'$..[?(@.a)]'",
];

const ALIAS_BOMB: &str = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n\
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n\
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";

/// Apply 1–4 random mutations to a config text.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rounds = 1 + rng.below(4);
    let mut prefix = String::new();
    let mut suffix = String::new();
    for _ in 0..rounds {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.below(lines.len());
        match rng.below(13) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3..=5 => {
                // Replace a scalar value (after `: ` or `- `) with an extreme.
                let v = *rng.pick(EXTREMES);
                let l = &lines[i];
                if let Some(p) = l.find(": ") {
                    lines[i] = format!("{}: {v}", &l[..p]);
                } else if let Some(p) = l.find("- ") {
                    lines[i] = format!("{}- {v}", &l[..p]);
                } else {
                    lines[i] = format!("{l} {v}");
                }
            }
            6 => prefix = ALIAS_BOMB.to_string(),
            7 => prefix.insert(0, '\u{feff}'),
            8 => {
                let l = &lines[i];
                let trimmed = l.trim_start_matches(' ');
                let indent = l.len() - trimmed.len();
                lines[i] = format!("{}{trimmed}", "\t".repeat(indent.div_ceil(2)));
            }
            9 => {
                let l = &mut lines[i];
                let mut at = rng.below(l.len() + 1);
                while !l.is_char_boundary(at) {
                    at -= 1;
                }
                l.insert(at, '\0');
            }
            10 => {
                // Truncate the whole text here.
                lines.truncate(i + 1);
                let l = &mut lines[i];
                let mut at = rng.below(l.len() + 1);
                while !l.is_char_boundary(at) {
                    at -= 1;
                }
                l.truncate(at);
            }
            11 if rng.chance(2) => {
                // Replace one number or duration token inside the line, so
                // values in flow mappings (`{ window: 30d }`) are reached.
                let l = lines[i].clone();
                let tokens: Vec<(usize, usize)> =
                    NUMBER.find_iter(&l).map(|m| (m.start(), m.end())).collect();
                if !tokens.is_empty() {
                    let (a, b) = *rng.pick(&tokens);
                    let v = *rng.pick(&[
                        "18446744073709551615ms",
                        "100000000w",
                        "9223372036854775807",
                        "18446744073709551615",
                        "0",
                        "0s",
                        "-1",
                        "1e400",
                        "999999999d",
                        "4294967297",
                        "65536",
                        "401d",
                    ]);
                    lines[i] = format!("{}{v}{}", &l[..a], &l[b..]);
                }
            }
            11 => {
                let l = &lines[i];
                if let Some(p) = l.find(": ") {
                    lines[i] = format!("{}: {}", &l[..p], "x".repeat(100_000));
                }
            }
            _ => suffix.push_str(rng.pick::<&str>(&[
                "\nunknown_top_level: 1\n",
                "\n---\nservices: []\n",
                "\n: : :\n",
                "\n\"unterminated\n",
                "\n? complex key\n: value\n",
                "\n<<: *nothing\n",
            ])),
        }
    }
    let mut out = prefix;
    out.push_str(&lines.join("\n"));
    out.push_str(&suffix);
    out
}

/// The shipped configs plus the YAML examples in the README.
fn corpus() -> Vec<(String, String)> {
    let mut v = Vec::new();
    let root = env!("CARGO_MANIFEST_DIR");
    for entry in std::fs::read_dir(format!("{root}/config")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            v.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    for (n, block) in readme.split("```yaml\n").skip(1).enumerate() {
        if let Some(end) = block.find("```") {
            v.push((
                format!("README.md yaml block {n}"),
                block[..end].to_string(),
            ));
        }
    }
    assert!(v.len() >= 2, "no configs found to mutate");
    v
}

/// Everything a valid config feeds at start: engine state and its first
/// evaluation, the Prometheus rules.
fn exercise(cfg: sentinel::config::Config) {
    let cfg = Arc::new(cfg);
    let now: jiff::Timestamp = "2026-06-15T12:00:00Z".parse().unwrap();
    let mut state = EngineState::new(Arc::clone(&cfg));
    let _ = state.evaluate(now);
    let _ = sentinel::rules::generate(&cfg);
}

#[test]
fn mutated_configs_never_panic() {
    let (seed, cases, only) = plan(5_000);
    let corpus = corpus();
    let trace = std::env::var_os("FUZZ_TRACE").is_some();
    let (mut ok, mut rejected, mut panics) = (0u64, 0u64, Vec::new());
    for i in 0..cases {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let mut rng = case_rng(seed, i);
        let (name, base) = rng.pick(&corpus);
        let text = mutate(&mut rng, base);
        if trace {
            eprintln!("case {i} from {name}");
        }
        let result =
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                match sentinel::config::parse_str(&text, "fuzz.yaml") {
                    Ok(cfg) => {
                        exercise(cfg);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }));
        match result {
            Ok(Ok(())) => ok += 1,
            Ok(Err(msg)) => {
                rejected += 1;
                assert!(
                    msg.contains("fuzz.yaml"),
                    "case {i} (seed {seed:#x}): error does not name the file: {msg}"
                );
                assert!(
                    !msg.contains("Nodes {") && !msg.contains("budget breached"),
                    "case {i} (seed {seed:#x}): error is Rust debug text: {msg}"
                );
            }
            Err(_) => panics.push(i),
        }
    }
    eprintln!(
        "config fuzz: seed {seed:#x}, {} cases: {ok} valid, {rejected} rejected, {} panics",
        ok + rejected + panics.len() as u64,
        panics.len()
    );
    assert!(
        panics.is_empty(),
        "panics in cases {panics:?} (seed {seed:#x}; rerun with FUZZ_ONLY=<case>)"
    );
    assert!(
        ok > 0 && rejected > 0,
        "mutations should produce both outcomes"
    );
}

/// A random JSON value of bounded depth.
fn random_json(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth == 0 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(2)),
        2 => json!(rng.next() as i64 >> rng.below(64)),
        3 => json!((rng.next() as f64) / 7.0),
        4 => json!(rng.pick(&["UP", "ok", "", "3", "ünï", "\u{0}"]).to_string()),
        5 | 6 => {
            let n = rng.below(4);
            Value::Array((0..n).map(|_| random_json(rng, depth - 1)).collect())
        }
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(4) {
                let k = rng.pick(&["a", "b", "status", "0", "", "a.b"]).to_string();
                m.insert(k, random_json(rng, depth - 1));
            }
            Value::Object(m)
        }
    }
}

#[test]
fn json_paths_never_panic() {
    let (seed, cases, only) = plan(20_000);
    let alphabet: Vec<char> = "$.[]'\"*0123ab\\ -_?@()".chars().collect();
    let mut parsed = 0u64;
    for i in 0..cases {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let mut rng = case_rng(seed ^ 0x1, i);
        let len = rng.below(24);
        let mut path: String = (0..len).map(|_| *rng.pick(&alphabet)).collect();
        if rng.chance(2) {
            path.insert(0, '$');
        }
        let doc = random_json(&mut rng, 4);
        let expected = random_json(&mut rng, 1);
        if let Ok(segments) = jsonpath::parse(&path) {
            parsed += 1;
            if let Some(v) = jsonpath::select(&doc, &segments) {
                let _ = jsonpath::matches(v, &expected);
                // A value always matches itself.
                assert!(
                    jsonpath::matches(v, v),
                    "case {i}: {v} does not match itself"
                );
            }
        }
    }
    assert!(parsed > 0, "no generated path parsed");
}

/// A copy of `v` with one random subtree (or the whole value) replaced by
/// random JSON: the field a parser reads gets the wrong type, goes missing
/// or nests where it should not.
fn graft(rng: &mut Rng, v: &Value) -> Value {
    if rng.chance(4) {
        return random_json(rng, 3);
    }
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut m = m.clone();
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = rng.pick(&keys).clone();
            match rng.below(3) {
                0 => {
                    m.remove(&k);
                }
                1 => {
                    let inner = graft(rng, &m[&k]);
                    m.insert(k, inner);
                }
                _ => {
                    m.insert(k, random_json(rng, 2));
                }
            }
            Value::Object(m)
        }
        Value::Array(a) if !a.is_empty() => {
            let mut a = a.clone();
            let i = rng.below(a.len());
            a[i] = graft(rng, &a[i]);
            Value::Array(a)
        }
        _ => random_json(rng, 2),
    }
}

/// Inbound hook payloads (after their signature checked out, so a provider
/// bug or a compromised secret, not anyone on the network) never panic the
/// parser: each provider's real shape with grafted subtrees, truncated
/// bytes and random bytes all end in an action, an ignore or a parse error.
#[test]
fn hook_payloads_never_panic() {
    use sentinel::config::HookProvider;
    use sentinel::inbound::parse::intent;
    use sentinel::inbound::{Intent, parse::SLACK_ACK_ACTION};
    let key = "sentinel/web/inc-web-1768467600-1";
    let id = "inc-web-1768467600-1";
    let slack_form = |payload: &Value| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
    };
    let samples: Vec<(HookProvider, Value)> = vec![
        (
            HookProvider::PagerDuty,
            json!({"event": {"id": "01DEV8PQZ7", "event_type": "incident.acknowledged",
                "resource_type": "incident", "agent": {"summary": "Alice", "type": "user_reference"},
                "data": {"id": "Q1ABC", "incident_key": key, "status": "acknowledged"}}}),
        ),
        (
            HookProvider::Opsgenie,
            json!({"source": {"name": "", "type": "web"}, "action": "Close",
                "alert": {"alias": key, "alertId": "8418d193", "tinyId": "14", "username": "alice"}}),
        ),
        (
            HookProvider::Slack,
            json!({"type": "block_actions", "user": {"id": "U1", "username": "alice"},
                "response_url": "https://hooks.slack.com/actions/T1/1/abc",
                "actions": [{"type": "button", "action_id": SLACK_ACK_ACTION, "value": id}]}),
        ),
        (
            HookProvider::ServiceNow,
            json!({"table": "incident", "sys_id": "9d38", "number": "INC0010001",
                "correlation_id": id, "state": "6", "sys_updated_by": "carol"}),
        ),
        (
            HookProvider::Jira,
            json!({"webhookEvent": "jira:issue_updated", "user": {"displayName": "Dana"},
                "issue": {"id": "10001", "key": "OPS-1", "fields": {"labels": [format!("sentinel-{id}")],
                    "status": {"statusCategory": {"key": "done"}}}},
                "changelog": {"items": [{"field": "status"}]}}),
        ),
    ];
    let body_of = |provider: HookProvider, v: &Value| -> Vec<u8> {
        match provider {
            HookProvider::Slack => slack_form(v).into_bytes(),
            _ => v.to_string().into_bytes(),
        }
    };
    // The unmutated samples are actions: the mutations start from real shapes.
    for (provider, v) in &samples {
        let got = intent(*provider, &body_of(*provider, v));
        assert!(
            matches!(got, Ok(Intent::Act(_))),
            "{provider:?} sample: {got:?}"
        );
    }
    let (seed, cases, only) = plan(20_000);
    let (mut acted, mut ignored, mut refused) = (0u64, 0u64, 0u64);
    for i in 0..cases {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let mut rng = case_rng(seed ^ 0x4008, i);
        let (provider, sample) = rng.pick(&samples);
        let body = match rng.below(6) {
            0 => {
                let mut b = body_of(*provider, sample);
                b.truncate(rng.below(b.len() + 1));
                b
            }
            1 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
            _ => {
                let mut v = graft(&mut rng, sample);
                if rng.chance(2) {
                    v = graft(&mut rng, &v);
                }
                body_of(*provider, &v)
            }
        };
        let got = std::panic::catch_unwind(AssertUnwindSafe(|| intent(*provider, &body)));
        match got {
            Ok(Ok(Intent::Act(a))) => {
                acted += 1;
                // Whoever the payload names (or nobody): a person, bounded,
                // as the API's `by` is.
                let n = a.by.chars().count();
                assert!(
                    (1..=200).contains(&n),
                    "case {i}: `by` of {n} characters: {:?}",
                    a.by
                );
            }
            Ok(Ok(Intent::Ignore(_))) => ignored += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!(
                "case {i} ({provider:?}) panicked on {:?}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
    eprintln!(
        "fuzz: hook payloads {cases} cases: {acted} acted, {ignored} ignored, {refused} refused, 0 panics"
    );
    if only.is_none() && cases >= 1000 {
        assert!(
            acted > 0 && ignored > 0 && refused > 0,
            "the mutations should reach every outcome: {acted} / {ignored} / {refused}"
        );
    }
}

/// HTTP bodies from a hostile server against every body matcher: the probe
/// always returns an outcome, and `body_contains` is judged exactly.
#[tokio::test]
async fn hostile_http_bodies_never_panic() {
    let (seed, cases, _) = plan(300);
    let cases = cases.min(2_000);
    let bodies: Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Arc::default();
    let served = Arc::clone(&bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let addr = servers::http_server(move |_req| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let list = served.lock().unwrap();
        let body = list.get(n).cloned().unwrap_or_default();
        let mut head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(&body);
        servers::Reply::Bytes(head)
    })
    .await;
    let prober = Prober::new().unwrap();
    let re = regex::Regex::new(r"(a|b)+\d*").unwrap();
    let mut rng = case_rng(seed ^ 0x2, 0);
    for i in 0..cases {
        let body: Vec<u8> = match rng.below(4) {
            0 => (0..rng.below(512)).map(|_| rng.next() as u8).collect(),
            1 => random_json(&mut rng, 5).to_string().into_bytes(),
            2 => {
                let mut b = random_json(&mut rng, 3).to_string().into_bytes();
                let cut = rng.below(b.len() + 1);
                b.truncate(cut);
                b
            }
            _ => format!(
                "{}ok{}",
                "[".repeat(rng.below(300)),
                "]".repeat(rng.below(300))
            )
            .into_bytes(),
        };
        bodies.lock().unwrap().push(body.clone());
        let needle = *rng.pick(&["ok", "UP", "\"a\"", "ü"]);
        let mut spec = servers::http_spec(&format!("http://{addr}/"));
        spec.expect = HttpExpect {
            body_contains: Some(needle.to_string()),
            body_regex: if rng.chance(2) {
                Some(re.clone())
            } else {
                None
            },
            json: if rng.chance(2) {
                vec![JsonExpectation::new("$.a.b[0]", random_json(&mut rng, 0))]
            } else {
                Vec::new()
            },
            ..spec.expect
        };
        let has_regex = spec.expect.body_regex.is_some();
        let has_json = !spec.expect.json.is_empty();
        let out = prober
            .run(&servers::check(ProbeSpec::Http(spec), 2_000))
            .await;
        let contains = body.windows(needle.len()).any(|w| w == needle.as_bytes());
        if !contains {
            assert_eq!(out.reason, Some(Reason::Body), "case {i}: {}", out.detail);
        } else if !has_regex && !has_json {
            assert_eq!(out.reason, None, "case {i}: {}", out.detail);
        } else {
            assert!(
                matches!(out.reason, None | Some(Reason::Body)),
                "case {i}: {:?} {}",
                out.reason,
                out.detail
            );
        }
    }
}

/// DNS replies mutated byte by byte (the id kept, so the parser is reached):
/// the probe returns an outcome with a closed reason, never panics.
#[tokio::test]
async fn hostile_dns_answers_never_panic() {
    use hickory_proto::op::{Message, OpCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    let (seed, cases, _) = plan(300);
    let cases = cases.min(2_000);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut rng = case_rng(seed ^ 0x3, 0);
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let q = req.queries[0].clone();
            let mut resp = Message::response(req.metadata.id, OpCode::Query);
            resp.add_query(q.clone());
            for k in 0..rng.below(4) {
                resp.add_answer(Record::from_rdata(
                    q.name().clone(),
                    60,
                    RData::A(A([10, 0, 0, k as u8].into())),
                ));
            }
            let mut bytes = resp.to_vec().unwrap();
            for _ in 0..1 + rng.below(6) {
                match rng.below(3) {
                    0 if bytes.len() > 2 => {
                        let at = 2 + rng.below(bytes.len() - 2);
                        bytes[at] = rng.next() as u8;
                    }
                    1 if bytes.len() > 2 => {
                        let at = 2 + rng.below(bytes.len() - 2);
                        bytes.truncate(at.max(2));
                    }
                    _ => bytes.push(rng.next() as u8),
                }
            }
            let _ = sock.send_to(&bytes, peer).await;
        }
    });
    let prober = Prober::new().unwrap();
    for i in 0..cases {
        let spec = sentinel::config::DnsSpec {
            name: "svc.test".into(),
            record: sentinel::config::RecordType::A,
            server: addr,
            expect: if i % 2 == 0 {
                vec!["10.0.0.1".into()]
            } else {
                Vec::new()
            },
        };
        let out = prober.run(&servers::check(ProbeSpec::Dns(spec), 500)).await;
        if let Some(r) = out.reason {
            assert!(
                matches!(
                    r,
                    // A mutated reply with the truncation bit set makes the
                    // probe retry over TCP, where nothing listens: refused.
                    Reason::Dns
                        | Reason::Protocol
                        | Reason::Timeout
                        | Reason::Network
                        | Reason::Refused
                ),
                "case {i}: unexpected reason {r:?}: {}",
                out.detail
            );
        }
    }
}

/// Hostile request bodies, content types and query strings against the real
/// daemon: every answer has an expected status, every error is JSON with an
/// `error` string, and the daemon stays healthy.
#[tokio::test]
async fn hostile_api_requests_get_json_errors() {
    let (seed, cases, _) = plan(400);
    let cases = cases.min(5_000);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sentinel.yaml");
    let refused = servers::refused_tcp();
    let closed = refused.port();
    std::fs::write(
        &cfg,
        format!(
            r#"
server: {{ listen: "127.0.0.1:0", api_token_env: FUZZ_TOKEN }}
storage: {{ path: "{}/s.db" }}
services:
  - name: web
    checks:
      - name: down
        interval: 200ms
        timeout: 100ms
        tcp: {{ host: 127.0.0.1, port: {closed} }}
    incident: {{ open_after: 1, resolve_after: 1, burn_rate_alerts: false }}
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let d = crate::support::daemon::Daemon::start(&cfg, &[("FUZZ_TOKEN", "t0ken")]);
    // A fresh connection per request: a server that answered an oversized
    // body early closes that connection, and a pooled reuse would race it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // Wait for the incident so ack reaches the engine with a real id.
    let id = eventually(
        secs(10),
        "an open incident",
        || format!("{:?}", d.log()),
        || async {
            let v: Value = client
                .get(d.url("/api/v1/incidents?state=open"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["incidents"][0]["id"].as_str().map(str::to_string)
        },
    )
    .await;

    let mut rng = case_rng(seed ^ 0x4, 0);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..cases {
        let body: Vec<u8> = match rng.below(7) {
            0 => (0..rng.below(256)).map(|_| rng.next() as u8).collect(),
            1 => random_json(&mut rng, 4).to_string().into_bytes(),
            2 => json!({"by": random_json(&mut rng, 1), "note": random_json(&mut rng, 1)})
                .to_string()
                .into_bytes(),
            3 => format!(
                "{}{}",
                "[".repeat(rng.below(5_000)),
                "]".repeat(rng.below(5_000))
            )
            .into_bytes(),
            4 => format!("{{\"by\":\"{}\"}}", "x".repeat(rng.below(2_000_000))).into_bytes(),
            5 => Vec::new(),
            _ => b"{\"by\":\"fuzz\",\"note\":\"\xff\xfe\"}".to_vec(),
        };
        let path = match rng.below(5) {
            0 => format!("/api/v1/incidents/{id}/ack"),
            1 => "/api/v1/incidents/inc-does-not-exist/resolve".to_string(),
            2 => format!(
                "/api/v1/incidents/{}/ack",
                "%FF%00..%2F".repeat(rng.below(4))
            ),
            3 => format!(
                "/api/v1/incidents?state={}",
                rng.pick(&["open", "all", "", "%ff", "x", "open&state=all"])
            ),
            _ => format!("/api/v1/incidents/{id}/ack"),
        };
        let body_len = body.len();
        let mut req = if path.contains('?') {
            client.get(d.url(&path))
        } else {
            client.post(d.url(&path)).body(body)
        };
        if !rng.chance(8) {
            req = req.header("authorization", "Bearer t0ken");
        }
        if let Some(ct) = rng.pick(&[
            Some("application/json"),
            Some("text/plain"),
            Some("application/json; charset=utf-8"),
            None,
        ]) {
            req = req.header("content-type", *ct);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            // A server may answer an oversized body early and close the
            // connection while the client is still sending it.
            Err(e) if body_len > sentinel::http::MAX_BODY_BYTES => {
                *statuses.entry(0).or_insert(0u32) += 1;
                eprintln!("case {i}: {body_len}-byte body: {e}");
                continue;
            }
            Err(e) => panic!("case {i}: {path}: {body_len}-byte body: {e}"),
        };
        let status = resp.status().as_u16();
        *statuses.entry(status).or_insert(0u32) += 1;
        assert!(
            [200, 202, 400, 401, 404, 405, 409, 413, 415, 422].contains(&status),
            "case {i}: {path}: unexpected status {status}"
        );
        let text = resp.text().await.unwrap();
        if status >= 400 {
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("case {i}: {path}: {status} body is not JSON ({e}): {text:.200}")
            });
            assert!(
                v["error"].is_string(),
                "case {i}: {path}: {status} without an error string: {text:.200}"
            );
        }
    }
    eprintln!("api fuzz: seed {seed:#x}, {cases} requests, statuses {statuses:?}");
    let h = client.get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200, "daemon unhealthy after the fuzz run");
    let _ = d.terminate();
}
