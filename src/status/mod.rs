//! The public status page: `/status` (HTML), `/status.json`,
//! `/status/feed.atom`, `/badge/{service}.svg` and the monthly operations
//! report `/status/report`.
//!
//! Layout: [`model`] builds a [`model::Page`] from plain inputs (the
//! handler extracts them from shared state); [`html`], [`atom`], [`badge`]
//! and serde render it; [`report`] is the monthly page; [`history`] caches
//! daily run counts and recent incidents read from the store.
//!
//! Architecture invariants:
//! - Everything here except [`history::HistoryCache`] is pure: no IO, no
//!   clock; `now` is an argument.
//! - Nothing internal reaches a page: no check names or targets, URLs,
//!   notifier names, people, tokens or probe failure details. Incidents are
//!   shown as an [`model::Impact`] ("Service degraded" / "Service
//!   unavailable") with their severity, never with their `reason`.
//! - Every text from config or people is escaped ([`text::Esc`]).
//! - A request never runs a probe, and reads SQLite at most once a minute
//!   (the history refresh).

pub mod atom;
pub mod badge;
pub mod history;
pub mod html;
pub mod model;
pub mod report;
pub mod text;

pub use history::{DAYS, History, HistoryCache};
pub use model::{IncidentUpdate, Page, PageInput, ServiceInput, SloInput, UpdateStatus, build};
