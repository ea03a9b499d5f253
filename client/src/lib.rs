//! The client an app embeds, and the store every party keeps its last seen checkpoint in.
//!
//! - [`Client`] (feature `http`, on by default): fetch a CVM's attestation bundle, verify it
//!   with the app's trust settings and its last seen checkpoint (every check is
//!   `lucent_verifier`'s), seal a request only to a verified CVM's attested key, and open the
//!   answer. See [`http`] for the steps, in order.
//! - [`log`] (feature `http`): the log's read API over HTTP, typed and size-limited, for the
//!   client and the services that read the log;
//! - [`follow`] (feature `http`): a party's own verified view of every statement in the log
//!   (the key broker and the CVM runtime follow the log instead of asking it);
//! - [`store`]: [`LastSeenStore`] and its one implementation, [`AtomicFile`] (write, fsync,
//!   rename, fsync the directory), used by the client, the key broker and the auditor.
//!
//! What it does not do: decide whom to trust. The log key, witness keys and quorum, operator
//! keys and vendor roots come in through `lucent_verifier::trust::TrustSettings`; this crate
//! only moves bytes between the network, the disk and the verifier.
//!
//! ```no_run
//! # async fn demo(config: lucent_client::ClientConfig) -> Result<(), lucent_client::ClientError> {
//! use lucent_client::{Client, Task};
//! let client = Client::new(config)?;
//! let cvm = client.attest("https://cvm.example.com").await?;
//! let answer = client.ask(&cvm, Task::Summarize, "Ann: lunch at 1? Bob: yes", None).await?;
//! println!("{}", answer.output);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "http")]
pub mod follow;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub mod log;
pub mod store;

#[cfg(feature = "http")]
pub use follow::{FollowError, FollowPolicy, Follower, LogView};
#[cfg(feature = "http")]
pub use http::{
    Answer, AttestTimings, Client, ClientConfig, ClientError, VerifiedCvm, VerifiedGateway,
    VerifiedIssuer,
};
#[cfg(feature = "http")]
pub use log::{FetchError, LogClient};
pub use lucent_verifier::cvm_api::Task;
pub use store::{AtomicFile, LastSeenStore, StoreError};
