//! JSON Lines (or any whitespace-separated JSON values) read whole, each value with the line it
//! starts on, plus typed accessors that report the field at fault.

use serde_json::{Map, Value};

use crate::error::{Error, Problem};

/// Every JSON value in `text` with its 1-based starting line. Blank lines are skipped; a
/// pretty-printed object spanning several lines is one value.
pub(crate) fn json_values(name: &str, text: &str) -> Result<Vec<(usize, Value)>, Error> {
    let text = crate::input::strip_bom(text);
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut out = Vec::new();
    let mut counted_to = 0usize;
    let mut line = 1usize;
    let mut previous_end = 0usize;
    while let Some(item) = stream.next() {
        let value = item.map_err(|e| {
            Error::invalid(
                name,
                Some(e.line().max(1)),
                "json",
                Problem::Syntax {
                    message: format!("not valid JSON: {e}"),
                },
            )
        })?;
        let start = text[previous_end..]
            .find(|c: char| !c.is_whitespace())
            .map_or(previous_end, |skip| previous_end + skip);
        line += text[counted_to..start].matches('\n').count();
        counted_to = start;
        previous_end = stream.byte_offset();
        out.push((line, value));
    }
    Ok(out)
}

/// A JSON object's fields, checked against the names a format knows.
pub(crate) struct Fields<'a> {
    name: &'a str,
    line: Option<usize>,
    prefix: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Views `value` as an object; `prefix` is prepended to field names in errors
    /// (`deployment.`).
    pub fn of(
        name: &'a str,
        line: Option<usize>,
        prefix: &'a str,
        field: &str,
        value: &'a Value,
    ) -> Result<Self, Error> {
        match value {
            Value::Object(map) => Ok(Self {
                name,
                line,
                prefix,
                map,
            }),
            other => Err(Error::invalid(
                name,
                line,
                field,
                Problem::BadValue {
                    value: kind_of(other).into(),
                    expected: "a JSON object".into(),
                },
            )),
        }
    }

    /// The input name errors are reported under.
    pub fn input_name(&self) -> &'a str {
        self.name
    }

    /// Refuses any key not in `known`, so a misspelt optional field is not silently ignored.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), Error> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(self.error(
                k,
                Problem::UnknownField {
                    expected: known.join(", "),
                },
            )),
            None => Ok(()),
        }
    }

    /// An error about `field` of this object.
    pub fn error(&self, field: &str, problem: Problem) -> Error {
        Error::invalid(
            self.name,
            self.line,
            format!("{}{field}", self.prefix),
            problem,
        )
    }

    /// The raw value of `field`, `None` when absent or `null`.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    /// A string field; absent, `null` and blank all read as `None`.
    pub fn opt_str(&self, field: &str) -> Result<Option<&'a str>, Error> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(other) => Err(self.error(
                field,
                Problem::BadValue {
                    value: kind_of(other).into(),
                    expected: "a string".into(),
                },
            )),
        }
    }

    /// A required, non-blank string field.
    pub fn str(&self, field: &str) -> Result<&'a str, Error> {
        self.opt_str(field)?
            .ok_or_else(|| self.error(field, Problem::Missing))
    }

    /// An identifier given as a string or an integer.
    pub fn opt_id(&self, field: &str) -> Result<Option<String>, Error> {
        match self.get(field) {
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
            Some(Value::Number(n)) => Err(self.error(
                field,
                Problem::BadValue {
                    value: n.to_string(),
                    expected: "a string or an integer".into(),
                },
            )),
            _ => Ok(self.opt_str(field)?.map(String::from)),
        }
    }
}

/// The JSON type of a value, for messages that should not echo a whole object.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_start_lines() {
        let text = "{\"a\":1}\n\n  {\"b\":\n 2}\n{\"c\":3}";
        let got = json_values("f", text);
        let Ok(got) = got else { panic!("{got:?}") };
        let lines: Vec<usize> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 3, 5]);
    }

    #[test]
    fn broken_json_names_its_line() {
        let e = json_values("f.jsonl", "{\"a\":1}\n{\"b\":}\n").err();
        assert!(
            matches!(&e, Some(Error::Invalid { line: Some(2), .. })),
            "{e:?}"
        );
    }
}
