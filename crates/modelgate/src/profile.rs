//! The profile file `modelgate login` writes: the server and token to use when no flag or environment
//! variable names them. Kept readable by its owner only.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    pub server: Option<String>,
    pub token: Option<String>,
}

/// `$MODELGATE_CONFIG_DIR/profile.json`, else `$XDG_CONFIG_HOME/modelgate/profile.json`, else
/// `~/.config/modelgate/profile.json`.
pub fn path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MODELGATE_CONFIG_DIR") {
        return Some(PathBuf::from(dir).join("profile.json"));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("modelgate").join("profile.json"))
}

pub fn load() -> Profile {
    path()
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

pub fn save(profile: &Profile) -> anyhow::Result<PathBuf> {
    let path =
        path().ok_or_else(|| anyhow::anyhow!("no home directory: set MODELGATE_CONFIG_DIR"))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    std::io::Write::write_all(&mut file, serde_json::to_string_pretty(profile)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}
