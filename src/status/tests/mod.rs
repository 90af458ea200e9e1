//! The page model, renderers and report on fixed inputs, with exact numbers.

use jiff::Timestamp;

use super::model::*;
use super::{DAYS, History, atom, badge, html};
use crate::incident::{AlertLevel, Incident, ResolvedBy, State, Trigger, Update};
use crate::slo::Counts;

pub(super) const DAY: i64 = 86_400;
/// 2026-03-20T15:00:00Z: "now" in these tests.
pub(super) const NOW: i64 = 1_774_018_800;
pub(super) const TODAY: i64 = NOW - NOW % DAY;
pub(super) const REASON: &str =
    "check `sso-login` failed 3 times in a row: connect 10.9.8.7:443 refused";

pub(super) fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

pub(super) fn counts(valid: u64, good: u64) -> Counts {
    Counts {
        valid,
        good,
        latency_good: good,
    }
}

pub(super) fn incident(service: &str, n: u32, start: i64, end: Option<i64>) -> Incident {
    let id = format!("inc-{service}-{start}-{n}");
    Incident {
        dedup_key: format!("sentinel/{service}/{id}"),
        id,
        service: service.into(),
        severity: "P1".into(),
        title: format!("{service} is failing"),
        reason: REASON.into(),
        state: if end.is_some() {
            State::Resolved
        } else {
            State::Open
        },
        trigger: Trigger::ChecksFailing,
        page_level: true,
        impact_started_at: ts(start),
        opened_at: ts(start + 60),
        acknowledged_at: Some(ts(start + 300)),
        acknowledged_by: Some("bob.secret-person".into()),
        ack_note: Some("private note".into()),
        restored_at: end.map(ts),
        resolved_at: end.map(|e| ts(e + 60)),
        resolved_by: end.map(|_| ResolvedBy::User("carol".into())),
        ack_source: Some(crate::incident::Source::Slack),
        resolve_source: end.map(|_| crate::incident::Source::Jira),
        acknowledgements: Vec::new(),
        ack_escalated_at: None,
        escalated_to: Vec::new(),
        events_emitted: 2,
        updates: Vec::new(),
    }
}

pub(super) fn service(name: &str, checks: usize) -> ServiceInput {
    ServiceInput {
        name: name.into(),
        description: Some(format!("{name} for everyone")),
        checks_up: vec![Some(true); checks],
        slo: Some(SloInput {
            objective: 0.999,
            window: "30d".into(),
            availability: Some(0.9995),
        }),
        in_maintenance: false,
        open_incident: None,
        alerts_team: true,
    }
}

pub(super) struct Case {
    services: Vec<ServiceInput>,
    snapshot: Vec<Incident>,
    history: History,
    show_incidents: bool,
}

impl Case {
    fn new(services: Vec<ServiceInput>, history: History) -> Case {
        Case {
            services,
            snapshot: Vec::new(),
            history,
            show_incidents: true,
        }
    }

    fn page(&self) -> Page {
        build(&PageInput {
            title: "IT <status> & more".into(),
            show_incidents: self.show_incidents,
            now: ts(NOW),
            services: self.services.clone(),
            snapshot_incidents: &self.snapshot,
            history: &self.history,
        })
    }
}

#[test]
pub(super) fn ninety_bars_carry_exact_daily_figures_from_bucket_sums() {
    // web: 2 days ago 2877 of 2880 good, 10 days ago 2000 of 2880, yesterday
    // 1440 of 1440, today so far 600 of 600; 89 days ago 1 of 2; 90 days ago
    // (one day before the first bar) is not shown.
    let history = History::from_days(
        [
            ("web".to_string(), TODAY - 2 * DAY, counts(2880, 2877)),
            (
                "web".to_string(),
                TODAY - 10 * DAY + 7200,
                counts(2880, 2000),
            ),
            ("web".to_string(), TODAY - DAY, counts(1440, 1440)),
            ("web".to_string(), TODAY, counts(600, 600)),
            ("web".to_string(), TODAY - 89 * DAY, counts(2, 1)),
            ("web".to_string(), TODAY - 90 * DAY, counts(1000, 0)),
        ],
        vec![],
    );
    let page = Case::new(vec![service("web", 2)], history).page();
    let web = &page.services[0];
    assert_eq!(web.days.len(), DAYS);
    assert_eq!(page.first_day.to_string(), "2025-12-21");
    assert_eq!(page.last_day.to_string(), "2026-03-20");
    assert_eq!(web.days[0].date, page.first_day);
    assert_eq!(web.days[89].date, page.last_day);

    let d = &web.days[87];
    assert_eq!((d.valid, d.good), (2880, 2877));
    assert_eq!(d.availability, Some(2877.0 / 2880.0));
    assert_eq!(d.grade, Grade::Below);
    let d = &web.days[79];
    assert_eq!(d.availability, Some(2000.0 / 2880.0));
    assert_eq!(d.grade, Grade::FarBelow);
    assert_eq!(web.days[88].grade, Grade::Met);
    assert!(web.days[89].partial && !web.days[88].partial);
    assert_eq!((web.days[0].valid, web.days[0].good), (2, 1));
    assert_eq!(web.days[1].grade, Grade::NoData);
    assert_eq!(web.days[1].availability, None);
    assert_eq!(
        web.availability_90d,
        Some((2877.0 + 2000.0 + 1440.0 + 600.0 + 1.0) / (2880.0 * 2.0 + 1440.0 + 600.0 + 2.0))
    );

    let out = html::page(&page);
    assert_eq!(out.matches("<ol class=bars").count(), 1);
    assert_eq!(out.matches("<li class=").count(), 90);
    assert!(out.contains("<span>18 Mar 2026: 99.895% available, below objective</span>"));
    assert!(out.contains("<span>20 Mar 2026 (today so far): 100% available</span>"));
    assert!(out.contains("<span>22 Dec 2025: no data</span>"));
    assert!(out.contains(
        "<li class=b tabindex=0><span>10 Mar 2026: 69.444% available, far below objective"
    ));
}

#[test]
pub(super) fn grades_are_relative_to_the_objective() {
    for (a, want) in [
        (None, Grade::NoData),
        (Some(1.0), Grade::Met),
        (Some(0.999), Grade::Met),
        (Some(0.99899), Grade::Below),
        (Some(0.99), Grade::Below),
        (Some(0.98999), Grade::FarBelow),
        (Some(0.0), Grade::FarBelow),
    ] {
        assert_eq!(Grade::of(a, 0.999), want, "{a:?}");
    }
    // A service without an SLO is coloured against 99.9 %.
    let mut s = service("plain", 1);
    s.slo = None;
    let page = Case::new(
        vec![s],
        History::from_days([("plain".to_string(), TODAY, counts(1000, 998))], vec![]),
    )
    .page();
    assert_eq!(page.services[0].bar_objective, DEFAULT_BAR_OBJECTIVE);
    assert_eq!(page.services[0].days[89].grade, Grade::Below);
    assert!(html::page(&page).contains("<b>99.8%</b> available over 90 days"));
}

#[test]
pub(super) fn incidents_show_impact_and_severity_never_their_reason_or_people() {
    let resolved = incident(
        "web",
        1,
        TODAY - 5 * DAY + 3600,
        Some(TODAY - 5 * DAY + 5400),
    );
    let open = incident("mail", 2, NOW - 1800, None);
    let mut case = Case::new(
        vec![service("web", 2), service("mail", 1)],
        History::from_days([], vec![resolved.clone()]),
    );
    case.snapshot = vec![open.clone()];
    case.services[1].open_incident = Some(open.id.clone());
    case.services[1].checks_up = vec![Some(false)];
    let page = case.page();

    assert_eq!(page.open_incidents.len(), 1);
    assert_eq!(page.past_incidents.len(), 1);
    let o = &page.open_incidents[0];
    assert_eq!(o.title, "mail: Service unavailable");
    assert_eq!(o.status, "investigating");
    assert!(o.acknowledged);
    let p = &page.past_incidents[0];
    // Two checks, not all down: degraded. Restored 30 min after impact start.
    assert_eq!(p.impact, Impact::Degraded);
    assert_eq!(p.duration_seconds, 1800);
    assert_eq!(p.status, "resolved");
    let kinds: Vec<&str> = p.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        ["started", "opened", "acknowledged", "restored", "resolved"]
    );
    assert_eq!(page.services[1].state, PublicState::Outage);
    assert_eq!(page.services[0].state, PublicState::Operational);
    assert_eq!(page.overall.state, PublicState::Outage);
    assert_eq!(
        page.overall.text,
        "Outage: 1 of 2 services affected: mail (outage)"
    );
    // The resolved incident marks its day's bar.
    assert_eq!(page.services[0].days[84].incidents.len(), 1);
    assert_eq!(page.services[0].days[85].incidents.len(), 0);
    // The open one marks today only.
    assert_eq!(page.services[1].days[89].incidents.len(), 1);
    assert_eq!(page.services[1].days[88].incidents.len(), 0);

    let json = serde_json::to_string(&page).unwrap();
    let out = html::page(&page);
    let feed = atom::feed(&page);
    for text in [&json, &out, &feed] {
        for secret in [
            "sso-login",
            "10.9.8.7",
            "refused",
            "bob",
            "private note",
            "carol",
        ] {
            assert!(!text.contains(secret), "`{secret}` leaked");
        }
    }
}

#[test]
pub(super) fn the_page_says_the_team_was_alerted_only_when_someone_was() {
    let mut open = incident("web", 1, NOW - 600, None);
    open.acknowledged_at = None;
    let mut case = Case::new(vec![service("web", 1)], History::default());
    case.snapshot = vec![open];
    let alerted = html::page(&case.page());
    assert!(alerted.contains("Detected by monitoring; the IT team was alerted"));
    assert!(alerted.contains("the on-call team has been alerted"));
    case.services[0].alerts_team = false;
    let page = case.page();
    assert!(!page.open_incidents[0].team_alerted);
    let quiet = html::page(&page);
    assert!(quiet.contains("Detected by monitoring</li>"));
    assert!(!quiet.contains("alerted"));
}

#[test]
pub(super) fn impact_follows_checks_and_trigger() {
    let now = ts(NOW);
    let mut inc = incident("x", 1, NOW - 600, None);
    let impact = |inc: &Incident, checks: usize, all_down: bool| {
        let mut svc = service("x", checks);
        if all_down {
            svc.checks_up = vec![Some(false); checks];
        }
        PublicIncident::from_incident(inc, &svc, now).impact
    };
    assert_eq!(impact(&inc, 1, false), Impact::Unavailable);
    assert_eq!(impact(&inc, 3, false), Impact::Degraded);
    assert_eq!(impact(&inc, 3, true), Impact::Unavailable);
    inc.trigger = Trigger::BurnRate {
        level: AlertLevel::Ticket,
    };
    assert_eq!(impact(&inc, 1, false), Impact::Degraded);
    // Resolved: "all down now" says nothing about the past.
    let done = incident("x", 1, NOW - 600, Some(NOW - 300));
    assert_eq!(impact(&done, 3, true), Impact::Degraded);
}

#[test]
pub(super) fn human_updates_join_the_timeline_set_the_status_and_are_escaped() {
    let mut open = incident("web", 1, NOW - 3600, None);
    open.updates = vec![
        Update {
            at: ts(NOW - 600),
            status: UpdateStatus::Monitoring,
            message: "Fix deployed <b>now</b> & watching".into(),
            by: "dave.private-person".into(),
        },
        Update {
            at: ts(NOW - 3000),
            status: UpdateStatus::Identified,
            message: "Certificate expired".into(),
            by: "dave.private-person".into(),
        },
    ];
    let mut case = Case::new(vec![service("web", 1)], History::default());
    case.snapshot = vec![open.clone()];
    let page = case.page();
    let o = &page.open_incidents[0];
    assert_eq!(o.status, "monitoring", "the latest update's status");
    assert_eq!(o.updates.len(), 2);
    assert_eq!(o.updates[0].message, "Certificate expired", "oldest first");
    let texts: Vec<&str> = o.timeline.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Problems began",
            "Detected by monitoring; the IT team was alerted",
            "Acknowledged: the IT team is working on it",
            "Identified: Certificate expired",
            "Monitoring: Fix deployed <b>now</b> & watching",
        ]
    );
    let out = html::page(&page);
    assert!(out.contains("Monitoring: Fix deployed &lt;b&gt;now&lt;/b&gt; &amp; watching"));
    assert!(!out.contains("<b>now</b>"));
    // One feed entry for the incident and one per update.
    let feed = atom::feed(&page);
    let doc = roxmltree::Document::parse(&feed).unwrap();
    let ids: Vec<String> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "entry")
        .filter_map(|e| {
            e.children()
                .find(|c| c.tag_name().name() == "id")
                .and_then(|c| c.text())
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        ids,
        [
            format!("urn:sentinel:incident:{}:update:2", open.id),
            format!("urn:sentinel:incident:{}", open.id),
            format!("urn:sentinel:incident:{}:update:1", open.id),
        ],
        "newest first: the monitoring update, the incident (updated by it), the first update"
    );
    assert!(feed.contains("Fix deployed &lt;b&gt;now&lt;/b&gt; &amp; watching"));
    // Who posted an update is the team's business, not the public's.
    let json = serde_json::to_string(&page).unwrap();
    for view in [&out, &feed, &json] {
        assert!(!view.contains("dave.private-person"));
    }
}

#[test]
pub(super) fn the_snapshot_copy_of_an_incident_wins_over_the_store_copy() {
    let stored_open = incident("web", 1, NOW - 7200, None);
    let mut resolved = stored_open.clone();
    resolved.state = State::Resolved;
    resolved.restored_at = Some(ts(NOW - 3600));
    resolved.resolved_at = Some(ts(NOW - 3500));
    let mut case = Case::new(
        vec![service("web", 1)],
        History::from_days([], vec![stored_open]),
    );
    case.snapshot = vec![resolved];
    let page = case.page();
    assert!(page.open_incidents.is_empty());
    assert_eq!(page.past_incidents.len(), 1);
    assert_eq!(page.services[0].state, PublicState::Operational);
}

#[test]
pub(super) fn old_incidents_and_hidden_services_are_left_out() {
    let old = incident("web", 1, TODAY - 100 * DAY, Some(TODAY - 100 * DAY + 600));
    let edge = incident(
        "web",
        2,
        TODAY - 89 * DAY - 600,
        Some(TODAY - 89 * DAY + 60),
    );
    let hidden = incident("db", 3, NOW - 600, None);
    let case = Case::new(
        vec![service("web", 1)],
        History::from_days([], vec![old, edge.clone(), hidden]),
    );
    let page = case.page();
    let ids: Vec<&str> = page.incidents().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        [edge.id.as_str()],
        "only what touched the 90 days of shown services"
    );
}

#[test]
pub(super) fn with_incidents_hidden_the_state_still_says_something_is_wrong() {
    let open = incident("web", 1, NOW - 600, None);
    let mut case = Case::new(vec![service("web", 2)], History::default());
    case.snapshot = vec![open.clone()];
    case.services[0].open_incident = Some(open.id.clone());
    case.show_incidents = false;
    let page = case.page();
    assert!(page.open_incidents.is_empty() && page.past_incidents.is_empty());
    assert!(page.services[0].days.iter().all(|d| d.incidents.is_empty()));
    assert_eq!(page.services[0].state, PublicState::Degraded);
    assert_eq!(page.services[0].open_incident, None);
    let out = html::page(&page);
    assert!(!out.contains("Past incidents") && !out.contains(&open.id));
    assert!(!atom::feed(&page).contains("<entry>"));
}

#[test]
pub(super) fn the_header_summarises_every_state() {
    let check = |states: &[(bool, Option<bool>)], want: &str| {
        let services: Vec<ServiceInput> = states
            .iter()
            .enumerate()
            .map(|(i, (maintenance, up))| {
                let mut s = service(&format!("s{i}"), 1);
                s.in_maintenance = *maintenance;
                s.checks_up = vec![*up];
                s
            })
            .collect();
        let page = Case::new(services, History::default()).page();
        assert_eq!(page.overall.text, want);
    };
    check(
        &[(false, Some(true)), (false, None)],
        "All systems operational",
    );
    check(&[(false, None)], "Waiting for the first checks");
    check(&[], "No services are shown on this page");
    check(
        &[(true, Some(true)), (false, Some(true))],
        "Maintenance: 1 of 2 services affected: s0 (under maintenance)",
    );
    let many: Vec<(bool, Option<bool>)> = vec![(true, Some(true)); 7];
    check(
        &many,
        "Maintenance: 7 of 7 services affected: s0 (under maintenance), s1 (under maintenance), \
         s2 (under maintenance), s3 (under maintenance), s4 (under maintenance), and 2 more",
    );
}

#[test]
pub(super) fn config_text_is_escaped_everywhere() {
    let mut s = service("web", 1);
    s.description = Some("<script>alert('x')</script> & co".into());
    let page = Case::new(vec![s], History::default()).page();
    let out = html::page(&page);
    assert!(!out.contains("<script"));
    assert!(out.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
    assert!(out.contains("<title>IT &lt;status&gt; &amp; more</title>"));
    let feed = atom::feed(&page);
    roxmltree::Document::parse(&feed).expect("escaped title keeps the feed well-formed");
    assert!(feed.contains("<title>IT &lt;status&gt; &amp; more: incidents</title>"));
}

#[test]
pub(super) fn badges_show_the_state_or_the_figure_as_svg_text() {
    let mut down = service("mail", 1);
    down.checks_up = vec![Some(false)];
    let open = incident("mail", 1, NOW - 600, None);
    let mut case = Case::new(
        vec![service("web", 1), down],
        History::from_days([("mail".to_string(), TODAY, counts(400, 300))], vec![]),
    );
    case.snapshot = vec![open];
    case.services[1].slo = None;
    let page = case.page();
    let text_of = |svg: &str| -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("role"), Some("img"));
        doc.descendants()
            .filter(|n| n.tag_name().name() == "text")
            .filter_map(|n| n.text().map(str::to_string))
            .collect()
    };
    let web = page.service("web").unwrap();
    assert_eq!(
        badge::parts(web, badge::Metric::Status),
        ("web".into(), "operational".into(), "#44cc11")
    );
    assert_eq!(
        badge::parts(web, badge::Metric::Availability),
        ("web 30d".into(), "99.95%".into(), "#44cc11")
    );
    let mail = page.service("mail").unwrap();
    assert_eq!(
        badge::parts(mail, badge::Metric::Status),
        ("mail".into(), "outage".into(), "#e05d44")
    );
    // No SLO: the 90-day figure, 300 of 400 = 75 %, far below 99.9 %.
    assert_eq!(
        badge::parts(mail, badge::Metric::Availability),
        ("mail 90d".into(), "75%".into(), "#e05d44")
    );
    let texts = text_of(&badge::svg(mail, badge::Metric::Availability));
    assert_eq!(texts, ["mail 90d", "mail 90d", "75%", "75%"]);
    assert!(badge::svg(mail, badge::Metric::Status).contains("aria-label=\"mail: outage\""));
    assert_eq!(badge::Metric::parse("latency"), None);
}

mod report_and_history;
