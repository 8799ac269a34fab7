//! Archives of an object's files: checking and unpacking an uploaded ZIP (bounded in entries and
//! unpacked bytes, no links, no names leaving the directory), swapping the unpacked directory
//! in, and packing a directory for `download`.

use std::collections::BTreeSet;
use std::io::{Cursor, Read, Write};
use std::path::Path;

use base64::Engine;
use zip::ZipArchive;

use super::paths::{RelPath, extension_of, name_of, walk};
use super::unique_name;

/// Most files (and directories) an archive may hold.
pub const MAX_ARCHIVE_ENTRIES: usize = 2000;
/// Most bytes an archive may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

/// A ZIP whose names, kinds, count and sizes passed the checks; its data is checked as it is
/// read (see [`Archive::each_entry`]).
pub struct Archive {
    zip: ZipArchive<Cursor<Vec<u8>>>,
    /// (entry index, path, is a directory), in archive order.
    entries: Vec<(usize, RelPath, bool)>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// ZIP tools add these; they are not part of a landing.
fn is_tool_litter(name: &str) -> bool {
    name.starts_with("__MACOSX/")
        || name == "__MACOSX"
        || name.rsplit('/').next() == Some(".DS_Store")
}

impl Archive {
    /// Decodes a base64 ZIP (line breaks, a `data:…;base64,` prefix and unpadded or URL-safe
    /// base64 allowed) and checks every
    /// entry's name and kind, the entry count and the sizes the archive declares.
    pub fn open(text: &str) -> Result<Archive, String> {
        let text = match text.trim_start().strip_prefix("data:") {
            Some(rest) => rest
                .split_once(";base64,")
                .map(|(_, data)| data)
                .unwrap_or(rest),
            None => text,
        };
        // Line breaks are dropped; a space is a `+` that a form body sent unescaped.
        let compact: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, '\n' | '\r' | '\t'))
            .map(|c| if c == ' ' { '+' } else { c })
            .collect();
        let lenient = base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
        let bytes = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
            .decode(&compact)
            .or_else(|_| {
                base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient)
                    .decode(&compact)
            })
            .map_err(|e| format!("archive is not valid base64: {e}."))?;
        let mut zip = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| format!("archive is not a ZIP file: {e}."))?;
        if zip.len() > MAX_ARCHIVE_ENTRIES {
            return Err(format!(
                "archive holds {} entries; at most {MAX_ARCHIVE_ENTRIES} are allowed.",
                zip.len()
            ));
        }
        let mut entries = Vec::new();
        let mut declared: u64 = 0;
        let mut files = BTreeSet::new();
        let mut dirs = BTreeSet::new();
        for index in 0..zip.len() {
            let entry = zip
                .by_index_raw(index)
                .map_err(|e| format!("archive entry {index} cannot be read: {e}."))?;
            let raw_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            if is_tool_litter(&raw_name) {
                continue;
            }
            let name = raw_name.replace('\\', "/");
            let path =
                RelPath::parse(&name).map_err(|m| format!("archive entry {raw_name:?} {m}"))?;
            if entry.is_symlink() {
                return Err(format!(
                    "archive entry {raw_name:?} is a symbolic link; links are not allowed."
                ));
            }
            if entry.encrypted() {
                return Err(format!(
                    "archive entry {raw_name:?} is encrypted; send an unencrypted ZIP."
                ));
            }
            let dir = entry.is_dir();
            if !dir {
                declared = declared.saturating_add(entry.size());
                if declared > MAX_UNPACKED_BYTES {
                    return Err(format!(
                        "archive unpacks to more than {MAX_UNPACKED_BYTES} bytes."
                    ));
                }
                if !files.insert(path.clone()) {
                    return Err(format!("archive holds {} twice.", path.as_str()));
                }
            }
            let mut parent = if dir {
                Some(path.clone())
            } else {
                path.parent()
            };
            while let Some(at) = parent {
                parent = at.parent();
                dirs.insert(at);
            }
            drop(entry);
            entries.push((index, path, dir));
        }
        if let Some(clash) = files.intersection(&dirs).next() {
            return Err(format!(
                "archive holds {} both as a file and as a directory.",
                clash.as_str()
            ));
        }
        if files.is_empty() {
            return Err("archive holds no files.".into());
        }
        Ok(Archive { zip, entries })
    }

    /// The page a `local_file` action should serve: `index.html` (or `.htm`, `.php`) nearest to
    /// the root, else the first HTML file.
    pub fn entry_page(&self) -> String {
        let files = || {
            self.entries
                .iter()
                .filter(|(_, _, dir)| !dir)
                .map(|(_, path, _)| path.as_str())
        };
        let depth = |path: &str| path.matches('/').count();
        ["index.html", "index.htm", "index.php"]
            .iter()
            .find_map(|index| {
                files()
                    .filter(|path| name_of(path) == *index)
                    .min_by_key(|path| depth(path))
            })
            .or_else(|| {
                files()
                    .filter(|path| {
                        matches!(
                            extension_of(name_of(path)).to_ascii_lowercase().as_str(),
                            "html" | "htm"
                        )
                    })
                    .min_by_key(|path| depth(path))
            })
            .unwrap_or("index.html")
            .to_string()
    }

    pub fn has_file(&self, path: &str) -> bool {
        self.entries
            .iter()
            .any(|(_, p, dir)| !dir && p.as_str() == path)
    }

    /// Reads every entry, handing each file's data to `take` through a reader bounded by what
    /// is left of [`MAX_UNPACKED_BYTES`] (declared sizes are not trusted); directories get `None`.
    /// Damaged data (a bad checksum, a broken stream) and unsupported compression fail here.
    fn each_entry(
        &mut self,
        mut take: impl FnMut(&RelPath, Option<&mut dyn Read>) -> std::io::Result<()>,
    ) -> Result<(), String> {
        let mut left = MAX_UNPACKED_BYTES;
        for (index, path, dir) in &self.entries {
            if *dir {
                take(path, None).map_err(|e| {
                    format!(
                        "archive entry {} could not be unpacked: {e}.",
                        path.as_str()
                    )
                })?;
                continue;
            }
            let entry = self
                .zip
                .by_index(*index)
                .map_err(|e| format!("archive entry {} cannot be read: {e}.", path.as_str()))?;
            let mut counted = CountingReader {
                inner: entry.take(left + 1),
                count: 0,
            };
            take(path, Some(&mut counted))
                .map_err(|e| format!("archive entry {} is damaged: {e}.", path.as_str()))?;
            // Drain what the taker left unread, so the checksum is verified and the size counted.
            std::io::copy(&mut counted, &mut std::io::sink())
                .map_err(|e| format!("archive entry {} is damaged: {e}.", path.as_str()))?;
            if counted.count > left {
                return Err(format!(
                    "archive unpacks to more than {MAX_UNPACKED_BYTES} bytes."
                ));
            }
            left -= counted.count;
        }
        Ok(())
    }

    /// Reads every entry's data without keeping it: the check before anything is written.
    pub fn verify(&mut self) -> Result<(), String> {
        self.each_entry(|_, _| Ok(()))
    }

    /// Unpacks into `fresh` (a new, empty directory).
    pub fn unpack_into(&mut self, fresh: &Path) -> Result<(), String> {
        self.each_entry(|path, data| {
            let target = path.under(fresh);
            match data {
                None => std::fs::create_dir_all(&target),
                Some(reader) => {
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let mut file = std::fs::File::create_new(&target)?;
                    std::io::copy(reader, &mut file)?;
                    Ok(())
                }
            }
        })
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Replaces the directory `target` with a new one that `fill` writes in `staging` (on the same
/// file system): the old directory is renamed aside, the new one renamed into place, the old one
/// removed. A visitor reading a file meanwhile gets the old file or the new one.
pub fn replace_dir(
    staging: &Path,
    target: &Path,
    fill: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let failed = |what: &str, e: std::io::Error| format!("{what}: {e}");
    std::fs::create_dir_all(staging).map_err(|e| failed("creating the staging directory", e))?;
    let fresh = staging.join(unique_name("unpack"));
    std::fs::create_dir(&fresh).map_err(|e| failed("creating the unpack directory", e))?;
    if let Err(message) = fill(&fresh) {
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(message);
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed("creating the upload directory", e))?;
    }
    let old = staging.join(unique_name("replaced"));
    let had_files = match std::fs::rename(target, &old) {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(failed("moving the old files aside", error));
        }
    };
    if let Err(error) = std::fs::rename(&fresh, target) {
        if had_files {
            let _ = std::fs::rename(&old, target);
        }
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(failed("moving the unpacked files into place", error));
    }
    if had_files && let Err(error) = std::fs::remove_dir_all(&old) {
        tracing::warn!(%error, path = %old.display(), "The replaced files could not be removed.");
    }
    Ok(())
}

/// Copies every file and directory under `source` (links left out) into `fresh`.
pub fn copy_tree(source: &Path, fresh: &Path) -> Result<(), String> {
    for entry in walk(source).map_err(|e| e.to_string())? {
        let target = entry.path.under(fresh);
        let copied = if entry.dir {
            std::fs::create_dir_all(&target)
        } else {
            std::fs::copy(entry.path.under(source), &target).map(drop)
        };
        copied.map_err(|e| format!("copying {}: {e}", entry.path.as_str()))?;
    }
    Ok(())
}

/// A ZIP of every file and directory under `root` (deflated).
pub fn pack(root: &Path) -> Result<Vec<u8>, String> {
    let entries = walk(root).map_err(|e| e.to_string())?;
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for entry in &entries {
        if entry.dir {
            writer
                .add_directory(format!("{}/", entry.path.as_str()), options)
                .map_err(|e| e.to_string())?;
            continue;
        }
        let bytes = std::fs::read(entry.path.under(root)).map_err(|e| e.to_string())?;
        writer
            .start_file(entry.path.as_str(), options)
            .map_err(|e| e.to_string())?;
        writer.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    Ok(writer.finish().map_err(|e| e.to_string())?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> String {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            if name.ends_with('/') {
                writer.add_directory(*name, options).unwrap();
            } else {
                writer.start_file(*name, options).unwrap();
                writer.write_all(data).unwrap();
            }
        }
        let bytes = writer.finish().unwrap().into_inner();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn archives_are_checked_before_use() {
        let mut good = Archive::open(&zip_of(&[
            ("index.html", b"<h1>hi</h1>"),
            ("css/", b""),
            ("css/a.css", b"b{}"),
        ]))
        .unwrap();
        good.verify().unwrap();
        assert_eq!(good.entry_page(), "index.html");
        let nested = Archive::open(&zip_of(&[
            ("site/index.html", b"x"),
            ("site/about.html", b"y"),
        ]))
        .unwrap();
        assert_eq!(nested.entry_page(), "site/index.html");
        assert!(
            Archive::open("not base64 !!")
                .unwrap_err()
                .contains("base64")
        );
        assert!(Archive::open("aGVsbG8=").unwrap_err().contains("not a ZIP"));
        assert!(
            Archive::open(&zip_of(&[("../evil.html", b"x")]))
                .unwrap_err()
                .contains("..")
        );
        assert!(
            Archive::open(&zip_of(&[("/abs.html", b"x")]))
                .unwrap_err()
                .contains("relative")
        );
        assert!(
            Archive::open(&zip_of(&[("css/", b"")]))
                .unwrap_err()
                .contains("no files")
        );
        assert!(
            Archive::open(&zip_of(&[("a", b"x"), ("a/b", b"y")]))
                .unwrap_err()
                .contains("both")
        );
        // macOS litter is skipped, not refused.
        let litter = Archive::open(&zip_of(&[
            ("__MACOSX/._index.html", b"x"),
            ("index.html", b"y"),
        ]))
        .unwrap();
        assert_eq!(litter.entries.len(), 1);
    }

    #[test]
    fn unescaped_form_pluses_and_line_breaks_are_forgiven() {
        let text = zip_of(&[("index.html", &[0xfb; 64])]);
        assert!(text.contains('+'), "the sample must hold a +: {text}");
        let mangled: String = text
            .replace('+', " ")
            .as_bytes()
            .chunks(20)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n");
        Archive::open(&mangled).unwrap().verify().unwrap();
    }

    #[test]
    fn entries_larger_than_they_declare_stop_at_the_limit() {
        let mut bytes = {
            let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            writer.start_file("bomb.bin", options).unwrap();
            writer.write_all(&vec![0u8; 65 * 1024 * 1024]).unwrap();
            writer.finish().unwrap().into_inner()
        };
        // Declare 10 bytes in the local header and the central directory.
        let size = (65u32 * 1024 * 1024).to_le_bytes();
        for at in 0..bytes.len() - 4 {
            if bytes[at..at + 4] == size {
                bytes[at..at + 4].copy_from_slice(&10u32.to_le_bytes());
            }
        }
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut archive = Archive::open(&text).unwrap();
        let error = archive.verify().unwrap_err();
        assert!(
            error.contains("damaged") || error.contains("more than"),
            "{error}"
        );
    }

    #[test]
    fn symlinks_in_archives_are_refused() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        writer.add_symlink("link", "/etc/passwd", options).unwrap();
        writer.start_file("index.html", options).unwrap();
        writer.write_all(b"x").unwrap();
        let text =
            base64::engine::general_purpose::STANDARD.encode(writer.finish().unwrap().into_inner());
        assert!(Archive::open(&text).unwrap_err().contains("symbolic link"));
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit() {
        // 70 MiB of zeros deflate to about 70 KiB; the declared size alone refuses it.
        let zeros = vec![0u8; 70 * 1024 * 1024];
        let text = zip_of(&[("big.bin", &zeros)]);
        assert!(Archive::open(&text).unwrap_err().contains("more than"));
    }
}
