//! A pickle opcode walker: reads the opcode stream of protocols 0–5 without executing it, and reports
//! every import with what the stream then does with it.
//!
//! Written by hand because no Rust library reads pickles *safely* for this purpose: the pickle crates
//! (serde-pickle and the like) deserialise into values and reject or drop the opcodes that matter here
//! (`GLOBAL`, `REDUCE`, `BUILD`), and Python's own `pickletools` is Python. This walker keeps a model of the
//! stack and memo just rich enough to name what `STACK_GLOBAL` imports (its operands come from string
//! opcodes, possibly through `MEMOIZE`/`BINGET`), to see which import `REDUCE`, `NEWOBJ`, `OBJ` and `BUILD`
//! apply to, and to read the shape and dtype of joblib's `NumpyArrayWrapper` so that the raw array bytes
//! joblib writes between two opcodes are skipped. Nothing is ever called or constructed: values are
//! labels, strings are capped, containers keep their first few items, and payload opcodes (`BINBYTES8`,
//! `BYTEARRAY8`, long strings, joblib arrays) are skipped by seeking.

use crate::input::Input;
use crate::{Finding, FindingKind, ImportClass, Verdict, classify_import};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

/// Strings longer than this are not kept (module and class names are far shorter).
const KEEP_STRING: usize = 1024;
/// Containers keep at most this many items.
const KEEP_ITEMS: usize = 64;
/// Uses of an import listed in its finding.
const KEEP_USES: usize = 4;
/// joblib object arrays nest pickles; deeper than this is malformed.
const MAX_NESTED: u32 = 8;
/// Values on the stack (and open MARKs) and in the memo, and distinct imports: real pickles stay far
/// below; a stream built to exhaust memory is malformed (suspicious) past them. The memo bound keeps a
/// few megabytes of `MEMOIZE` opcodes from costing the scanner more than about 100 MB.
const MAX_STACK: usize = 1 << 19;
const MAX_MEMO: usize = 1 << 20;
const MAX_IMPORTS: usize = 1 << 16;
/// The first pickle of a legacy (non-zip) PyTorch file: protocol 2, `LONG1` 0x1950a86a20f9469cfc6c, STOP.
const LEGACY_TORCH_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e";

/// A label for what the unpickler would have on its stack.
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    Str(Rc<str>),
    Tuple(Rc<Vec<Value>>),
    Dict(Rc<Vec<(Value, Value)>>),
    /// The result of an import: index into the walker's imports.
    Global(usize),
    Object(Rc<Object>),
    Other,
}

#[derive(Debug, Clone)]
struct Object {
    class: Option<usize>,
    args: Vec<Value>,
    state: Option<Value>,
}

impl Value {
    fn str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    fn tuple(items: Vec<Value>) -> Value {
        if items.len() > KEEP_ITEMS {
            Value::Other
        } else {
            Value::Tuple(Rc::new(items))
        }
    }

    fn string(bytes: Option<Vec<u8>>) -> Value {
        match bytes {
            Some(bytes) => Value::Str(String::from_utf8_lossy(&bytes).into()),
            None => Value::Other,
        }
    }
}

/// One import, deduplicated by module and name within a stream.
#[derive(Debug)]
struct Import {
    module: String,
    name: String,
    resolved: bool,
    opcode: &'static str,
    offset: u64,
    count: u64,
    uses: Vec<(&'static str, u64)>,
    more_uses: u64,
}

enum Fail {
    Io(io::Error),
    Bad(String),
}

impl From<io::Error> for Fail {
    fn from(error: io::Error) -> Self {
        Fail::Io(error)
    }
}

type Step<T> = Result<T, Fail>;

fn truncated() -> Fail {
    Fail::Bad("truncated: the stream ends inside an opcode".to_owned())
}

/// How one pickle ended.
enum End {
    /// `STOP` reached.
    Stop,
    /// The stream ended before the first opcode.
    Empty,
    /// Malformed at `offset`.
    Malformed { offset: u64, reason: String },
}

/// What a stream turned out to hold.
pub(crate) struct PickleScan {
    /// Whether the stream is a pickle at all (see [`scan_pickles`]).
    pub(crate) is_pickle: bool,
    /// Whether it has joblib's numpy array wrappers.
    pub(crate) joblib: bool,
    pub(crate) findings: Vec<Finding>,
}

/// Whether `byte` is an opcode of some protocol.
pub(crate) fn is_opcode(byte: u8) -> bool {
    matches!(
        byte,
        b'(' | b'.'
            | b'0'
            | b'1'
            | b'2'
            | b'F'
            | b'I'
            | b'J'
            | b'K'
            | b'L'
            | b'M'
            | b'N'
            | b'P'
            | b'Q'
            | b'R'
            | b'S'
            | b'T'
            | b'U'
            | b'V'
            | b'X'
            | b'a'
            | b'b'
            | b'c'
            | b'd'
            | b'}'
            | b'e'
            | b'g'
            | b'h'
            | b'i'
            | b'j'
            | b'l'
            | b']'
            | b'o'
            | b'p'
            | b'q'
            | b'r'
            | b's'
            | b't'
            | b')'
            | b'u'
            | b'G'
            | b'B'
            | b'C'
            | 0x80..=0x98
    )
}

/// Whether the bytes start like a protocol 2–5 pickle (`PROTO n`).
pub(crate) fn has_proto_header(head: &[u8]) -> bool {
    matches!(head, [0x80, 2..=5, next, ..] if is_opcode(*next))
}

/// Walks every pickle in the stream (joblib and legacy PyTorch files hold several in a row).
///
/// The stream counts as a pickle when it starts with `PROTO`, `claimed` is set (the file name says
/// pickle), or the walk reached a `STOP` or an import; otherwise (`is_pickle == false`) it is some other
/// format whose first byte happens to be an opcode, and the findings are empty. Bytes after the last
/// pickle that do not start another one are reported as trailing data.
pub(crate) fn scan_pickles(input: &mut Input, path: &str, claimed: bool) -> io::Result<PickleScan> {
    let mut walker = Walker {
        input,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        imports: Vec::new(),
        by_name: HashMap::new(),
        import_events: 0,
        extra: Vec::new(),
        joblib: false,
        path: path.to_owned(),
        nested: 0,
    };
    // Legacy PyTorch files (pickles of the magic number, protocol, system info, the object and the
    // storage keys) end with raw storage bytes, whose first byte is often an opcode by chance.
    let legacy_torch = walker
        .input
        .peek(LEGACY_TORCH_MAGIC.len())?
        .starts_with(LEGACY_TORCH_MAGIC);
    let mut complete = 0u64;
    let mut is_pickle = claimed;
    loop {
        let attempt_start = walker.input.position();
        let head = walker.input.peek(3)?;
        let proto = has_proto_header(head);
        let opens_like_a_pickle = head.first().is_some_and(|&byte| is_opcode(byte));
        if head.is_empty() {
            break;
        }
        if complete > 0 && !opens_like_a_pickle {
            walker.trailing(attempt_start)?;
            break;
        }
        let events_before = walker.import_events;
        match walker.walk_one()? {
            End::Empty => break,
            End::Stop => {
                complete += 1;
                is_pickle = true;
            }
            End::Malformed { offset, reason } => {
                let imported = walker.import_events > events_before;
                if complete > 0 && !proto && !imported {
                    // Bytes that open like another pickle but do not walk: a loader reading pickle after
                    // pickle may still take them for one, so they are worth a look — except after
                    // legacy PyTorch's pickles, where storages follow.
                    let severity = if legacy_torch {
                        Verdict::Clean
                    } else {
                        Verdict::Suspicious
                    };
                    walker.trailing_as(attempt_start, severity)?;
                    break;
                }
                is_pickle = is_pickle || proto || imported || complete > 0;
                walker.extra.push(finding(
                    FindingKind::MalformedPickle,
                    Verdict::Suspicious,
                    path,
                    offset,
                    format!("{reason} (offset {offset})"),
                ));
                break;
            }
        }
    }
    if !is_pickle {
        return Ok(PickleScan {
            is_pickle: false,
            joblib: false,
            findings: Vec::new(),
        });
    }
    let joblib = walker.joblib;
    let findings = walker.into_findings();
    Ok(PickleScan {
        is_pickle: true,
        joblib,
        findings,
    })
}

fn finding(
    kind: FindingKind,
    severity: Verdict,
    path: &str,
    offset: u64,
    detail: String,
) -> Finding {
    Finding {
        kind,
        severity,
        module: String::new(),
        name: String::new(),
        path: path.to_owned(),
        offset,
        detail,
    }
}

struct Walker<'i, 'a> {
    input: &'i mut Input<'a>,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    imports: Vec<Import>,
    by_name: HashMap<(String, String, bool), usize>,
    import_events: u64,
    extra: Vec<Finding>,
    joblib: bool,
    path: String,
    nested: u32,
}

impl Walker<'_, '_> {
    fn trailing(&mut self, start: u64) -> io::Result<()> {
        self.trailing_as(start, Verdict::Clean)
    }

    fn trailing_as(&mut self, start: u64, severity: Verdict) -> io::Result<()> {
        self.input.skip_to_end()?;
        let count = self.input.position().saturating_sub(start);
        let detail = if severity == Verdict::Clean {
            format!("{count} bytes after the last pickle are not a pickle (not scanned as code)")
        } else {
            format!(
                "{count} bytes after the last pickle open with a pickle opcode but do not walk as a pickle"
            )
        };
        self.extra.push(finding(
            FindingKind::TrailingData,
            severity,
            &self.path,
            start,
            detail,
        ));
        Ok(())
    }

    fn into_findings(self) -> Vec<Finding> {
        let mut findings: Vec<Finding> = self
            .imports
            .into_iter()
            .map(|import| import_finding(import, &self.path))
            .collect();
        findings.extend(self.extra);
        findings.sort_by_key(|finding| finding.offset);
        findings
    }

    /// One pickle, from its first opcode to `STOP`; the memo and stack are its own.
    fn walk_one(&mut self) -> io::Result<End> {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        let mut first = true;
        loop {
            let offset = self.input.position();
            let Some(opcode) = self.input.byte()? else {
                if first {
                    return Ok(End::Empty);
                }
                return Ok(End::Malformed {
                    offset,
                    reason: "truncated: the stream ends before STOP".to_owned(),
                });
            };
            first = false;
            if self.stack.len() + self.marks.len() > MAX_STACK || self.memo.len() > MAX_MEMO {
                return Ok(End::Malformed {
                    offset,
                    reason: format!(
                        "the pickle keeps more than {MAX_STACK} values on its stack or {MAX_MEMO} in its memo"
                    ),
                });
            }
            if self.imports.len() > MAX_IMPORTS {
                return Ok(End::Malformed {
                    offset,
                    reason: format!("more than {MAX_IMPORTS} distinct imports"),
                });
            }
            match self.step(opcode, offset) {
                Ok(true) => return Ok(End::Stop),
                Ok(false) => {}
                Err(Fail::Io(error)) => return Err(error),
                Err(Fail::Bad(reason)) => return Ok(End::Malformed { offset, reason }),
            }
        }
    }

    fn pop(&mut self) -> Step<Value> {
        if self
            .marks
            .last()
            .is_some_and(|&mark| mark >= self.stack.len())
        {
            return Err(Fail::Bad("stack underflow: popping past a MARK".to_owned()));
        }
        self.stack
            .pop()
            .ok_or_else(|| Fail::Bad("stack underflow".to_owned()))
    }

    fn pop_mark(&mut self) -> Step<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| Fail::Bad("no MARK on the stack".to_owned()))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn top(&mut self) -> Step<&mut Value> {
        if self
            .marks
            .last()
            .is_some_and(|&mark| mark >= self.stack.len())
        {
            return Err(Fail::Bad(
                "stack underflow: no object above the MARK".to_owned(),
            ));
        }
        self.stack
            .last_mut()
            .ok_or_else(|| Fail::Bad("stack underflow".to_owned()))
    }

    fn push(&mut self, value: Value) {
        self.stack.push(value);
    }

    fn fixed<const N: usize>(&mut self) -> Step<[u8; N]> {
        let mut out = [0u8; N];
        if self.input.read_exact(&mut out)? {
            Ok(out)
        } else {
            Err(truncated())
        }
    }

    fn line(&mut self) -> Step<Vec<u8>> {
        match self.input.line(KEEP_STRING)? {
            Some((line, _)) => Ok(line),
            None => Err(Fail::Bad(
                "truncated: the stream ends inside a text argument".to_owned(),
            )),
        }
    }

    /// A text argument of `GLOBAL`/`INST`: a dotted Python identifier, or the import could only fail
    /// (and a text file that happens to start with `c` is not taken for a pickle).
    fn identifier(&mut self, opcode: &str) -> Step<String> {
        let line = self.line()?;
        let text = String::from_utf8_lossy(&line).into_owned();
        if is_dotted_identifier(&text) {
            Ok(text)
        } else {
            Err(Fail::Bad(format!(
                "{opcode} argument is not a Python name: {:?}",
                text.chars().take(40).collect::<String>()
            )))
        }
    }

    /// A length-prefixed payload: kept when short, skipped otherwise.
    fn blob(&mut self, length: u64) -> Step<Option<Vec<u8>>> {
        self.input.bytes(length, KEEP_STRING)?.ok_or_else(|| {
            Fail::Bad(format!(
                "truncated: a {length}-byte argument runs past the end of the stream"
            ))
        })
    }

    fn memo_get(&mut self, key: u64) -> Step<()> {
        let value = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| Fail::Bad(format!("memo key {key} was never stored")))?;
        self.push(value);
        Ok(())
    }

    fn memo_put(&mut self, key: u64) -> Step<()> {
        let value = self.top()?.clone();
        self.memo.insert(key, value);
        Ok(())
    }

    fn import(
        &mut self,
        module: String,
        name: String,
        resolved: bool,
        opcode: &'static str,
        offset: u64,
    ) -> usize {
        self.import_events += 1;
        let key = (module, name, resolved);
        if let Some(&index) = self.by_name.get(&key) {
            if let Some(import) = self.imports.get_mut(index) {
                import.count += 1;
            }
            return index;
        }
        let index = self.imports.len();
        self.imports.push(Import {
            module: key.0.clone(),
            name: key.1.clone(),
            resolved,
            opcode,
            offset,
            count: 1,
            uses: Vec::new(),
            more_uses: 0,
        });
        self.by_name.insert(key, index);
        index
    }

    /// Records that `callable` is called (or given state) by `opcode` at `offset`.
    fn used(&mut self, callable: &Value, opcode: &'static str, offset: u64) -> Option<usize> {
        let index = match callable {
            Value::Global(index) => *index,
            Value::Object(object) if opcode == "BUILD" => object.class?,
            _ => return None,
        };
        let import = self.imports.get_mut(index)?;
        if import.uses.len() < KEEP_USES {
            import.uses.push((opcode, offset));
        } else {
            import.more_uses += 1;
        }
        Some(index)
    }

    fn object(&mut self, class: &Value, args: Vec<Value>) -> Value {
        let class = match class {
            Value::Global(index) => Some(*index),
            _ => None,
        };
        let mut args = args;
        args.truncate(KEEP_ITEMS);
        Value::Object(Rc::new(Object {
            class,
            args,
            state: None,
        }))
    }

    /// Executes one opcode on the model; `Ok(true)` at `STOP`.
    fn step(&mut self, opcode: u8, offset: u64) -> Step<bool> {
        match opcode {
            // Framing and protocol
            0x80 => {
                let [protocol] = self.fixed::<1>()?;
                if protocol > 5 {
                    return Err(Fail::Bad(format!("unsupported pickle protocol {protocol}")));
                }
            }
            0x95 => {
                self.fixed::<8>()?;
            }
            b'.' => {
                self.pop()?;
                return Ok(true);
            }
            // Stack and memo
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                if self
                    .marks
                    .last()
                    .is_some_and(|&mark| mark >= self.stack.len())
                {
                    self.pop_mark()?;
                } else {
                    self.pop()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let value = self.top()?.clone();
                self.push(value);
            }
            b'p' => {
                let key = memo_key(&self.line()?)
                    .ok_or_else(|| Fail::Bad("PUT with a key that is not a number".to_owned()))?;
                self.memo_put(key)?;
            }
            b'q' => {
                let [key] = self.fixed::<1>()?;
                self.memo_put(u64::from(key))?;
            }
            b'r' => {
                let key = u32::from_le_bytes(self.fixed::<4>()?);
                self.memo_put(u64::from(key))?;
            }
            0x94 => {
                let key = self.memo.len() as u64;
                self.memo_put(key)?;
            }
            b'g' => {
                let key = memo_key(&self.line()?)
                    .ok_or_else(|| Fail::Bad("GET with a key that is not a number".to_owned()))?;
                self.memo_get(key)?;
            }
            b'h' => {
                let [key] = self.fixed::<1>()?;
                self.memo_get(u64::from(key))?;
            }
            b'j' => {
                let key = u32::from_le_bytes(self.fixed::<4>()?);
                self.memo_get(u64::from(key))?;
            }
            // Constants
            b'N' => self.push(Value::None),
            0x88 => self.push(Value::Bool),
            0x89 => self.push(Value::Bool),
            b'I' => {
                let line = self.line()?;
                let value = match line.as_slice() {
                    b"01" => Value::Bool,
                    b"00" => Value::Bool,
                    text => number(text, "INT")?,
                };
                self.push(value);
            }
            b'L' => {
                let line = self.line()?;
                let text = line.strip_suffix(b"L").unwrap_or(&line);
                let value = number(text, "LONG")?;
                self.push(value);
            }
            b'F' => {
                let line = self.line()?;
                if !python_float(&line) {
                    return Err(Fail::Bad("FLOAT argument is not a number".to_owned()));
                }
                self.push(Value::Other);
            }
            b'G' => {
                self.fixed::<8>()?;
                self.push(Value::Other);
            }
            b'J' => {
                let value = i32::from_le_bytes(self.fixed::<4>()?);
                self.push(Value::Int(i64::from(value)));
            }
            b'K' => {
                let [value] = self.fixed::<1>()?;
                self.push(Value::Int(i64::from(value)));
            }
            b'M' => {
                let value = u16::from_le_bytes(self.fixed::<2>()?);
                self.push(Value::Int(i64::from(value)));
            }
            0x8a => {
                let [length] = self.fixed::<1>()?;
                let bytes = self.blob(u64::from(length))?;
                self.push(long_value(bytes));
            }
            0x8b => {
                let length = i32::from_le_bytes(self.fixed::<4>()?);
                let length = u64::try_from(length)
                    .map_err(|_| Fail::Bad("LONG4 with a negative length".to_owned()))?;
                let bytes = self.blob(length)?;
                self.push(long_value(bytes));
            }
            // Strings and bytes
            b'S' => {
                let line = self.line()?;
                if !matches!(line.as_slice(), [b'\'', .., b'\''] | [b'"', .., b'"']) {
                    return Err(Fail::Bad("STRING argument is not quoted".to_owned()));
                }
                self.push(Value::Str(unquote(&line).into()));
            }
            b'V' => {
                let line = self.line()?;
                self.push(Value::Str(raw_unicode_unescape(&line).into()));
            }
            b'T' => {
                let length = i32::from_le_bytes(self.fixed::<4>()?);
                let length = u64::try_from(length)
                    .map_err(|_| Fail::Bad("BINSTRING with a negative length".to_owned()))?;
                let bytes = self.blob(length)?;
                self.push(Value::string(bytes));
            }
            b'U' | 0x8c => {
                let [length] = self.fixed::<1>()?;
                let bytes = self.blob(u64::from(length))?;
                self.push(Value::string(bytes));
            }
            b'X' => {
                let length = u32::from_le_bytes(self.fixed::<4>()?);
                let bytes = self.blob(u64::from(length))?;
                self.push(Value::string(bytes));
            }
            0x8d => {
                let length = u64::from_le_bytes(self.fixed::<8>()?);
                let bytes = self.blob(length)?;
                self.push(Value::string(bytes));
            }
            b'C' => {
                let [length] = self.fixed::<1>()?;
                self.blob(u64::from(length))?;
                self.push(Value::Other);
            }
            b'B' => {
                let length = u32::from_le_bytes(self.fixed::<4>()?);
                self.blob(u64::from(length))?;
                self.push(Value::Other);
            }
            0x8e | 0x96 => {
                let length = u64::from_le_bytes(self.fixed::<8>()?);
                self.blob(length)?;
                self.push(Value::Other);
            }
            0x97 => self.push(Value::Other),
            0x98 => {
                self.top()?;
            }
            // Containers
            b')' => self.push(Value::tuple(Vec::new())),
            b']' | 0x8f => self.push(Value::Other),
            b'}' => self.push(Value::Dict(Rc::new(Vec::new()))),
            b't' => {
                let items = self.pop_mark()?;
                self.push(Value::tuple(items));
            }
            0x85..=0x87 => {
                let count = usize::from(opcode - 0x84);
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Value::tuple(items));
            }
            b'l' => {
                self.pop_mark()?;
                self.push(Value::Other);
            }
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.push(Value::Dict(Rc::new(pairs)));
            }
            0x91 => {
                self.pop_mark()?;
                self.push(Value::Other);
            }
            b'a' => {
                self.pop()?;
                self.top()?;
            }
            b'e' | 0x90 => {
                self.pop_mark()?;
                self.top()?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                insert(self.top()?, vec![(key, value)]);
            }
            b'u' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                insert(self.top()?, pairs);
            }
            // Imports
            b'c' => {
                let module = self.identifier("GLOBAL")?;
                let name = self.identifier("GLOBAL")?;
                let index = self.import(module, name, true, "GLOBAL", offset);
                self.push(Value::Global(index));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let index = match (module.str(), name.str()) {
                    (Some(module), Some(name)) => self.import(
                        module.to_owned(),
                        name.to_owned(),
                        true,
                        "STACK_GLOBAL",
                        offset,
                    ),
                    _ => self.import(String::new(), String::new(), false, "STACK_GLOBAL", offset),
                };
                self.push(Value::Global(index));
            }
            b'i' => {
                let module = self.identifier("INST")?;
                let name = self.identifier("INST")?;
                let args = self.pop_mark()?;
                let index = self.import(module, name, true, "INST", offset);
                let class = Value::Global(index);
                self.used(&class, "INST", offset);
                let object = self.object(&class, args);
                self.push(object);
            }
            0x82..=0x84 => {
                let code = match opcode {
                    0x82 => u32::from(self.fixed::<1>()?[0]),
                    0x83 => u32::from(u16::from_le_bytes(self.fixed::<2>()?)),
                    _ => u32::from_le_bytes(self.fixed::<4>()?),
                };
                self.import_events += 1;
                self.extra.push(finding(
                    FindingKind::ExtensionCode,
                    Verdict::Suspicious,
                    &self.path,
                    offset,
                    format!(
                        "EXT opcode imports extension code {code} from the copyreg registry: whatever the loading process registered"
                    ),
                ));
                self.push(Value::Other);
            }
            // Calls and construction
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.used(&callable, "REDUCE", offset);
                let args = match args {
                    Value::Tuple(items) => items.as_ref().clone(),
                    _ => Vec::new(),
                };
                let object = self.object(&callable, args);
                self.push(object);
            }
            0x81 => {
                let args = self.pop()?;
                let class = self.pop()?;
                self.used(&class, "NEWOBJ", offset);
                let object = self.object(&class, tuple_items(args));
                self.push(object);
            }
            0x92 => {
                self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                self.used(&class, "NEWOBJ_EX", offset);
                let object = self.object(&class, tuple_items(args));
                self.push(object);
            }
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(Fail::Bad("OBJ without a class".to_owned()));
                }
                let class = items.remove(0);
                self.used(&class, "OBJ", offset);
                let object = self.object(&class, items);
                self.push(object);
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?.clone();
                let class = self.used(&target, "BUILD", offset);
                match target {
                    Value::Object(object) => {
                        let mut built = object.as_ref().clone();
                        built.state = Some(state.clone());
                        *self.top()? = Value::Object(Rc::new(built));
                        if let Some(class) = class
                            && self.imports.get(class).is_some_and(is_joblib_wrapper)
                        {
                            self.joblib = true;
                            self.joblib_array(&state, offset)?;
                        }
                    }
                    Value::Global(index) => {
                        // Not an instance: the unpickler sets attributes on the imported module
                        // or class itself, which can replace what later code calls.
                        let (module, name) = self
                            .imports
                            .get(index)
                            .map(|import| (import.module.clone(), import.name.clone()))
                            .unwrap_or_default();
                        let mut overwrite = finding(
                            FindingKind::AttributeOverwrite,
                            Verdict::Suspicious,
                            &self.path,
                            offset,
                            format!(
                                "BUILD at offset {offset} gives state to the imported {module}.{name} itself, not to an instance: it can overwrite attributes of a module or class"
                            ),
                        );
                        overwrite.module = module;
                        overwrite.name = name;
                        self.extra.push(overwrite);
                    }
                    _ => {}
                }
            }
            b'P' => {
                self.line()?;
                self.push(Value::Other);
            }
            b'Q' => {
                self.pop()?;
                self.push(Value::Other);
            }
            other => return Err(Fail::Bad(format!("unknown opcode 0x{other:02x}"))),
        }
        Ok(false)
    }

    /// joblib writes an array's bytes right after the `BUILD` of its `NumpyArrayWrapper`: an optional
    /// alignment padding (one length byte, then that many bytes), then the data; an object array is
    /// a nested pickle instead.
    fn joblib_array(&mut self, state: &Value, offset: u64) -> Step<()> {
        let Value::Dict(entries) = state else {
            return Err(Fail::Bad(
                "joblib NumpyArrayWrapper without a state dict".to_owned(),
            ));
        };
        if entries.len() > KEEP_ITEMS {
            return Err(Fail::Bad(format!(
                "joblib NumpyArrayWrapper state with more than {KEEP_ITEMS} entries"
            )));
        }
        // Python's dict keeps the last value of a key, so does this; a key given twice is a desync
        // attempt (or a broken writer) and suspicious.
        let get = |key: &str| {
            entries
                .iter()
                .rev()
                .find(|(name, _)| name.str() == Some(key))
                .map(|(_, value)| value)
        };
        let mut seen = std::collections::HashSet::new();
        let duplicates: Vec<String> = entries
            .iter()
            .filter_map(|(name, _)| name.str())
            .filter(|name| !seen.insert(name.to_owned()))
            .map(str::to_owned)
            .collect();
        if !duplicates.is_empty() {
            self.extra.push(finding(
                FindingKind::MalformedPickle,
                Verdict::Suspicious,
                &self.path,
                offset,
                format!(
                    "joblib NumpyArrayWrapper state names {} more than once (the last value is used, as Python does)",
                    duplicates.join(", ")
                ),
            ));
        }
        let dtype = get("dtype").and_then(dtype_itemsize);
        let Some(itemsize) = dtype else {
            return Err(Fail::Bad(format!(
                "joblib NumpyArrayWrapper at offset {offset} without a dtype this scanner can size"
            )));
        };
        let Some(itemsize) = itemsize else {
            // An object array: joblib pickles it (protocol 2) in place.
            if self.nested >= MAX_NESTED {
                return Err(Fail::Bad(
                    "joblib object arrays nested too deeply".to_owned(),
                ));
            }
            let saved = (
                std::mem::take(&mut self.stack),
                std::mem::take(&mut self.marks),
                std::mem::take(&mut self.memo),
            );
            self.nested += 1;
            let end = self.walk_one()?;
            self.nested -= 1;
            (self.stack, self.marks, self.memo) = saved;
            return match end {
                End::Stop => Ok(()),
                End::Empty => Err(truncated()),
                End::Malformed { reason, offset } => Err(Fail::Bad(format!(
                    "in the pickle of a joblib object array, at offset {offset}: {reason}"
                ))),
            };
        };
        let Some(Value::Tuple(shape)) = get("shape") else {
            return Err(Fail::Bad(
                "joblib NumpyArrayWrapper without a shape".to_owned(),
            ));
        };
        let mut count: u64 = 1;
        for dimension in shape.iter() {
            let Value::Int(dimension) = dimension else {
                return Err(Fail::Bad("joblib array shape is not integers".to_owned()));
            };
            count = u64::try_from(*dimension)
                .ok()
                .and_then(|dimension| count.checked_mul(dimension))
                .ok_or_else(|| Fail::Bad("joblib array shape overflows".to_owned()))?;
        }
        let bytes = count
            .checked_mul(itemsize)
            .ok_or_else(|| Fail::Bad("joblib array size overflows".to_owned()))?;
        if matches!(get("numpy_array_alignment_bytes"), Some(Value::Int(_))) {
            let [padding] = self.fixed::<1>()?;
            self.blob(u64::from(padding))?;
        }
        if !self.input.skip(bytes)? {
            return Err(Fail::Bad(format!(
                "truncated: a joblib array of {bytes} bytes runs past the end of the stream"
            )));
        }
        Ok(())
    }
}

fn is_joblib_wrapper(import: &Import) -> bool {
    import.name == "NumpyArrayWrapper" && import.module.ends_with("numpy_pickle")
}

/// The item size of a pickled `numpy.dtype` (`dtype('f8', False, True)` with state
/// `(3, '<', None, None, None, elsize, alignment, flags)`): `Some(None)` for object arrays.
fn dtype_itemsize(dtype: &Value) -> Option<Option<u64>> {
    let Value::Object(object) = dtype else {
        return None;
    };
    let code = object.args.first()?.str()?;
    let elsize = match &object.state {
        Some(Value::Tuple(state)) => match state.get(5) {
            Some(Value::Int(size)) if *size > 0 => u64::try_from(*size).ok(),
            _ => None,
        },
        _ => None,
    };
    let code = code.trim_start_matches(['<', '>', '=', '|']);
    let kind = code.chars().next()?;
    if kind == 'O' {
        return Some(None);
    }
    if let Some(elsize) = elsize {
        return Some(Some(elsize));
    }
    let digits: u64 = code.get(1..)?.parse().ok()?;
    let size = match kind {
        'U' => digits.checked_mul(4)?,
        'b' | 'i' | 'u' | 'f' | 'c' | 'S' | 'V' | 'M' | 'm' | '?' => digits,
        _ => return None,
    };
    Some(Some(size))
}

fn tuple_items(value: Value) -> Vec<Value> {
    match value {
        Value::Tuple(items) => items.as_ref().clone(),
        _ => Vec::new(),
    }
}

fn pairs(items: Vec<Value>) -> Step<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return Err(Fail::Bad("odd number of items for a dict".to_owned()));
    }
    let mut pairs = Vec::new();
    let mut items = items.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        // One past KEEP_ITEMS is kept, so a reader can tell that entries were dropped.
        if pairs.len() <= KEEP_ITEMS {
            pairs.push((key, value));
        }
    }
    Ok(pairs)
}

fn insert(target: &mut Value, new: Vec<(Value, Value)>) {
    if let Value::Dict(entries) = target {
        let entries = Rc::make_mut(entries);
        for pair in new {
            if entries.len() <= KEEP_ITEMS {
                entries.push(pair);
            }
        }
    }
}

fn is_dotted_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|first| first == '_' || first.is_alphabetic())
                && chars.all(|character| character == '_' || character.is_alphanumeric())
        })
}

/// A protocol-0 integer argument, read as CPython reads it (`int(text, 0)`, and the C unpickler's
/// `strtol(text, 0)`): surrounding whitespace, a sign, a `0x`/`0o`/`0b` prefix (or a C octal leading
/// zero) and underscores between digits are accepted. Kept when it fits, a label when it is longer;
/// anything else is malformed (the unpickler raises).
fn number(text: &[u8], opcode: &str) -> Step<Value> {
    python_int(text, true)
        .map(|value| value.map_or(Value::Other, Value::Int))
        .ok_or_else(|| Fail::Bad(format!("{opcode} argument is not a number")))
}

/// `int(text, 0)` (`any_base`) or `int(text)`: `None` when Python raises, `Some(None)` when it is an
/// integer too large for `i64`.
fn python_int(text: &[u8], any_base: bool) -> Option<Option<i64>> {
    let text = std::str::from_utf8(text).ok()?.trim();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = match lower.get(..2) {
        Some("0x") if any_base => (16, &lower[2..]),
        Some("0o") if any_base => (8, &lower[2..]),
        Some("0b") if any_base => (2, &lower[2..]),
        _ => (10, lower.as_str()),
    };
    // After a prefix one underscore may come first (`0x_1`); otherwise underscores sit between digits.
    let digits = if radix != 10 {
        digits.strip_prefix('_').unwrap_or(digits)
    } else {
        digits
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits
        .chars()
        .filter(|&character| character != '_')
        .collect();
    if !clean.chars().all(|character| character.is_digit(radix)) {
        return None;
    }
    Some(
        i64::from_str_radix(&clean, radix)
            .ok()
            .map(|value| if negative { -value } else { value }),
    )
}

/// `float(text)`: whitespace, underscores between digits, `inf`/`nan` spellings.
fn python_float(text: &[u8]) -> bool {
    let Some(text) = std::str::from_utf8(text).ok().map(str::trim) else {
        return false;
    };
    let bytes = text.as_bytes();
    let underscores_ok = bytes.iter().enumerate().all(|(at, &byte)| {
        byte != b'_'
            || (at > 0
                && bytes[at - 1].is_ascii_digit()
                && bytes.get(at + 1).is_some_and(u8::is_ascii_digit))
    });
    let clean: String = text.chars().filter(|&character| character != '_').collect();
    underscores_ok && clean.parse::<f64>().is_ok()
}

/// A `PUT`/`GET` key: `int(text)` in base 10, not negative.
fn memo_key(text: &[u8]) -> Option<u64> {
    python_int(text, false)?.and_then(|key| u64::try_from(key).ok())
}

/// A little-endian two's-complement integer of `LONG1`/`LONG4`, when it fits.
fn long_value(bytes: Option<Vec<u8>>) -> Value {
    match bytes {
        Some(bytes) if bytes.len() <= 8 => {
            if bytes.is_empty() {
                return Value::Int(0);
            }
            let negative = bytes.last().is_some_and(|&byte| byte & 0x80 != 0);
            let mut word = [if negative { 0xff } else { 0 }; 8];
            word[..bytes.len()].copy_from_slice(&bytes);
            Value::Int(i64::from_le_bytes(word))
        }
        _ => Value::Other,
    }
}

/// The text of a protocol-0 `STRING` argument (`'…'` or `"…"`, Python escapes).
fn unquote(line: &[u8]) -> String {
    let inner = match line {
        [b'\'', inner @ .., b'\''] | [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'x') => {
                let high = bytes.next().and_then(|digit| (digit as char).to_digit(16));
                let low = bytes.next().and_then(|digit| (digit as char).to_digit(16));
                if let (Some(high), Some(low)) = (high, low) {
                    out.push((high * 16 + low) as u8);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The text of a protocol-0 `UNICODE` argument (raw-unicode-escape: `\uXXXX`, `\UXXXXXXXX`).
fn raw_unicode_unescape(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        if character == '\\' && matches!(chars.peek(), Some('u' | 'U')) {
            let width = if chars.next() == Some('u') { 4 } else { 8 };
            let digits: String = chars.by_ref().take(width).collect();
            match u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
            {
                Some(decoded) => out.push(decoded),
                None => out.push_str(&digits),
            }
        } else {
            out.push(character);
        }
    }
    out
}

fn import_finding(import: Import, path: &str) -> Finding {
    let severity = if !import.resolved {
        Verdict::Dangerous
    } else {
        match classify_import(&import.module, &import.name) {
            ImportClass::Safe => Verdict::Clean,
            ImportClass::Unknown => Verdict::Suspicious,
            ImportClass::Dangerous => Verdict::Dangerous,
        }
    };
    let mut detail = if import.resolved {
        format!("{} at offset {}", import.opcode, import.offset)
    } else {
        format!(
            "{} at offset {} whose module and name are not string constants: what it imports cannot be told without running the pickle",
            import.opcode, import.offset
        )
    };
    if !import.uses.is_empty() {
        let uses: Vec<String> = import
            .uses
            .iter()
            .map(|(opcode, offset)| format!("{opcode} at {offset}"))
            .collect();
        detail.push_str("; used by ");
        detail.push_str(&uses.join(", "));
        if import.more_uses > 0 {
            detail.push_str(&format!(" and {} more", import.more_uses));
        }
    }
    if import.count > 1 {
        detail.push_str(&format!("; imported {} times", import.count));
    }
    Finding {
        kind: FindingKind::Import,
        severity,
        module: import.module,
        name: import.name,
        path: path.to_owned(),
        offset: import.offset,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::{memo_key, python_float, python_int};
    use crate::{FindingKind, ScanReport, Verdict, scan_bytes};

    fn walk(bytes: &[u8]) -> ScanReport {
        scan_bytes(bytes, "case.pkl")
    }

    #[test]
    fn a_memo_past_its_bound_is_suspicious() {
        let mut bytes = b"\x80\x04\x8c\x01a".to_vec();
        bytes.extend(std::iter::repeat_n(0x94u8, super::MAX_MEMO + 2));
        bytes.push(b'.');
        let report = walk(&bytes);
        assert_eq!(report.verdict, Verdict::Suspicious);
        assert_eq!(kinds(&report), vec![FindingKind::MalformedPickle]);
    }

    #[test]
    fn text_numbers_are_read_as_cpython_reads_them() {
        for text in [
            "0x1",
            "0X1f",
            "0o17",
            "0b101",
            "1_000",
            " 12 ",
            "-0x_1",
            "+7",
            "010",
            "0",
            "00",
            "123456789012345678901234567890",
        ] {
            assert!(python_int(text.as_bytes(), true).is_some(), "{text}");
        }
        for text in ["", "_1", "1_", "1__0", "0x", "abc", "0x1g", "1.5"] {
            assert!(python_int(text.as_bytes(), true).is_none(), "{text}");
        }
        assert_eq!(python_int(b"0x10", true), Some(Some(16)));
        assert_eq!(python_int(b"0x10", false), None);
        assert_eq!(memo_key(b" 1_0 "), Some(10));
        for text in ["1_0", "1.5", " 2e3 ", "inf", "-nan", "1_0.2_5"] {
            assert!(python_float(text.as_bytes()), "{text}");
        }
        for text in ["_1", "1_", "1__0", "x", ""] {
            assert!(!python_float(text.as_bytes()), "{text}");
        }
    }

    fn kinds(report: &ScanReport) -> Vec<FindingKind> {
        report.findings.iter().map(|finding| finding.kind).collect()
    }

    fn imports(report: &ScanReport) -> Vec<(String, String, Verdict)> {
        report
            .findings
            .iter()
            .filter(|finding| finding.kind == FindingKind::Import)
            .map(|finding| {
                (
                    finding.module.clone(),
                    finding.name.clone(),
                    finding.severity,
                )
            })
            .collect()
    }

    /// Streams that use every opcode class without importing anything: clean, no malformed finding.
    #[test]
    fn every_opcode_class_walks_to_stop() {
        let cases: &[(&str, &[u8])] = &[
            (
                "numbers",
                b"\x80\x02K\x01M\x02\x00J\x03\x00\x00\x00\x8a\x01\x05\x8b\x01\x00\x00\x00\x07G?\xf0\x00\x00\x00\x00\x00\x00F1.5\nI7\nI01\nL8L\n\x88\x89N\x87\x87\x87\x86.",
            ),
            (
                "strings and bytes",
                b"\x80\x05S'a\\x41'\nV\\u0041\nT\x01\x00\x00\x00aU\x01bX\x01\x00\x00\x00c\x8c\x01d\x8d\x01\x00\x00\x00\x00\x00\x00\x00eB\x01\x00\x00\x00fC\x01g\x8e\x01\x00\x00\x00\x00\x00\x00\x00h\x96\x01\x00\x00\x00\x00\x00\x00\x00i(t.",
            ),
            (
                "containers",
                b"\x80\x04}(K\x01K\x02u]K\x03aK\x04(K\x05K\x06e\x8f(K\x07\x90(K\x08\x91)(K\x09t(K\x0al(K\x0bK\x0cd}K\x0dK\x0es\x85\x86\x87(1(K\x0f00\x87.",
            ),
            (
                "memo",
                b"(K\x01p7\ng7\nq\x02h\x02r\x03\x00\x00\x00j\x03\x00\x00\x00\x94h\x03\x940l.",
            ),
            (
                "framing and persistent ids",
                b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00Pid\n\x8c\x01xQ\x97\x98\x86\x86.",
            ),
            ("duplicate and pop", b"\x80\x02K\x012\x860K\x01."),
        ];
        for (name, bytes) in cases {
            let report = walk(bytes);
            assert_eq!(report.verdict, Verdict::Clean, "{name}: {report:#?}");
            assert!(kinds(&report).is_empty(), "{name}: {report:#?}");
        }
    }

    #[test]
    fn imports_are_named_through_every_import_opcode() {
        let cases: &[(&[u8], &str, &str, Verdict)] = &[
            (b"cos\nsystem\n.", "os", "system", Verdict::Dangerous),
            (b"(ios\nsystem\n.", "os", "system", Verdict::Dangerous),
            (
                b"\x80\x03X\x08\x00\x00\x00builtinsX\x04\x00\x00\x00eval\x93.",
                "builtins",
                "eval",
                Verdict::Dangerous,
            ),
            (
                b"\x80\x04\x8c\x05numpy\x94\x8c\x05dtype\x94\x93\x940h\x00h\x01\x93.",
                "numpy",
                "dtype",
                Verdict::Clean,
            ),
            (
                b"\x80\x04\x8c\x08__main__\x8c\x05Model\x93)}\x92.",
                "__main__",
                "Model",
                Verdict::Suspicious,
            ),
        ];
        for (bytes, module, name, severity) in cases {
            let report = walk(bytes);
            assert_eq!(
                imports(&report),
                vec![((*module).to_owned(), (*name).to_owned(), *severity)],
                "{report:#?}"
            );
            assert_eq!(report.verdict, *severity);
        }
    }

    #[test]
    fn calls_and_state_are_reported_with_the_import() {
        let report = walk(b"\x80\x02csubprocess\nPopen\n)\x81}b.");
        let detail = &report.findings[0].detail;
        assert!(
            detail.contains("NEWOBJ at 21") && detail.contains("BUILD at 23"),
            "{detail}"
        );
        let report = walk(b"\x80\x02cos\nsystem\nU\x02id\x85R.");
        assert!(
            report.findings[0].detail.contains("REDUCE at 18"),
            "{report:#?}"
        );
    }

    #[test]
    fn malformed_streams_are_suspicious_at_their_offset() {
        let cases: &[(&[u8], u64, &str)] = &[
            (b"\x80\x06.", 0, "protocol 6"),
            (b"\x80\x02R.", 2, "underflow"),
            (b"\x80\x021.", 2, "MARK"),
            (b"\x80\x02h\x05.", 2, "memo key 5"),
            (b"\x80\x02K\x01\xff.", 4, "unknown opcode 0xff"),
            (b"\x80\x02X\xff\x00\x00\x00abc", 2, "runs past the end"),
            (b"\x80\x02K\x01K", 4, "truncated"),
            (b"\x80\x02K\x01", 4, "before STOP"),
            (b"\x80\x02(K\x01K\x02K\x03d.", 9, "odd number"),
            (b"\x80\x02cos\nsys", 2, "truncated"),
        ];
        for (bytes, offset, reason) in cases {
            let report = walk(bytes);
            let malformed = report
                .findings
                .iter()
                .find(|finding| finding.kind == FindingKind::MalformedPickle);
            let Some(malformed) = malformed else {
                panic!("{bytes:?}: {report:#?}");
            };
            assert_eq!(malformed.offset, *offset, "{bytes:?}: {malformed:?}");
            assert!(
                malformed.detail.contains(reason),
                "{bytes:?}: {malformed:?}"
            );
            assert!(report.verdict >= Verdict::Suspicious);
        }
    }

    #[test]
    fn concatenated_pickles_are_all_walked_and_trailing_bytes_noted() {
        let report = walk(b"\x80\x02K\x01.\x80\x02cos\nsystem\n.");
        assert_eq!(report.verdict, Verdict::Dangerous);
        assert_eq!(report.findings[0].offset, 7);
        let report = walk(b"\x80\x02K\x01.\x00\x01\x02\x03");
        assert_eq!(report.verdict, Verdict::Clean);
        assert_eq!(kinds(&report), vec![FindingKind::TrailingData]);
        // Trailing bytes that open like a pickle and then do not walk are worth a look...
        let opens = walk(b"\x80\x02K\x01.Iwhat\n\x00");
        assert_eq!(opens.verdict, Verdict::Suspicious);
        assert_eq!(kinds(&opens), vec![FindingKind::TrailingData]);
        // ...except after legacy PyTorch's pickles, where raw storages follow.
        let mut legacy = super::LEGACY_TORCH_MAGIC.to_vec();
        legacy.extend_from_slice(b"\x80\x02K\x01.Iwhat\n\x00");
        assert_eq!(walk(&legacy).verdict, Verdict::Clean);
        assert!(report.findings[0].detail.starts_with("4 bytes"));
    }

    #[test]
    fn build_on_an_imported_object_itself_is_suspicious() {
        // GLOBAL collections.OrderedDict, then BUILD with (None, {'x': 1}): setattr on the class.
        let report = walk(b"\x80\x02ccollections\nOrderedDict\nN}U\x01xK\x01s\x86b.");
        assert!(
            kinds(&report).contains(&FindingKind::AttributeOverwrite),
            "{report:#?}"
        );
        assert_eq!(report.verdict, Verdict::Suspicious);
    }

    #[test]
    fn extension_codes_are_suspicious() {
        let report = walk(b"\x80\x02\x82\x01.");
        assert_eq!(kinds(&report), vec![FindingKind::ExtensionCode]);
        assert_eq!(report.verdict, Verdict::Suspicious);
    }

    #[test]
    fn a_stack_global_of_computed_strings_is_dangerous() {
        let report = walk(b"\x80\x04K\x01K\x02\x93.");
        assert_eq!(report.verdict, Verdict::Dangerous);
        assert_eq!(
            imports(&report),
            vec![(String::new(), String::new(), Verdict::Dangerous)]
        );
    }

    #[test]
    fn payloads_are_skipped_not_read() {
        let mut bytes = b"\x80\x05\x8e".to_vec();
        bytes.extend_from_slice(&(8u64 << 20).to_le_bytes());
        bytes.resize(bytes.len() + (8 << 20), 0xab);
        bytes.extend_from_slice(b"cos\nsystem\n.");
        let report = walk(&bytes);
        assert_eq!(report.verdict, Verdict::Dangerous);
        assert!(report.bytes_read < 1 << 20, "read {}", report.bytes_read);
        assert_eq!(report.bytes_scanned, bytes.len() as u64);
    }

    #[test]
    fn text_files_are_not_taken_for_pickles() {
        let texts: [&[u8]; 6] = [
            b"hello, world\n",
            b"channels:\n- conda-forge\ndependencies:\n- python=3.11\n",
            b"cloudpickle==3.0\nnumpy\n",
            b"Identifier\n",
            b"S3 bucket\n",
            b"(i love models\nand more\n",
        ];
        for text in texts {
            let report = scan_bytes(text, "notes.txt");
            assert_eq!(report.verdict, Verdict::Unscanned, "{report:#?}");
            assert_eq!(kinds(&report), vec![FindingKind::NotScanned]);
        }
    }
}
