//! Checking values against the constraints the spec states (lengths,
//! patterns, ranges, item counts), with the failing field named by its
//! path on the wire (`parameters.temperature`, `batch[2].query`).

use std::fmt;

/// Where in a value a check is looking, as the wire names it.
///
/// The path is kept rendered (`parameters.temperature`) in one buffer, with
/// where each segment starts: stepping in and out of fields reuses the
/// buffer, so validating a value allocates once, not once per field.
#[derive(Debug, Clone, Default)]
pub struct FieldPath {
    /// The segments as the wire writes them.
    text: String,
    /// The length of `text` before each segment, innermost last.
    marks: Vec<usize>,
}

impl FieldPath {
    /// The top of a value.
    pub fn root() -> Self {
        Self::default()
    }

    /// The top of a value, with room for `len` bytes of path and `depth`
    /// segments before the buffers grow: one path, sized once, serves every
    /// check of a request.
    // Only the generated clients use it.
    #[allow(dead_code)]
    pub fn with_capacity(len: usize, depth: usize) -> Self {
        Self { text: String::with_capacity(len), marks: Vec::with_capacity(depth) }
    }

    /// A path starting at a named field (a parameter, say).
    pub fn field(name: &str) -> Self {
        let mut path = Self::root();
        path.push_field(name);
        path
    }

    /// Steps into a property.
    pub fn push_field(&mut self, name: &str) {
        self.marks.push(self.text.len());
        if !self.text.is_empty() {
            self.text.push('.');
        }
        self.text.push_str(name);
    }

    /// Steps into a map entry.
    pub fn push_key(&mut self, key: &str) {
        self.push_field(key);
    }

    /// Steps into a list item.
    pub fn push_index(&mut self, index: usize) {
        use fmt::Write as _;
        self.marks.push(self.text.len());
        let _ = write!(self.text, "[{index}]");
    }

    /// Steps back out.
    pub fn pop(&mut self) {
        if let Some(mark) = self.marks.pop() {
            self.text.truncate(mark);
        }
    }

    /// A failure at this path.
    pub fn error(&self, reason: impl Into<String>) -> ValidationError {
        ValidationError { field: self.to_string(), reason: reason.into() }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.marks.is_empty() {
            return f.write_str("body");
        }
        f.write_str(&self.text)
    }
}

/// A value that breaks a constraint of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The offending field, e.g. `parameters.temperature`.
    pub field: String,
    /// Why it was refused, e.g. `must be at most 2`.
    pub reason: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ValidationError {}

/// A type whose values can be checked against the spec's constraints.
pub trait Validate {
    /// Checks the value; `path` says where it sits in the enclosing value.
    fn validate(&self, path: &mut FieldPath) -> Result<(), ValidationError>;
}

impl<T: Validate + ?Sized> Validate for Box<T> {
    fn validate(&self, path: &mut FieldPath) -> Result<(), ValidationError> {
        (**self).validate(path)
    }
}

impl<T: Validate> Validate for Vec<T> {
    fn validate(&self, path: &mut FieldPath) -> Result<(), ValidationError> {
        for (index, item) in self.iter().enumerate() {
            path.push_index(index);
            item.validate(path)?;
            path.pop();
        }
        Ok(())
    }
}

/// Checks a string's length (in characters) and pattern.
pub fn check_string(
    value: &str,
    path: &FieldPath,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<(&regex::Regex, &str)>,
) -> Result<(), ValidationError> {
    if min_length.is_some() || max_length.is_some() {
        let length = value.chars().count() as u64;
        if let Some(min) = min_length.filter(|min| length < *min) {
            return Err(path.error(format!("must be at least {min} characters long")));
        }
        if let Some(max) = max_length.filter(|max| length > *max) {
            return Err(path.error(format!("must be at most {max} characters long")));
        }
    }
    if let Some((regex, source)) = pattern
        && !regex.is_match(value)
    {
        return Err(path.error(format!("must match the pattern {source}")));
    }
    Ok(())
}

/// Checks a string against the formats the spec's `format` names and this
/// check knows: `date-time` and `date` (RFC 3339) and `uuid`. Every other
/// format is a hint for people and is not checked.
pub fn check_format(value: &str, path: &FieldPath, format: &str) -> Result<(), ValidationError> {
    use time::format_description::well_known::Rfc3339;
    let ok = match format {
        "date-time" => time::OffsetDateTime::parse(value, &Rfc3339).is_ok(),
        "date" => {
            let parts = time::macros::format_description!("[year]-[month]-[day]");
            value.len() == 10 && time::Date::parse(value, &parts).is_ok()
        }
        "uuid" => value.len() == 36 && uuid::Uuid::try_parse(value).is_ok(),
        _ => true,
    };
    if ok { Ok(()) } else { Err(path.error(format!("must be a valid {format}"))) }
}

/// Checks an integer against the spec's `enum`.
pub fn check_integer_in(value: i64, path: &FieldPath, allowed: &[i64]) -> Result<(), ValidationError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    let list: Vec<String> = allowed.iter().map(i64::to_string).collect();
    Err(path.error(format!("must be one of {}", list.join(", "))))
}

/// Checks that no two items of an array are equal (`uniqueItems`). The
/// comparison is quadratic, which the item limits of real specs keep small.
pub fn check_unique<T: PartialEq>(items: &[T], path: &FieldPath) -> Result<(), ValidationError> {
    for (index, item) in items.iter().enumerate() {
        if let Some(first) = items[..index].iter().position(|earlier| earlier == item) {
            return Err(path.error(format!("must not repeat items (items {first} and {index} are equal)")));
        }
    }
    Ok(())
}

/// Checks an integer's range (bounds included).
pub fn check_integer(
    value: i64,
    path: &FieldPath,
    minimum: Option<i64>,
    maximum: Option<i64>,
) -> Result<(), ValidationError> {
    if let Some(min) = minimum.filter(|min| value < *min) {
        return Err(path.error(format!("must be at least {min}")));
    }
    if let Some(max) = maximum.filter(|max| value > *max) {
        return Err(path.error(format!("must be at most {max}")));
    }
    Ok(())
}

/// Checks a number's range; each bound says whether it is exclusive.
pub fn check_number(
    value: f64,
    path: &FieldPath,
    minimum: Option<(f64, bool)>,
    maximum: Option<(f64, bool)>,
) -> Result<(), ValidationError> {
    if !value.is_finite() {
        return Err(path.error("must be a finite number"));
    }
    if let Some((min, exclusive)) = minimum
        && (value < min || (exclusive && value == min))
    {
        let word = if exclusive { "greater than" } else { "at least" };
        return Err(path.error(format!("must be {word} {min}")));
    }
    if let Some((max, exclusive)) = maximum
        && (value > max || (exclusive && value == max))
    {
        let word = if exclusive { "less than" } else { "at most" };
        return Err(path.error(format!("must be {word} {max}")));
    }
    Ok(())
}

/// Checks a list's length.
pub fn check_items(
    length: usize,
    path: &FieldPath,
    min_items: Option<u64>,
    max_items: Option<u64>,
) -> Result<(), ValidationError> {
    let length = length as u64;
    if let Some(min) = min_items.filter(|min| length < *min) {
        return Err(path.error(format!("must have at least {min} items")));
    }
    if let Some(max) = max_items.filter(|max| length > *max) {
        return Err(path.error(format!("must have at most {max} items")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn integer_enums_and_unique_items_are_checked() {
        let path = FieldPath::field("n");
        assert!(check_integer_in(2, &path, &[1, 2, 4]).is_ok());
        assert_eq!(check_integer_in(3, &path, &[1, 2, 4]).unwrap_err().to_string(), "n: must be one of 1, 2, 4");
        assert!(check_unique(&["a", "b"], &path).is_ok());
        assert!(check_unique(&["a", "b", "a"], &path).unwrap_err().to_string().contains("items 0 and 2"));
    }

    #[test]
    fn formats_the_check_knows_are_checked() {
        let path = FieldPath::field("at");
        for good in ["2026-12-01T10:00:00Z", "2026-12-01t10:00:00.5+01:00"] {
            assert!(check_format(good, &path, "date-time").is_ok(), "{good}");
        }
        for bad in ["", "2026-12-01", "2026-13-01T10:00:00Z", "2026-12-01T10:00:00"] {
            assert!(check_format(bad, &path, "date-time").is_err(), "{bad}");
        }
        assert!(check_format("2026-02-28", &path, "date").is_ok());
        assert!(check_format("2026-02-30", &path, "date").is_err());
        assert!(check_format("5f0c6c3e-8a4e-4b8e-9d47-1d3c2b7f9a10", &path, "uuid").is_ok());
        assert!(check_format("5f0c6c3e8a4e4b8e9d471d3c2b7f9a10", &path, "uuid").is_err());
        // Formats it does not know are hints.
        assert!(check_format("not an email", &path, "email").is_ok());
    }

    use super::*;

    #[test]
    fn paths_read_like_the_wire() {
        let mut p = FieldPath::root();
        assert_eq!(p.to_string(), "body");
        p.push_field("batch");
        p.push_index(2);
        p.push_field("query");
        assert_eq!(p.to_string(), "batch[2].query");
    }

    #[test]
    fn strings_count_characters_not_bytes() {
        let p = FieldPath::field("name");
        assert!(check_string("éé", &p, Some(2), Some(2), None).is_ok());
        assert_eq!(check_string("", &p, Some(1), None, None).unwrap_err().reason, "must be at least 1 characters long");
        let re = regex::Regex::new("^a+$").unwrap();
        assert!(check_string("b", &p, None, None, Some((&re, "^a+$"))).is_err());
    }

    #[test]
    fn number_bounds_respect_exclusivity() {
        let p = FieldPath::field("t");
        assert!(check_number(2.0, &p, Some((0.0, false)), Some((2.0, false))).is_ok());
        assert!(check_number(2.0, &p, None, Some((2.0, true))).is_err());
        assert!(check_number(f64::NAN, &p, None, None).is_err());
    }

    #[test]
    fn integers_and_items() {
        let p = FieldPath::field("limit");
        assert_eq!(check_integer(0, &p, Some(1), Some(100)).unwrap_err().to_string(), "limit: must be at least 1");
        assert!(check_items(101, &p, Some(1), Some(100)).is_err());
    }
}
