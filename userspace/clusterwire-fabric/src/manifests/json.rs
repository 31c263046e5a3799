//! A fast path for manifest files whose documents are all JSON objects (as generators such as
//! `cwctl lab` and `kubectl ... -o json` write them): JSON is YAML 1.2, so such a file means
//! the same parsed either way, and `serde_json` reads it about ten times faster than the YAML
//! parser. Anything else (a comment, a block mapping, a directive, a key given twice, which
//! YAML rejects and JSON would not) makes [`documents`] return `None`, and the file is read by
//! the YAML parser, errors and all.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The documents of `text` if every one is a JSON object; `None` to use the YAML parser.
///
/// Documents are separated by lines that are exactly `---` (a YAML document marker: JSON text
/// never has one, as its strings cannot span lines); empty documents are skipped, as YAML
/// does.
pub fn documents(text: &str) -> Option<Vec<Value>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut parse = |chunk: &str| -> Option<()> {
        let chunk = chunk.trim();
        if chunk.is_empty() {
            return Some(());
        }
        if !chunk.starts_with('{') {
            return None;
        }
        let Strict(value) = serde_json::from_str(chunk).ok()?;
        documents.push(value);
        Some(())
    };
    for (at, line) in line_starts(text) {
        if line.trim_end_matches('\r') == "---" {
            parse(&text[start..at])?;
            start = at + line.len();
        }
    }
    parse(&text[start..])?;
    Some(documents)
}

/// Each line of `text` with the byte offset it starts at (without its `\n`).
fn line_starts(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 0;
    text.split('\n').map(move |line| {
        let start = at;
        at += line.len() + 1;
        (start, line)
    })
}

/// A JSON value read with duplicate object keys refused (YAML refuses them; plain
/// `serde_json::Value` keeps the last).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What the YAML parser makes of `text`.
    fn yaml(text: &str) -> Vec<Value> {
        serde_saphyr::from_multiple(text).expect("valid YAML")
    }

    #[test]
    fn json_documents_read_as_the_yaml_parser_reads_them() {
        let text = "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\",\
                    \"labels\":{\"a\":\"x\\u00e9\\n\"}},\"spec\":{\"podCIDRs\":[\"10.0.0.0/24\"]},\
                    \"n\":[1,-2,3.5,true,null]}\n---\n\n---\r\n  {\"kind\": \"IP\", \"spec\": {}}\n\n";
        let fast = documents(text).expect("every document is JSON");
        assert_eq!(fast, yaml(text));
        assert_eq!(fast.len(), 2);
        assert_eq!(fast[0]["metadata"]["labels"]["a"], json!("x\u{e9}\n"));
        assert_eq!(documents(""), Some(Vec::new()));
    }

    #[test]
    fn anything_but_json_objects_goes_to_the_yaml_parser() {
        for text in [
            "kind: Node\n",
            "{\"kind\": \"Node\"}\n---\nkind: IP\n",
            "# a comment\n{\"kind\": \"Node\"}\n",
            "{\"kind\": \"Node\"} # a comment\n",
            "--- {\"kind\": \"Node\"}\n",
            "%YAML 1.2\n---\n{\"kind\": \"Node\"}\n",
            "{\"kind\": \"Node\"}\n...\n",
            "[1, 2]\n",
            "{kind: Node}\n",
            "{\"kind\": \"Node\",}\n",
        ] {
            assert_eq!(documents(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_key_given_twice_is_left_to_the_yaml_parser_which_refuses_it() {
        let text = "{\"metadata\": {\"name\": \"a\", \"name\": \"b\"}}\n";
        assert_eq!(documents(text), None);
        assert!(serde_saphyr::from_multiple::<Value>(text).is_err());
        assert!(documents("{\"a\": {\"name\": 1}, \"b\": {\"name\": 2}}").is_some());
    }
}
