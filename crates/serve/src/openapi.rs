//! The OpenAPI 3 description of `dropkey serve`, served at `GET /openapi.json`. Small by
//! design: the routes, their parameters, the bearer scheme and the answer shapes.

use serde_json::{json, Value};

/// The document. Built once at start.
pub fn document() -> Value {
    let error = json!({"$ref": "#/components/responses/Error"});
    let errors = |codes: &[&str]| -> Value {
        codes
            .iter()
            .map(|c| ((*c).to_owned(), error.clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let query = |name: &str, description: &str, required: bool| json!({"name": name, "in": "query", "required": required, "description": description, "schema": {"type": "string"}});
    let with = |mut ok: serde_json::Map<String, Value>, codes: &[&str]| -> Value {
        if let Value::Object(errs) = errors(codes) {
            ok.extend(errs);
        }
        Value::Object(ok)
    };
    let ok = |schema: Value| -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        map.insert(
            "200".into(),
            json!({"description": "OK", "content": {"application/json": {"schema": schema}}}),
        );
        map
    };
    let envelope = |data: Value| {
        json!({"type": "object", "required": ["status", "success", "message", "data"], "properties": {
            "status": {"type": "integer"}, "success": {"type": "boolean"}, "message": {"type": "string"}, "data": data}})
    };
    let strings = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "dropkey serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One-time upload credentials for ImageKit and Cloudinary, signed with keys that never leave the server. Every error is {status, success: false, message}. 429 (with Retry-After) answers a token over its rate limit, and a client IP over its budget of requests without a valid bearer token; 408 a request body that did not arrive within the server's header_timeout."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/media/get-upload-token": {"get": {
                "summary": "ImageKit Upload API V2 token (the upload-token guide's endpoint, ImageKit's Upload API V2 guide's JWT)",
                "parameters": [
                    query("fileName", "the file's name; signed, and the upload must send it", true),
                    query("profile", "which profile, when the server serves several", false),
                    query("expire", "token lifetime in seconds (at most the token's max_expire, 3600)", false),
                    query("tags", "any parameter the token's allowed_params lists, e.g. tags, customMetadata", false),
                    query("folder", "a folder inside the token's folder prefix", false),
                ],
                "responses": with(ok(envelope(json!({"type": "object", "properties": {
                    "token": {"type": "string"}, "expire": {"type": "integer"},
                    "publicKey": {"type": "string"}, "urlEndpoint": {"type": "string"}, "uploadUrl": {"type": "string"},
                    "fields": {"description": "every form field the upload must send besides file and token", "allOf": [strings.clone()]}}}))),
                    &["401", "403", "404", "414", "422", "429"]),
            }},
            "/api/media/upload-token": {"post": {
                "summary": "Sign exactly the client's upload payload (ImageKit's Upload API V2 guide's backend endpoint)",
                "parameters": [query("profile", "which profile, when several share the public key", false)],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["uploadPayload", "expire", "publicKey"], "additionalProperties": false,
                    "properties": {"uploadPayload": strings.clone(), "expire": {"type": "integer", "minimum": 1, "maximum": 3600}, "publicKey": {"type": "string"}}}}}},
                "responses": with(ok(json!({"type": "object", "properties": {"token": {"type": "string"}}})),
                    &["401", "403", "404", "408", "413", "422", "429"]),
            }},
            "/api/media/auth": {"get": {
                "summary": "ImageKit Upload API V1 token, expire and signature (ImageKit's V1 client-side upload guide); auth = \"v1\" profiles only, and only for bearer tokens whose policy says folder_prefix = \"/\" (a V1 signature binds no folder)",
                "parameters": [query("profile", "which profile", false), query("token", "one-time token (default: a UUID v4)", false), query("expire", "Unix time less than an hour ahead", false)],
                "responses": with(ok(json!({"type": "object", "properties": {"token": {"type": "string"}, "expire": {"type": "integer"}, "signature": {"type": "string"}}})),
                    &["401", "403", "404", "422", "429"]),
            }},
            "/upload-signature": {"get": {
                "summary": "Cloudinary signed upload parameters (the Cloudinary signed-upload demo); the server decides folder, tags and type",
                "parameters": [query("profile", "which profile", false), query("public_id", "any parameter the token allows", false)],
                "responses": with(ok(envelope(json!({"type": "object", "properties": {
                    "payload": strings.clone(), "signature": {"type": "string"}, "cloudname": {"type": "string"}, "apiKey": {"type": "string"},
                    "uploadUrl": {"type": "string"}, "fields": strings.clone(), "expire": {"type": "integer"}, "expiresIn": {"type": "string"}}}))),
                    &["401", "403", "404", "422", "429"]),
            }},
            "/download-url": {"get": {
                "summary": "A one-minute Cloudinary private download link (the Cloudinary signed-upload demo)",
                "parameters": [query("public_id", "the asset", true), query("format", "file extension", false), query("resource_type", "image, video or raw", false), query("profile", "which profile", false)],
                "responses": with(ok(envelope(json!({"type": "object", "properties": {"downloadUrl": {"type": "string"}, "expire": {"type": "integer"}, "expiresIn": {"type": "string"}}}))),
                    &["401", "403", "404", "422", "429"]),
            }},
            "/delete-files": {"delete": {
                "summary": "Delete Cloudinary assets by delivery URL (the Cloudinary signed-upload demo); needs may_delete",
                "parameters": [query("profile", "which profile", false)],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["urls"], "additionalProperties": false, "properties": {"urls": {
                        "type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "object", "required": ["type", "url"], "additionalProperties": false,
                        "properties": {"type": {"type": "string", "enum": ["image", "video", "raw"]}, "url": {"type": "string", "format": "uri"}}}}}}}}},
                "responses": with(ok(envelope(json!({"type": "object"}))), &["401", "403", "404", "408", "413", "422", "429", "502"]),
            }},
            "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "OK"}}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OK"}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "a token from `dropkey serve token add NAME`"}},
            "responses": {"Error": {"description": "{status, success: false, message}", "content": {"application/json": {"schema": {
                "type": "object", "required": ["status", "success", "message"],
                "properties": {"status": {"type": "integer"}, "success": {"type": "boolean", "enum": [false]}, "message": {"type": "string"}}}}}}},
        },
    })
}
