//! State-machine and MTTx tests on exact timestamps.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::config::{IncidentPolicy, ResponseTarget};

const BASE: i64 = 1_800_000_000;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(BASE + s).unwrap()
}

fn policy(open_after: u32, resolve_after: u32) -> IncidentPolicy {
    IncidentPolicy {
        open_after,
        resolve_after,
        burn_rate_alerts: true,
        severity: "P1".to_string(),
        notify: vec![],
    }
}

/// One input to the machine, at second `.0` after BASE.
#[derive(Debug, Clone)]
enum In {
    Run(i64, &'static str, bool),
    /// A run inside a maintenance window.
    MaintRun(i64, &'static str, bool),
    Alerts(i64, Option<&'static str>, Option<&'static str>),
    MaintAlerts(i64, Option<&'static str>, Option<&'static str>),
    AckBy(i64, &'static str),
    ResolveBy(i64, &'static str),
}

use In::{AckBy, Alerts, MaintAlerts, MaintRun, ResolveBy, Run};

fn apply(m: &mut ServiceIncidents, input: &In) -> Vec<Change> {
    let id = m.open_incident().map(|i| i.id.clone()).unwrap_or_default();
    match *input {
        Run(s, c, g) => m.on_run(t(s), c, g, "status 503 not in [200]", false),
        MaintRun(s, c, g) => m.on_run(t(s), c, g, "status 503 not in [200]", true),
        Alerts(s, p, k) => m.on_alerts(t(s), p, k, false),
        MaintAlerts(s, p, k) => m.on_alerts(t(s), p, k, true),
        AckBy(s, by) => match m.ack(t(s), &id, by, Some("looking")).unwrap() {
            Ack::Changed(c) => vec![c],
            Ack::AlreadyAcked(_) => vec![],
        },
        ResolveBy(s, by) => vec![m.resolve(t(s), &id, by).unwrap()],
    }
}

/// Run `script` on a fresh machine for service `identity`; assert that the
/// changes are exactly `expected` as (script index, kind); return them.
fn check(
    p: IncidentPolicy,
    script: &[In],
    expected: &[(usize, ChangeKind)],
) -> (ServiceIncidents, Vec<Change>) {
    let mut m = ServiceIncidents::new("identity", &p, None, 0);
    let mut got = Vec::new();
    let mut all = Vec::new();
    for (i, input) in script.iter().enumerate() {
        for c in apply(&mut m, input) {
            got.push((i, c.kind.clone()));
            all.push(c);
        }
    }
    assert_eq!(got, expected, "changes of script {script:?}");
    (m, all)
}

fn service(p: IncidentPolicy, checks: &[&str]) -> crate::config::Service {
    use crate::config::{Check, ProbeSpec, Service, TcpSpec};
    Service {
        name: "identity".into(),
        description: None,
        owner: None,
        tier: None,
        checks: checks
            .iter()
            .map(|n| Check {
                name: n.to_string(),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                probe: ProbeSpec::Tcp(TcpSpec {
                    host: "127.0.0.1".into(),
                    port: 1,
                    tls: false,
                    tls_verify: true,
                    server_name: None,
                    send: None,
                    expect: None,
                    cert_min_days: None,
                }),
            })
            .collect(),
        slo: None,
        incident: p,
    }
}

/// `svc` with a 99.9 % / 30d SLO, so burn-rate alerts apply to it.
fn with_slo(mut svc: crate::config::Service) -> crate::config::Service {
    svc.slo = Some(crate::config::Slo {
        objective: 0.999,
        window: crate::config::SloWindow::Rolling(Duration::from_secs(30 * 86_400)),
        latency: None,
    });
    svc
}

mod ack;
mod escalation;
mod mttx;
mod open;
mod proptests;
mod resolve;
mod restart;
