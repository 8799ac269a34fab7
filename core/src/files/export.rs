//! `switchyard export DIR`: the store's objects written as campaigns-directory files. One file
//! per kind (`affiliate_networks.toml`, `traffic_sources.toml`, `offers.toml`,
//! `landings.toml`) and one per campaign (`campaigns/KEY.toml`, with its streams). Loading the
//! result gives back the same objects.

use std::path::Path;

use super::format::DeclaredSet;

const HEADER: &str =
    "# Written by `switchyard export`. Keys (table names) are stable: references use them.\n\n";

/// The files (relative path, text) that declare `set`. Fails, naming the object, when a value
/// cannot be written as TOML (a JSON `null` inside a payload).
pub fn render_files(set: &DeclaredSet) -> Result<Vec<(String, String)>, String> {
    let mut files = Vec::new();
    let mut push = |name: String, part: DeclaredSet, what: &str| -> Result<(), String> {
        let text = toml::to_string(&part).map_err(|e| format!("{what}: {e}"))?;
        files.push((name, format!("{HEADER}{text}")));
        Ok(())
    };
    if !set.affiliate_networks.is_empty() {
        let part = DeclaredSet {
            affiliate_networks: set.affiliate_networks.clone(),
            ..Default::default()
        };
        push("affiliate_networks.toml".into(), part, "affiliate_networks")?;
    }
    if !set.traffic_sources.is_empty() {
        let part = DeclaredSet {
            traffic_sources: set.traffic_sources.clone(),
            ..Default::default()
        };
        push("traffic_sources.toml".into(), part, "traffic_sources")?;
    }
    if !set.offers.is_empty() {
        let part = DeclaredSet {
            offers: set.offers.clone(),
            ..Default::default()
        };
        push("offers.toml".into(), part, "offers")?;
    }
    if !set.landings.is_empty() {
        let part = DeclaredSet {
            landings: set.landings.clone(),
            ..Default::default()
        };
        push("landings.toml".into(), part, "landings")?;
    }
    for (key, campaign) in &set.campaigns {
        let part = DeclaredSet {
            campaigns: [(key.clone(), campaign.clone())].into_iter().collect(),
            ..Default::default()
        };
        push(
            format!("campaigns/{key}.toml"),
            part,
            &format!("campaigns.{key}"),
        )?;
    }
    Ok(files)
}

/// Writes `set` under `dir` (created if missing); returns the files written.
pub fn export_files(dir: &Path, set: &DeclaredSet) -> Result<Vec<String>, String> {
    let files = render_files(set)?;
    for (name, text) in &files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(files.into_iter().map(|(name, _)| name).collect())
}
