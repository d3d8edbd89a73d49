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
