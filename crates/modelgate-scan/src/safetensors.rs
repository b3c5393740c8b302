//! safetensors files: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
//! shape and byte range, then the data. The format runs no code; the checks are that a loader will not
//! read out of bounds or be handed overlapping or mis-sized tensors.

use crate::input::Input;
use crate::scanner::{Place, Scanner};
use crate::{FindingKind, Verdict};
use std::io;

/// The safetensors library refuses headers above 100 MB.
const MAX_HEADER: u64 = 100_000_000;

/// Bits per element of the dtypes the format defines.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        _ => return None,
    })
}

/// Whether the bytes start like a safetensors file: a plausible header length, then `{`.
pub(crate) fn looks_like(head: &[u8], length: Option<u64>) -> bool {
    let Some(prefix) = head.get(..8) else {
        return false;
    };
    let mut word = [0u8; 8];
    word.copy_from_slice(prefix);
    let header = u64::from_le_bytes(word);
    (2..=MAX_HEADER).contains(&header)
        && head.get(8) == Some(&b'{')
        && length.is_none_or(|length| header.saturating_add(8) <= length)
}

struct Tensor {
    name: String,
    begin: u64,
    end: u64,
}

/// Checks the header; the problems found, or the tensors and dtypes.
fn check_header(header: &[u8], data_length: u64) -> Result<(Vec<Tensor>, Vec<String>), String> {
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|error| format!("the header is not a JSON object: {error}"))?;
    let mut tensors = Vec::new();
    let mut dtypes: Vec<String> = Vec::new();
    for (name, info) in &header {
        if name == "__metadata__" {
            let all_strings = info
                .as_object()
                .is_some_and(|metadata| metadata.values().all(serde_json::Value::is_string));
            if !all_strings {
                return Err("__metadata__ is not a map of strings".to_owned());
            }
            continue;
        }
        let dtype = info
            .get("dtype")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("tensor `{name}` has no dtype"))?;
        let bits = dtype_bits(dtype)
            .ok_or_else(|| format!("tensor `{name}` has unknown dtype `{dtype}`"))?;
        if !dtypes.iter().any(|known| known == dtype) {
            dtypes.push(dtype.to_owned());
        }
        let shape = info
            .get("shape")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| format!("tensor `{name}` has no shape"))?;
        let mut elements: u64 = 1;
        for dimension in shape {
            let dimension = dimension.as_u64().ok_or_else(|| {
                format!("tensor `{name}` has a shape that is not unsigned integers")
            })?;
            elements = elements
                .checked_mul(dimension)
                .ok_or_else(|| format!("tensor `{name}`'s shape overflows"))?;
        }
        let offsets = info
            .get("data_offsets")
            .and_then(serde_json::Value::as_array)
            .filter(|offsets| offsets.len() == 2)
            .and_then(|offsets| Some((offsets.first()?.as_u64()?, offsets.get(1)?.as_u64()?)))
            .ok_or_else(|| format!("tensor `{name}` has no [begin, end] data_offsets"))?;
        let (begin, end) = offsets;
        if begin > end || end > data_length {
            return Err(format!(
                "tensor `{name}`'s data_offsets [{begin}, {end}] fall outside the {data_length} data bytes"
            ));
        }
        let bytes = elements
            .checked_mul(bits)
            .map(|bits| bits.div_ceil(8))
            .ok_or_else(|| format!("tensor `{name}`'s size overflows"))?;
        if end - begin != bytes {
            return Err(format!(
                "tensor `{name}` ({dtype}, {elements} elements) needs {bytes} bytes but data_offsets give {}",
                end - begin
            ));
        }
        tensors.push(Tensor {
            name: name.clone(),
            begin,
            end,
        });
    }
    tensors.sort_by_key(|tensor| (tensor.begin, tensor.end));
    let mut covered = 0;
    for tensor in &tensors {
        if tensor.begin < covered {
            return Err(format!(
                "tensor `{}` overlaps the one before it",
                tensor.name
            ));
        }
        if tensor.begin > covered {
            return Err(format!(
                "bytes {covered}..{} are in no tensor (a hole the loader refuses)",
                tensor.begin
            ));
        }
        covered = tensor.end;
    }
    if covered != data_length {
        return Err(format!(
            "bytes {covered}..{data_length} after the last tensor are in no tensor"
        ));
    }
    Ok((tensors, dtypes))
}

pub(crate) fn scan(scanner: &mut Scanner, input: &mut Input, place: &Place) -> io::Result<()> {
    let mut word = [0u8; 8];
    let malformed = |scanner: &mut Scanner, offset: u64, reason: String| {
        scanner.note(
            FindingKind::MalformedSafetensors,
            Verdict::Suspicious,
            place,
            offset,
            reason,
        );
    };
    if !input.read_exact(&mut word)? {
        malformed(scanner, 0, "truncated: no 8-byte header length".to_owned());
        return Ok(());
    }
    let header_length = u64::from_le_bytes(word);
    if header_length > MAX_HEADER {
        malformed(
            scanner,
            0,
            format!("header length {header_length} is above the format's limit of {MAX_HEADER}"),
        );
        return Ok(());
    }
    let Some(Some(header)) = input.bytes(header_length, MAX_HEADER as usize)? else {
        malformed(scanner, 8, "truncated header".to_owned());
        return Ok(());
    };
    let data_length = input.skip_to_end()?;
    match check_header(&header, data_length) {
        Ok((tensors, dtypes)) => scanner.note(
            FindingKind::SafetensorsHeader,
            Verdict::Clean,
            place,
            0,
            format!(
                "{} tensors ({}), {data_length} data bytes",
                tensors.len(),
                dtypes.join(", ")
            ),
        ),
        Err(reason) => malformed(scanner, 8, reason),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_for_bounds_overlap_size_and_dtype() {
        let good = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}"#;
        assert!(check_header(good, 12).is_ok());
        let cases: [(&[u8], u64, &str); 6] = [
            (br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 4, "outside"),
            (br#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8, "needs 12"),
            (br#"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, 8, "unknown dtype"),
            (
                br#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#,
                6,
                "overlaps",
            ),
            (br#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#, 6, "after the last"),
            (b"[1,2]", 0, "not a JSON object"),
        ];
        for (header, length, expected) in cases {
            let Err(reason) = check_header(header, length) else {
                panic!("accepted {}", String::from_utf8_lossy(header));
            };
            assert!(reason.contains(expected), "{reason}");
        }
    }
}
