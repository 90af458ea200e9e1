//! The status page end to end: 45 days of history and two incidents written
//! through the real store, the real `sentinel` binary serving them, and
//! Debian's headless Chromium reading the page as a person would (DOM,
//! screenshots at 360 and 1280 px, the monthly report printed to PDF and read
//! back with `pdftotext`). The feed and the badges are parsed as XML.
//!
//! Artifacts (screenshots, the PDF) are kept under `target/test-artifacts/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use jiff::Timestamp;
use sentinel::clock::{Clock, SystemClock};
use sentinel::incident::{Incident, ResolvedBy, State, Trigger};
use sentinel::slo::Counts;
use sentinel::store::{BucketDelta, Store};

use crate::support::daemon::*;
use crate::support::servers::*;

const DAY: i64 = 86_400;
/// Days of history written before the daemon starts.
const HISTORY_DAYS: i64 = 45;
/// Text that must never reach a public view: probe details, targets, check
/// names, notifier names, the hidden service.
const INTERNAL: [&str; 7] = [
    "10.1.2.3",
    "alice",
    "sso-probe-xyz",
    "vpn-gw-check",
    "refused by",
    "internal-db",
    "oncall-pager",
];

struct Fixture {
    _dir: tempfile::TempDir,
    daemon: Daemon,
    up: SocketAddr,
    today: i64,
    /// (date, valid, good) written for identity on the known day.
    known_day: i64,
    report_day: i64,
    resolved_id: String,
    open_id: String,
    /// identity's hour-bucket history: (day start, valid, good).
    identity_days: Vec<(i64, u64, u64)>,
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn incident(
    service: &str,
    id: &str,
    started: i64,
    open: bool,
    acked: Option<i64>,
    restored: Option<i64>,
) -> Incident {
    Incident {
        id: id.to_string(),
        dedup_key: format!("sentinel/{service}/{id}"),
        service: service.to_string(),
        severity: "P1".into(),
        title: format!("{service} is failing"),
        reason: "check `sso-probe-xyz` failed 3 times in a row: refused by 10.1.2.3:636".into(),
        state: if open { State::Open } else { State::Resolved },
        trigger: Trigger::ChecksFailing,
        page_level: true,
        impact_started_at: ts(started),
        opened_at: ts(started + 60),
        acknowledged_at: acked.map(ts),
        acknowledged_by: acked.map(|_| "alice@oncall-pager".to_string()),
        ack_note: acked.map(|_| "looking at 10.1.2.3".to_string()),
        restored_at: restored.map(ts),
        resolved_at: restored.map(|r| ts(r + 60)),
        resolved_by: restored.map(|_| ResolvedBy::Auto),
        ack_source: None,
        resolve_source: None,
        acknowledgements: Vec::new(),
        ack_escalated_at: None,
        escalated_to: Vec::new(),
        events_emitted: 1,
        updates: Vec::new(),
    }
}

/// History through the real store, then the daemon on top of it.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let now = SystemClock.now().as_second();
    let today = now.div_euclid(DAY) * DAY;
    let known_day = today - 3 * DAY;
    let report_day = today - 40 * DAY;

    let store = Store::open(&db).unwrap();
    let mut deltas = Vec::new();
    let mut identity_days = Vec::new();
    for k in 1..=HISTORY_DAYS {
        let day = today - k * DAY;
        let (valid, good) = match day {
            d if d == known_day => (2880, 2877),
            d if d == report_day => (2880, 2850),
            _ => (2880, 2880),
        };
        identity_days.push((day, valid, good));
        // Split over two hours and two checks: the page sums them.
        for (check, hour, v, g) in [
            ("sso-probe-xyz", 2, valid / 2, good / 2),
            ("ldap", 15, valid - valid / 2, good - good / 2),
        ] {
            deltas.push(BucketDelta {
                service: "identity".into(),
                check: check.into(),
                at_minute: day + hour * 3600,
                counts: Counts {
                    valid: v,
                    good: g,
                    latency_good: g,
                },
            });
        }
        for svc in ["vpn", "mail", "internal-db"] {
            deltas.push(BucketDelta {
                service: svc.into(),
                check: "c".into(),
                at_minute: day + 7200,
                counts: Counts {
                    valid: 1440,
                    good: 1440,
                    latency_good: 1440,
                },
            });
        }
    }
    store.add_counts(deltas).await.unwrap();

    let start = report_day + 10 * 3600;
    let resolved = incident(
        "identity",
        &format!("inc-identity-{}-1", start + 60),
        start,
        false,
        Some(start + 60 + 240),
        Some(start + 1800),
    );
    let open_start = now - 1200;
    let open = incident(
        "vpn",
        &format!("inc-vpn-{}-1", open_start + 60),
        open_start,
        true,
        None,
        None,
    );
    let hidden = incident(
        "internal-db",
        "inc-internal-db-1-1",
        now - 600,
        true,
        None,
        None,
    );
    for inc in [&resolved, &open, &hidden] {
        store
            .save_incident(
                inc.id.clone(),
                inc.service.clone(),
                inc.state.as_str().into(),
                inc.opened_at.as_second(),
                inc.to_json().unwrap(),
                vec![],
            )
            .await
            .unwrap();
    }
    store.close().await.unwrap();

    let up = start_target(Arc::new(AtomicBool::new(true))).await;
    let down = start_target(Arc::new(AtomicBool::new(false))).await;
    let cfg = format!(
        r#"
server:
  listen: 127.0.0.1:0
storage:
  path: {db}
notifiers:
  - name: oncall-pager
    type: webhook
    url: http://127.0.0.1:9/hooks
response_targets:
  P1: {{ acknowledge: 10m, restore: 2h }}
status_page:
  title: ACME IT status
  services: [identity, vpn, mail]
services:
  - name: identity
    description: Single sign-on
    checks:
      - name: sso-probe-xyz
        interval: 1s
        http: {{ url: "http://{up}/health" }}
      - name: ldap
        interval: 1s
        tcp: {{ host: 127.0.0.1, port: {up_port} }}
    slo: {{ objective: 99.9, window: 30d }}
    incident: {{ severity: P1, notify: [oncall-pager] }}
  - name: vpn
    description: Remote access
    checks:
      - name: vpn-gw-check
        interval: 1s
        http: {{ url: "http://{down}/health" }}
    slo: {{ objective: 99.5, window: 30d }}
    incident: {{ severity: P1 }}
  - name: mail
    description: "<script>document.title='pwned'</script> Mail & calendar"
    checks:
      - name: smtp
        interval: 1s
        tcp: {{ host: 127.0.0.1, port: {up_port} }}
  - name: internal-db
    checks:
      - name: c
        interval: 1s
        tcp: {{ host: 127.0.0.1, port: {up_port} }}
"#,
        db = db.display(),
        up_port = up.port(),
    );
    let cfg_path = dir.path().join("sentinel.yaml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let daemon = Daemon::start(&cfg_path, &[]);
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let r = client.get(daemon.url("/readyz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Wait for a check result of every shown service, so states are known.
    for _ in 0..200 {
        let j: serde_json::Value = client
            .get(daemon.url("/status.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let states: Vec<&str> = j["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["state"].as_str().unwrap())
            .collect();
        if states == ["operational", "outage", "operational"] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Fixture {
        _dir: dir,
        daemon,
        up,
        today,
        known_day,
        report_day,
        resolved_id: resolved.id,
        open_id: open.id,
        identity_days,
    }
}

/// Headless Chromium with the flags this machine needs, a fresh profile, and
/// every host name except 127.0.0.1 unresolvable.
pub(crate) fn chromium(args: &[String], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("90")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium is required for this test: apt-get install -y chromium (scripts/test.sh does)");
    assert!(
        out.status.success(),
        "chromium failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(b[20..24].try_into().unwrap());
    (w, h)
}

/// The bars (list items) of each `<ol class="bars">` in serialized DOM.
fn bar_lists(dom: &str) -> Vec<Vec<String>> {
    dom.split("<ol class=\"bars\"")
        .skip(1)
        .map(|rest| {
            let list = &rest[..rest.find("</ol>").unwrap()];
            list.split("<li ")
                .skip(1)
                .map(|li| li[..li.find("</li>").unwrap()].to_string())
                .collect()
        })
        .collect()
}

/// `pct` of the page: truncated to 3 decimals, trailing zeros dropped.
fn pct(good: u64, valid: u64) -> String {
    let t = good * 100_000 / valid;
    let (int, frac) = (t / 1000, t % 1000);
    if frac == 0 {
        format!("{int}%")
    } else {
        format!("{int}.{}%", format!("{frac:03}").trim_end_matches('0'))
    }
}

fn date_text(day: i64) -> String {
    ts(day)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .strftime("%-d %b %Y")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_services_bars_figures_and_the_open_incident_in_chromium() {
    let f = fixture().await;
    let url = f.daemon.url("/status");

    // The DOM after Chromium loaded the page.
    let out = chromium(&["--dump-dom".into()], &url);
    let dom = String::from_utf8(out.stdout).unwrap();
    assert!(
        dom.contains("<title>ACME IT status</title>"),
        "the description's script must not run"
    );
    for name in ["identity", "vpn", "mail"] {
        assert!(
            dom.contains(&format!("<h3>{name}</h3>")),
            "service {name} shown"
        );
    }
    assert!(
        !dom.to_ascii_lowercase().contains("<script"),
        "no script element"
    );
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt; Mail &amp; calendar"),
        "the description shows as text"
    );
    let lists = bar_lists(&dom);
    assert_eq!(lists.len(), 3);
    for bars in &lists {
        assert_eq!(bars.len(), 90, "90 daily bars per service");
        assert!(
            bars.iter().all(|b| b.contains("tabindex=\"0\"")),
            "every bar is focusable"
        );
    }
    // identity: the known day, exact figure from 2877 of 2880 runs, below 99.9 %.
    let known = &lists[0][(89 - 3) as usize];
    assert!(
        known.contains(&format!(
            "{}: 99.895% available, below objective",
            date_text(f.known_day)
        )),
        "{known}"
    );
    assert!(
        known.starts_with("class=\"w\""),
        "below objective is amber: {known}"
    );
    // A full day is green with 100 %, the report day far below with its incident.
    let full = &lists[0][(89 - 2) as usize];
    assert!(
        full.contains("100% available") && full.starts_with("class=\"m\""),
        "{full}"
    );
    let bad = &lists[0][(89 - 40) as usize];
    assert!(
        bad.contains("98.958% available, far below objective")
            // Two checks, one failing: degraded, not unavailable.
            && bad.contains("Incident: Service degraded (P1)"),
        "{bad}"
    );
    // Older than the history: no data; today: so far.
    assert!(lists[0][0].contains("no data") && lists[0][0].starts_with("class=\"n\""));
    assert!(lists[0][89].contains("(today so far)"));

    // The open incident, with whether IT knows.
    assert!(dom.contains("Current incidents"));
    assert!(dom.contains(&format!("id=\"{}\"", f.open_id)));
    assert!(dom.contains("vpn: Service unavailable"));
    assert!(dom.contains("Not yet acknowledged"));
    assert!(dom.contains("Outage: 1 of 3 services affected: vpn (outage)"));
    // The 90-day history holds the resolved incident from the store.
    assert!(dom.contains(&format!("id=\"{}\"", f.resolved_id)));
    assert!(dom.contains("Acknowledged: the IT team is working on it"));
    for secret in INTERNAL {
        assert!(!dom.contains(secret), "`{secret}` leaked into the page");
    }
    assert!(!dom.contains(&f.up.to_string()), "probe target leaked");

    // Nothing outside 127.0.0.1: no asset URLs at all, only relative links,
    // and a policy that forbids anything else.
    let resp = reqwest::get(&url).await.unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));
    let html = resp.text().await.unwrap();
    assert!(!html.contains(" src="), "no external or internal asset");
    for href in html.split("href=").skip(1) {
        let target = href.trim_start_matches('"');
        assert!(
            !target.starts_with("http") && !target.starts_with("//"),
            "absolute link: {}",
            &target[..target.len().min(60)]
        );
    }
    assert!(
        !html.contains("@import") && !html.contains("url("),
        "no CSS fetches"
    );

    // Screenshots at phone and desk widths, kept for people to look at.
    let dir = artifacts();
    for (w, h) in [(360u32, 2400u32), (1280, 1600)] {
        let path = dir.join(format!("status-{w}.png"));
        let _ = std::fs::remove_file(&path);
        chromium(
            &[
                format!("--screenshot={}", path.display()),
                format!("--window-size={w},{h}"),
            ],
            &url,
        );
        assert_eq!(png_size(&path), (w, h));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_badges_and_json_carry_the_same_public_data() {
    let f = fixture().await;
    let client = reqwest::Client::new();

    // GET / redirects to the page.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect.get(f.daemon.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "status");

    // Browsers get the page gzipped; it inflates to the plain body.
    let plain = client.get(f.daemon.url("/status")).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.text().await.unwrap();
    let gz = client
        .get(f.daemon.url("/status"))
        .header("accept-encoding", "br, gzip;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["vary"], "accept-encoding");
    let bytes = gz.bytes().await.unwrap();
    let mut inflated = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut inflated)
        .unwrap();
    assert!(bytes.len() < plain.len());
    assert!(inflated.starts_with("<!DOCTYPE html>") && inflated.contains("<h3>identity</h3>"));

    // JSON: the shown services in order, 90 days each, exact counts.
    let j: serde_json::Value = client
        .get(f.daemon.url("/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = j["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["identity", "vpn", "mail"]);
    let identity = &j["services"][0];
    assert_eq!(identity["days"].as_array().unwrap().len(), 90);
    let known = &identity["days"][86];
    assert_eq!(known["valid"], 2880);
    assert_eq!(known["good"], 2877);
    assert_eq!(known["grade"], "below");
    assert_eq!(
        known["date"],
        ts(f.known_day)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .to_string()
    );
    // 90-day availability: exactly the written counts (today's live runs aside).
    let (v, g): (u64, u64) = f
        .identity_days
        .iter()
        .fold((0, 0), |(v, g), (_, dv, dg)| (v + dv, g + dg));
    let today_bar = &identity["days"][89];
    let (tv, tg) = (
        today_bar["valid"].as_u64().unwrap(),
        today_bar["good"].as_u64().unwrap(),
    );
    assert_eq!(
        identity["availability_90d"].as_f64().unwrap(),
        (g + tg) as f64 / (v + tv) as f64
    );
    assert_eq!(j["services"][1]["state"], "outage");
    assert_eq!(j["open_incidents"][0]["id"], f.open_id.as_str());
    assert_eq!(j["open_incidents"][0]["acknowledged"], false);
    assert_eq!(j["open_incidents"][0]["updates"], serde_json::json!([]));
    assert_eq!(j["past_incidents"][0]["id"], f.resolved_id.as_str());
    assert_eq!(j["past_incidents"][0]["duration_seconds"], 1800);
    let text = j.to_string();
    for secret in INTERNAL {
        assert!(!text.contains(secret), "`{secret}` leaked into status.json");
    }

    // Atom: well-formed, one entry per shown incident, ids and links right.
    let feed = client
        .get(f.daemon.url("/status/feed.atom"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        feed.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let feed = feed.text().await.unwrap();
    let doc = roxmltree::Document::parse(&feed).expect("the feed is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "feed");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2005/Atom")
    );
    let child = |n: roxmltree::Node<'_, '_>, name: &str| {
        n.children()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .map(str::to_string)
    };
    assert_eq!(
        child(root, "title").as_deref(),
        Some("ACME IT status: incidents")
    );
    let entries: Vec<_> = root
        .children()
        .filter(|c| c.tag_name().name() == "entry")
        .collect();
    let mut ids: Vec<String> = entries.iter().map(|e| child(*e, "id").unwrap()).collect();
    ids.sort();
    let mut want = vec![
        format!("urn:sentinel:incident:{}", f.open_id),
        format!("urn:sentinel:incident:{}", f.resolved_id),
    ];
    want.sort();
    assert_eq!(
        ids, want,
        "one entry per shown incident; the hidden service's is absent"
    );
    for e in &entries {
        for required in ["id", "title", "updated"] {
            assert!(child(*e, required).is_some(), "entry without {required}");
        }
        child(*e, "updated").unwrap().parse::<Timestamp>().unwrap();
        let link = e
            .children()
            .find(|c| c.tag_name().name() == "link")
            .unwrap()
            .attribute("href")
            .unwrap();
        assert!(link.starts_with("../status#inc-"), "{link}");
    }
    for secret in INTERNAL {
        assert!(!feed.contains(secret), "`{secret}` leaked into the feed");
    }

    // Badges: parsed SVG whose text is the figure.
    let svg_texts = |body: &str| -> Vec<String> {
        let doc = roxmltree::Document::parse(body).expect("badge is well-formed SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants()
            .filter(|n| n.tag_name().name() == "text")
            .filter_map(|n| n.text().map(str::to_string))
            .collect()
    };
    let badge = |path: &'static str| {
        let client = client.clone();
        let url = f.daemon.url(path);
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = badge("/badge/vpn.svg").await;
    assert_eq!(status, 200);
    assert!(svg_texts(&body).contains(&"outage".to_string()), "{body}");
    let (status, body) = badge("/badge/identity.svg?metric=status").await;
    assert_eq!(status, 200);
    assert!(
        svg_texts(&body).contains(&"operational".to_string()),
        "{body}"
    );
    let (_, body) = badge("/badge/identity.svg?metric=availability").await;
    let texts = svg_texts(&body);
    assert!(texts.contains(&"identity 30d".to_string()), "{texts:?}");
    let figure = j["services"][0]["slo"]["availability"].as_f64().unwrap();
    assert!(figure > 0.99 && figure < 1.0, "{figure}");
    assert!(
        texts
            .iter()
            .any(|t| t.ends_with('%') && t.starts_with("99.")),
        "{texts:?}"
    );
    for (path, want) in [
        ("/badge/internal-db.svg", 404),
        ("/badge/nope.svg", 404),
        ("/badge/identity.png", 404),
        ("/badge/identity.svg?metric=latency", 400),
    ] {
        let (status, body) = badge(path).await;
        assert_eq!(status, want, "{path}");
        let err: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(err["error"].is_string(), "{path}: {body}");
    }
    let _ = f.today;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_prints_to_pdf_with_every_service() {
    let f = fixture().await;
    let month = ts(f.report_day)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m")
        .to_string();
    let url = f.daemon.url(&format!("/status/report?month={month}"));
    let pdf = artifacts().join("status-report.pdf");
    let _ = std::fs::remove_file(&pdf);
    chromium(
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
        ],
        &url,
    );
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext is required: apt-get install -y poppler-utils (scripts/test.sh does)");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let info = Command::new("pdfinfo").arg(&pdf).output().unwrap();
    let info = String::from_utf8(info.stdout).unwrap();
    let pages: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&pages), "{pages} pages:\n{text}");

    assert!(text.contains("monthly operations report"), "{text}");
    let label = ts(f.report_day)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%B %Y")
        .to_string();
    assert!(text.contains(&label), "{text}");
    for name in ["identity", "vpn", "mail", "Single sign-on", "Remote access"] {
        assert!(text.contains(name), "{name} missing from the PDF:\n{text}");
    }
    // identity's availability over the month: exactly the written days in it.
    let (start, end) = {
        let d = ts(f.report_day)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .first_of_month();
        let s = d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_second();
        let e = d
            .checked_add(jiff::Span::new().months(1))
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_second();
        (s, e)
    };
    let (v, g) = f
        .identity_days
        .iter()
        .filter(|(d, _, _)| start <= *d && *d < end)
        .fold((0, 0), |(v, g), (_, dv, dg)| (v + dv, g + dg));
    let figure = pct(g, v);
    assert!(
        text.contains(&figure),
        "identity's {figure} missing:\n{text}"
    );
    assert!(text.contains(&format!("{g} of {v}")), "{text}");
    // The incident of that month: MTTA 4m, MTTR 30m, both within the P1 targets.
    assert!(text.contains("4m") && text.contains("30m"), "{text}");
    assert!(
        text.contains("target 10m") && text.contains("target 2h"),
        "{text}"
    );
    assert!(text.contains("1 of 1"), "{text}");
    for secret in INTERNAL {
        assert!(!text.contains(secret), "`{secret}` leaked into the report");
    }
    // A bad month is a JSON 400.
    let r = reqwest::get(f.daemon.url("/status/report?month=2026-13"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let _ = f.today;
}
