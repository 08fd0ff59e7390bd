//! Settings: defaults < TOML file < `CONVO_<SECTION>_<KEY>` environment < flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::cli::Cli;

/// Every setting, loaded once and passed down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[database]`.
    pub database: DatabaseSettings,
    /// `[server]`.
    pub server: ServerSettings,
    /// `[cognition]`, kept as given for the cognition crate to read.
    pub cognition: serde_json::Map<String, serde_json::Value>,
    /// `[log]`.
    pub log: LogSettings,
}

/// `[database]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// A SQLite path (or `sqlite://path`); `None` means the platform default.
    pub url: Option<String>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address.
    pub addr: String,
    /// Largest request body, in bytes.
    pub body_limit: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            addr: "127.0.0.1:8080".into(),
            body_limit: 2 << 20,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter: `warn`, `info`, `convo=debug,info`, ...
    pub level: String,
    /// Line format on stderr.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "warn".into(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Sections the environment may set; `CONVO_DB` and `CONVO_CONFIG` are flags, not keys.
const SECTIONS: [&str; 4] = ["database", "server", "cognition", "log"];

impl Settings {
    /// Loads the settings with the precedence defaults < file < environment < flags.
    pub fn load(cli: &Cli) -> Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match &cli.config {
            Some(path) => {
                if !path.is_file() {
                    anyhow::bail!(
                        "the settings file {} does not exist; pass an existing TOML file to --config",
                        path.display()
                    );
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                if let Some(path) = default_config_file().filter(|p| p.is_file()) {
                    figment = figment.merge(Toml::file_exact(path));
                }
            }
        }
        figment = figment.merge(
            Env::prefixed("CONVO_")
                .filter(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    SECTIONS.iter().any(|s| k.starts_with(&format!("{s}_")))
                })
                .map(|k| k.as_str().to_ascii_lowercase().replacen('_', ".", 1).into()),
        );
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("the settings are invalid: {e}"))?;
        if let Some(db) = &cli.db {
            settings.database.url = Some(db.clone());
        }
        if cli.quiet {
            settings.log.level = "error".into();
        } else if cli.verbose > 0 {
            settings.log.level = match cli.verbose {
                1 => "info",
                2 => "debug",
                _ => "trace",
            }
            .into();
        }
        Ok(settings)
    }

    /// The SQLite file to open: the configured one, or `convo.db` in the platform data
    /// directory (created with its parents).
    pub fn database_path(&self) -> Result<PathBuf> {
        match self.database.url.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                anyhow::bail!("PostgreSQL is not supported yet; pass a SQLite file path to --db")
            }
            Some(url) => {
                let path = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .unwrap_or(url);
                if path.is_empty() {
                    anyhow::bail!("the database path is empty; pass a file path to --db");
                }
                Ok(PathBuf::from(path))
            }
            None => {
                let dir = dirs::data_dir()
                    .context("no platform data directory is known here; pass --db")?
                    .join("convo");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("could not create {}", dir.display()))?;
                Ok(dir.join("convo.db"))
            }
        }
    }
}

fn default_config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("convo").join("config.toml"))
}

/// Logs go to stderr, so stdout carries only data.
pub fn init_tracing(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&settings.log.level).unwrap_or_else(|_| EnvFilter::new("warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match settings.log.format {
        LogFormat::Text => builder.without_time().try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
