//! The bodies fixture (`tests/fixtures/bodies.yaml`) end to end: its
//! generated server, in process on loopback, driven by its generated client.
//! A multipart upload arrives with its files, names and content types; bytes
//! and text go out and come back as they were; one body sent as JSON, as a
//! form and as text reaches the same operation; free-form query objects
//! keep their keys; and what does not fit is a 400 in the envelope.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bodies_client::types::{Author, Note, UploadRequest, UploadRequestPurpose};
use bodies_client::{Client, FilePart};
use bodies_server::{ApiFailure, BodiesApi, RequestContext, ServerConfig};
use bytes::Bytes;

/// Keeps uploads in memory.
#[derive(Default)]
struct Store {
    files: Mutex<HashMap<String, Bytes>>,
}

impl BodiesApi for Store {
    async fn create_upload(
        &self,
        _ctx: RequestContext,
        _params: bodies_server::CreateUploadParams,
        body: bodies_server::types::UploadRequest,
    ) -> Result<bodies_server::CreateUploadResponse, ApiFailure> {
        let mut files = self.files.lock().unwrap();
        let id = format!("up_{}", files.len() + 1);
        files.insert(id.clone(), body.file.data.clone());
        Ok(bodies_server::CreateUploadResponse::Created(bodies_server::types::Upload {
            id,
            purpose: body.purpose.as_str().to_owned(),
            bytes: body.file.data.len() as i64,
            file_name: body.file.file_name.clone(),
            content_type: Some(body.file.content_type.clone()),
            extra_files: body.extra.as_ref().map_or(0, Vec::len) as i64,
            tags: body.tags.unwrap_or_default(),
        }))
    }

    async fn get_upload_content(
        &self,
        _ctx: RequestContext,
        params: bodies_server::GetUploadContentParams,
    ) -> Result<bodies_server::GetUploadContentResponse, ApiFailure> {
        match self.files.lock().unwrap().get(&params.upload_id) {
            Some(data) => Ok(bodies_server::GetUploadContentResponse::Ok(data.clone())),
            None => Err(ApiFailure::not_found("No such upload.")),
        }
    }

    async fn replace_upload_content(
        &self,
        _ctx: RequestContext,
        params: bodies_server::ReplaceUploadContentParams,
        body: Bytes,
    ) -> Result<bodies_server::ReplaceUploadContentResponse, ApiFailure> {
        self.files.lock().unwrap().insert(params.upload_id, body);
        Ok(bodies_server::ReplaceUploadContentResponse::NoContent)
    }

    async fn create_note(
        &self,
        _ctx: RequestContext,
        _params: bodies_server::CreateNoteParams,
        body: bodies_server::CreateNoteBody,
    ) -> Result<bodies_server::CreateNoteResponse, ApiFailure> {
        use bodies_server::CreateNoteBody as B;
        let text = match body {
            B::Json(note) => format!("json: {} {:?} {:?} {:?}", note.title, note.pinned, note.priority, note.author),
            B::Form(note) => format!("form: {} {:?} {:?} {:?}", note.title, note.pinned, note.priority, note.author),
            B::Text(text) => format!("text: {text}"),
        };
        Ok(bodies_server::CreateNoteResponse::Ok(text))
    }

    async fn search(
        &self,
        _ctx: RequestContext,
        params: bodies_server::SearchParams,
    ) -> Result<bodies_server::SearchResponse, ApiFailure> {
        let mut out = BTreeMap::new();
        for (key, value) in params.filter.unwrap_or_default() {
            out.insert(format!("filter.{key}"), value);
        }
        for (key, value) in params.labels.unwrap_or_default() {
            out.insert(format!("labels.{key}"), value);
        }
        if let Some(limit) = params.limit {
            out.insert("limit".into(), limit.to_string());
        }
        Ok(bodies_server::SearchResponse::Ok(out))
    }
}

async fn serve() -> String {
    let app = bodies_server::router(Store::default(), ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn client(base: &str) -> Client {
    Client::builder().base_url(base).max_retries(0).build().unwrap()
}

fn note() -> Note {
    Note {
        title: "Groceries & more".into(),
        pinned: Some(true),
        priority: Some(2),
        author: Some(Author { name: "Ann".into() }),
    }
}

#[tokio::test]
async fn a_multipart_upload_arrives_with_its_files_and_their_names() {
    let base = serve().await;
    let client = client(&base);
    let binary: Vec<u8> = (0..=255u8).chain(b"\r\n--not-a-boundary\r\n".iter().copied()).collect();
    let request = UploadRequest {
        file: FilePart::new(binary.clone()).file_name("data \"1\".bin").content_type("application/x-data"),
        extra: Some(vec![FilePart::new(&b"a"[..]), FilePart::new(&b"b"[..])]),
        purpose: UploadRequestPurpose::FineTune,
        tags: Some(vec!["x".into(), "y z".into()]),
        size_hint: Some(10),
    };
    let upload = client.create_upload(request).send().await.unwrap().into_body();
    assert_eq!(upload.purpose, "fine-tune");
    assert_eq!(upload.bytes, binary.len() as i64);
    // Quotes in a file name travel percent-encoded, as browsers send them.
    assert_eq!(upload.file_name.as_deref(), Some("data %221%22.bin"));
    assert_eq!(upload.content_type, Some(Some("application/x-data".into())));
    assert_eq!(upload.extra_files, 2);
    assert_eq!(upload.tags, vec!["x", "y z"]);

    // The bytes come back as they went, and can be replaced by raw bytes.
    let content = client.get_upload_content(&upload.id).send().await.unwrap().into_body();
    assert_eq!(&content[..], &binary[..]);
    client.replace_upload_content(&upload.id, Bytes::from_static(b"\x00new")).send().await.unwrap();
    let content = client.get_upload_content(&upload.id).send().await.unwrap().into_body();
    assert_eq!(&content[..], b"\x00new");
}

#[tokio::test]
async fn one_body_goes_as_json_as_a_form_or_as_text() {
    use bodies_client::operations::CreateNoteBody;
    let base = serve().await;
    let client = client(&base);
    let expected = "Groceries & more Some(true) Some(2) Some(Author { name: \"Ann\" })";
    // A plain value goes as the first media type, JSON.
    let text = client.create_note(note()).send().await.unwrap().into_body();
    assert_eq!(text, format!("json: {expected}"));
    let text = client.create_note(CreateNoteBody::Form(note())).send().await.unwrap().into_body();
    assert_eq!(text, format!("form: {expected}"));
    let text = client.create_note(CreateNoteBody::Text("just text".into())).send().await.unwrap().into_body();
    assert_eq!(text, "text: just text");
}

#[tokio::test]
async fn bodies_that_do_not_fit_are_400s_naming_the_field() {
    let base = serve().await;
    let http = reqwest::Client::new();
    let post = |content_type: &'static str, body: &'static str| {
        http.post(format!("{base}/notes")).header("content-type", content_type).body(body).send()
    };
    let error = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 400);
        // The fixture names no error envelope: failures are RFC 9457
        // problem details.
        let body: serde_json::Value = response.json().await.unwrap();
        (body["field"].clone(), body["reason"].clone())
    };
    let response = post("application/x-www-form-urlencoded", "pinned=true").await.unwrap();
    assert_eq!(error(response).await, ("title".into(), "missing".into()));
    let response = post("application/x-www-form-urlencoded", "title=a&priority=high").await.unwrap();
    assert_eq!(error(response).await, ("priority".into(), "invalid_value".into()));
    // An integer enum and unique items are checked.
    let response = post("application/json", r#"{"title":"a","priority":5}"#).await.unwrap();
    assert_eq!(error(response).await.0, "priority");
    // The spec's constraints hold for a form as for JSON.
    let response = post("application/x-www-form-urlencoded", "title=").await.unwrap();
    assert_eq!(error(response).await.0, "title");
    let response = post("application/pdf", "%PDF").await.unwrap();
    assert_eq!(error(response).await, ("body".into(), "content_type".into()));
    let response = http
        .post(format!("{base}/uploads"))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--x--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(error(response).await, ("file".into(), "missing".into()));
}

#[tokio::test]
async fn the_client_checks_unique_items_before_sending() {
    let base = serve().await;
    let request = UploadRequest {
        file: FilePart::new(&b"x"[..]),
        extra: None,
        purpose: UploadRequestPurpose::Batch,
        tags: Some(vec!["a".into(), "a".into()]),
        size_hint: None,
    };
    let error = client(&base).create_upload(request).send().await.unwrap_err();
    assert!(matches!(error, bodies_client::Error::InvalidRequest(_)), "{error:?}");
    assert!(error.to_string().contains("tags"), "{error}");
}

#[tokio::test]
async fn free_form_query_objects_keep_their_keys() {
    let base = serve().await;
    let client = client(&base);
    let filter = BTreeMap::from([("team".to_owned(), "core".to_owned()), ("env".to_owned(), "prod & co".to_owned())]);
    let labels = BTreeMap::from([("tier".to_owned(), "gold".to_owned())]);
    let found = client.search().limit(5).filter(filter).labels(labels).send().await.unwrap().into_body();
    let expected: BTreeMap<String, String> =
        [("filter.env", "prod & co"), ("filter.team", "core"), ("labels.tier", "gold"), ("limit", "5")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
    assert_eq!(found, expected);
}
