//! Reading request bodies that are not JSON: forms, multipart bodies, text
//! and bytes, and choosing among an operation's media types by the
//! request's `Content-Type`. Failures are `400`s in the envelope naming the
//! field, like the JSON ones in `extract`.

use bytes::Bytes;
use http::{HeaderMap, header};

use crate::error::{ApiFailure, ErrorEnvelope};
use crate::form::{FieldValue, Fields, FilePart, FormError, FromFields};
use crate::validate::{FieldPath, Validate};

/// The request's media type: its `Content-Type` essence in lower case.
fn essence(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// Which of an operation's media types (essences, in spec order) a request
/// sent: an exact match first, then a range (`image/*`, `*/*`). A request
/// without `Content-Type` matches only `*/*`.
pub(crate) fn content_type_index(headers: &HeaderMap, accepted: &[&str]) -> Option<usize> {
    let Some(sent) = essence(headers) else {
        return accepted.iter().position(|a| *a == "*/*");
    };
    if let Some(exact) = accepted.iter().position(|a| *a == sent) {
        return Some(exact);
    }
    let kind = sent.split('/').next().unwrap_or_default();
    accepted.iter().position(|a| match a.split_once('/') {
        Some(("*", "*")) => true,
        Some((k, "*")) => k == kind,
        _ => false,
    })
}

/// The `400` for a request whose `Content-Type` is not one the operation
/// takes.
pub(crate) fn wrong_content_type<E: ErrorEnvelope>(listed: &str, headers: &HeaderMap) -> ApiFailure<E> {
    ApiFailure::invalid_input("body", "content_type").with_message(match essence(headers) {
        None => format!("Content-Type must be one of {listed}; the request sent none."),
        Some(other) => format!("Content-Type must be one of {listed}, not {other}."),
    })
}

fn form_failure<E: ErrorEnvelope>(error: FormError) -> ApiFailure<E> {
    ApiFailure::invalid_input(error.field, error.reason).with_message(error.message)
}

/// Reads an `application/x-www-form-urlencoded` body into `T` and checks it
/// against the spec.
pub(crate) fn form_body<T: FromFields + Validate, E: ErrorEnvelope>(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiFailure<E>> {
    if essence(headers).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(wrong_content_type("application/x-www-form-urlencoded", headers));
    }
    let fields = Fields::from_urlencoded(bytes).map_err(form_failure)?;
    let value = T::from_fields(fields).map_err(form_failure)?;
    value.validate(&mut FieldPath::root())?;
    Ok(value)
}

/// Reads a `multipart/form-data` body (already read whole, within the body
/// limit) into `T` and checks it against the spec. A part with a file name
/// or a content type other than `text/plain` is a file.
pub(crate) async fn multipart_body<T: FromFields + Validate, E: ErrorEnvelope>(
    headers: &HeaderMap,
    bytes: Bytes,
) -> Result<T, ApiFailure<E>> {
    let malformed = |error: multer::Error| {
        ApiFailure::invalid_input("body", "malformed")
            .with_message(format!("The multipart body is malformed: {error}."))
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if essence(headers).as_deref() != Some("multipart/form-data") {
        return Err(wrong_content_type("multipart/form-data", headers));
    }
    let boundary = multer::parse_boundary(content_type).map_err(malformed)?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Fields::new();
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|m| m.essence_str().to_owned());
        let data = field.bytes().await.map_err(malformed)?;
        let is_text = file_name.is_none() && content_type.as_deref().is_none_or(|c| c == "text/plain");
        let value = match (is_text, String::from_utf8(data.to_vec())) {
            (true, Ok(text)) => FieldValue::Text(text),
            _ => FieldValue::File(FilePart { data, file_name, content_type }),
        };
        fields.push(name, value);
    }
    let value = T::from_fields(fields).map_err(form_failure)?;
    value.validate(&mut FieldPath::root())?;
    Ok(value)
}

/// Reads a text body (`text/*`, XML): it must be UTF-8.
pub(crate) fn text_body<E: ErrorEnvelope>(bytes: &[u8]) -> Result<String, ApiFailure<E>> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiFailure::invalid_input("body", "invalid_utf8").with_message("The request body is not valid UTF-8 text.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestErrors;
    use http::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    #[derive(Debug, PartialEq)]
    struct Upload {
        purpose: String,
        count: i64,
        file: FilePart,
    }

    impl FromFields for Upload {
        fn from_fields(mut fields: Fields) -> Result<Self, FormError> {
            Ok(Self {
                purpose: fields.required("purpose")?,
                count: fields.required("count")?,
                file: fields.required_file("file")?,
            })
        }
    }

    impl Validate for Upload {
        fn validate(&self, path: &mut FieldPath) -> Result<(), crate::validate::ValidationError> {
            if self.count < 0 {
                path.push_field("count");
                return Err(path.error("must be at least 0"));
            }
            Ok(())
        }
    }

    #[test]
    fn the_media_type_is_matched_exactly_then_by_range() {
        let accepted = ["application/json", "image/*", "*/*"];
        assert_eq!(content_type_index(&headers("application/json; charset=utf-8"), &accepted), Some(0));
        assert_eq!(content_type_index(&headers("IMAGE/png"), &accepted), Some(1));
        assert_eq!(content_type_index(&headers("text/plain"), &accepted), Some(2));
        assert_eq!(content_type_index(&headers("text/plain"), &accepted[..2]), None);
        assert_eq!(content_type_index(&HeaderMap::new(), &accepted[..2]), None);
    }

    #[tokio::test]
    async fn a_multipart_body_gives_text_fields_and_files() {
        let mut fields = Fields::new();
        fields.value("purpose", "batch").unwrap();
        fields.value("count", &3).unwrap();
        fields.file("file", &FilePart::new(&b"\xff\x00"[..]).file_name("a.bin"));
        let body = fields.to_multipart("b0und");
        let upload: Upload =
            multipart_body::<_, TestErrors>(&headers("multipart/form-data; boundary=b0und"), body).await.unwrap();
        assert_eq!(upload.purpose, "batch");
        assert_eq!(upload.count, 3);
        assert_eq!(&upload.file.data[..], b"\xff\x00");
        assert_eq!(upload.file.file_name.as_deref(), Some("a.bin"));
    }

    #[tokio::test]
    async fn a_missing_part_or_a_broken_body_is_a_400_naming_it() {
        let mut fields = Fields::new();
        fields.value("purpose", "batch").unwrap();
        let body = fields.to_multipart("b0und");
        let failure = multipart_body::<Upload, TestErrors>(&headers("multipart/form-data; boundary=b0und"), body)
            .await
            .unwrap_err();
        assert_eq!((failure.field(), failure.reason()), (Some("count"), Some("missing")));
        let failure = multipart_body::<Upload, TestErrors>(
            &headers("multipart/form-data; boundary=b0und"),
            Bytes::from_static(b"--b0und\r\nnot a part"),
        )
        .await
        .unwrap_err();
        assert_eq!(failure.reason(), Some("malformed"));
    }

    #[test]
    fn a_form_is_read_and_checked() {
        #[derive(Debug)]
        struct Login {
            count: i64,
        }
        impl FromFields for Login {
            fn from_fields(mut fields: Fields) -> Result<Self, FormError> {
                Ok(Self { count: fields.required("count")? })
            }
        }
        impl Validate for Login {
            fn validate(&self, path: &mut FieldPath) -> Result<(), crate::validate::ValidationError> {
                if self.count < 0 { Err(path.error("negative")) } else { Ok(()) }
            }
        }
        let form = headers("application/x-www-form-urlencoded");
        assert_eq!(form_body::<Login, TestErrors>(&form, b"count=2").unwrap().count, 2);
        let failure = form_body::<Login, TestErrors>(&form, b"count=two").unwrap_err();
        assert_eq!((failure.field(), failure.reason()), (Some("count"), Some("invalid_value")));
        let failure = form_body::<Login, TestErrors>(&headers("application/json"), b"{}").unwrap_err();
        assert_eq!(failure.reason(), Some("content_type"));
        assert!(form_body::<Login, TestErrors>(&form, b"count=-1").is_err());
    }
}
