//! Checking answers against our OpenAPI document: the schema for each route, status and media
//! type, and a client that checks every answer it gets (used by tests/api/openapi.rs).

use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

/// The document, able to check one answer against what it promises.
pub struct Contract {
    doc: Value,
}

impl Contract {
    pub fn new(doc: Value) -> Self {
        Self { doc }
    }

    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(pointer) => self
                .doc
                .pointer(pointer.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {pointer}")),
            None => value,
        }
    }

    /// Panics unless `template` + `method` documents `status` with `content_type`, and `body`
    /// (for JSON) matches that schema.
    pub fn check(
        &self,
        method: &Method,
        template: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) {
        let op = &self.doc["paths"][template][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        let answer = op["responses"]
            .get(status.to_string())
            .map(|r| self.resolve(r))
            .unwrap_or_else(|| panic!("{method} {template} does not document {status}"));
        let media = content_type.split(';').next().unwrap().trim();
        let schema = answer["content"]
            .get(media)
            .unwrap_or_else(|| panic!("{method} {template} {status} does not document {media}"))
            ["schema"]
            .clone();
        if !media.ends_with("json") {
            return;
        }
        let mut root = schema;
        root.as_object_mut()
            .expect("a schema object")
            .insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{method} {template} {status}: bad schema: {e}"));
        let instance: Value = serde_json::from_str(body).expect("a JSON body");
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status} does not match the document: {errors:?}\n{body}"
        );
    }
}

/// A client that checks every answer against the contract.
pub struct Checked<'a> {
    pub app: &'a TestApp,
    pub contract: Contract,
}

impl Checked<'_> {
    pub async fn call(
        &self,
        method: Method,
        template: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.app.client.request(method.clone(), self.app.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(idempotency_key) = idempotency_key {
            request = request.header("Idempotency-Key", idempotency_key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = response.text().await.unwrap();
        self.contract
            .check(&method, template, status, &content_type, &text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
