//! Reading the campaigns directory: every `*.toml` file (recursively, hidden files skipped) is
//! parsed with spans, each object deserialised on its own so that one bad object does not
//! hide the others, and every key path remembered with its line for later messages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::format::DeclaredSet;
use super::{FileProblem, ObjectKind};

/// Where each key path of the directory was written: file and line.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    lines: HashMap<String, (String, usize)>,
    /// The file of each object, by kind and key (a stream's key is `campaign.stream`).
    pub files: HashMap<(ObjectKind, String), String>,
}

impl Locations {
    /// A problem at `path` (or at its nearest recorded parent).
    pub fn problem(&self, path: &str, message: impl Into<String>) -> FileProblem {
        let mut probe = path.to_string();
        loop {
            if let Some((file, line)) = self.lines.get(&probe) {
                return FileProblem {
                    file: file.clone(),
                    line: Some(*line),
                    path: path.to_string(),
                    message: message.into(),
                };
            }
            match probe.rfind(['.', '[']) {
                Some(cut) => probe.truncate(cut),
                None => break,
            }
        }
        FileProblem {
            file: String::new(),
            line: None,
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// What reading the directory gave: the declared objects, where each was written, and the
/// objects that could not be read (their keys still count as declared, so references to them
/// are not reported twice).
#[derive(Debug, Default)]
pub struct ParsedDir {
    pub set: DeclaredSet,
    pub locations: Locations,
    pub broken: std::collections::HashSet<(ObjectKind, String)>,
}

/// The `*.toml` files under `dir`, sorted, as (path relative to `dir` with `/`, full path).
pub fn toml_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || name.ends_with('~') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if name.ends_with(".toml") {
                let relative = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push((relative, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads every file of the directory; problems are collected, never short-circuited.
pub fn read_dir(dir: &Path, problems: &mut Vec<FileProblem>) -> ParsedDir {
    let mut parsed = ParsedDir::default();
    let files = match toml_files(dir) {
        Ok(files) => files,
        Err(error) => {
            problems.push(FileProblem {
                file: dir.display().to_string(),
                line: None,
                path: String::new(),
                message: format!("cannot read the campaigns directory: {error}"),
            });
            return parsed;
        }
    };
    for (relative, path) in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => read_text(&relative, &text, &mut parsed, problems),
            Err(error) => problems.push(FileProblem {
                file: relative,
                line: None,
                path: String::new(),
                message: format!("cannot read the file: {error}"),
            }),
        }
    }
    parsed
}

/// 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Reads one file's text into `parsed`.
pub fn read_text(file: &str, text: &str, parsed: &mut ParsedDir, problems: &mut Vec<FileProblem>) {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(error) => {
            problems.push(FileProblem {
                file: file.to_string(),
                line: error.span().map(|span| line_at(text, span.start)),
                path: String::new(),
                message: format!("not valid TOML: {}", error.message().trim()),
            });
            return;
        }
    };
    let mut spans: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    record_table(
        root.get_ref(),
        "",
        text,
        file,
        &mut parsed.locations,
        &mut spans,
    );
    let locate =
        |span: Option<std::ops::Range<usize>>, fallback: &str| -> (Option<usize>, String) {
            let Some(span) = span else {
                return (None, fallback.to_string());
            };
            let path = spans
                .iter()
                .filter(|(path, range)| {
                    range.start <= span.start
                        && span.start < range.end.max(range.start + 1)
                        && path.starts_with(fallback)
                })
                .max_by_key(|(path, _)| path.len())
                .map(|(path, _)| path.clone())
                .unwrap_or_else(|| fallback.to_string());
            (Some(line_at(text, span.start)), path)
        };
    for (section, value) in root.get_ref() {
        let section_name = section.get_ref().as_ref();
        let Some(kind) = ObjectKind::from_section(section_name) else {
            problems.push(FileProblem {
                file: file.to_string(),
                line: Some(line_at(text, section.span().start)),
                path: section_name.to_string(),
                message: format!(
                    "unknown section (known: {})",
                    ObjectKind::SECTIONS.join(", ")
                ),
            });
            continue;
        };
        let DeValue::Table(objects) = value.get_ref() else {
            problems.push(FileProblem {
                file: file.to_string(),
                line: Some(line_at(text, value.span().start)),
                path: section_name.to_string(),
                message: format!("must be a table of objects by key ([{section_name}.KEY])"),
            });
            continue;
        };
        let mut entries: Vec<_> = objects.iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        for (key, object) in entries {
            let here = |message: String| FileProblem {
                file: file.to_string(),
                line: Some(line_at(text, key.span().start)),
                path: format!("{section_name}.{}", key.get_ref()),
                message,
            };
            let key = key.get_ref().to_string();
            let path = format!("{section_name}.{key}");
            if let Err(message) = check_key(&key) {
                problems.push(here(message));
            }
            let id = (kind, key.clone());
            if let Some(other) = parsed.locations.files.get(&id) {
                problems.push(here(format!(
                    "`{key}` is also declared in {other}; keys are unique per kind"
                )));
                continue;
            }
            parsed.locations.files.insert(id.clone(), file.to_string());
            let ok = match kind {
                ObjectKind::AffiliateNetwork => object_into(object, &path, &locate, file, problems)
                    .map(|decl| {
                        parsed.set.affiliate_networks.insert(key.clone(), decl);
                    }),
                ObjectKind::TrafficSource => object_into(object, &path, &locate, file, problems)
                    .map(|decl| {
                        parsed.set.traffic_sources.insert(key.clone(), decl);
                    }),
                ObjectKind::Offer => {
                    object_into(object, &path, &locate, file, problems).map(|decl| {
                        parsed.set.offers.insert(key.clone(), decl);
                    })
                }
                ObjectKind::Landing => {
                    object_into(object, &path, &locate, file, problems).map(|decl| {
                        parsed.set.landings.insert(key.clone(), decl);
                    })
                }
                ObjectKind::Campaign => {
                    let decl: Option<super::format::CampaignDecl> =
                        object_into(object, &path, &locate, file, problems);
                    decl.map(|mut decl| {
                        number_streams(object.get_ref(), &key, file, &mut decl, parsed);
                        parsed.set.campaigns.insert(key.clone(), decl);
                    })
                }
                ObjectKind::Stream => None,
            };
            if ok.is_none() {
                parsed.broken.insert(id);
            }
        }
    }
}

/// Gives streams without a `position` their place in the file (1-based, by declaration), and
/// records each stream's file.
fn number_streams(
    object: &DeValue<'_>,
    campaign: &str,
    file: &str,
    decl: &mut super::format::CampaignDecl,
    parsed: &mut ParsedDir,
) {
    let mut order: Vec<(usize, String)> = Vec::new();
    if let DeValue::Table(table) = object
        && let Some((_, streams)) = table.iter().find(|(k, _)| k.get_ref() == "streams")
        && let DeValue::Table(streams) = streams.get_ref()
    {
        order = streams
            .iter()
            .map(|(k, _)| (k.span().start, k.get_ref().to_string()))
            .collect();
    }
    order.sort();
    for (index, (_, key)) in order.iter().enumerate() {
        if let Some(stream) = decl.streams.get_mut(key)
            && stream.position == 0
        {
            stream.position = index as i64 + 1;
        }
    }
    for key in decl.streams.keys() {
        parsed.locations.files.insert(
            (ObjectKind::Stream, format!("{campaign}.{key}")),
            file.to_string(),
        );
    }
}

type Locate<'a> = dyn Fn(Option<std::ops::Range<usize>>, &str) -> (Option<usize>, String) + 'a;

/// Deserialises one object; on failure reports where and returns `None`.
fn object_into<T: DeserializeOwned>(
    object: &Spanned<DeValue<'_>>,
    path: &str,
    locate: &Locate<'_>,
    file: &str,
    problems: &mut Vec<FileProblem>,
) -> Option<T> {
    if !matches!(object.get_ref(), DeValue::Table(_)) {
        let (line, _) = locate(Some(object.span()), path);
        problems.push(FileProblem {
            file: file.to_string(),
            line,
            path: path.to_string(),
            message: "must be a table".into(),
        });
        return None;
    }
    match T::deserialize(ValueDeserializer::from(object.clone())) {
        Ok(value) => Some(value),
        Err(error) => {
            let (line, at) = locate(error.span(), path);
            problems.push(FileProblem {
                file: file.to_string(),
                line: line.or_else(|| locate(Some(object.span()), path).0),
                path: at,
                message: error.message().trim().to_string(),
            });
            None
        }
    }
}

/// Records the line of every key path under `table` (and each path's span, for errors).
fn record_table(
    table: &DeTable<'_>,
    prefix: &str,
    text: &str,
    file: &str,
    locations: &mut Locations,
    spans: &mut Vec<(String, std::ops::Range<usize>)>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        let start = key.span().start;
        locations
            .lines
            .entry(path.clone())
            .or_insert_with(|| (file.to_string(), line_at(text, start)));
        let value_span = value.span();
        spans.push((
            path.clone(),
            start.min(value_span.start)..value_span.end.max(key.span().end),
        ));
        record_value(value, &path, text, file, locations, spans);
    }
}

fn record_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    text: &str,
    file: &str,
    locations: &mut Locations,
    spans: &mut Vec<(String, std::ops::Range<usize>)>,
) {
    match value.get_ref() {
        DeValue::Table(table) => record_table(table, path, text, file, locations, spans),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{index}]");
                locations
                    .lines
                    .entry(item_path.clone())
                    .or_insert_with(|| (file.to_string(), line_at(text, item.span().start)));
                spans.push((item_path.clone(), item.span()));
                record_value(item, &item_path, text, file, locations, spans);
            }
        }
        _ => {}
    }
}

/// The objects of one file's text, for tests and `switchyard export` checks.
pub fn parse_text(file: &str, text: &str) -> Result<DeclaredSet, Vec<FileProblem>> {
    let mut parsed = ParsedDir::default();
    let mut problems = Vec::new();
    read_text(file, text, &mut parsed, &mut problems);
    if problems.is_empty() {
        Ok(parsed.set)
    } else {
        Err(problems)
    }
}

/// Longest key of an object.
const MAX_KEY: usize = 64;

/// A key (the TOML table name): 1–64 ASCII letters, digits, `_` and `-`.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!(
            "a key has 1 to {MAX_KEY} characters, `{key}` does not"
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "`{key}` is not a valid key (letters, digits, `_` and `-` only)"
        ));
    }
    Ok(())
}
