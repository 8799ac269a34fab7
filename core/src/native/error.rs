//! Why a native plugin library could not be loaded or registered.

use std::path::PathBuf;

use crate::registry::RegistryError;

/// A library refused at load or registration. Every variant names the library file as found
/// in the plugin directory (not its cached copy).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {}: cannot {action}: {source}", .file.display())]
    Io {
        file: PathBuf,
        /// What was being done (`read the library`, `create the cache directory …`).
        action: String,
        #[source]
        source: std::io::Error,
    },

    #[error("plugin {}: the dynamic loader refused it: {source}", .file.display())]
    Open {
        file: PathBuf,
        #[source]
        source: libloading::Error,
    },

    #[error(
        "plugin {}: it exports no `{symbol}` ({source}); a Switchyard plugin is built with switchyard-plugin-sdk's export_plugin!",
        .file.display()
    )]
    MissingSymbol {
        file: PathBuf,
        symbol: &'static str,
        #[source]
        source: libloading::Error,
    },

    #[error(
        "plugin {}: not a Switchyard plugin (the magic bytes of `{symbol}` do not match)",
        .file.display()
    )]
    NotAPlugin { file: PathBuf, symbol: &'static str },

    #[error(
        "plugin {} was built for plugin ABI version {plugin_version} (header {plugin_header_size} bytes), but this Switchyard speaks plugin ABI version {host_version} (header {host_header_size} bytes); rebuild it against a switchyard-plugin-sdk with ABI version {host_version}",
        .file.display()
    )]
    AbiMismatch {
        file: PathBuf,
        plugin_version: u32,
        plugin_header_size: u32,
        host_version: u32,
        host_header_size: u32,
    },

    #[error(
        "plugin {}: its {structure} is {plugin_size} bytes but the host's is {host_size} bytes, although both claim plugin ABI version {abi_version}; rebuild it against the host's switchyard-plugin-sdk",
        .file.display()
    )]
    LayoutMismatch {
        file: PathBuf,
        structure: &'static str,
        plugin_size: u32,
        host_size: u32,
        abi_version: u32,
    },

    #[error("plugin {}: bad `{symbol}`: {message}", .file.display())]
    BadDeclaration {
        file: PathBuf,
        symbol: &'static str,
        message: String,
    },

    #[error("plugin {}: {source}", .file.display())]
    Conflict {
        file: PathBuf,
        #[source]
        source: RegistryError,
    },

    #[error(
        "plugin {}: trigger check `{name}` is already declared by plugin {}",
        .file.display(),
        .other.display()
    )]
    TriggerConflict {
        file: PathBuf,
        name: String,
        /// The library that declared it first.
        other: PathBuf,
    },
}

impl PluginError {
    /// The library file the error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            PluginError::Io { file, .. }
            | PluginError::Open { file, .. }
            | PluginError::MissingSymbol { file, .. }
            | PluginError::NotAPlugin { file, .. }
            | PluginError::AbiMismatch { file, .. }
            | PluginError::LayoutMismatch { file, .. }
            | PluginError::BadDeclaration { file, .. }
            | PluginError::Conflict { file, .. }
            | PluginError::TriggerConflict { file, .. } => file,
        }
    }
}
