//! The lifecycle report (stage counts and their KPIs, `lifecycle::report`'s figures) as a
//! fold over every customer passing a filter.

use std::collections::BTreeMap;

use crate::lifecycle::report::{figures, GroupBy, LifecycleReport, ReportRow};
use crate::lifecycle::{Facts, LifecycleConfig};
use crate::store::{HubStore, StoreError};

use super::{each_profile, CustomerFilter};

/// Computes the report over every customer passing `filter`; `progress(customers_read)`.
pub fn report<S: HubStore>(
    store: &S,
    config: &LifecycleConfig,
    by: GroupBy,
    filter: &CustomerFilter,
    region: &dyn Fn(&str) -> Option<String>,
    as_of: i64,
    progress: impl FnMut(u64),
) -> Result<LifecycleReport, StoreError> {
    let mut rows: BTreeMap<String, ReportRow> = BTreeMap::new();
    let mut total = ReportRow {
        group: "total".into(),
        ..Default::default()
    };
    let visit = |profile: &super::Profile| {
        let all = figures(&profile.facts, config, as_of, Facts::All);
        if all.counts.is_empty() {
            return; // nothing known of them as of then
        }
        let trusted = figures(&profile.facts, config, as_of, Facts::TrustedOnly);
        let add = |row: &mut ReportRow| {
            row.customers += 1;
            row.all_facts.add(&all);
            row.trusted_only.add(&trusted);
        };
        for group in profile.groups(by) {
            add(rows.entry(group.clone()).or_insert_with(|| ReportRow {
                group,
                ..Default::default()
            }));
        }
        add(&mut total);
    };
    each_profile(store, region, as_of, filter, visit, progress)?;
    Ok(LifecycleReport {
        as_of_ms: as_of,
        rows: rows.into_values().collect(),
        total,
    })
}
