//! Layered configuration for agentmill's services (feature `config`): defaults ← a TOML file ←
//! `AGENTMILL_*` environment variables ← flags. Every service (coordinator, worker, learner)
//! loads its own struct through [`load`], so the layering and the errors read the same everywhere.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Environment variables one layer reads: `<prefix><KEY>` for each of `keys` (lower-case names of
/// top-level fields). Only listed keys are read, so an unrelated `AGENTMILL_*` variable never
/// breaks a service.
#[derive(Debug, Clone, Copy)]
pub struct EnvLayer<'a> {
    /// E.g. `AGENTMILL_`.
    pub prefix: &'a str,
    /// The fields it may set.
    pub keys: &'a [&'a str],
}

/// A configuration that cannot be read or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable could not be read as this configuration (the message
    /// names the key and where it came from).
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value is out of range.
    #[error("configuration: {key}: {reason}")]
    Invalid {
        /// The key at fault.
        key: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl ConfigError {
    /// An out-of-range value.
    pub fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { key, reason: reason.into() }
    }
}

/// Loads `T`: its defaults, then `file` (when given; a missing file is an error), then each
/// environment layer in order, then `overrides` (flags).
pub fn load<T: Serialize + DeserializeOwned + Default>(file: Option<&Path>, env: &[EnvLayer<'_>], overrides: &figment::value::Dict) -> Result<T, ConfigError> {
    let mut fig = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::invalid("--config", format!("{} does not exist", path.display())));
        }
        fig = fig.merge(Toml::file(path));
    }
    for layer in env {
        fig = fig.merge(Env::prefixed(layer.prefix).only(layer.keys));
    }
    Ok(fig.merge(Serialized::globals(overrides.clone())).extract().map_err(Box::new)?)
}

/// Serde for an optional listen address where `""` (or `"off"`) turns the listener off — in a
/// file, an `AGENTMILL_*` variable or a flag alike; use with `#[serde(with = "...")]`.
pub mod optional_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the address, or `""` when off.
    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match addr {
            Some(a) => s.collect_str(a),
            None => s.serialize_str(""),
        }
    }

    /// Reads `host:port`, or `""` / `"off"` for none.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim() {
            "" | "off" => Ok(None),
            t => t.parse().map(Some).map_err(|e| serde::de::Error::custom(format!("{t:?} is not host:port ({e}); use \"\" to turn it off"))),
        }
    }
}
