//! `central dealers ...`: the dealer lifecycle in HQ's registry file.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use hamgam_central::config::HubConfig;

use super::pki::revoke;

#[derive(Subcommand)]
pub(crate) enum DealersCommand {
    /// Every dealer in the registry, with its region and whether it is suspended.
    List {
        /// One JSON object per dealer.
        #[arg(long)]
        json: bool,
    },
    /// Register a dealership and print a one-time enrolment token for its agent
    /// (`dealer-agent enroll --token ...`): valid --valid-hours (72), bound to this dealer id.
    Add {
        dealer_id: String,
        #[arg(long)]
        name: String,
        /// HQ's sales region (lifecycle reports group by it).
        #[arg(long, default_value = "")]
        region: String,
        #[arg(long, default_value = "")]
        city: String,
        /// The dealership company's national ID (S03 reads it).
        #[arg(long, default_value = "")]
        company_id: String,
        /// Hours the enrolment token is valid (1 to 720).
        #[arg(long, default_value_t = 72, allow_negative_numbers = true)]
        valid_hours: i64,
    },
    /// A new one-time enrolment token for a registered dealer (a lost token, a new or
    /// replaced branch PC); the dealer's previous token stops working.
    Token {
        dealer_id: String,
        #[arg(long, default_value_t = 72, allow_negative_numbers = true)]
        valid_hours: i64,
    },
    /// Refuse the dealer's sync sessions (its records stay at the hub) until `resume`.
    Suspend {
        dealer_id: String,
        /// Why, as the dealer's agent is told.
        #[arg(long)]
        reason: String,
    },
    /// Let a suspended dealer sync again.
    Resume { dealer_id: String },
    /// Suspend the dealer and revoke its certificate (`<pki>/dealer-ID.crt`) in the CRL the
    /// hub re-reads: cut off at its next handshake, without a hub restart.
    Revoke {
        dealer_id: String,
        #[arg(long)]
        reason: String,
        /// Folder holding ca.crt, ca.key, ca.crl and the dealer's certificate.
        #[arg(long, default_value = "pki")]
        pki: PathBuf,
        #[arg(long, default_value = "hamgam")]
        trust_domain: String,
        /// Days until the list's next update is due.
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
}

/// Runs one `central dealers` command.
pub(crate) fn run(
    registry: Option<PathBuf>,
    config: Option<PathBuf>,
    command: DealersCommand,
) -> Result<()> {
    use hamgam_central::dealers::{self, DealerChange};
    let path = match (registry, config) {
        (Some(path), _) => path,
        (None, Some(config)) => HubConfig::from_file(&config)?
            .registry
            .with_context(|| format!("{} names no `registry` file", config.display()))?,
        (None, None) => bail!("say which registry file: --registry FILE, or --config hub.toml"),
    };
    let now = hamgam_gateway::sync::now_ms();
    let change = match command {
        DealersCommand::List { json } => {
            for d in dealers::load(&path)? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"dealer_id": d.dealer_id, "name": d.name, "region": d.region, "city": d.city, "suspended": d.suspended, "staff": d.staff.len()})
                    );
                } else {
                    let state = if d.suspended.is_empty() {
                        "active".to_owned()
                    } else {
                        format!("SUSPENDED: {}", d.suspended)
                    };
                    println!(
                        "{:<10} {:<30} {:<16} {state}",
                        d.dealer_id, d.name, d.region
                    );
                }
            }
            return Ok(());
        }
        DealersCommand::Add {
            dealer_id,
            name,
            region,
            city,
            company_id,
            valid_hours,
        } => {
            // The hours are checked before the registry changes: a refused token adds nobody.
            if !(1..=720).contains(&valid_hours) {
                bail!("--valid-hours {valid_hours}: a token must be valid for 1 to 720 hours");
            }
            let added = dealers::apply(
                &path,
                DealerChange::Add(hamgam_proto::registry::DealerProfile {
                    dealer_id,
                    name,
                    region,
                    city,
                    company_national_id: company_id,
                    ..Default::default()
                }),
                now,
            )?;
            println!(
                "{}: active in {} (logged in {})",
                added.dealer_id,
                path.display(),
                dealers::log_path(&path).display()
            );
            return print_token(&path, &added.dealer_id, now, valid_hours);
        }
        DealersCommand::Token {
            dealer_id,
            valid_hours,
        } => {
            if !dealers::load(&path)?
                .iter()
                .any(|d| d.dealer_id == dealer_id)
            {
                bail!("dealer {dealer_id} is not in {}; `central dealers add {dealer_id} --name ...` first", path.display());
            }
            return print_token(&path, &dealer_id, now, valid_hours);
        }
        DealersCommand::Suspend { dealer_id, reason } => {
            DealerChange::Suspend { dealer_id, reason }
        }
        DealersCommand::Resume { dealer_id } => DealerChange::Resume { dealer_id },
        DealersCommand::Revoke {
            dealer_id,
            reason,
            pki,
            trust_domain,
            days,
        } => {
            let cert = pki.join(format!("dealer-{dealer_id}.crt"));
            dealers::apply(
                &path,
                DealerChange::Suspend {
                    dealer_id: dealer_id.clone(),
                    reason: format!("revoked: {reason}"),
                },
                now,
            )?;
            revoke(&[cert], &pki, &trust_domain, days)?;
            println!("{dealer_id}: suspended in {} and its certificate revoked; a running hub cuts it off at its next handshake", path.display());
            return Ok(());
        }
    };
    let changed = dealers::apply(&path, change, now)?;
    println!(
        "{}: {} in {} (logged in {})",
        changed.dealer_id,
        if changed.suspended.is_empty() {
            "active"
        } else {
            "suspended"
        },
        path.display(),
        dealers::log_path(&path).display()
    );
    Ok(())
}

/// Issues and prints a dealer's enrolment token (its digest kept in `<registry>.tokens`).
fn print_token(
    registry: &std::path::Path,
    dealer_id: &str,
    now: i64,
    valid_hours: i64,
) -> Result<()> {
    use hamgam_central::enrolment::tokens;
    let path = tokens::tokens_path(registry);
    let token = tokens::issue(&path, dealer_id, now, valid_hours)?;
    println!(
        "enrolment token for {dealer_id} (works once, valid {valid_hours} h, bound to {dealer_id}):\n\n    {token}\n\nAt the branch: dealer-agent enroll --hub HOST:PORT --token {token} --ca-fingerprint $(central pki fingerprint)"
    );
    Ok(())
}
