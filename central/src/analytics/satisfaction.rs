//! Satisfaction: is it measured, or only surveyed? CSAT and NPS, the response rate, and how
//! many answers were entered by staff or flagged, beside the same figures from clean answers
//! only (a survey a staff member filled in is flagged by Q01 and leaves the trusted figures).
//!
//! A survey is answered when it has a CSAT (1-5) or an NPS answer (0-10). NPS is the share of
//! promoters (9-10) minus the share of detractors (0-6), in points. Coverage is surveys per
//! delivery and service visit of the same customers in the same row (none by channel).

use crate::content::Content;
use crate::lifecycle::report::quarter;
use crate::merge::Trust;

use super::journey::touchpoints;
use super::{mean, share, CaseGroup, Profile, Rows, MODES};

/// Satisfaction figures of one row in one mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SatisfactionFigures {
    pub surveys: u64,
    pub answered: u64,
    pub csat: Vec<f64>,
    pub nps_answers: Vec<u32>,
    pub entered_by_staff: u64,
    pub flagged: u64,
    /// Deliveries and service visits the row's surveys could be about.
    pub subjects: u64,
}

impl SatisfactionFigures {
    pub fn response_rate(&self) -> Option<f64> {
        share(self.answered, self.surveys)
    }
    pub fn csat_mean(&self) -> Option<f64> {
        mean(&self.csat)
    }
    pub fn nps(&self) -> Option<f64> {
        let n = self.nps_answers.len() as u64;
        let promoters = self.nps_answers.iter().filter(|a| **a >= 9).count() as u64;
        let detractors = self.nps_answers.iter().filter(|a| **a <= 6).count() as u64;
        Some((share(promoters, n)? - share(detractors, n)?) * 100.0)
    }
    pub fn coverage(&self) -> Option<f64> {
        share(self.surveys, self.subjects)
    }
}

/// Adds one customer's surveys, and the deliveries and visits they could be about.
pub fn add(rows: &mut Rows<SatisfactionFigures>, profile: &Profile, by: CaseGroup, as_of: i64) {
    for mode in MODES {
        let group_of = |dealer: &str, channel: &str, at: i64| match by {
            CaseGroup::Dealer => vec![dealer.to_owned()],
            CaseGroup::Channel => vec![channel.to_owned()],
            CaseGroup::Period => vec![quarter(at)],
            CaseGroup::Category => vec!["(none)".to_owned()],
            CaseGroup::Customer(g) => profile.groups(g),
        };
        for c in profile.contacts(mode, as_of) {
            let Content::Survey(s) = &c.content else {
                continue;
            };
            let groups = group_of(&c.dealer_id, &c.details.channel, c.at_ms);
            rows.add(&groups, mode, |f| {
                f.surveys += 1;
                if s.csat > 0 || s.nps.is_some() {
                    f.answered += 1;
                }
                if s.csat > 0 {
                    f.csat.push(f64::from(s.csat));
                }
                f.nps_answers.extend(s.nps);
                f.entered_by_staff += u64::from(!s.entered_by_staff_id.trim().is_empty());
                f.flagged += u64::from(c.trust == Trust::Flagged);
            });
        }
        if by == CaseGroup::Channel {
            continue;
        }
        for t in touchpoints(profile, mode, as_of) {
            if matches!(t.kind, "delivery" | "service") {
                let groups = group_of(&t.dealer_id, "", t.at_ms);
                rows.add(&groups, mode, |f| f.subjects += 1);
            }
        }
    }
}
