//! Checking a running log from the outside, the way an auditor would: only HTTP and
//! `lucent_verifier`. Nothing here trusts the server's own code.

use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use lucent_verifier::checkpoint::{verify_checkpoint, Checkpoint, LogKey};
use lucent_verifier::merkle::{
    node_hash, ConsistencyProof, Hash, InclusionProof, LeafHash, MemoryTree,
};
use lucent_verifier::tiles::{decode_bundle, TilePath, TILE_WIDTH};

/// What a submission got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Sequenced at this index (200, or 409 for an already logged statement).
    Acked(u64),
    /// Refused with this status and code.
    Refused(u16, String),
}

/// An HTTP client for one log.
pub struct LogClient {
    /// Base URL.
    pub url: String,
    client: reqwest::blocking::Client,
    /// The log's key.
    pub log_key: LogKey,
}

impl LogClient {
    /// A client for the log at `url` signed by `log_key`.
    pub fn new(url: &str, log_key: LogKey) -> anyhow::Result<Self> {
        Ok(LogClient {
            url: url.to_owned(),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            log_key,
        })
    }

    /// Submits a statement. Transport errors (a killed server) are errors.
    pub fn submit(&self, statement: &[u8]) -> anyhow::Result<Submitted> {
        let r = self
            .client
            .post(format!("{}/v1/statements", self.url))
            .body(statement.to_vec())
            .send()?;
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json()?;
        match status {
            200 | 409 if v["index"].is_u64() => {
                let index = v["index"].as_u64().context("index")?;
                let leaf = LeafHash::of_entry(statement).to_string();
                ensure!(v["leaf_hash"] == leaf.as_str(), "wrong leaf hash in {v}");
                Ok(Submitted::Acked(index))
            }
            _ => Ok(Submitted::Refused(
                status,
                v["error"].as_str().unwrap_or("").to_owned(),
            )),
        }
    }

    fn get(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let r = self.client.get(format!("{}/{path}", self.url)).send()?;
        ensure!(r.status().is_success(), "GET {path}: {}", r.status());
        Ok(r.bytes()?.to_vec())
    }

    fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.get(path)?)?)
    }

    /// The `/healthz` document.
    pub fn health(&self) -> anyhow::Result<serde_json::Value> {
        self.get_json("healthz")
    }

    /// The latest checkpoint, signature and origin verified.
    pub fn checkpoint(&self) -> anyhow::Result<Checkpoint> {
        let note = self.get("checkpoint")?;
        Ok(verify_checkpoint(&note, &self.log_key)?.checkpoint)
    }

    /// Downloads every entry of the tree `cp` describes from the entry tiles, checks every
    /// level-0 and level-1 hash tile against hashes computed here, and the root against the
    /// checkpoint. Returns the entries.
    pub fn verify_all(&self, cp: &Checkpoint) -> anyhow::Result<Vec<Vec<u8>>> {
        let size = cp.size.0;
        let mut entries = Vec::with_capacity(size as usize);
        let mut tree = MemoryTree::new();
        let mut t = 0;
        while let Some(bundle_tile) = TilePath::in_tree(None, t, size) {
            let width = bundle_tile.width();
            let bundle = self.get(&bundle_tile.path())?;
            let mut leaves = Vec::new();
            for e in
                decode_bundle(&bundle, width as usize).with_context(|| format!("entry tile {t}"))?
            {
                let leaf = LeafHash::of_entry(&e);
                tree.push(leaf);
                leaves.push(leaf);
                entries.push(e);
            }
            let hashes = self.get(&TilePath::hashes(0, t, width)?.path())?;
            ensure!(hashes.len() as u64 == width * 32, "hash tile {t} length");
            for (i, leaf) in leaves.iter().enumerate() {
                ensure!(
                    hashes[i * 32..i * 32 + 32] == leaf.0 .0,
                    "hash tile 0/{t} entry {i}"
                );
            }
            t += 1;
        }
        ensure!(
            tree.root() == cp.root,
            "root of the downloaded entries differs from the checkpoint"
        );
        // Level-1 tiles: each hash is the root of 256 leaves.
        let mut t1 = 0;
        while let Some(tile) = TilePath::in_tree(Some(1), t1, size) {
            let width = tile.width();
            let data = self.get(&tile.path())?;
            ensure!(data.len() as u64 == width * 32, "hash tile 1/{t1} length");
            for k in 0..width {
                let node = t1 * TILE_WIDTH + k;
                let start = (node * TILE_WIDTH) as usize;
                let mut level: Vec<Hash> = entries[start..start + TILE_WIDTH as usize]
                    .iter()
                    .map(|e| LeafHash::of_entry(e).0)
                    .collect();
                while level.len() > 1 {
                    level = level.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
                }
                let k = k as usize;
                ensure!(
                    data[k * 32..k * 32 + 32] == level[0].0,
                    "hash tile 1/{t1} entry {k}"
                );
            }
            t1 += 1;
        }
        Ok(entries)
    }

    /// Checks the JSON inclusion proof of `index` under `cp`.
    pub fn verify_inclusion(
        &self,
        index: u64,
        entry: &[u8],
        cp: &Checkpoint,
    ) -> anyhow::Result<()> {
        let v = self.get_json(&format!(
            "v1/proof/inclusion?index={index}&size={}",
            cp.size.0
        ))?;
        let hashes = decode_hashes(&v["hashes"])?;
        let refs: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
        InclusionProof::from_raw(index, cp.size.0, &refs)?
            .verify(&LeafHash::of_entry(entry), &cp.root)
            .with_context(|| format!("inclusion of {index} in {}", cp.size.0))?;
        Ok(())
    }

    /// Checks the JSON consistency proof between two checkpoints.
    pub fn verify_consistency(&self, old: &Checkpoint, new: &Checkpoint) -> anyhow::Result<()> {
        if old.size.0 == 0 {
            return Ok(());
        }
        if old.size.0 > new.size.0 {
            bail!("checkpoint went back from {} to {}", old.size.0, new.size.0);
        }
        let v = self.get_json(&format!(
            "v1/proof/consistency?old={}&new={}",
            old.size.0, new.size.0
        ))?;
        let hashes = decode_hashes(&v["hashes"])?;
        let refs: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
        ConsistencyProof::from_raw(old.size.0, new.size.0, &refs)?
            .verify(&old.root, &new.root)
            .with_context(|| format!("consistency {} -> {}", old.size.0, new.size.0))?;
        Ok(())
    }
}

fn decode_hashes(v: &serde_json::Value) -> anyhow::Result<Vec<Vec<u8>>> {
    v.as_array()
        .context("hashes is not an array")?
        .iter()
        .map(|h| Ok(BASE64.decode(h.as_str().context("hash is not a string")?)?))
        .collect()
}
