//! Prometheus metrics, served at `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The server's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Submissions by outcome (`accepted`, `duplicate`, or an error code).
    pub submissions: IntCounterVec,
    /// Entries appended to the tree.
    pub entries_integrated: IntCounter,
    /// Batches committed.
    pub batches: IntCounter,
    /// Entries per committed batch.
    pub batch_size: Histogram,
    /// Seconds to commit one batch.
    pub batch_seconds: Histogram,
    /// Current tree size (integrated).
    pub tree_size: IntGauge,
    /// Size of the latest published checkpoint.
    pub published_size: IntGauge,
    /// 1 while this process is the sequencer.
    pub is_sequencer: IntGauge,
    /// Witness requests by witness and outcome.
    pub witness_requests: IntCounterVec,
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("lucent_log".into()), None)?;
        let submissions = IntCounterVec::new(
            Opts::new("submissions_total", "Statement submissions by outcome"),
            &["outcome"],
        )?;
        let entries_integrated =
            IntCounter::new("entries_integrated_total", "Entries appended to the tree")?;
        let batches = IntCounter::new("batches_total", "Batches committed")?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("batch_entries", "New entries per committed batch")
                .buckets(vec![1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0]),
        )?;
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new("batch_commit_seconds", "Time to plan and commit a batch")
                .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14)?),
        )?;
        let tree_size = IntGauge::new("tree_size", "Integrated tree size")?;
        let published_size = IntGauge::new("published_size", "Latest published checkpoint size")?;
        let is_sequencer = IntGauge::new("is_sequencer", "1 while this process sequences")?;
        let witness_requests = IntCounterVec::new(
            Opts::new(
                "witness_requests_total",
                "add-checkpoint requests by outcome",
            ),
            &["witness", "outcome"],
        )?;
        registry.register(Box::new(submissions.clone()))?;
        registry.register(Box::new(entries_integrated.clone()))?;
        registry.register(Box::new(batches.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        registry.register(Box::new(tree_size.clone()))?;
        registry.register(Box::new(published_size.clone()))?;
        registry.register(Box::new(is_sequencer.clone()))?;
        registry.register(Box::new(witness_requests.clone()))?;
        Ok(Metrics {
            registry,
            submissions,
            entries_integrated,
            batches,
            batch_size,
            batch_seconds,
            tree_size,
            published_size,
            is_sequencer,
            witness_requests,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
