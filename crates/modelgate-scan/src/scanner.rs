//! The scan itself: tells formats apart by their first bytes, sends each to its reader, and collects the
//! findings into the report.

use crate::input::{Counting, ForwardOnly, Inflate, Input, ReadSeek};
use crate::{
    ENGINE_VERSION, Finding, FindingKind, Format, Limits, ScanReport, Verdict, archive, onnx,
    pickle, safetensors,
};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::rc::Rc;

/// Bytes looked at to tell a format (tar's magic is at 257).
const HEAD: usize = 1024;

/// What an npy header's `descr` says about the data.
#[derive(Debug, PartialEq, Eq)]
enum NpyDescr {
    /// Numbers, strings, bytes: raw data numpy never unpickles.
    Plain,
    /// An object dtype (`O`, `|O`, `<O`, `O8`, `object`), or a structured dtype with one: the data is a
    /// pickle.
    Object,
    /// Not a dtype this scanner recognises.
    Unsure(&'static str),
}

/// The string literals of a Python expression (`'…'` or `"…"`, no escapes needed for dtypes).
fn literals(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(['\'', '"']) {
        let quote = &rest[start..=start];
        let after = &rest[start + 1..];
        let Some(end) = after.find(quote) else {
            break;
        };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

/// Reads the `descr` of an npy header dict (`{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }`).
fn npy_descr(header: &str) -> NpyDescr {
    let Some(key) = header.find("'descr'").or_else(|| header.find("\"descr\"")) else {
        return NpyDescr::Unsure("no descr");
    };
    let value = header[key + 7..].trim_start();
    let Some(value) = value.strip_prefix(':') else {
        return NpyDescr::Unsure("no descr value");
    };
    let value = value.trim_start();
    // The value runs to the next top-level comma of the dict.
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut end = value.len();
    for (at, character) in value.char_indices() {
        match (quote, character) {
            (Some(open), _) if character == open => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(character),
            (None, '[' | '(' | '{') => depth += 1,
            (None, ']' | ')' | '}') if depth == 0 => {
                end = at;
                break;
            }
            (None, ']' | ')' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                end = at;
                break;
            }
            _ => {}
        }
    }
    let value = &value[..end];
    let is_object = |code: &str| {
        let code = code.trim_start_matches(['<', '>', '|', '=', '!']);
        code == "object"
            || code
                .strip_prefix('O')
                .is_some_and(|size| size.bytes().all(|byte| byte.is_ascii_digit()))
    };
    let is_plain = |code: &str| {
        let code = code.trim_start_matches(['<', '>', '|', '=', '!']);
        let code = code.split('[').next().unwrap_or_default();
        let mut chars = code.chars();
        chars
            .next()
            .is_some_and(|kind| "?bBhHiIlLqQpPefdgFDGSaUVmMuc".contains(kind))
            && chars.all(|character| character.is_ascii_digit())
    };
    let strings = literals(value);
    if value.starts_with(['\'', '"']) {
        let Some(code) = strings.first() else {
            return NpyDescr::Unsure("unterminated descr");
        };
        return if is_object(code) {
            NpyDescr::Object
        } else if is_plain(code) {
            NpyDescr::Plain
        } else {
            NpyDescr::Unsure("unknown dtype code")
        };
    }
    if value.starts_with('[') {
        // A structured dtype: field names and codes; any object-like string counts.
        return if strings.iter().any(|code| is_object(code)) {
            NpyDescr::Object
        } else if strings.is_empty() {
            NpyDescr::Unsure("structured dtype without fields")
        } else {
            NpyDescr::Plain
        };
    }
    NpyDescr::Unsure("descr is neither a string nor a list")
}

/// Whether an archive member's name says it is text a loader does not unpickle (`README.md`, `MLmodel`,
/// `requirements.txt`, …), so a first byte that happens to be a pickle opcode is no finding.
fn is_text_name(entry: &str) -> bool {
    let base = entry.rsplit('/').next().unwrap_or_default();
    let extension = base
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase());
    matches!(
        base,
        "MLmodel" | "LICENSE" | "README" | "version" | "byteorder" | "serialization_id"
    ) || extension.is_some_and(|extension| {
        matches!(
            extension.as_str(),
            "txt"
                | "md"
                | "rst"
                | "yaml"
                | "yml"
                | "json"
                | "toml"
                | "cfg"
                | "ini"
                | "csv"
                | "tsv"
                | "html"
                | "xml"
        )
    })
}

/// Where the bytes being scanned sit.
#[derive(Clone)]
pub(crate) struct Place {
    /// For findings: entry paths from the outermost archive in, joined with `!/`; `""` at the top.
    pub(crate) path: String,
    /// The entry's path inside its own archive (or the upload's file name at the top).
    pub(crate) entry: String,
    /// Containers entered so far.
    pub(crate) depth: u32,
    /// Whether the bytes are a member of an archive (an unrecognised member is no finding of its own).
    pub(crate) in_archive: bool,
}

impl Place {
    pub(crate) fn child(&self, entry: &str) -> Place {
        Place {
            path: if self.path.is_empty() {
                entry.to_owned()
            } else {
                format!("{}!/{entry}", self.path)
            },
            entry: entry.to_owned(),
            depth: self.depth + 1,
            in_archive: true,
        }
    }

    fn extension(&self) -> String {
        let name = self.entry.rsplit('/').next().unwrap_or_default();
        match name.rsplit_once('.') {
            Some((_, extension)) => extension.to_ascii_lowercase(),
            None => String::new(),
        }
    }
}

/// What a piece of content turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Scanned,
    NotRecognised,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detected {
    Zip,
    Tar,
    Gzip,
    Zlib,
    Unsupported(&'static str),
    Numpy,
    Safetensors,
    Onnx,
    Pickle { claimed: bool },
    Unknown,
}

const PICKLE_EXTENSIONS: &[&str] = &[
    "pkl", "pickle", "joblib", "jbl", "pt", "pth", "ckpt", "sav", "dill", "pk", "p",
];

fn detect(head: &[u8], place: &Place, length: Option<u64>) -> Detected {
    let extension = place.extension();
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Detected::Zip;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Detected::Gzip;
    }
    let unsupported: [(&[u8], &str); 6] = [
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"),
        (b"BZh", "bzip2"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
        (&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c], "7z"),
        (b"Rar!", "rar"),
    ];
    for (magic, name) in unsupported {
        if head.starts_with(magic) {
            return Detected::Unsupported(name);
        }
    }
    if head.get(257..262) == Some(b"ustar".as_slice()) {
        return Detected::Tar;
    }
    if head.starts_with(b"\x93NUMPY") {
        return Detected::Numpy;
    }
    if safetensors::looks_like(head, length) || (extension == "safetensors" && head.len() >= 8) {
        return Detected::Safetensors;
    }
    let claimed = PICKLE_EXTENSIONS.contains(&extension.as_str());
    if pickle::has_proto_header(head) {
        return Detected::Pickle { claimed };
    }
    if onnx::looks_like(head) || (extension == "onnx" && !head.is_empty()) {
        return Detected::Onnx;
    }
    if let [first, second, ..] = head
        && *first == 0x78
        && (u16::from(*first) << 8 | u16::from(*second)) % 31 == 0
    {
        return Detected::Zlib;
    }
    if head.first().is_some_and(|&byte| pickle::is_opcode(byte)) || (claimed && !head.is_empty()) {
        return Detected::Pickle { claimed };
    }
    Detected::Unknown
}

pub(crate) struct Scanner<'l> {
    pub(crate) limits: &'l Limits,
    findings: Vec<Finding>,
    dropped: usize,
    dropped_worst: Verdict,
    worst: Verdict,
    formats: Vec<Format>,
    /// Bytes that may still be inflated in this scan.
    pub(crate) budget: Rc<Cell<u64>>,
    /// ONNX external-data references waiting for their archive's member list.
    pub(crate) pending: Vec<PendingExternal>,
}

/// An ONNX model's reference to a file of external tensor data.
pub(crate) struct PendingExternal {
    /// The model's finding path and its path inside its archive.
    pub(crate) path: String,
    pub(crate) entry: String,
    pub(crate) location: String,
    pub(crate) tensors: u64,
    /// The furthest byte the tensors read (offset + length), when they say.
    pub(crate) end: Option<u64>,
    /// Offset of the first referring tensor in the model.
    pub(crate) at: u64,
}

/// `location` relative to the directory of `entry`, normalised; `None` when it is absolute or climbs
/// with `..` (out of the model's directory).
pub(crate) fn resolve_relative(entry: &str, location: &str) -> Option<String> {
    let location = location.replace('\\', "/");
    let drive = location.as_bytes().get(1) == Some(&b':');
    if location.starts_with('/') || drive || location.is_empty() {
        return None;
    }
    let mut parts: Vec<&str> = entry.split('/').collect();
    parts.pop();
    for part in location.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

impl<'l> Scanner<'l> {
    fn new(limits: &'l Limits) -> Self {
        Scanner {
            limits,
            findings: Vec::new(),
            dropped: 0,
            dropped_worst: Verdict::Clean,
            worst: Verdict::Clean,
            formats: Vec::new(),
            budget: Rc::new(Cell::new(limits.max_inflated_bytes)),
            pending: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, finding: Finding) {
        self.worst = self.worst.max(finding.severity);
        if self.findings.len() < self.limits.max_findings {
            self.findings.push(finding);
        } else {
            self.dropped += 1;
            self.dropped_worst = self.dropped_worst.max(finding.severity);
        }
    }

    pub(crate) fn note(
        &mut self,
        kind: FindingKind,
        severity: Verdict,
        place: &Place,
        offset: u64,
        detail: String,
    ) {
        self.add(Finding {
            kind,
            severity,
            module: String::new(),
            name: String::new(),
            path: place.path.clone(),
            offset,
            detail,
        });
    }

    pub(crate) fn format(&mut self, format: Format) {
        if !self.formats.contains(&format) {
            self.formats.push(format);
        }
    }

    /// Whether a container may be opened at this depth; notes it when not.
    pub(crate) fn may_open(&mut self, place: &Place, what: &str) -> bool {
        if place.depth < self.limits.max_depth {
            return true;
        }
        self.note(
            FindingKind::ArchiveTooDeep,
            Verdict::Suspicious,
            place,
            0,
            format!(
                "a {what} nested {} levels deep; the limit is {}, so it was not opened",
                place.depth + 1,
                self.limits.max_depth
            ),
        );
        false
    }

    /// Scans `length` bytes of a seekable reader positioned anywhere; leaves its position undefined.
    pub(crate) fn seekable(
        &mut self,
        reader: &mut dyn ReadSeek,
        length: u64,
        place: &Place,
    ) -> io::Result<Outcome> {
        reader.seek(SeekFrom::Start(0))?;
        let mut head = Vec::with_capacity(HEAD);
        (&mut *reader).take(HEAD as u64).read_to_end(&mut head)?;
        reader.seek(SeekFrom::Start(0))?;
        match detect(&head, place, Some(length)) {
            Detected::Zip => {
                if self.may_open(place, "zip archive") {
                    archive::scan_zip(self, reader, length, place)?;
                }
                Ok(Outcome::Scanned)
            }
            Detected::Tar => {
                if self.may_open(place, "tar archive") {
                    archive::scan_tar_seekable(self, reader, place)?;
                }
                Ok(Outcome::Scanned)
            }
            detected @ (Detected::Gzip | Detected::Zlib) => {
                self.decompress(reader, detected, place)?;
                Ok(Outcome::Scanned)
            }
            detected => {
                let mut input = Input::new(reader, Some(length));
                let outcome = self.content(&mut input, detected, place)?;
                drop(input);
                // A polyglot: bytes that parse as safetensors or ONNX and also open with a pickle
                // opcode are walked as a pickle too (a loader may take either), the worse verdict wins.
                if matches!(detected, Detected::Safetensors | Detected::Onnx)
                    && head.first().is_some_and(|&byte| pickle::is_opcode(byte))
                {
                    reader.seek(SeekFrom::Start(0))?;
                    let mut input = Input::new(reader, Some(length));
                    let scan = pickle::scan_pickles(&mut input, &place.path, false)?;
                    if scan.is_pickle {
                        self.format(Format::Pickle);
                        self.note(
                            FindingKind::MalformedSafetensors,
                            Verdict::Suspicious,
                            place,
                            0,
                            "the file also walks as a pickle (a safetensors/ONNX and pickle polyglot)"
                                .to_owned(),
                        );
                        for finding in scan.findings {
                            self.add(finding);
                        }
                    }
                }
                Ok(outcome)
            }
        }
    }

    /// Scans a forward-only stream (a decompressor, a tar entry inside gzip).
    pub(crate) fn stream(&mut self, reader: &mut dyn Read, place: &Place) -> io::Result<Outcome> {
        let mut forward = ForwardOnly::new(reader);
        let mut input = Input::new(&mut forward, None);
        let head = input.peek(HEAD)?.to_vec();
        match detect(&head, place, None) {
            Detected::Zip => {
                if !self.may_open(place, "zip archive") {
                    return Ok(Outcome::Scanned);
                }
                let limit = self.limits.max_buffered_bytes;
                let mut bytes = Vec::new();
                (&mut input).take(limit + 1).read_to_end(&mut bytes)?;
                if bytes.len() as u64 > limit {
                    self.note(
                        FindingKind::NotScanned,
                        Verdict::Unscanned,
                        place,
                        0,
                        format!(
                            "a compressed zip archive larger than {limit} bytes must be held in memory to be read; not scanned"
                        ),
                    );
                    return Ok(Outcome::Scanned);
                }
                let length = bytes.len() as u64;
                let mut cursor = Cursor::new(bytes);
                archive::scan_zip(self, &mut cursor, length, place)?;
                Ok(Outcome::Scanned)
            }
            Detected::Tar => {
                if self.may_open(place, "tar archive") {
                    archive::scan_tar_stream(self, &mut input, place)?;
                }
                Ok(Outcome::Scanned)
            }
            detected @ (Detected::Gzip | Detected::Zlib) => {
                self.decompress(&mut input, detected, place)?;
                Ok(Outcome::Scanned)
            }
            detected @ (Detected::Safetensors | Detected::Onnx)
                if head.first().is_some_and(|&byte| pickle::is_opcode(byte)) =>
            {
                // It may be a pickle polyglot, which takes reading twice: held in memory when it fits.
                let limit = self.limits.max_buffered_bytes;
                let mut bytes = Vec::new();
                (&mut input).take(limit + 1).read_to_end(&mut bytes)?;
                if bytes.len() as u64 <= limit {
                    let length = bytes.len() as u64;
                    return self.seekable(&mut Cursor::new(bytes), length, place);
                }
                self.note(
                    FindingKind::NotScanned,
                    Verdict::Unscanned,
                    place,
                    0,
                    format!(
                        "opens with a pickle opcode and is larger than {limit} bytes, too large to hold and also walk as a pickle"
                    ),
                );
                let mut rest = Cursor::new(bytes).chain(&mut input);
                let mut forward = ForwardOnly::new(&mut rest);
                let mut input = Input::new(&mut forward, None);
                self.content(&mut input, detected, place)
            }
            detected => self.content(&mut input, detected, place),
        }
    }

    /// Inflates a gzip or zlib stream into [`Scanner::stream`], within the limits.
    fn decompress(
        &mut self,
        reader: &mut dyn Read,
        detected: Detected,
        place: &Place,
    ) -> io::Result<()> {
        let (format, what) = if detected == Detected::Zlib {
            (Format::Zlib, "zlib stream")
        } else {
            (Format::Gzip, "gzip stream")
        };
        self.format(format);
        if !self.may_open(place, what) {
            return Ok(());
        }
        let consumed = Rc::new(Cell::new(0));
        let counted = Counting {
            inner: reader,
            count: consumed.clone(),
        };
        let decoder: Box<dyn Read> = if detected == Detected::Zlib {
            Box::new(flate2::read::ZlibDecoder::new(counted))
        } else {
            Box::new(flate2::read::MultiGzDecoder::new(counted))
        };
        let tripped = Rc::new(Cell::new(None));
        let mut inflate = Inflate {
            inner: decoder,
            produced: 0,
            consumed,
            declared: None,
            max_ratio: self.limits.max_compression_ratio,
            ratio_floor: self.limits.compression_ratio_floor,
            budget: self.budget.clone(),
            tripped: tripped.clone(),
        };
        let inner = Place {
            depth: place.depth + 1,
            ..place.clone()
        };
        let result = self.stream(&mut inflate, &inner);
        let result = result.and_then(|outcome| {
            // Read what the format's reader left, so a bomb hiding after valid content is seen.
            io::copy(&mut inflate, &mut io::sink())?;
            Ok(outcome)
        });
        self.finish_inflate(result, &tripped, place, what)
    }

    /// Turns a decompression's result into findings: a tripped limit is a bomb, a corrupt stream is
    /// malformed, anything else is passed on.
    pub(crate) fn finish_inflate(
        &mut self,
        result: io::Result<Outcome>,
        tripped: &Rc<Cell<Option<crate::input::Tripped>>>,
        place: &Place,
        what: &str,
    ) -> io::Result<()> {
        if let Some(crate::input::Tripped(reason)) = tripped.take() {
            self.note(
                FindingKind::ArchiveBomb,
                Verdict::Dangerous,
                place,
                0,
                format!("decompression bomb: the {what} {reason}; inflation stopped"),
            );
            return Ok(());
        }
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::InvalidData
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::UnexpectedEof
                ) =>
            {
                self.note(
                    FindingKind::MalformedArchive,
                    Verdict::Suspicious,
                    place,
                    0,
                    format!("the {what} is corrupt: {error}"),
                );
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Content that is not a container.
    fn content(
        &mut self,
        input: &mut Input,
        detected: Detected,
        place: &Place,
    ) -> io::Result<Outcome> {
        match detected {
            Detected::Pickle { claimed } => {
                let scan = pickle::scan_pickles(input, &place.path, claimed)?;
                if !scan.is_pickle {
                    if place.in_archive && !is_text_name(&place.entry) {
                        // A loader may still take it for a pickle (its first byte is an opcode) where
                        // this walker could not follow it: not silently passed over.
                        self.note(
                            FindingKind::NotScanned,
                            Verdict::Unscanned,
                            place,
                            0,
                            "starts with a pickle opcode but does not walk as a pickle".to_owned(),
                        );
                    }
                    return Ok(self.not_recognised(place));
                }
                self.format(Format::Pickle);
                if scan.joblib {
                    self.format(Format::Joblib);
                }
                for finding in scan.findings {
                    self.add(finding);
                }
                Ok(Outcome::Scanned)
            }
            Detected::Numpy => {
                self.format(Format::Numpy);
                self.numpy(input, place)?;
                Ok(Outcome::Scanned)
            }
            Detected::Safetensors => {
                self.format(Format::Safetensors);
                safetensors::scan(self, input, place)?;
                Ok(Outcome::Scanned)
            }
            Detected::Onnx => {
                self.format(Format::Onnx);
                onnx::scan(self, input, place)?;
                Ok(Outcome::Scanned)
            }
            Detected::Unsupported(compression) => {
                self.note(
                    FindingKind::NotScanned,
                    Verdict::Unscanned,
                    place,
                    0,
                    format!("compressed with {compression}, which this scanner does not read"),
                );
                Ok(Outcome::Scanned)
            }
            _ => Ok(self.not_recognised(place)),
        }
    }

    fn not_recognised(&mut self, place: &Place) -> Outcome {
        if !place.in_archive {
            self.format(Format::Unknown);
            self.note(
                FindingKind::NotScanned,
                Verdict::Unscanned,
                place,
                0,
                "not a format this scanner reads (pickle, joblib, PyTorch, zip, tar, gzip, ONNX, safetensors, npy)"
                    .to_owned(),
            );
        }
        Outcome::NotRecognised
    }

    /// A `.npy` file: an object array's data is a pickle.
    fn numpy(&mut self, input: &mut Input, place: &Place) -> io::Result<()> {
        let mut preamble = [0u8; 8];
        if !input.read_exact(&mut preamble)? {
            self.note(
                FindingKind::NotScanned,
                Verdict::Suspicious,
                place,
                0,
                "truncated npy header".to_owned(),
            );
            return Ok(());
        }
        let header_length = if preamble[6] == 1 {
            let mut length = [0u8; 2];
            input
                .read_exact(&mut length)?
                .then(|| u64::from(u16::from_le_bytes(length)))
        } else {
            let mut length = [0u8; 4];
            input
                .read_exact(&mut length)?
                .then(|| u64::from(u32::from_le_bytes(length)))
        };
        let Some(header_length) = header_length else {
            self.note(
                FindingKind::NotScanned,
                Verdict::Suspicious,
                place,
                0,
                "truncated npy header".to_owned(),
            );
            return Ok(());
        };
        let header = match input.bytes(header_length, 1 << 16)? {
            Some(Some(header)) => header,
            _ => {
                self.note(
                    FindingKind::NotScanned,
                    Verdict::Suspicious,
                    place,
                    8,
                    "npy header is truncated or too long".to_owned(),
                );
                return Ok(());
            }
        };
        let header = String::from_utf8_lossy(&header);
        let object = match npy_descr(&header) {
            NpyDescr::Plain => false,
            NpyDescr::Object => true,
            NpyDescr::Unsure(why) => {
                self.note(
                    FindingKind::NotScanned,
                    Verdict::Suspicious,
                    place,
                    8,
                    format!("npy dtype not understood ({why}); its data is walked as a pickle"),
                );
                true
            }
        };
        if object {
            let scan = pickle::scan_pickles(input, &place.path, true)?;
            for finding in scan.findings {
                self.add(finding);
            }
        } else {
            input.skip_to_end()?;
        }
        Ok(())
    }

    /// Resolves the external-data references recorded since `from` against an archive's members
    /// (`None`: the model is not in an archive, so nothing resolves).
    pub(crate) fn resolve_externals(
        &mut self,
        from: usize,
        members: Option<&HashMap<String, u64>>,
    ) {
        let pending: Vec<PendingExternal> =
            self.pending.drain(from.min(self.pending.len())..).collect();
        for external in pending {
            let resolved = resolve_relative(&external.entry, &external.location);
            let (severity, detail) = match (&resolved, members) {
                (None, _) => (
                    Verdict::Suspicious,
                    "points outside the artifact (an absolute path, or `..` out of the model's directory)"
                        .to_owned(),
                ),
                (Some(_), None) => (
                    Verdict::Suspicious,
                    "does not resolve inside the artifact: the model is a single file, so loading it reads a file beside it on the host"
                        .to_owned(),
                ),
                (Some(member), Some(members)) => match members.get(member) {
                    None => (
                        Verdict::Suspicious,
                        format!("does not resolve inside the artifact: no member `{member}`"),
                    ),
                    Some(&size) if external.end.is_some_and(|end| end > size) => (
                        Verdict::Suspicious,
                        format!(
                            "resolves to member `{member}` ({size} bytes), but its tensors read up to byte {}",
                            external.end.unwrap_or_default()
                        ),
                    ),
                    Some(&size) => (
                        Verdict::Clean,
                        format!("resolves to member `{member}` ({size} bytes)"),
                    ),
                },
            };
            self.add(Finding {
                kind: FindingKind::OnnxExternalData,
                severity,
                module: String::new(),
                name: external.location,
                path: external.path,
                offset: external.at,
                detail: format!(
                    "{} tensors stored externally; the location {detail}",
                    external.tensors
                ),
            });
        }
    }

    fn report(self, bytes_scanned: u64, bytes_read: u64) -> ScanReport {
        let mut findings = self.findings;
        if self.dropped > 0 {
            findings.push(Finding {
                kind: FindingKind::FindingsTruncated,
                severity: self.dropped_worst,
                module: String::new(),
                name: String::new(),
                path: String::new(),
                offset: 0,
                detail: format!(
                    "{} more findings were dropped (limit {}); the worst of them was {}",
                    self.dropped, self.limits.max_findings, self.dropped_worst
                ),
            });
        }
        ScanReport {
            verdict: self.worst,
            findings,
            formats: self.formats,
            engine: ENGINE_VERSION.to_owned(),
            bytes_scanned,
            bytes_read,
        }
    }
}

pub(crate) fn scan_top<R: Read + Seek>(reader: R, file_name: &str, limits: &Limits) -> ScanReport {
    let read = Rc::new(Cell::new(0));
    let mut reader = Counting {
        inner: reader,
        count: read.clone(),
    };
    let mut scanner = Scanner::new(limits);
    let place = Place {
        path: String::new(),
        entry: file_name.to_owned(),
        depth: 0,
        in_archive: false,
    };
    let length = reader.seek(SeekFrom::End(0));
    let known_length = length.as_ref().ok().copied().unwrap_or(0);
    let result = match length {
        Ok(length) => scanner
            .seekable(&mut reader, length, &place)
            .map(|_| length),
        Err(error) => Err(error),
    };
    scanner.resolve_externals(0, None);
    let length = match result {
        Ok(length) => length,
        Err(error) => {
            scanner.note(
                FindingKind::ReadError,
                Verdict::Unscanned,
                &place,
                0,
                format!("the artifact could not be read: {error}"),
            );
            known_length
        }
    };
    scanner.report(length, read.get())
}

#[cfg(test)]
mod tests {
    use super::{NpyDescr, npy_descr};

    #[test]
    fn npy_object_dtypes_are_told_by_their_descr() {
        for descr in [
            "'O'",
            "'|O'",
            "'<O'",
            "'O8'",
            "'object'",
            "\"|O\"",
            "[('a', '<f8'), ('b', 'O')]",
            "[('a', [('x', '|O')])]",
        ] {
            let header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}");
            assert_eq!(npy_descr(&header), NpyDescr::Object, "{descr}");
        }
        for descr in [
            "'<f8'",
            "'|u1'",
            "'<U10'",
            "'|S3'",
            "'<M8[ns]'",
            "[('a', '<f8'), ('b', '<i4')]",
        ] {
            let header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}");
            assert_eq!(npy_descr(&header), NpyDescr::Plain, "{descr}");
        }
        assert!(matches!(
            npy_descr("{'descr': 'wat', 'shape': (1,)}"),
            NpyDescr::Unsure(_)
        ));
        assert!(matches!(npy_descr("{'shape': (1,)}"), NpyDescr::Unsure(_)));
    }

    use super::*;

    fn place(entry: &str) -> Place {
        Place {
            path: String::new(),
            entry: entry.to_owned(),
            depth: 0,
            in_archive: false,
        }
    }

    #[test]
    fn formats_are_told_apart_by_content_before_name() {
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        let mut safetensors = 20u64.to_le_bytes().to_vec();
        safetensors.extend_from_slice(b"{\"a\":{}}            ");
        let cases: Vec<(&[u8], &str, Detected)> = vec![
            (b"PK\x03\x04rest", "model.pkl", Detected::Zip),
            (b"\x1f\x8b\x08\x00", "x", Detected::Gzip),
            (b"\x78\x9c\x01\x02", "x.joblib", Detected::Zlib),
            (b"\xfd7zXZ\x00", "x", Detected::Unsupported("xz")),
            (&tar, "x", Detected::Tar),
            (b"\x93NUMPY\x01\x00", "x", Detected::Numpy),
            (&safetensors, "x.bin", Detected::Safetensors),
            (
                b"\x80\x04\x95",
                "x.bin",
                Detected::Pickle { claimed: false },
            ),
            (b"\x80\x02}", "x.pt", Detected::Pickle { claimed: true }),
            (b"\x08\x08\x12\x04", "x", Detected::Onnx),
            (b"cos\n", "x", Detected::Pickle { claimed: false }),
            (b"\x00\x01", "x.onnx", Detected::Onnx),
            (b"\x00\x01", "x.data", Detected::Unknown),
        ];
        for (head, name, expected) in cases {
            assert_eq!(
                detect(head, &place(name), Some(1 << 20)),
                expected,
                "{name} {head:?}"
            );
        }
    }

    #[test]
    fn external_locations_resolve_relative_to_the_model() {
        let cases = [
            ("model/model.onnx", "weights.bin", Some("model/weights.bin")),
            ("model.onnx", "./w/x.bin", Some("w/x.bin")),
            ("model/model.onnx", "../weights.bin", None),
            ("m.onnx", "/etc/passwd", None),
            ("m.onnx", "C:\\x", None),
            ("m.onnx", "a\\..\\..\\x", None),
            ("m.onnx", "", None),
        ];
        for (entry, location, expected) in cases {
            assert_eq!(
                resolve_relative(entry, location).as_deref(),
                expected,
                "{location}"
            );
        }
    }

    #[test]
    fn external_references_are_judged_against_the_members() {
        let limits = Limits::default();
        let mut scanner = Scanner::new(&limits);
        for (location, end) in [
            ("w.bin", Some(16)),
            ("big.bin", Some(100)),
            ("missing.bin", None),
        ] {
            scanner.pending.push(PendingExternal {
                path: "m/model.onnx".to_owned(),
                entry: "m/model.onnx".to_owned(),
                location: location.to_owned(),
                tensors: 1,
                end,
                at: 0,
            });
        }
        let members = HashMap::from([("m/w.bin".to_owned(), 16), ("m/big.bin".to_owned(), 50)]);
        scanner.resolve_externals(0, Some(&members));
        let severities: Vec<Verdict> = scanner
            .findings
            .iter()
            .map(|finding| finding.severity)
            .collect();
        assert_eq!(
            severities,
            vec![Verdict::Clean, Verdict::Suspicious, Verdict::Suspicious]
        );
        assert!(scanner.pending.is_empty());
    }

    #[test]
    fn findings_past_the_limit_are_summarised_with_their_worst_severity() {
        let limits = Limits {
            max_findings: 2,
            ..Limits::default()
        };
        let mut scanner = Scanner::new(&limits);
        for severity in [
            Verdict::Clean,
            Verdict::Clean,
            Verdict::Dangerous,
            Verdict::Clean,
        ] {
            scanner.note(FindingKind::Import, severity, &place(""), 0, String::new());
        }
        let report = scanner.report(0, 0);
        assert_eq!(report.verdict, Verdict::Dangerous);
        assert_eq!(report.findings.len(), 3);
        assert_eq!(report.findings[2].kind, FindingKind::FindingsTruncated);
        assert_eq!(report.findings[2].severity, Verdict::Dangerous);
    }
}
