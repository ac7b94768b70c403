//! `central rules`: the rule catalogue in force.

use std::path::Path;

use anyhow::Result;
use hamgam_central::config::HubConfig;

/// Prints the catalogue (a table, or Markdown as docs/rules.md).
pub(crate) fn run(config: Option<&Path>, markdown: bool) -> Result<()> {
    use hamgam_central::rules::{catalogue_markdown, CATALOGUE};
    let config = match config {
        Some(path) => HubConfig::from_file(path)?.rules,
        None => Default::default(),
    };
    if markdown {
        print!("{}", catalogue_markdown(&config));
        return Ok(());
    }
    let thresholds = config.thresholds();
    println!("{:<5} {:<28} {:<11} check", "id", "severity", "reads");
    for rule in CATALOGUE {
        println!(
            "{:<5} {:<28} {:<11} {}",
            rule.id,
            rule.severity_text(),
            format!("{:?}", rule.scope),
            rule.check
        );
        for (_, key, value) in thresholds.iter().filter(|(id, ..)| *id == rule.id) {
            println!("{:<46} {key} = {value}", "");
        }
    }
    println!("reliability score:");
    for (_, key, value) in thresholds.iter().filter(|(id, ..)| *id == "score") {
        println!("  {key} = {value}");
    }
    Ok(())
}
