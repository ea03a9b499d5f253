//! A plain file server for tests: serves a map of paths (with their query, without the
//! leading `/`) over a real socket, as a static file server or a CDN serving a log's
//! checkpoint, tiles and proofs would. Anything else is a 404.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};

/// The files, shared with the server.
pub type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// Serves `files` on a free loopback port; returns the base URL.
pub async fn serve_files(files: Files) -> String {
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let files = files.clone();
        async move {
            let key = uri
                .path_and_query()
                .map(|p| p.as_str().trim_start_matches('/').to_owned())
                .unwrap_or_default();
            match files.lock().unwrap().get(&key) {
                Some(data) => (StatusCode::OK, data.clone()),
                None => (StatusCode::NOT_FOUND, Vec::new()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
