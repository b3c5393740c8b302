//! Removes a classifier's ZipMap node so that its probabilities come out as the tensor that fed it.
//!
//! skl2onnx ends classifiers with ZipMap by default: one map from class to probability per row. Reading
//! those maps through the runtime's API costs ~1.7 µs per row (a random forest ran at 0.42M rows/s that way
//! against 1.6M/s in Python), while the tensor that feeds ZipMap holds the same numbers in class order. So
//! the model is edited before loading: the ZipMap node and its output go, and its input becomes a graph
//! output. The edit works on the protobuf wire format directly — three fields of two messages — because a
//! protobuf library would need the ONNX schema compiled in (code generation at build time) for this one
//! edit; every other byte is copied through unchanged.

/// ModelProto.graph, GraphProto.node and GraphProto.output, NodeProto.input/output/op_type,
/// ValueInfoProto.name (onnx.proto3 field numbers).
const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_OUTPUT: u64 = 12;
const NODE_INPUT: u64 = 1;
const NODE_OUTPUT: u64 = 2;
const NODE_OP_TYPE: u64 = 4;
const VALUE_INFO_NAME: u64 = 1;

/// One field of a message: its number, and its whole encoding (tag included) and payload when it is
/// length-delimited.
struct Field<'a> {
    number: u64,
    raw: &'a [u8],
    payload: Option<&'a [u8]>,
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The fields of a message, or `None` when the bytes are not a well-formed message.
fn fields(message: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut at = 0;
    let mut fields = Vec::new();
    while at < message.len() {
        let start = at;
        let tag = read_varint(message, &mut at)?;
        let payload = match tag & 7 {
            0 => {
                read_varint(message, &mut at)?;
                None
            }
            1 => {
                at = at.checked_add(8)?;
                None
            }
            2 => {
                let length = usize::try_from(read_varint(message, &mut at)?).ok()?;
                let end = at.checked_add(length)?;
                let payload = message.get(at..end)?;
                at = end;
                Some(payload)
            }
            5 => {
                at = at.checked_add(4)?;
                None
            }
            _ => return None,
        };
        fields.push(Field {
            number: tag >> 3,
            raw: message.get(start..at)?,
            payload,
        });
    }
    Some(fields)
}

fn strings(message: &[u8], number: u64) -> Vec<&[u8]> {
    fields(message)
        .unwrap_or_default()
        .into_iter()
        .filter(|field| field.number == number)
        .filter_map(|field| field.payload)
        .collect()
}

fn length_delimited(number: u64, payload: &[u8], out: &mut Vec<u8>) {
    write_varint(number << 3 | 2, out);
    write_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// The model without its ZipMap node, the probability tensor as an output instead; `None` when the model
/// has no (single) ZipMap or cannot be read — then it is loaded as it is.
pub fn without_zipmap(model: &[u8]) -> Option<Vec<u8>> {
    let model_fields = fields(model)?;
    let graph = model_fields
        .iter()
        .find(|field| field.number == MODEL_GRAPH)?
        .payload?;
    let graph_fields = fields(graph)?;
    let zipmaps: Vec<&Field> = graph_fields
        .iter()
        .filter(|field| {
            field.number == GRAPH_NODE
                && field
                    .payload
                    .is_some_and(|node| strings(node, NODE_OP_TYPE) == [b"ZipMap".as_slice()])
        })
        .collect();
    let [zipmap] = zipmaps.as_slice() else {
        return None;
    };
    let node = zipmap.payload?;
    let (Some(&input), Some(&output)) = (
        strings(node, NODE_INPUT).first(),
        strings(node, NODE_OUTPUT).first(),
    ) else {
        return None;
    };
    let mut new_graph = Vec::with_capacity(graph.len() + input.len() + 4);
    for field in &graph_fields {
        let is_zipmap_output = field.number == GRAPH_OUTPUT
            && field
                .payload
                .is_some_and(|info| strings(info, VALUE_INFO_NAME).first() == Some(&output));
        if std::ptr::eq(field, *zipmap) || is_zipmap_output {
            continue;
        }
        new_graph.extend_from_slice(field.raw);
    }
    let mut value_info = Vec::new();
    length_delimited(VALUE_INFO_NAME, input, &mut value_info);
    length_delimited(GRAPH_OUTPUT, &value_info, &mut new_graph);
    let mut new_model = Vec::with_capacity(model.len() + input.len() + 8);
    for field in &model_fields {
        if field.number == MODEL_GRAPH {
            length_delimited(MODEL_GRAPH, &new_graph, &mut new_model);
        } else {
            new_model.extend_from_slice(field.raw);
        }
    }
    Some(new_model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_bad_bytes_are_left_alone() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut bytes = Vec::new();
            write_varint(value, &mut bytes);
            let mut at = 0;
            assert_eq!(read_varint(&bytes, &mut at), Some(value));
            assert_eq!(at, bytes.len());
        }
        assert!(without_zipmap(b"not a model").is_none());
        assert!(
            without_zipmap(&[0x3a, 0x05, 0x01]).is_none(),
            "truncated graph"
        );
    }

    #[test]
    fn the_zipmap_node_is_replaced_by_its_input_tensor() {
        let forest = include_bytes!("../fixtures/random_forest_zipmap.onnx");
        let edited = without_zipmap(forest).expect("the forest ends in ZipMap");
        let graph = |model: &[u8]| {
            fields(model)
                .unwrap()
                .into_iter()
                .find(|field| field.number == MODEL_GRAPH)
                .unwrap()
                .payload
                .unwrap()
                .to_vec()
        };
        let (before, after) = (graph(forest), graph(&edited));
        let op_types = |graph: &[u8]| -> Vec<Vec<u8>> {
            fields(graph)
                .unwrap()
                .into_iter()
                .filter(|field| field.number == GRAPH_NODE)
                .flat_map(|field| strings(field.payload.unwrap(), NODE_OP_TYPE))
                .map(<[u8]>::to_vec)
                .collect()
        };
        let outputs = |graph: &[u8]| -> Vec<Vec<u8>> {
            fields(graph)
                .unwrap()
                .into_iter()
                .filter(|field| field.number == GRAPH_OUTPUT)
                .flat_map(|field| strings(field.payload.unwrap(), VALUE_INFO_NAME))
                .map(<[u8]>::to_vec)
                .collect()
        };
        assert!(op_types(&before).contains(&b"ZipMap".to_vec()));
        assert!(!op_types(&after).contains(&b"ZipMap".to_vec()));
        assert_eq!(op_types(&after).len(), op_types(&before).len() - 1);
        assert_eq!(
            outputs(&after),
            [b"output_label".to_vec(), b"probabilities".to_vec()]
        );
        let logistic = include_bytes!("../fixtures/logistic.onnx");
        assert!(without_zipmap(logistic).is_none(), "no ZipMap, no edit");
    }
}
