//! `fuzz-seeds DIR`: writes the hand-made starting inputs of every fuzz target to
//! `DIR/<target>/seed-N` (the project keeps them in `fuzz/seeds`).

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: fuzz-seeds DIR (e.g. fuzz/seeds)")?;
    for (target, _) in hamgam_tests::fuzz_checks::TARGETS {
        let folder = std::path::Path::new(&dir).join(target);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        for (i, seed) in hamgam_tests::fuzz_checks::seeds(target).iter().enumerate() {
            let path = folder.join(format!("seed-{i}"));
            std::fs::write(&path, seed)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        println!("{target}: {}", folder.display());
    }
    Ok(())
}
