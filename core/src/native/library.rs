//! Loading a library: the content-addressed copy, `dlopen`, the header handshake, the
//! declaration, and the process-wide list of libraries that are never unloaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libloading::Library;
use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_plugin_sdk::abi::{
    ActionDecl, DECLARATION_SYMBOL, FilterDecl, KindDecl, LayoutSizes, PluginDeclaration, StrRef,
    TriggerDecl,
};
use switchyard_plugin_sdk::{ABI_VERSION, HEADER_SYMBOL, HeaderError, PluginHeader};

use super::adapter::{NativeActionKind, NativeFilterKind};
use super::status::{KindStatus, PluginStatus};
use super::trigger::NativeTriggerKind;
use super::{NAME_PREFIX, PluginError};
use crate::guard::KindGuard;
use crate::registry::{KindInfo, Origin, PayloadDoc};

/// Every library this process opened, by the path of its loaded copy. Entries are never
/// removed and the `Library` values are leaked on purpose: unloading a library whose code
/// may still be running (or whose instances live in an old routing snapshot, or whose thread
/// locals have destructors registered) is undefined behaviour, and `dlclose` is best effort
/// anyway. A reload loads a *new copy* (a new path, so a new mapping) instead.
static OPENED: Mutex<BTreeMap<PathBuf, &'static Library>> = Mutex::new(BTreeMap::new());

/// The most kinds of one role a declaration may list (more means a corrupt declaration).
const MAX_KINDS: usize = 1024;

/// The symbol names as text, for messages.
const HEADER_NAME: &str = "switchyard_plugin_header";
const DECLARATION_NAME: &str = "switchyard_plugin_declaration";

/// A library that passed the handshake, with its kinds wrapped as ordinary registry
/// factories. Cheap to keep: the library itself stays mapped for the life of the process.
pub struct LoadedPlugin {
    source: PathBuf,
    copy: PathBuf,
    sha256: String,
    name: String,
    version: String,
    pub(super) filters: Vec<Arc<NativeFilterKind>>,
    pub(super) actions: Vec<Arc<NativeActionKind>>,
    triggers: Vec<Arc<NativeTriggerKind>>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("source", &self.source)
            .field("copy", &self.copy)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("filters", &self.filter_names().collect::<Vec<_>>())
            .field("actions", &self.action_names().collect::<Vec<_>>())
            .field("triggers", &self.trigger_names().collect::<Vec<_>>())
            .finish()
    }
}

impl LoadedPlugin {
    /// The library file as found (in the plugin directory).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The content-addressed copy that was opened.
    pub fn loaded_copy(&self) -> &Path {
        &self.copy
    }

    /// Hex SHA-256 of the library file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The plugin's own name and version, from its declaration.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The registered names of its filter kinds (`native:ip_reputation`).
    pub fn filter_names(&self) -> impl Iterator<Item = &str> {
        self.filters.iter().map(|k| k.info_name())
    }

    /// The registered names of its action kinds.
    pub fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(|k| k.info_name())
    }

    /// The registered names of its trigger check kinds (`native:page_watch`).
    pub fn trigger_names(&self) -> impl Iterator<Item = &str> {
        self.triggers.iter().map(|k| k.info().name.as_str())
    }

    /// Its trigger check kinds (trigger conditions `native:NAME`).
    pub fn triggers(&self) -> &[Arc<NativeTriggerKind>] {
        &self.triggers
    }

    /// Its kinds with their guards' counters (`guards`: the registry's, see
    /// `Registry::guards`), disabled kinds and why.
    pub fn status(&self, guards: &BTreeMap<String, Arc<KindGuard>>) -> PluginStatus {
        let kinds: Vec<_> = self
            .filter_names()
            .map(|name| KindStatus::of(name, "filter", guards))
            .chain(
                self.action_names()
                    .map(|name| KindStatus::of(name, "action", guards)),
            )
            .chain(
                self.trigger_names()
                    .map(|name| KindStatus::of(name, "trigger", guards)),
            )
            .collect();
        let messages = kinds
            .iter()
            .filter_map(|k| {
                let reason = k.guard.as_ref()?.reason.as_ref()?;
                Some(format!("{}: disabled: {reason}", k.name))
            })
            .collect();
        PluginStatus {
            library: self.source.display().to_string(),
            loaded_copy: Some(self.copy.display().to_string()),
            name: Some(self.name.clone()),
            version: Some(self.version.clone()),
            state: PluginStatus::aggregate(&kinds),
            messages,
            kinds,
        }
    }
}

/// Whether `path` looks like a dynamic library of this platform (`.so`, `.dylib`, `.dll`).
fn is_library(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == std::env::consts::DLL_EXTENSION)
}

/// Loads every library directly in `dir` (not in subdirectories), in file name order.
/// Returns the libraries that loaded and the errors of those that did not; one bad library
/// never stops the others.
pub fn load_dir(dir: &Path, cache_dir: &Path) -> (Vec<LoadedPlugin>, Vec<PluginError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            return (
                Vec::new(),
                vec![PluginError::Io {
                    file: dir.to_path_buf(),
                    action: "list the plugin directory".into(),
                    source,
                }],
            );
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && is_library(path))
        .collect();
    paths.sort();
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match load_library(&path, cache_dir) {
            Ok(plugin) => loaded.push(plugin),
            Err(error) => errors.push(error),
        }
    }
    (loaded, errors)
}

/// Loads one library: copies it to
/// `<cache_dir>/<sha256>.<ext>`, opens the copy, checks the header and the declaration, and
/// wraps its kinds. Loading a rebuilt file from the same path therefore really loads the new
/// code (the dynamic loader caches by path); loading identical content again reuses the open
/// library.
pub fn load_library(path: &Path, cache_dir: &Path) -> Result<LoadedPlugin, PluginError> {
    let (copy, sha256) = content_addressed_copy(path, cache_dir)?;
    let library = open_once(path, &copy)?;
    check_header(path, library)?;
    let declaration = read_declaration(path, library)?;
    let library_name = path.display().to_string();
    let (name, version, filters, actions, triggers) = describe(path, declaration)?;
    let free_bytes = declaration.free_bytes;
    let filters = filters
        .into_iter()
        .map(|(decl, info)| Arc::new(NativeFilterKind::new(info, *decl, free_bytes, &sha256)))
        .collect();
    let actions = actions
        .into_iter()
        .map(|(decl, info)| {
            Arc::new(NativeActionKind::new(
                info,
                *decl,
                free_bytes,
                declaration.free_reply,
                &sha256,
            ))
        })
        .collect();
    let triggers = triggers
        .into_iter()
        .map(|(decl, info)| Arc::new(NativeTriggerKind::new(info, *decl, free_bytes, &sha256)))
        .collect();
    tracing::info!(library = %library_name, copy = %copy.display(), plugin = %name, version = %version, "Loaded a native plugin.");
    Ok(LoadedPlugin {
        source: path.to_path_buf(),
        copy,
        sha256,
        name,
        version,
        filters,
        actions,
        triggers,
    })
}

/// Removes cached copies in `cache_dir` that this process has not opened; returns how many.
/// Meant for start-up, before the first load (copies of old builds pile up otherwise).
pub fn prune_cache(cache_dir: &Path) -> std::io::Result<usize> {
    let opened: BTreeSet<PathBuf> = OPENED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .keys()
        .cloned()
        .collect();
    let mut removed = 0;
    for entry in std::fs::read_dir(cache_dir)? {
        let path = entry?.path();
        if path.is_file() && is_library(&path) && !opened.contains(&path) {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies `path` to `<cache_dir>/<sha256>.<ext>` unless an identical copy is there; returns
/// the copy's path and the hash. The copy is written beside and renamed into place, so a
/// half-written file is never opened, and an existing (possibly mapped) copy is never written
/// to.
fn content_addressed_copy(path: &Path, cache_dir: &Path) -> Result<(PathBuf, String), PluginError> {
    let io = |action: String| {
        let file = path.to_path_buf();
        move |source| PluginError::Io {
            file,
            action,
            source,
        }
    };
    let bytes = std::fs::read(path).map_err(io("read the library".into()))?;
    let sha256 = hex(&Sha256::digest(&bytes));
    std::fs::create_dir_all(cache_dir).map_err(io(format!(
        "create the plugin cache directory {}",
        cache_dir.display()
    )))?;
    let copy = cache_dir.join(format!("{sha256}.{}", std::env::consts::DLL_EXTENSION));
    let intact = std::fs::read(&copy)
        .map(|existing| hex(&Sha256::digest(&existing)) == sha256)
        .unwrap_or(false);
    if !intact {
        let temporary = cache_dir.join(format!(
            ".{sha256}.{}.{}.partial",
            std::process::id(),
            crate::ids::random_token(8)
        ));
        let written =
            std::fs::write(&temporary, &bytes).and_then(|()| std::fs::rename(&temporary, &copy));
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(io(format!("copy the library to {}", copy.display()))(
                source,
            ));
        }
    }
    Ok((copy, sha256))
}

/// Opens the copy, or returns the library opened from it before.
fn open_once(file: &Path, copy: &Path) -> Result<&'static Library, PluginError> {
    let mut opened = OPENED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(library) = opened.get(copy) {
        return Ok(library);
    }
    // SAFETY: opening runs the library's initialisers (Rust cdylibs built with the SDK have
    // none of their own). Its termination routines never run: the library is leaked below
    // and never closed, which is what makes the 'static references into it sound.
    let library =
        unsafe { Library::new(copy.as_os_str()) }.map_err(|source| PluginError::Open {
            file: file.to_path_buf(),
            source,
        })?;
    let library: &'static Library = Box::leak(Box::new(library));
    opened.insert(copy.to_path_buf(), library);
    Ok(library)
}

/// Reads and checks the header: magic, ABI version, header size.
fn check_header(file: &Path, library: &'static Library) -> Result<(), PluginError> {
    // SAFETY: a data symbol: the returned value is the address of the plugin's static header.
    // The type is only used as a pointer here; nothing is read through it yet.
    let symbol =
        unsafe { library.get::<*const PluginHeader>(HEADER_SYMBOL) }.map_err(|source| {
            PluginError::MissingSymbol {
                file: file.to_path_buf(),
                symbol: HEADER_NAME,
                source,
            }
        })?;
    let address: *const PluginHeader = *symbol;
    if address.is_null() {
        return Err(PluginError::NotAPlugin {
            file: file.to_path_buf(),
            symbol: HEADER_NAME,
        });
    }
    // SAFETY: the symbol names a static in a library that is never unloaded. The header's
    // layout is the one part of the ABI that never changes (16 bytes: magic, version, size),
    // so reading it is sound for any plugin built with any SDK version; read unaligned in
    // case a foreign library exports a differently aligned symbol of that name.
    let header = unsafe { address.read_unaligned() };
    header.check().map_err(|error| match error {
        HeaderError::NotAPlugin => PluginError::NotAPlugin {
            file: file.to_path_buf(),
            symbol: HEADER_NAME,
        },
        HeaderError::VersionMismatch {
            plugin_version,
            plugin_header_size,
            host_version,
            host_header_size,
        } => PluginError::AbiMismatch {
            file: file.to_path_buf(),
            plugin_version,
            plugin_header_size,
            host_version,
            host_header_size,
        },
    })
}

/// Finds the declaration and checks the structure sizes it was compiled with.
fn read_declaration(
    file: &Path,
    library: &'static Library,
) -> Result<&'static PluginDeclaration, PluginError> {
    // SAFETY: a data symbol, used as an address; read below only after the header matched.
    let symbol = unsafe { library.get::<*const PluginDeclaration>(DECLARATION_SYMBOL) }.map_err(
        |source| PluginError::MissingSymbol {
            file: file.to_path_buf(),
            symbol: DECLARATION_NAME,
            source,
        },
    )?;
    let address: *const PluginDeclaration = *symbol;
    let bad = |message: &str| PluginError::BadDeclaration {
        file: file.to_path_buf(),
        symbol: DECLARATION_NAME,
        message: message.to_string(),
    };
    if address.is_null() || !address.is_aligned() {
        return Err(bad("the symbol's address is null or misaligned"));
    }
    // SAFETY: the header matched this host's ABI version, so the symbol is a
    // PluginDeclaration of this layout, which starts with its LayoutSizes; the library is
    // never unloaded.
    let layout = unsafe { std::ptr::addr_of!((*address).layout).read() };
    if let Some((structure, plugin_size, host_size)) =
        layout.first_difference(&LayoutSizes::CURRENT)
    {
        return Err(PluginError::LayoutMismatch {
            file: file.to_path_buf(),
            structure,
            plugin_size,
            host_size,
            abi_version: ABI_VERSION,
        });
    }
    // SAFETY: version and sizes match, the static is immutable and lives as long as the
    // process (the library is never unloaded).
    Ok(unsafe { &*address })
}

type Described = (
    String,
    String,
    Vec<(&'static FilterDecl, KindInfo)>,
    Vec<(&'static ActionDecl, KindInfo)>,
    Vec<(&'static TriggerDecl, KindInfo)>,
);

/// Reads a declaration's strings and kinds, checking names and payload examples.
fn describe(
    file: &Path,
    declaration: &'static PluginDeclaration,
) -> Result<Described, PluginError> {
    let origin = Origin::Native {
        library: file.display().to_string(),
    };
    let bad = |message: String| PluginError::BadDeclaration {
        file: file.to_path_buf(),
        symbol: DECLARATION_NAME,
        message,
    };
    let text = |value: StrRef, what: &str| -> Result<String, PluginError> {
        // SAFETY: declaration strings point into the library's read-only data, which lives as
        // long as the process.
        unsafe { value.as_str() }
            .map(str::to_string)
            .ok_or_else(|| bad(format!("{what} is not UTF-8")))
    };
    let name = text(declaration.name, "the plugin name")?;
    let version = text(declaration.version, "the plugin version")?;
    if declaration.filter_count > MAX_KINDS
        || declaration.action_count > MAX_KINDS
        || declaration.trigger_count > MAX_KINDS
    {
        return Err(bad(format!(
            "it declares {} filters, {} actions and {} trigger checks (at most {MAX_KINDS} each)",
            declaration.filter_count, declaration.action_count, declaration.trigger_count
        )));
    }
    // SAFETY: export_plugin! builds these from constant slices of exactly these lengths, in
    // the library's static data; the null check covers hand-written empty declarations.
    let filters: &'static [FilterDecl] =
        unsafe { kind_slice(declaration.filters, declaration.filter_count) };
    // SAFETY: as above.
    let actions: &'static [ActionDecl] =
        unsafe { kind_slice(declaration.actions, declaration.action_count) };
    // SAFETY: as above.
    let triggers: &'static [TriggerDecl] =
        unsafe { kind_slice(declaration.triggers, declaration.trigger_count) };

    let mut seen = BTreeSet::new();
    let mut filter_infos = Vec::new();
    for decl in filters {
        let info =
            kind_info(&decl.kind, &text, &origin).map_err(|m| bad(format!("filter: {m}")))?;
        if !seen.insert(("filter", info.name.clone())) {
            return Err(bad(format!("filter `{}` is declared twice", info.name)));
        }
        filter_infos.push((decl, info));
    }
    let mut action_infos = Vec::new();
    for decl in actions {
        let info =
            kind_info(&decl.kind, &text, &origin).map_err(|m| bad(format!("action: {m}")))?;
        if !seen.insert(("action", info.name.clone())) {
            return Err(bad(format!("action `{}` is declared twice", info.name)));
        }
        action_infos.push((decl, info));
    }
    let mut trigger_infos = Vec::new();
    for decl in triggers {
        let info =
            kind_info(&decl.kind, &text, &origin).map_err(|m| bad(format!("trigger: {m}")))?;
        if !seen.insert(("trigger", info.name.clone())) {
            return Err(bad(format!(
                "trigger check `{}` is declared twice",
                info.name
            )));
        }
        trigger_infos.push((decl, info));
    }
    Ok((name, version, filter_infos, action_infos, trigger_infos))
}

/// A declaration's kind array as a slice.
///
/// # Safety
/// `pointer` is null, or points at `count` initialised values that live for the process.
unsafe fn kind_slice<T>(pointer: *const T, count: usize) -> &'static [T] {
    if pointer.is_null() || count == 0 {
        return &[];
    }
    // SAFETY: forwarded to the caller.
    unsafe { std::slice::from_raw_parts(pointer, count) }
}

/// Checks a kind's description and turns it into catalogue info (origin filled by the caller).
fn kind_info(
    kind: &KindDecl,
    text: &impl Fn(StrRef, &str) -> Result<String, PluginError>,
    origin: &Origin,
) -> Result<KindInfo, String> {
    let read = |value, what| text(value, what).map_err(|e| e.to_string());
    let name = read(kind.name, "a kind name")?;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(format!(
            "kind name `{name}` must be 1–64 lower-case ASCII letters, digits or `_`"
        ));
    }
    let example_text = read(kind.payload_example, "a payload example")?;
    let example: Value = if example_text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&example_text)
            .map_err(|e| format!("`{name}`: the payload example is not JSON: {e}"))?
    };
    let group = read(kind.group, "a group")?;
    Ok(KindInfo {
        name: format!("{NAME_PREFIX}{name}"),
        origin: origin.clone(),
        group: if group.is_empty() {
            "native".into()
        } else {
            group
        },
        description: read(kind.description, "a description")?,
        payload: PayloadDoc {
            kind: read(kind.payload_type, "a payload type")?,
            example,
            notes: read(kind.payload_notes, "payload notes")?,
        },
        aliases: Vec::new(),
        modes: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_content_addressed_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let file = dir
            .path()
            .join(format!("libx.{}", std::env::consts::DLL_EXTENSION));
        std::fs::write(&file, b"one").unwrap();
        let (first, hash) = content_addressed_copy(&file, &cache).unwrap();
        assert_eq!(hash, hex(&Sha256::digest(b"one")));
        assert_eq!(first.file_stem().unwrap().to_str().unwrap(), hash);
        assert_eq!(content_addressed_copy(&file, &cache).unwrap().0, first);
        std::fs::write(&file, b"two").unwrap();
        let (second, _) = content_addressed_copy(&file, &cache).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).unwrap(), b"one");
        assert_eq!(std::fs::read(&second).unwrap(), b"two");
        // A damaged copy is replaced.
        std::fs::write(&second, b"garbage").unwrap();
        content_addressed_copy(&file, &cache).unwrap();
        assert_eq!(std::fs::read(&second).unwrap(), b"two");
        assert_eq!(prune_cache(&cache).unwrap(), 2);
    }

    #[test]
    fn files_that_are_not_libraries_are_refused_by_the_loader() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir
            .path()
            .join(format!("libbad.{}", std::env::consts::DLL_EXTENSION));
        std::fs::write(&file, b"not an ELF file").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let (loaded, errors) = load_dir(dir.path(), &dir.path().join("cache"));
        assert!(loaded.is_empty());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(matches!(&errors[0], PluginError::Open { file: f, .. } if *f == file));
        let missing = load_dir(&dir.path().join("nope"), &dir.path().join("cache")).1;
        assert!(missing[0].to_string().contains("list the plugin directory"));
    }
}
