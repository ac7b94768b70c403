//! `central query ...`: what HQ sees, for people (tables) and scripts (`--json`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::tls::{self, TlsFiles};
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_client::HqServiceClient;

use crate::hq_cli;

#[derive(Args)]
pub(crate) struct HqConnection {
    /// Hub address, host:port.
    #[arg(
        long,
        env = "HAMGAM_HUB",
        default_value = "127.0.0.1:7443",
        global = true
    )]
    hub: String,
    /// Name the hub's certificate carries.
    #[arg(
        long,
        env = "HAMGAM_HUB_NAME",
        default_value = "localhost",
        global = true
    )]
    server_name: String,
    /// The deployment's CA certificate (PEM).
    #[arg(long, env = "HAMGAM_CA", default_value = "pki/ca.crt", global = true)]
    ca: PathBuf,
    /// An HQ client certificate (PEM); default: the one hq-NAME.crt (as `central pki issue hq
    /// NAME` writes it) in the CA certificate's folder.
    #[arg(long, env = "HAMGAM_CERT", global = true)]
    cert: Option<PathBuf>,
    /// The HQ certificate's private key (PEM); default: the .key beside the certificate.
    #[arg(long, env = "HAMGAM_KEY", global = true)]
    key: Option<PathBuf>,
    /// Print JSON (one object per line) instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
pub(crate) enum QueryCommand {
    /// Every dealer the hub has heard from: sync state, quarantine, reliability score.
    Dealers,
    /// Verdicts and findings by rule for every dealer.
    ///
    /// Reads every record: meant for small hubs and demos; HQ's indexed flag queries come with
    /// the HQ API.
    Findings,
    /// A dealer's records with their verdicts, in seq order.
    Records {
        dealer_id: String,
        /// At most this many records (all pages are fetched up to it).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    #[command(flatten)]
    Hq(hq_cli::HqQuery),
    #[command(flatten)]
    Questions(super::questions::Question),
}

/// Runs one `central query` command.
pub(crate) async fn run(conn: HqConnection, command: QueryCommand) -> Result<()> {
    let (cert, key) = hq_cli::client_files(&conn.ca, conn.cert, conn.key)?;
    let material = TlsFiles {
        ca: conn.ca,
        cert,
        key,
    }
    .load()?;
    let endpoint = HubEndpoint::new(conn.hub, conn.server_name, tls::client_config(&material)?);
    let channel = endpoint.connect().await?;
    let mut client = HqServiceClient::new(channel.clone());
    match command {
        QueryCommand::Hq(q) => return hq_cli::run(channel, conn.json, q).await,
        QueryCommand::Questions(q) => return super::questions::run(channel, conn.json, q).await,
        QueryCommand::Dealers => {
            let dealers = list_dealers(&mut client).await?;
            if conn.json {
                for d in &dealers {
                    println!("{}", serde_json::to_string(d)?);
                }
                return Ok(());
            }
            println!(
                "{:<10} {:>10} {:>8} {:>11} {:>12}  {:<24}  {:>11}  top rules",
                "dealer",
                "stored seq",
                "records",
                "quarantined",
                "clock offset",
                "last seen (UTC)",
                "reliability"
            );
            for d in &dealers {
                let (score, top) = match &d.reliability {
                    Some(r) => {
                        let trend = r
                            .previous_score
                            .map(|p| format!(" ({:+.1})", r.score - p))
                            .unwrap_or_default();
                        let top: Vec<String> = r
                            .top_rules
                            .iter()
                            .map(|t| format!("{} {}", t.rule_id, t.records))
                            .collect();
                        (format!("{:.1}{trend}", r.score), top.join(", "))
                    }
                    None => ("-".into(), String::new()),
                };
                println!(
                    "{:<10} {:>10} {:>8} {:>11} {:>10}ms  {:<24}  {:>11}  {}",
                    d.dealer_id,
                    d.stored_seq,
                    d.record_count,
                    d.rejected_count,
                    d.clock_offset_ms,
                    format_ms(d.last_seen_ms),
                    score,
                    top
                );
            }
            println!("reliability: 0-100 over the last 90 days (change against 30 days ago); `central rules` explains it");
            let total: u64 = dealers.iter().map(|d| d.record_count).sum();
            println!("{} dealers, {total} records", dealers.len());
        }
        QueryCommand::Findings => {
            let dealers = list_dealers(&mut client).await?;
            let mut by_rule: std::collections::BTreeMap<
                String,
                std::collections::BTreeMap<String, u64>,
            > = Default::default();
            let mut outcomes: std::collections::BTreeMap<String, [u64; 3]> = Default::default();
            for dealer in &dealers {
                let mut page_token = String::new();
                loop {
                    let page = client
                        .list_dealer_records(hq::ListDealerRecordsRequest {
                            dealer_id: dealer.dealer_id.clone(),
                            page_size: 1000,
                            page_token: page_token.clone(),
                            quarantined_only: false,
                        })
                        .await
                        .context("ListDealerRecords failed")?
                        .into_inner();
                    for stored in &page.records {
                        let Some(verdict) = &stored.verdict else {
                            continue;
                        };
                        let slot = match verdict.outcome() {
                            hamgam_proto::record::v1::Outcome::Rejected => 2,
                            hamgam_proto::record::v1::Outcome::AcceptedWithFlags => 1,
                            _ => 0,
                        };
                        outcomes.entry(dealer.dealer_id.clone()).or_default()[slot] += 1;
                        for finding in &verdict.findings {
                            *by_rule
                                .entry(finding.rule_id.clone())
                                .or_default()
                                .entry(dealer.dealer_id.clone())
                                .or_default() += 1;
                        }
                    }
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    page_token = page.next_page_token;
                }
            }
            if conn.json {
                println!(
                    "{}",
                    serde_json::json!({ "outcomes": outcomes, "findings_by_rule": by_rule })
                );
                return Ok(());
            }
            println!(
                "{:<10} {:>9} {:>9} {:>9}",
                "dealer", "accepted", "flagged", "rejected"
            );
            for (dealer, [ok, flagged, rejected]) in &outcomes {
                println!("{dealer:<10} {ok:>9} {flagged:>9} {rejected:>9}");
            }
            println!();
            let names: Vec<&String> = outcomes.keys().collect();
            print!("{:<6}", "rule");
            for name in &names {
                print!(" {name:>9}");
            }
            println!();
            for (rule, counts) in &by_rule {
                print!("{rule:<6}");
                for name in &names {
                    print!(" {:>9}", counts.get(*name).copied().unwrap_or(0));
                }
                println!();
            }
            if by_rule.is_empty() {
                println!("(no findings)");
            }
        }
        QueryCommand::Records { dealer_id, limit } => {
            if limit == 0 {
                return Ok(());
            }
            let mut page_token = String::new();
            let mut shown = 0usize;
            if !conn.json {
                println!(
                    "{:>6}  {:<36}  {:<20}  {:<20}  findings",
                    "seq", "record id", "kind", "verdict"
                );
            }
            loop {
                let page = client
                    .list_dealer_records(hq::ListDealerRecordsRequest {
                        dealer_id: dealer_id.clone(),
                        page_size: (limit - shown).min(1000) as u32,
                        page_token: page_token.clone(),
                        quarantined_only: false,
                    })
                    .await
                    .context("ListDealerRecords failed")?
                    .into_inner();
                for stored in &page.records {
                    if conn.json {
                        println!("{}", serde_json::to_string(stored)?);
                        continue;
                    }
                    let record = stored.record.clone().unwrap_or_default();
                    let verdict = stored.verdict.clone().unwrap_or_default();
                    let kind = record
                        .payload
                        .as_ref()
                        .map(|p| hamgam_proto::RecordKind::of(p).name())
                        .unwrap_or("-");
                    let findings: Vec<_> = verdict
                        .findings
                        .iter()
                        .map(|f| format!("{} {}", f.rule_id, f.field))
                        .collect();
                    println!(
                        "{:>6}  {:<36}  {:<20}  {:<20}  {}",
                        record.seq,
                        record.record_id,
                        kind,
                        verdict
                            .outcome()
                            .as_str_name()
                            .trim_start_matches("OUTCOME_")
                            .to_lowercase(),
                        findings.join(", ")
                    );
                }
                shown += page.records.len();
                if page.next_page_token.is_empty() || shown >= limit {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
    }
    Ok(())
}

async fn list_dealers(
    client: &mut HqServiceClient<tonic::transport::Channel>,
) -> Result<Vec<hq::DealerSummary>> {
    Ok(client
        .list_dealers(hq::ListDealersRequest {})
        .await
        .context("ListDealers failed")?
        .into_inner()
        .dealers)
}

pub(crate) fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
}
