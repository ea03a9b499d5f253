//! `lucent-issuer` over a real socket, on SQLite and on PostgreSQL: batches issued under the
//! daily limit verify with the client's own checks (RFC 9578 finalize against the public key);
//! the limit holds across batches and concurrent requests; unauthenticated, malformed,
//! oversized, wrong-key and wrong-type requests each get their own error and change no count.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use lucent_issuer::{Accounts, Issuer};
use lucent_service::http::HttpLimits;
use lucent_verifier::privacy_pass::{
    decode_batch, encode_batch, request_token, IssuerInfo, IssuerKey, IssuerPublicKey,
    PendingToken, TokenChallenge, TokenResponse, BATCH_REQUEST_MEDIA_TYPE,
    BATCH_RESPONSE_MEDIA_TYPE, TOKEN_RESPONSE_LEN,
};
use rand_core::OsRng;

struct Served {
    url: String,
    issuer: Arc<Issuer>,
    http: reqwest::Client,
}

async fn serve(database_url: &str) -> Served {
    let key = IssuerKey::derive(&[7u8; 48]).unwrap();
    let accounts = Accounts::open(database_url).await.unwrap();
    let issuer = Arc::new(Issuer::new("issuer.test".into(), key, accounts));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let limits = HttpLimits {
        dangerous_no_rate_limit: true,
        ..HttpLimits::default()
    };
    tokio::spawn({
        let issuer = issuer.clone();
        async move {
            lucent_issuer::run(listener, issuer, &limits, std::future::pending())
                .await
                .unwrap()
        }
    });
    Served {
        url,
        issuer,
        http: reqwest::Client::new(),
    }
}

impl Served {
    async fn info(&self) -> IssuerInfo {
        self.http
            .get(format!("{}/v1/issuer", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `n` blinded requests under the served key.
    async fn requests(&self, n: usize) -> (Vec<u8>, Vec<PendingToken>) {
        let info = self.info().await;
        let key = IssuerPublicKey::parse(&hex::decode(&info.public_key).unwrap()).unwrap();
        let challenge = TokenChallenge::for_issuer(&info.name);
        let (requests, pending): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| {
                let (r, p) = request_token(&key, &challenge, &mut OsRng).unwrap();
                (r.encode(), p)
            })
            .unzip();
        (encode_batch(&requests).unwrap(), pending)
    }

    async fn post(&self, credential: Option<&str>, media: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let mut req = self
            .http
            .post(format!("{}/v1/token-requests", self.url))
            .header("content-type", media)
            .body(body);
        if let Some(c) = credential {
            req = req.bearer_auth(c);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        if status == 200 {
            assert_eq!(
                resp.headers()["content-type"].to_str().unwrap(),
                BATCH_RESPONSE_MEDIA_TYPE
            );
        }
        (status, resp.bytes().await.unwrap().to_vec())
    }

    async fn code(&self, credential: Option<&str>, media: &str, body: Vec<u8>) -> (u16, String) {
        let (status, body) = self.post(credential, media, body).await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, v["error"].as_str().unwrap().to_owned())
    }

    async fn issued_today(&self, account: &str) -> u64 {
        let day = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400;
        self.issuer.accounts().issued(account, day).await.unwrap()
    }
}

async fn issuance(database_url: &str) {
    let s = serve(database_url).await;
    let credential = s.issuer.accounts().add("ann", 10).await.unwrap();
    assert!(
        s.issuer.accounts().add("ann", 10).await.is_err(),
        "added twice"
    );

    // A batch of 4: every token finalizes (the proof checks against the public key) and
    // verifies under the issuer's key.
    let (body, pending) = s.requests(4).await;
    let (status, answer) = s
        .post(Some(&credential), BATCH_REQUEST_MEDIA_TYPE, body)
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let responses: Vec<_> = decode_batch::<TOKEN_RESPONSE_LEN>("answer", &answer)
        .unwrap()
        .collect();
    assert_eq!(responses.len(), 4);
    let key = IssuerKey::derive(&[7u8; 48]).unwrap();
    for (p, r) in pending.into_iter().zip(responses) {
        let token = p.finalize(&TokenResponse::decode(r).unwrap()).unwrap();
        key.verify(&token).unwrap();
    }
    assert_eq!(s.issued_today("ann").await, 4);

    // Bad input: each its own error, and the count stays at 4.
    let (good, _) = s.requests(2).await;
    // The credential with its secret's last digit changed (to another digit, whatever it was).
    let wrong_secret = {
        let (head, last) = credential.split_at(credential.len() - 1);
        format!("{head}{}", if last == "0" { "1" } else { "0" })
    };
    /// Credential, content type, body, and the answer expected.
    type Case<'a> = (Option<String>, &'a str, Vec<u8>, (u16, &'a str));
    let cases: Vec<Case> = vec![
        (
            None,
            BATCH_REQUEST_MEDIA_TYPE,
            good.clone(),
            (401, "unauthenticated"),
        ),
        (
            Some(wrong_secret.clone()),
            BATCH_REQUEST_MEDIA_TYPE,
            good.clone(),
            (401, "unauthenticated"),
        ),
        (
            Some("nobody.0000".into()),
            BATCH_REQUEST_MEDIA_TYPE,
            good.clone(),
            (401, "unauthenticated"),
        ),
        (
            Some(credential.clone()),
            "application/octet-stream",
            good.clone(),
            (415, "wrong_media_type"),
        ),
        (
            Some(credential.clone()),
            BATCH_REQUEST_MEDIA_TYPE,
            good[..good.len() - 1].to_vec(),
            (400, "bad_request"),
        ),
        (
            Some(credential.clone()),
            BATCH_REQUEST_MEDIA_TYPE,
            vec![0, 0],
            (400, "bad_request"),
        ),
        (
            Some(credential.clone()),
            BATCH_REQUEST_MEDIA_TYPE,
            vec![0; 2 + 101 * 52],
            (413, "too_large"),
        ),
    ];
    for (credential, media, body, want) in cases {
        let got = s.code(credential.as_deref(), media, body).await;
        assert_eq!((got.0, got.1.as_str()), want);
    }
    // A request for another key (truncated key id changed), another token type, and a
    // blinded element that is no point.
    let mut wrong_key = good.clone();
    wrong_key[2 + 2] ^= 0xff;
    assert_eq!(
        s.code(Some(&credential), BATCH_REQUEST_MEDIA_TYPE, wrong_key)
            .await,
        (422, "wrong_key".into())
    );
    let mut wrong_type = good.clone();
    wrong_type[2 + 1] = 2;
    assert_eq!(
        s.code(Some(&credential), BATCH_REQUEST_MEDIA_TYPE, wrong_type)
            .await
            .0,
        400
    );
    let mut not_a_point = good.clone();
    not_a_point[2 + 3] = 0x07;
    assert_eq!(
        s.code(Some(&credential), BATCH_REQUEST_MEDIA_TYPE, not_a_point)
            .await,
        (400, "bad_request".into())
    );
    assert_eq!(s.issued_today("ann").await, 4, "a refused batch counted");

    // The limit: 6 more fit, then nothing; a batch that would cross it is refused whole.
    let (seven, _) = s.requests(7).await;
    assert_eq!(
        s.code(Some(&credential), BATCH_REQUEST_MEDIA_TYPE, seven)
            .await,
        (429, "daily_limit".into())
    );
    // Concurrent batches of 2 and 3 (and 1 more): at most the 6 left are issued.
    let mut handles = Vec::new();
    for n in [2usize, 3, 1, 2] {
        let (body, _) = s.requests(n).await;
        let (url, http, credential) = (s.url.clone(), s.http.clone(), credential.clone());
        handles.push(tokio::spawn(async move {
            let status = http
                .post(format!("{url}/v1/token-requests"))
                .bearer_auth(credential)
                .header("content-type", BATCH_REQUEST_MEDIA_TYPE)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            (n as u64, status)
        }));
    }
    let mut issued = 0;
    for h in handles {
        let (n, status) = h.await.unwrap();
        assert!(status == 200 || status == 429, "{status}");
        if status == 200 {
            issued += n;
        }
    }
    assert!(issued <= 6, "issued {issued} beyond the limit");
    assert_eq!(s.issued_today("ann").await, 4 + issued);
}

#[tokio::test]
async fn issuance_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    issuance(&format!(
        "sqlite:{}",
        dir.path().join("issuer.db").display()
    ))
    .await;
}

#[tokio::test]
async fn issuance_on_postgres() {
    let Some(url) = lucent_service::db::test_postgres_url().await else {
        return;
    };
    issuance(&url).await;
}

#[test]
fn configuration_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issuer.toml");
    let base = "listen = \"127.0.0.1:0\"\nkey_file = \"k\"\ndatabase_url = \"sqlite::memory:\"\n";
    for (text, want) in [
        ("name = \"issuer example\"\n", "want 1 to 64"),
        (&*format!("name = \"{}\"\n", "a".repeat(65)), "want 1 to 64"),
        (
            "name = \"i\"\ndefault_daily_limit = 0\n",
            "must be positive",
        ),
        ("name = \"i\"\nlog_requests = true\n", "unknown field"),
    ] {
        std::fs::write(&path, format!("{base}{text}")).unwrap();
        let e = lucent_issuer::IssuerConfig::read(&path)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
    std::fs::write(&path, format!("{base}name = \"issuer.example\"\n")).unwrap();
    assert_eq!(
        lucent_issuer::IssuerConfig::read(&path)
            .unwrap()
            .default_daily_limit,
        100
    );
}

#[tokio::test]
async fn account_names_are_statement_tokens() {
    let accounts = Accounts::open("sqlite::memory:").await.unwrap();
    for bad in ["", "has space", &"a".repeat(65)] {
        assert!(accounts.add(bad, 5).await.is_err(), "{bad:?} accepted");
    }
    assert!(
        accounts.add("ok.name-1", 0).await.is_err(),
        "a zero limit accepted"
    );
    let credential = accounts.add("ok.name-1", 5).await.unwrap();
    assert_eq!(
        accounts.authenticate(&credential).await.unwrap(),
        ("ok.name-1".to_owned(), 5)
    );
}
