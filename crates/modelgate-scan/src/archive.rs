//! Zip and tar archives: refused before anything is inflated when their entries escape, are too many or
//! declare a bomb's compression ratio; otherwise every member is scanned in memory (never extracted).

use crate::input::{Counting, Inflate, ReadSeek, Window};
use crate::scanner::{Outcome, Place, Scanner};
use crate::{FindingKind, Format, Verdict};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read, SeekFrom};
use std::rc::Rc;

/// Extensions of files that a loader may run: scripts and native libraries.
const CODE_EXTENSIONS: &[&str] = &[
    "py", "pyc", "pyo", "pyd", "so", "dll", "dylib", "sh", "bash", "bat", "cmd", "ps1", "exe",
    "jar",
];

/// Whether an entry name, extracted, would land outside the extraction directory: absolute (`/`, `\`, a
/// drive letter), `..` climbing above the root, or a NUL byte. Backslashes count as separators.
pub(crate) fn escapes(name: &str) -> bool {
    let name = name.replace('\\', "/");
    if name.starts_with('/') || name.as_bytes().get(1) == Some(&b':') || name.contains('\0') {
        return true;
    }
    let mut depth: i64 = 0;
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Whether a link at `name` pointing to `target` leads outside the archive's root.
fn link_escapes(name: &str, target: &str) -> bool {
    let target = target.replace('\\', "/");
    if target.starts_with('/') || target.as_bytes().get(1) == Some(&b':') {
        return true;
    }
    let directory = name.rsplit_once('/').map_or("", |(directory, _)| directory);
    escapes(&format!("{directory}/{target}"))
}

fn extension(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or_default();
    base.rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default()
}

/// What an archive's members came to, for its summary finding.
#[derive(Default)]
struct Tally {
    files: u64,
    scanned: u64,
    storages: u64,
    unrecognised: u64,
    unrecognised_names: Vec<String>,
}

impl Tally {
    fn count(&mut self, outcome: Outcome, name: &str) {
        match outcome {
            Outcome::Scanned => self.scanned += 1,
            Outcome::NotRecognised => {
                self.unrecognised += 1;
                if self.unrecognised_names.len() < 5 {
                    self.unrecognised_names.push(name.to_owned());
                }
            }
        }
    }

    fn summary(&self, what: &str, entries: u64) -> String {
        let mut text = format!(
            "{what}: {entries} entries, {} files: {} scanned",
            self.files, self.scanned
        );
        if self.storages > 0 {
            text.push_str(&format!(
                ", {} PyTorch tensor storages skipped (raw data, never unpickled)",
                self.storages
            ));
        }
        if self.unrecognised > 0 {
            text.push_str(&format!(
                ", {} in no format that loads code ({})",
                self.unrecognised,
                self.unrecognised_names.join(", ")
            ));
        }
        text
    }
}

/// The PyTorch archive prefixes (`archive/` for `archive/data.pkl`) and whether an MLflow model is here.
fn layout(names: &[&str]) -> (Vec<String>, bool) {
    let mut prefixes = Vec::new();
    let mut mlflow = false;
    for name in names {
        if let Some(prefix) = name.strip_suffix("data.pkl")
            && (prefix.is_empty() || prefix.ends_with('/'))
        {
            let storage = format!("{prefix}data/");
            if names.iter().any(|other| other.starts_with(&storage))
                || names.contains(&&*format!("{prefix}version"))
            {
                prefixes.push(prefix.to_owned());
            }
        }
        if name.rsplit('/').next() == Some("MLmodel") {
            mlflow = true;
        }
    }
    (prefixes, mlflow)
}

/// Whether `name` is a tensor storage of a PyTorch layout: `<prefix>data/<key>` where the key is what
/// torch's `persistent_id` writes, a plain decimal number. Anything else under `data/` (MLflow's
/// `data/model.pth`, a nested archive, a joblib file) is scanned.
fn is_storage(prefixes: &[String], name: &str) -> bool {
    prefixes.iter().any(|prefix| {
        name.strip_prefix(prefix.as_str())
            .and_then(|rest| rest.strip_prefix("data/"))
            .is_some_and(|key| !key.is_empty() && key.bytes().all(|byte| byte.is_ascii_digit()))
    })
}

/// Findings for an entry's path and kind that do not need its content.
fn check_entry_name(scanner: &mut Scanner, place: &Place, name: &str, offset: u64) {
    if escapes(name) {
        scanner.note(
            FindingKind::ArchivePathEscape,
            Verdict::Dangerous,
            &Place {
                path: place.child(name).path,
                ..place.clone()
            },
            offset,
            format!(
                "entry `{name}` would be extracted outside the target directory (absolute or `..`)"
            ),
        );
    }
}

fn check_link(
    scanner: &mut Scanner,
    place: &Place,
    name: &str,
    target: &str,
    hard: bool,
    offset: u64,
) {
    let escaping = link_escapes(name, target);
    let kind = if hard { "hard link" } else { "symbolic link" };
    scanner.note(
        FindingKind::ArchiveLink,
        if escaping {
            Verdict::Dangerous
        } else {
            Verdict::Suspicious
        },
        &place.child(name),
        offset,
        if escaping {
            format!("{kind} to `{target}`, outside the archive: extraction or loading reads or writes host files")
        } else {
            format!("{kind} to `{target}` (not followed)")
        },
    );
}

struct ZipMember {
    index: usize,
    name: String,
    directory: bool,
    symlink: bool,
    encrypted: bool,
    compression: zip::CompressionMethod,
    data_start: Option<u64>,
    compressed: u64,
    size: u64,
    header: u64,
}

/// The entry count an archive's end-of-central-directory record declares (zip64 included), read before
/// the central directory is parsed so that a directory of millions of entries is refused unread.
fn declared_zip_entries(reader: &mut dyn ReadSeek, length: u64) -> io::Result<Option<u64>> {
    let tail_length = length.min(66_000 + 20);
    reader.seek(SeekFrom::Start(length - tail_length))?;
    let mut tail = Vec::with_capacity(tail_length as usize);
    Read::take(&mut *reader, tail_length).read_to_end(&mut tail)?;
    let Some(end) = tail.windows(4).rposition(|window| window == b"PK\x05\x06") else {
        return Ok(None);
    };
    let field = |at: usize, width: usize| -> Option<u64> {
        let bytes = tail.get(at..at + width)?;
        let mut word = [0u8; 8];
        word[..width].copy_from_slice(bytes);
        Some(u64::from_le_bytes(word))
    };
    let count = field(end + 10, 2);
    if count != Some(0xffff) {
        return Ok(count);
    }
    // Zip64: the locator sits just before the record and points at the zip64 record.
    let Some(locator) = end
        .checked_sub(20)
        .filter(|&at| tail.get(at..at + 4) == Some(b"PK\x06\x07".as_slice()))
    else {
        return Ok(count);
    };
    let Some(record) = field(locator + 8, 8) else {
        return Ok(count);
    };
    let mut zip64 = [0u8; 40];
    reader.seek(SeekFrom::Start(record))?;
    if reader.read_exact(&mut zip64).is_err() || &zip64[..4] != b"PK\x06\x06" {
        return Ok(count);
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&zip64[32..40]);
    Ok(Some(u64::from_le_bytes(word)))
}

/// A zip archive: central directory first, refusal checks, then every member.
pub(crate) fn scan_zip(
    scanner: &mut Scanner,
    reader: &mut dyn ReadSeek,
    length: u64,
    place: &Place,
) -> io::Result<()> {
    scanner.format(Format::Zip);
    if let Some(declared) = declared_zip_entries(reader, length)?
        && declared > scanner.limits.max_entries
    {
        scanner.note(
            FindingKind::ArchiveTooManyEntries,
            Verdict::Suspicious,
            place,
            0,
            format!(
                "{declared} entries declared, more than the limit of {}: refused, no member scanned",
                scanner.limits.max_entries
            ),
        );
        return Ok(());
    }
    // The first bytes, to tell another zip glued in front from a stub (read before the archive holds
    // the reader).
    reader.seek(SeekFrom::Start(0))?;
    let mut magic = [0u8; 4];
    if reader.read_exact(&mut magic).is_err() {
        magic = [0; 4];
    }
    reader.seek(SeekFrom::Start(0))?;
    let mut archive = match zip::ZipArchive::new(&mut *reader) {
        Ok(archive) => archive,
        Err(error) => {
            scanner.note(
                FindingKind::MalformedArchive,
                Verdict::Suspicious,
                place,
                0,
                format!("the zip archive cannot be read: {error}"),
            );
            return Ok(());
        }
    };
    let entries = archive.len() as u64;
    if entries > scanner.limits.max_entries {
        scanner.note(
            FindingKind::ArchiveTooManyEntries,
            Verdict::Suspicious,
            place,
            0,
            format!(
                "{entries} entries, more than the limit of {}: refused, no member scanned",
                scanner.limits.max_entries
            ),
        );
        return Ok(());
    }
    if archive.has_duplicate_names() {
        scanner.note(
            FindingKind::ArchiveDuplicateEntry,
            Verdict::Suspicious,
            place,
            0,
            "the central directory names an entry twice: a loader may read the copy that was not scanned"
                .to_owned(),
        );
    }
    let mut members = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let member = match archive.by_index_raw(index) {
            Ok(file) => ZipMember {
                index,
                name: String::from_utf8_lossy(file.name_raw()).into_owned(),
                directory: file.is_dir(),
                symlink: file.is_symlink(),
                encrypted: file.encrypted(),
                compression: file.compression(),
                data_start: file.data_start(),
                compressed: file.compressed_size(),
                size: file.size(),
                header: file.header_start(),
            },
            Err(error) => {
                scanner.note(
                    FindingKind::MalformedArchive,
                    Verdict::Suspicious,
                    place,
                    0,
                    format!("zip entry {index} cannot be read: {error}"),
                );
                continue;
            }
        };
        members.push(member);
    }
    // Entries whose bytes overlap (several central-directory entries pointing at one member) multiply
    // what is inflated past every ratio check: refused before anything is inflated.
    let mut ranges: Vec<(u64, u64, &str)> = members
        .iter()
        .map(|member| {
            // Without a parsed local header, its fixed 30 bytes are the least it takes.
            let end = member
                .data_start
                .unwrap_or(member.header.saturating_add(30))
                .saturating_add(member.compressed)
                .max(member.header.saturating_add(1));
            (member.header, end, member.name.as_str())
        })
        .collect();
    ranges.sort_unstable();
    if let Some(&(first, _, _)) = ranges.first()
        && first > 0
    {
        let glued = &magic == b"PK\x03\x04";
        scanner.note(
            FindingKind::ArchivePrefixData,
            Verdict::Suspicious,
            place,
            0,
            if glued {
                format!("another zip archive precedes this one ({first} bytes before its first entry): a loader reading from the front sees that one, which was not scanned")
            } else {
                format!("{first} bytes before the archive's first entry: a loader reading from the front may see content that was not scanned")
            },
        );
    }
    if let Some(pair) = ranges.windows(2).find(|pair| pair[1].0 < pair[0].1) {
        scanner.note(
            FindingKind::ArchiveBomb,
            Verdict::Dangerous,
            place,
            0,
            format!(
                "entries {} and {} overlap in the archive's bytes (an overlapping-entry zip bomb); refused before extraction",
                pair[0].2, pair[1].2
            ),
        );
        return Ok(());
    }
    // Refusal checks, before anything is inflated. Stored entries are read in place, so only the
    // compressed ones count towards the ratio and the inflation budget.
    let compressed_members = || {
        members
            .iter()
            .filter(|member| member.compression != zip::CompressionMethod::Stored)
    };
    let declared: u64 = compressed_members()
        .map(|member| member.size)
        .fold(0, u64::saturating_add);
    let compressed: u64 = compressed_members()
        .map(|member| member.compressed)
        .fold(0, u64::saturating_add)
        .max(1);
    let limits = scanner.limits;
    if declared > limits.compression_ratio_floor
        && declared / compressed > limits.max_compression_ratio
    {
        scanner.note(
            FindingKind::ArchiveBomb,
            Verdict::Dangerous,
            place,
            0,
            format!(
                "decompression bomb: the entries declare {declared} bytes from {compressed} compressed (ratio {}, limit {}); refused before extraction",
                declared / compressed,
                limits.max_compression_ratio
            ),
        );
        return Ok(());
    }
    if declared > scanner.budget.get() {
        scanner.note(
            FindingKind::ArchiveBomb,
            Verdict::Dangerous,
            place,
            0,
            format!(
                "the entries declare {declared} bytes, more than the limit of {} inflated bytes; refused before extraction",
                scanner.budget.get()
            ),
        );
        return Ok(());
    }
    for member in &members {
        check_entry_name(scanner, place, &member.name, member.header);
        if member.symlink {
            let mut target = String::new();
            if let Ok(file) = archive.by_index(member.index) {
                let _ = file.take(4096).read_to_string(&mut target);
            }
            check_link(scanner, place, &member.name, &target, false, member.header);
        }
    }
    drop(archive);

    let names: Vec<&str> = members.iter().map(|member| member.name.as_str()).collect();
    let (torch_prefixes, mlflow) = layout(&names);
    if !torch_prefixes.is_empty() {
        scanner.format(Format::PytorchZip);
    }
    if mlflow {
        scanner.format(Format::Mlflow);
    }
    let table: HashMap<String, u64> = members
        .iter()
        .filter(|member| !member.directory)
        .map(|member| (member.name.clone(), member.size))
        .collect();
    let pending_from = scanner.pending.len();
    let mut tally = Tally::default();
    for member in &members {
        if member.directory || member.symlink {
            continue;
        }
        tally.files += 1;
        let child = place.child(&member.name);
        if is_storage(&torch_prefixes, &member.name) {
            tally.storages += 1;
            continue;
        }
        if CODE_EXTENSIONS.contains(&extension(&member.name).as_str()) {
            scanner.note(
                FindingKind::CodeFile,
                Verdict::Suspicious,
                &child,
                0,
                "a script or native library in the artifact: a loader may run it".to_owned(),
            );
        }
        if member.size == 0 {
            tally.count(Outcome::NotRecognised, &member.name);
            continue;
        }
        if member.encrypted {
            scanner.note(
                FindingKind::NotScanned,
                Verdict::Unscanned,
                &child,
                0,
                "encrypted entry".to_owned(),
            );
            continue;
        }
        let Some(data_start) = member
            .data_start
            .filter(|start| start.saturating_add(member.compressed) <= length)
        else {
            scanner.note(
                FindingKind::MalformedArchive,
                Verdict::Suspicious,
                &child,
                member.header,
                "the entry's data lies outside the archive".to_owned(),
            );
            continue;
        };
        let mut window = Window::new(&mut *reader, data_start, member.compressed);
        match member.compression {
            zip::CompressionMethod::Stored => {
                if member.compressed != member.size {
                    scanner.note(
                        FindingKind::MalformedArchive,
                        Verdict::Suspicious,
                        &child,
                        member.header,
                        format!(
                            "a stored entry declares {} bytes but holds {}",
                            member.size, member.compressed
                        ),
                    );
                }
                let outcome = scanner.seekable(&mut window, member.compressed, &child)?;
                tally.count(outcome, &member.name);
            }
            zip::CompressionMethod::Deflated => {
                let outcome = inflate_member(scanner, &mut window, member.size, &child)?;
                tally.count(outcome, &member.name);
            }
            method => {
                scanner.note(
                    FindingKind::NotScanned,
                    Verdict::Unscanned,
                    &child,
                    0,
                    format!("compression method {method} is not read by this scanner"),
                );
            }
        }
    }
    scanner.resolve_externals(pending_from, Some(&table));
    scanner.note(
        FindingKind::ArchiveSummary,
        Verdict::Clean,
        place,
        0,
        tally.summary("zip", entries),
    );
    Ok(())
}

/// A deflated zip member, inflated under the member's declared size and the scan's limits.
fn inflate_member(
    scanner: &mut Scanner,
    compressed: &mut dyn Read,
    declared: u64,
    place: &Place,
) -> io::Result<Outcome> {
    let consumed = Rc::new(Cell::new(0));
    let counted = Counting {
        inner: compressed,
        count: consumed.clone(),
    };
    let tripped = Rc::new(Cell::new(None));
    let mut inflate = Inflate {
        inner: flate2::read::DeflateDecoder::new(counted),
        produced: 0,
        consumed,
        declared: Some(declared),
        max_ratio: scanner.limits.max_compression_ratio,
        ratio_floor: scanner.limits.compression_ratio_floor,
        budget: scanner.budget.clone(),
        tripped: tripped.clone(),
    };
    let result = scanner.stream(&mut inflate, place).and_then(|outcome| {
        io::copy(&mut inflate, &mut io::sink())?;
        Ok(outcome)
    });
    let outcome = result.as_ref().ok().copied();
    scanner.finish_inflate(result, &tripped, place, "zip entry")?;
    Ok(outcome.unwrap_or(Outcome::Scanned))
}

struct TarMember {
    name: String,
    kind: tar::EntryType,
    link: Option<String>,
    position: u64,
    size: u64,
    header: u64,
}

/// What a tar entry's type asks of the scan.
fn tar_entry_checks(scanner: &mut Scanner, place: &Place, member: &TarMember) -> bool {
    check_entry_name(scanner, place, &member.name, member.header);
    match member.kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => true,
        tar::EntryType::Symlink | tar::EntryType::Link => {
            let target = member.link.clone().unwrap_or_default();
            check_link(
                scanner,
                place,
                &member.name,
                &target,
                member.kind == tar::EntryType::Link,
                member.header,
            );
            false
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            scanner.note(
                FindingKind::ArchiveSpecialFile,
                Verdict::Suspicious,
                &place.child(&member.name),
                member.header,
                "a device file or FIFO in a model artifact".to_owned(),
            );
            false
        }
        tar::EntryType::GNUSparse => {
            scanner.note(
                FindingKind::NotScanned,
                Verdict::Unscanned,
                &place.child(&member.name),
                member.header,
                "a GNU sparse file, not read by this scanner".to_owned(),
            );
            false
        }
        _ => false,
    }
}

fn tar_member<R: Read>(entry: &tar::Entry<'_, R>) -> TarMember {
    let header = entry.header();
    TarMember {
        name: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
        kind: header.entry_type(),
        link: entry
            .link_name_bytes()
            .map(|link| String::from_utf8_lossy(&link).into_owned()),
        position: entry.raw_file_position(),
        size: entry.size(),
        header: entry.raw_header_position(),
    }
}

fn too_many(scanner: &mut Scanner, place: &Place, count: u64) -> bool {
    if count <= scanner.limits.max_entries {
        return false;
    }
    scanner.note(
        FindingKind::ArchiveTooManyEntries,
        Verdict::Suspicious,
        place,
        0,
        format!(
            "more than {} entries: refused, no member scanned",
            scanner.limits.max_entries
        ),
    );
    true
}

fn tar_error(scanner: &mut Scanner, place: &Place, error: &io::Error) {
    scanner.note(
        FindingKind::MalformedArchive,
        Verdict::Suspicious,
        place,
        0,
        format!("the tar archive cannot be read: {error}"),
    );
}

/// A tar archive that can seek: headers first (seeking over the data), checks, then every member.
pub(crate) fn scan_tar_seekable(
    scanner: &mut Scanner,
    reader: &mut dyn ReadSeek,
    place: &Place,
) -> io::Result<()> {
    scanner.format(Format::Tar);
    let mut members = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut *reader);
        let entries = match archive.entries_with_seek() {
            Ok(entries) => entries,
            Err(error) => {
                tar_error(scanner, place, &error);
                return Ok(());
            }
        };
        for entry in entries {
            match entry {
                Ok(entry) => members.push(tar_member(&entry)),
                Err(error) => {
                    tar_error(scanner, place, &error);
                    break;
                }
            }
            if too_many(scanner, place, members.len() as u64) {
                return Ok(());
            }
        }
    }
    let names: Vec<&str> = members
        .iter()
        .filter(|member| {
            matches!(
                member.kind,
                tar::EntryType::Regular | tar::EntryType::Continuous
            )
        })
        .map(|member| member.name.as_str())
        .collect();
    let (torch_prefixes, mlflow) = layout(&names);
    if mlflow {
        scanner.format(Format::Mlflow);
    }
    let table: HashMap<String, u64> = names
        .iter()
        .zip(members.iter().filter(|member| {
            matches!(
                member.kind,
                tar::EntryType::Regular | tar::EntryType::Continuous
            )
        }))
        .map(|(name, member)| ((*name).to_owned(), member.size))
        .collect();
    let files: Vec<&TarMember> = members
        .iter()
        .filter(|member| tar_entry_checks(scanner, place, member))
        .collect();
    let pending_from = scanner.pending.len();
    let mut tally = Tally::default();
    for member in files {
        tally.files += 1;
        let child = place.child(&member.name);
        if is_storage(&torch_prefixes, &member.name) {
            tally.storages += 1;
            continue;
        }
        if CODE_EXTENSIONS.contains(&extension(&member.name).as_str()) {
            scanner.note(
                FindingKind::CodeFile,
                Verdict::Suspicious,
                &child,
                0,
                "a script or native library in the artifact: a loader may run it".to_owned(),
            );
        }
        if member.size == 0 {
            tally.count(Outcome::NotRecognised, &member.name);
            continue;
        }
        let mut window = Window::new(&mut *reader, member.position, member.size);
        let outcome = scanner.seekable(&mut window, member.size, &child)?;
        tally.count(outcome, &member.name);
    }
    scanner.resolve_externals(pending_from, Some(&table));
    scanner.note(
        FindingKind::ArchiveSummary,
        Verdict::Clean,
        place,
        0,
        tally.summary("tar", members.len() as u64),
    );
    Ok(())
}

/// A tar archive read as a stream (inside gzip): each entry is checked and scanned as it comes.
pub(crate) fn scan_tar_stream(
    scanner: &mut Scanner,
    reader: &mut dyn Read,
    place: &Place,
) -> io::Result<()> {
    scanner.format(Format::Tar);
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(error) => {
            tar_error(scanner, place, &error);
            return Ok(());
        }
    };
    let pending_from = scanner.pending.len();
    let mut table = HashMap::new();
    let mut tally = Tally::default();
    let mut count = 0u64;
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                tar_error(scanner, place, &error);
                break;
            }
        };
        count += 1;
        if too_many(scanner, place, count) {
            break;
        }
        let member = tar_member(&entry);
        if !tar_entry_checks(scanner, place, &member) {
            continue;
        }
        table.insert(member.name.clone(), member.size);
        tally.files += 1;
        let child = place.child(&member.name);
        if CODE_EXTENSIONS.contains(&extension(&member.name).as_str()) {
            scanner.note(
                FindingKind::CodeFile,
                Verdict::Suspicious,
                &child,
                0,
                "a script or native library in the artifact: a loader may run it".to_owned(),
            );
        }
        if member.size == 0 {
            tally.count(Outcome::NotRecognised, &member.name);
            continue;
        }
        let outcome = scanner.stream(&mut entry, &child)?;
        tally.count(outcome, &member.name);
    }
    // Members seen later than the model still count: resolve once the whole archive is listed.
    scanner.resolve_externals(pending_from, Some(&table));
    scanner.note(
        FindingKind::ArchiveSummary,
        Verdict::Clean,
        place,
        0,
        tally.summary("tar", count),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_names_are_told_apart() {
        for name in [
            "../evil",
            "a/../../evil",
            "/etc/passwd",
            "\\evil",
            "..\\evil",
            "C:/x",
            "a\0b",
        ] {
            assert!(escapes(name), "{name:?}");
        }
        for name in ["a/b", "a/../b", "./a", "archive/data.pkl", "a..b/c"] {
            assert!(!escapes(name), "{name:?}");
        }
    }

    #[test]
    fn link_targets_resolve_from_the_link_directory() {
        assert!(link_escapes("a/link", "../../x"));
        assert!(link_escapes("link", "/etc/passwd"));
        assert!(!link_escapes("a/link", "../x"));
        assert!(!link_escapes("a/link", "b"));
    }

    #[test]
    fn pytorch_layouts_are_found_by_their_data_pickle() {
        let (prefixes, mlflow) = layout(&[
            "archive/data.pkl",
            "archive/data/0",
            "archive/version",
            "MLmodel",
        ]);
        assert_eq!(prefixes, vec!["archive/".to_owned()]);
        assert!(mlflow);
        assert!(is_storage(&prefixes, "archive/data/0"));
        assert!(!is_storage(&prefixes, "archive/data.pkl"));
        assert!(!is_storage(&prefixes, "archive/data/model.pth"));
        assert!(!is_storage(&prefixes, "archive/data/bundle.zip"));
        assert!(!is_storage(&prefixes, "archive/data/0/x"));
        assert!(!is_storage(&prefixes, "archive/data/"));
    }
}
