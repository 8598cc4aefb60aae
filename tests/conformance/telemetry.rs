//! Metrics reach whatever recorder the application installed. Each test runs on both engines.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use jobsmith::JobState;
use jobsmith::prelude::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

use super::harness::{LONG, wait_for};
use super::jobs::AlwaysFails;
use super::probe::Probe;
use super::runtime::record;

/// One recorder for the whole test binary (a process has one); tests tell their metrics apart by
/// queue name.
fn snapshotter() -> &'static Snapshotter {
    static SNAP: OnceLock<Snapshotter> = OnceLock::new();
    SNAP.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        recorder.install().expect("no other recorder in this test binary");
        snap
    })
}

/// Everything recorded so far. A snapshot drains the recorder, and tests run concurrently, so
/// every read merges the new snapshot into this running total first.
#[derive(Default)]
struct Seen {
    counters: u64,
    gauges: Vec<f64>,
    histogram: Vec<f64>,
}

fn seen(kind: MetricKind, name: &str, labels: &[(&str, &str)], read: impl FnOnce(&Seen)) -> bool {
    static ALL: OnceLock<Mutex<Vec<(CompositeKey, Seen)>>> = OnceLock::new();
    let mut all = ALL.get_or_init(Default::default).lock().unwrap();
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        let pos = match all.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                all.push((key, Seen::default()));
                all.len() - 1
            }
        };
        let acc = &mut all[pos].1;
        match value {
            DebugValue::Counter(n) => acc.counters += n,
            DebugValue::Gauge(g) => acc.gauges.push(g.into_inner()),
            DebugValue::Histogram(v) => acc.histogram.extend(v.into_iter().map(|f| f.into_inner())),
        }
    }
    let found = all.iter().find(|(key, _)| {
        let k = key.key();
        key.kind() == kind
            && k.name() == name
            && labels.iter().all(|(n, val)| k.labels().any(|l| l.key() == *n && l.value() == *val))
    });
    match found {
        Some((_, acc)) => {
            read(acc);
            true
        }
        None => false,
    }
}

fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut n = 0;
    seen(MetricKind::Counter, name, labels, |s| n = s.counters);
    n
}

conformance! {
    async fn counters_histograms_and_gauges_are_recorded(db) {
        snapshotter();
        let queue = format!("telemetry-{:?}", db.kind).to_lowercase();
        let p = Probe::new();
        let rt = db.runtime().queue(&queue, 2).gauge_interval(Duration::from_millis(100)).start().await.unwrap();
        db.insert(record(&p, "ok", 0).on_queue(&queue)).await.unwrap();
        let failing = db.insert(AlwaysFails { probe: p.key.clone() }.on_queue(&queue)).await.unwrap().job.id;
        db.wait_job(failing, JobState::Discarded).await;
        let q = queue.as_str();
        wait_for("the completed gauge", LONG, || async {
            let mut one = false;
            seen(MetricKind::Gauge, jobsmith::telemetry::JOBS, &[("queue", q), ("state", "completed")], |s| {
                one = s.gauges.contains(&1.0)
            });
            one.then_some(())
        })
        .await;
        // Finished states are counted on every 30th pass only (gauges.rs); the passes between
        // must still set the last count. A snapshot drains what was set, so a pass that set it
        // shows as one more 1 in the history: several passes later (both engines' runtimes add
        // to the pass counter, so twice as many), more 1s than the one full pass gave.
        let passes = || counter(jobsmith::telemetry::SERVICE_PASSES, &[("service", "gauges"), ("outcome", "ok")]);
        let after = passes();
        wait_for("six more gauge passes", LONG, || async { (passes() >= after + 6).then_some(()) }).await;
        seen(MetricKind::Gauge, jobsmith::telemetry::JOBS, &[("queue", q), ("state", "completed")], |s| {
            let first = s.gauges.iter().position(|g| *g == 1.0).expect("seen above");
            let later = s.gauges[first + 1..].iter().filter(|g| **g == 1.0).count();
            assert!(later >= 2, "the passes between full counts did not set the completed gauge: {:?}", s.gauges);
        });
        rt.shutdown().await.unwrap();

        use jobsmith::telemetry::*;
        let record_worker = <crate::jobs::Record as jobsmith::Job>::NAME;
        let fails_worker = <AlwaysFails as jobsmith::Job>::NAME;
        assert_eq!(counter(INSERTED, &[("queue", q), ("worker", record_worker)]), 1);
        assert_eq!(counter(INSERTED, &[("queue", q), ("worker", fails_worker)]), 1);
        assert_eq!(counter(COMPLETED, &[("queue", q), ("worker", record_worker)]), 1);
        assert_eq!(counter(FAILED, &[("queue", q), ("worker", fails_worker)]), 3);
        assert_eq!(counter(RETRIED, &[("queue", q), ("worker", fails_worker)]), 2);
        assert_eq!(counter(DISCARDED, &[("queue", q), ("worker", fails_worker)]), 1);
        let mut runs = 0;
        assert!(seen(MetricKind::Histogram, RUN_TIME, &[("queue", q), ("worker", fails_worker)], |s| runs = s.histogram.len()));
        assert_eq!(runs, 3, "one run time per attempt");
        assert!(seen(MetricKind::Histogram, QUEUE_WAIT, &[("queue", q)], |_| {}));
        // Every background service's passes reach the metrics: the gauges ran (the gauge above
        // was set), and the stager made the two retries available (counters are shared by the
        // tests of this binary, so at least).
        assert!(counter(SERVICE_PASSES, &[("service", "gauges"), ("outcome", "ok")]) >= 1);
        assert!(counter(SERVICE_PASSES, &[("service", "stager"), ("outcome", "ok")]) >= 1);
        assert!(counter(SERVICE_ROWS, &[("service", "stager")]) >= 2, "the two retries were staged");
    }
}
