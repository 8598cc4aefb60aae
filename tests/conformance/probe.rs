//! A per-test record of what jobs did, reached from inside jobs by a key in their args.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

static PROBES: LazyLock<Mutex<HashMap<String, Arc<Probe>>>> = LazyLock::new(Default::default);
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// What one test's jobs report.
#[derive(Default)]
pub struct Probe {
    pub key: String,
    /// (label, attempt, when) of every start.
    pub starts: Mutex<Vec<(String, u32, Instant)>>,
    running: Mutex<HashMap<String, usize>>,
    /// Highest number of jobs running at once, per queue.
    pub peak: Mutex<HashMap<String, usize>>,
    pub observed_cancel: AtomicUsize,
}

impl Probe {
    /// A new probe with a unique key.
    pub fn new() -> Arc<Probe> {
        let key = format!("p{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let probe = Arc::new(Probe { key: key.clone(), ..Default::default() });
        PROBES.lock().unwrap().insert(key, probe.clone());
        probe
    }

    /// The probe of `key`.
    pub fn get(key: &str) -> Arc<Probe> {
        PROBES.lock().unwrap().get(key).cloned().expect("probe registered")
    }

    /// Records a start and counts the job as running on `queue`.
    pub fn enter(&self, label: &str, attempt: u32, queue: &str) {
        self.starts.lock().unwrap().push((label.to_string(), attempt, Instant::now()));
        let mut running = self.running.lock().unwrap();
        let n = running.entry(queue.to_string()).or_default();
        *n += 1;
        let mut peak = self.peak.lock().unwrap();
        let p = peak.entry(queue.to_string()).or_default();
        *p = (*p).max(*n);
    }

    /// The job left.
    pub fn leave(&self, queue: &str) {
        *self.running.lock().unwrap().get_mut(queue).expect("entered") -= 1;
    }

    /// Labels in start order.
    pub fn labels(&self) -> Vec<String> {
        self.starts.lock().unwrap().iter().map(|s| s.0.clone()).collect()
    }

    /// How many starts so far.
    pub fn start_count(&self) -> usize {
        self.starts.lock().unwrap().len()
    }
}
