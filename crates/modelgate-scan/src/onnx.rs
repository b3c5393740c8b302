//! ONNX models, read as protobuf on the wire (a small streaming reader of the few ModelProto fields that
//! matter, skipping tensor payloads by seeking): IR version, opset imports, operator domains, and tensors
//! stored as external data.

use crate::input::Input;
use crate::rules::is_known_onnx_domain;
use crate::scanner::{PendingExternal, Place, Scanner};
use crate::{Finding, FindingKind, Verdict};
use std::collections::BTreeMap;
use std::io;

/// Graphs nest through attributes (`If`, `Loop`); deeper than this is malformed.
const MAX_DEPTH: u32 = 32;
/// Strings kept (names, domains, locations).
const KEEP: u64 = 4096;

/// Whether the bytes start like a ModelProto: `ir_version` (field 1) first, then another of its fields.
pub(crate) fn looks_like(head: &[u8]) -> bool {
    matches!(
        head,
        [
            0x08,
            1..=15,
            0x12 | 0x1a | 0x22 | 0x28 | 0x32 | 0x3a | 0x42 | 0x72 | 0xa2 | 0xca,
            ..
        ]
    )
}

enum Fail {
    Io(io::Error),
    Bad(u64, String),
}

impl From<io::Error> for Fail {
    fn from(error: io::Error) -> Self {
        Fail::Io(error)
    }
}

type Step<T> = Result<T, Fail>;

#[derive(Default)]
struct External {
    tensors: u64,
    end: Option<u64>,
    at: u64,
}

#[derive(Default)]
struct Model {
    ir_version: Option<u64>,
    opsets: Vec<(String, u64)>,
    /// Domain → operator types seen in it (a few).
    domains: BTreeMap<String, Vec<String>>,
    nodes: u64,
    initializers: u64,
    externals: BTreeMap<String, External>,
}

struct Reader<'i, 'a> {
    input: &'i mut Input<'a>,
    model: Model,
}

impl Reader<'_, '_> {
    fn bad<T>(&self, reason: &str) -> Step<T> {
        Err(Fail::Bad(self.input.position(), reason.to_owned()))
    }

    fn varint(&mut self) -> Step<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(byte) = self.input.byte()? else {
                return self.bad("truncated varint");
            };
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.bad("varint longer than 10 bytes")
    }

    /// The next field's number and wire type, `None` at `end` (or at the end of a stream of unknown
    /// length, for the top-level message).
    fn field(&mut self, end: u64) -> Step<Option<(u64, u64)>> {
        let position = self.input.position();
        if position == end {
            return Ok(None);
        }
        if position > end {
            return self.bad("a field runs past the end of its message");
        }
        if end == u64::MAX && self.input.peek(1)?.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        Ok(Some((tag >> 3, tag & 7)))
    }

    /// The end offset of a length-delimited field that starts here.
    fn sub_end(&mut self, end: u64) -> Step<u64> {
        let length = self.varint()?;
        let sub_end = self.input.position().checked_add(length);
        match sub_end {
            Some(sub_end)
                if sub_end <= end && self.input.length().is_none_or(|total| sub_end <= total) =>
            {
                Ok(sub_end)
            }
            _ => self.bad("a length-delimited field runs past the end of its message"),
        }
    }

    fn skip(&mut self, wire: u64, end: u64) -> Step<()> {
        let count = match wire {
            0 => {
                self.varint()?;
                return Ok(());
            }
            1 => 8,
            5 => 4,
            2 => {
                let sub_end = self.sub_end(end)?;
                sub_end - self.input.position()
            }
            _ => return self.bad(&format!("wire type {wire} is not used by ONNX")),
        };
        if self.input.skip(count)? {
            Ok(())
        } else {
            self.bad("truncated field")
        }
    }

    fn string(&mut self, end: u64) -> Step<String> {
        let sub_end = self.sub_end(end)?;
        let length = sub_end - self.input.position();
        match self.input.bytes(length, KEEP as usize)? {
            Some(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Some(None) => Ok(String::new()),
            None => self.bad("truncated string"),
        }
    }

    fn expect_end(&mut self, end: u64) -> Step<()> {
        if self.input.position() == end {
            Ok(())
        } else {
            self.bad("a sub-message does not end where its length says")
        }
    }

    /// A length-delimited sub-message read by `read`.
    fn sub<T>(
        &mut self,
        end: u64,
        depth: u32,
        read: fn(&mut Self, u64, u32) -> Step<T>,
    ) -> Step<T> {
        if depth > MAX_DEPTH {
            return self.bad("messages nested too deeply");
        }
        let sub_end = self.sub_end(end)?;
        let value = read(self, sub_end, depth + 1)?;
        self.expect_end(sub_end)?;
        Ok(value)
    }

    fn model(&mut self, end: u64, depth: u32) -> Step<()> {
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (1, 0) => self.model.ir_version = Some(self.varint()?),
                (7, 2) => self.sub(end, depth, Self::graph)?,
                (8, 2) => {
                    let (domain, version) = self.sub(end, depth, Self::opset)?;
                    self.model.opsets.push((domain, version));
                }
                (20, 2) => self.sub(end, depth, Self::training)?,
                (25, 2) => self.sub(end, depth, Self::function)?,
                _ => self.skip(wire, end)?,
            }
        }
        Ok(())
    }

    fn graph(&mut self, end: u64, depth: u32) -> Step<()> {
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (1, 2) => self.sub(end, depth, Self::node)?,
                (5, 2) => {
                    self.model.initializers += 1;
                    self.sub(end, depth, Self::tensor)?;
                }
                (15, 2) => {
                    self.model.initializers += 1;
                    self.sub(end, depth, Self::sparse)?;
                }
                _ => self.skip(wire, end)?,
            }
        }
        Ok(())
    }

    fn node(&mut self, end: u64, depth: u32) -> Step<()> {
        self.model.nodes += 1;
        let mut op_type = String::new();
        let mut domain = String::new();
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (4, 2) => op_type = self.string(end)?,
                (7, 2) => domain = self.string(end)?,
                (5, 2) => self.sub(end, depth, Self::attribute)?,
                _ => self.skip(wire, end)?,
            }
        }
        let operators = self.model.domains.entry(domain).or_default();
        if operators.len() < 8 && !operators.contains(&op_type) {
            operators.push(op_type);
        }
        Ok(())
    }

    fn attribute(&mut self, end: u64, depth: u32) -> Step<()> {
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (5 | 10, 2) => self.sub(end, depth, Self::tensor)?,
                (6 | 11, 2) => self.sub(end, depth, Self::graph)?,
                (22 | 23, 2) => self.sub(end, depth, Self::sparse)?,
                _ => self.skip(wire, end)?,
            }
        }
        Ok(())
    }

    fn sparse(&mut self, end: u64, depth: u32) -> Step<()> {
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (1 | 2, 2) => self.sub(end, depth, Self::tensor)?,
                _ => self.skip(wire, end)?,
            }
        }
        Ok(())
    }

    fn tensor(&mut self, end: u64, depth: u32) -> Step<()> {
        let at = self.input.position();
        let mut external = false;
        let mut location = None;
        let mut offset = None;
        let mut length = None;
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (14, 0) => external = self.varint()? == 1,
                (13, 2) => {
                    let (key, value) = self.sub(end, depth, Self::entry)?;
                    match key.as_str() {
                        "location" => location = Some(value),
                        "offset" => offset = value.trim().parse::<u64>().ok(),
                        "length" => length = value.trim().parse::<u64>().ok(),
                        _ => {}
                    }
                }
                _ => self.skip(wire, end)?,
            }
        }
        if external || location.is_some() {
            let location = location.unwrap_or_default();
            let reference = self
                .model
                .externals
                .entry(location)
                .or_insert_with(|| External {
                    at,
                    ..External::default()
                });
            reference.tensors += 1;
            if let Some(length) = length {
                let tensor_end = offset.unwrap_or(0).saturating_add(length);
                reference.end = Some(reference.end.unwrap_or(0).max(tensor_end));
            }
        }
        Ok(())
    }

    fn entry(&mut self, end: u64, _depth: u32) -> Step<(String, String)> {
        let mut key = String::new();
        let mut value = String::new();
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (1, 2) => key = self.string(end)?,
                (2, 2) => value = self.string(end)?,
                _ => self.skip(wire, end)?,
            }
        }
        Ok((key, value))
    }

    fn opset(&mut self, end: u64, _depth: u32) -> Step<(String, u64)> {
        let mut domain = String::new();
        let mut version = 0;
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (1, 2) => domain = self.string(end)?,
                (2, 0) => version = self.varint()?,
                _ => self.skip(wire, end)?,
            }
        }
        Ok((domain, version))
    }

    fn function(&mut self, end: u64, depth: u32) -> Step<()> {
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (7, 2) => self.sub(end, depth, Self::node)?,
                (9, 2) => {
                    let (domain, version) = self.sub(end, depth, Self::opset)?;
                    self.model.opsets.push((domain, version));
                }
                _ => self.skip(wire, end)?,
            }
        }
        Ok(())
    }

    fn training(&mut self, end: u64, depth: u32) -> Step<()> {
        while let Some((number, wire)) = self.field(end)? {
            match (number, wire) {
                (1 | 2, 2) => self.sub(end, depth, Self::graph)?,
                _ => self.skip(wire, end)?,
            }
        }
        Ok(())
    }
}

fn domain_name(domain: &str) -> &str {
    if domain.is_empty() { "ai.onnx" } else { domain }
}

/// Scans an ONNX model and records its external-data references for the archive to resolve.
pub(crate) fn scan(scanner: &mut Scanner, input: &mut Input, place: &Place) -> io::Result<()> {
    let end = input.length().unwrap_or(u64::MAX);
    let mut reader = Reader {
        input,
        model: Model::default(),
    };
    match reader.model(end, 0) {
        Ok(()) => {}
        Err(Fail::Io(error)) => return Err(error),
        Err(Fail::Bad(offset, reason)) => {
            scanner.note(
                FindingKind::MalformedOnnx,
                Verdict::Suspicious,
                place,
                offset,
                format!("not a well-formed ONNX ModelProto: {reason} (offset {offset})"),
            );
            return Ok(());
        }
    }
    let size = reader.input.position();
    let model = reader.model;
    let opsets: Vec<String> = model
        .opsets
        .iter()
        .map(|(domain, version)| format!("{} {version}", domain_name(domain)))
        .collect();
    let external_tensors: u64 = model
        .externals
        .values()
        .map(|external| external.tensors)
        .sum();
    scanner.note(
        FindingKind::OnnxModel,
        Verdict::Clean,
        place,
        0,
        format!(
            "ir_version {}; opsets {}; {} nodes; {} initializers ({external_tensors} external); {size} bytes",
            model
                .ir_version
                .map_or_else(|| "missing".to_owned(), |version| version.to_string()),
            if opsets.is_empty() {
                "none".to_owned()
            } else {
                opsets.join(", ")
            },
            model.nodes,
            model.initializers,
        ),
    );
    let mut custom: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (domain, operators) in &model.domains {
        if !is_known_onnx_domain(domain) {
            custom
                .entry(domain.clone())
                .or_default()
                .extend(operators.iter().cloned());
        }
    }
    for (domain, _) in &model.opsets {
        if !is_known_onnx_domain(domain) {
            custom.entry(domain.clone()).or_default();
        }
    }
    for (domain, operators) in custom {
        scanner.add(Finding {
            kind: FindingKind::OnnxCustomDomain,
            severity: Verdict::Suspicious,
            module: String::new(),
            name: domain,
            path: place.path.clone(),
            offset: 0,
            detail: if operators.is_empty() {
                "an opset import of a custom operator domain: loading needs a native operator library"
                    .to_owned()
            } else {
                format!(
                    "custom operator domain used by {}: loading needs a native operator library",
                    operators.join(", ")
                )
            },
        });
    }
    for (location, external) in model.externals {
        scanner.pending.push(PendingExternal {
            path: place.path.clone(),
            entry: place.entry.clone(),
            location,
            tensors: external.tensors,
            end: external.end,
            at: external.at,
        });
    }
    Ok(())
}
