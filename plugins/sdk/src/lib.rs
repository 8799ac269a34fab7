//! The contract between Switchyard and native (dynamic library) plugins.
//!
//! A plugin library exports one symbol, [`HEADER_SYMBOL`], pointing at a [`PluginHeader`].
//! The host reads that header before anything else and refuses the library unless the magic,
//! the ABI version and the header size all match its own, naming both versions in the error.
//! The vtables of filters, actions and triggers follow the header; their layout is part of
//! the ABI version.

#![forbid(unsafe_code)]

/// Identifies a Switchyard plugin header in memory.
pub const MAGIC: [u8; 8] = *b"SWYDPLUG";

/// The ABI version this SDK speaks. Any change to a `#[repr(C)]` type bumps it.
pub const ABI_VERSION: u32 = 1;

/// The exported symbol that points at the plugin's [`PluginHeader`].
pub const HEADER_SYMBOL: &[u8] = b"switchyard_plugin_header\0";

/// The first thing the host reads from a plugin: small and stable across ABI versions, so
/// that a mismatch is detected before any other layout is assumed.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginHeader {
    pub magic: [u8; 8],
    pub abi_version: u32,
    /// `size_of::<PluginHeader>()` as the plugin was compiled.
    pub header_size: u32,
}

impl PluginHeader {
    /// The header a plugin built with this SDK exports.
    pub const CURRENT: PluginHeader = PluginHeader {
        magic: MAGIC,
        abi_version: ABI_VERSION,
        header_size: std::mem::size_of::<PluginHeader>() as u32,
    };

    /// Checks a header read from a library against this SDK's.
    pub fn check(&self) -> Result<(), String> {
        if self.magic != MAGIC {
            return Err("not a Switchyard plugin (the header's magic bytes do not match)".into());
        }
        if self.abi_version != ABI_VERSION || self.header_size != Self::CURRENT.header_size {
            return Err(format!(
                "plugin ABI version {} (header {} bytes) does not match the host's ABI version {} (header {} bytes)",
                self.abi_version,
                self.header_size,
                ABI_VERSION,
                Self::CURRENT.header_size
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_header_passes_and_others_are_named() {
        assert!(PluginHeader::CURRENT.check().is_ok());
        let other = PluginHeader {
            abi_version: 7,
            ..PluginHeader::CURRENT
        };
        let message = other.check().unwrap_err();
        assert!(message.contains("plugin ABI version 7"), "{message}");
        assert!(
            message.contains(&format!("host's ABI version {ABI_VERSION}")),
            "{message}"
        );
        let foreign = PluginHeader {
            magic: *b"NOTMINE!",
            ..PluginHeader::CURRENT
        };
        assert!(foreign.check().unwrap_err().contains("magic"));
    }
}
