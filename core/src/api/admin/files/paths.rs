//! Paths inside an object's file directory: [`RelPath`] (what a client or an archive may name),
//! the symbolic-link guard, and the walk behind `get_structure` and `download`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::super::input::Invalid;

/// Longest path a client may name, in bytes.
const MAX_PATH_BYTES: usize = 1024;
/// Longest single file or directory name, in bytes.
const MAX_NAME_BYTES: usize = 255;
/// Deepest nesting of directories.
const MAX_DEPTH: usize = 32;
/// Most entries `get_structure` and `download` walk.
const MAX_WALKED_ENTRIES: usize = 20_000;

/// A path inside an object's directory, as a client or an archive names it: relative,
/// `/`-separated, every segment a plain name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RelPath(String);

impl RelPath {
    /// Checks `raw`; the message says what is wrong. One trailing `/` is allowed (a directory).
    pub fn parse(raw: &str) -> Result<RelPath, String> {
        if raw.is_empty() {
            return Err("must not be empty.".into());
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(format!("must be at most {MAX_PATH_BYTES} bytes."));
        }
        if raw.contains('\0') {
            return Err("must not contain NUL.".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters.".into());
        }
        if raw.contains('\\') {
            return Err("must use / to separate directories.".into());
        }
        let bytes = raw.as_bytes();
        if raw.starts_with('/')
            || (bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic())
        {
            return Err(
                "must be relative to the object's directory (like order/success.html).".into(),
            );
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        let segments: Vec<&str> = trimmed.split('/').collect();
        if segments.len() > MAX_DEPTH {
            return Err(format!("must be at most {MAX_DEPTH} directories deep."));
        }
        for segment in &segments {
            match *segment {
                "" => return Err("must not contain empty segments (//).".into()),
                "." | ".." => return Err("must not contain . or .. segments.".into()),
                name if name.len() > MAX_NAME_BYTES => {
                    return Err(format!(
                        "must not have names longer than {MAX_NAME_BYTES} bytes."
                    ));
                }
                _ => {}
            }
        }
        Ok(RelPath(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The path under `root`.
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(self.segments());
        path
    }

    pub fn parent(&self) -> Option<RelPath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| RelPath(parent.to_string()))
    }
}

/// Refuses a path that passes through a symbolic link below `root` (the API never makes one;
/// one placed by hand could lead out of the directory).
pub fn refuse_links(root: &Path, path: &RelPath) -> Result<(), Invalid> {
    let mut at = root.to_path_buf();
    for segment in path.segments() {
        at.push(segment);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Invalid::one("path", "path passes through a symbolic link."));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// A file or directory under an object's directory (symbolic links are left out).
pub struct Entry {
    pub path: RelPath,
    pub dir: bool,
}

/// Every file and directory under `root`, parents before children, names sorted.
pub fn walk(root: &Path) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut pending = vec![None::<RelPath>];
    while let Some(dir) = pending.pop() {
        let at = dir
            .as_ref()
            .map_or_else(|| root.to_path_buf(), |d| d.under(root));
        let listing = match std::fs::read_dir(&at) {
            Ok(listing) => listing,
            Err(error) if dir.is_none() && error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(entries);
            }
            Err(error) => return Err(error),
        };
        let mut children = Vec::new();
        for item in listing {
            let item = item?;
            let kind = item.file_type()?;
            let Some(name) = item.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if kind.is_symlink() || !(kind.is_dir() || kind.is_file()) {
                continue;
            }
            let joined = match &dir {
                Some(parent) => format!("{}/{name}", parent.as_str()),
                None => name,
            };
            let Ok(path) = RelPath::parse(&joined) else {
                continue;
            };
            children.push(Entry {
                path,
                dir: kind.is_dir(),
            });
        }
        children.sort_by(|a, b| a.path.cmp(&b.path));
        for child in children.iter().rev().filter(|c| c.dir) {
            pending.push(Some(child.path.clone()));
        }
        entries.extend(children);
        if entries.len() > MAX_WALKED_ENTRIES {
            return Err(std::io::Error::other(format!(
                "more than {MAX_WALKED_ENTRIES} files"
            )));
        }
    }
    Ok(entries)
}

pub fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

pub fn extension_of(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => "",
    }
}

/// The EditorFiles tree: directories first, then files, each by name.
pub fn tree(entries: &[Entry]) -> Value {
    fn node(entries: &[Entry], parent: Option<&RelPath>) -> Vec<Value> {
        let mut children: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.path.parent().as_ref() == parent)
            .collect();
        children.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.path.cmp(&b.path)));
        children
            .into_iter()
            .map(|entry| {
                let name = name_of(entry.path.as_str());
                if entry.dir {
                    json!({
                        "name": name, "type": "directory", "ext": "", "path": entry.path.as_str(),
                        "children": node(entries, Some(&entry.path)),
                    })
                } else {
                    json!({
                        "name": name, "type": "file", "ext": extension_of(name), "path": entry.path.as_str(),
                        "children": [],
                    })
                }
            })
            .collect()
    }
    json!({ "name": "", "type": "directory", "ext": "", "path": "", "children": node(entries, None) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        for good in [
            "index.html",
            "css/site.css",
            "a/b/c.js",
            "dir/",
            "..hidden",
            "a..b/c",
        ] {
            assert!(RelPath::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            ".",
            "a//b",
            "a\\..\\b",
            "a\0b",
            "C:/x",
            "a\nb",
        ] {
            assert!(RelPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RelPath::parse(&"a/".repeat(40)).is_err());
        assert!(RelPath::parse(&"n".repeat(300)).is_err());
        assert_eq!(RelPath::parse("css/").unwrap().as_str(), "css");
    }
}
